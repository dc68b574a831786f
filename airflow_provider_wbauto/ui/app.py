"""The Automations pages and their JSON API: a FastAPI app the plugin mounts on Airflow's api-server at
``/wbauto``, behind Airflow's own authentication (the UI's session cookie or a bearer token) and its
auth manager's DAG permissions: every read is limited to the DAGs the user may read.

- ``/wbauto/`` and ``/wbauto/api/automations``: every automation (``?project=entity/project``);
- ``/wbauto/dags/{dag_id}`` and ``/wbauto/api/automations/{dag_id}/firings``: its firings, newest first,
  paged (``?offset=&limit=``), each metric event with its picture (``chart.py``);
- ``/wbauto/api/automations/{dag_id}/firings/{run_id}/events/{index}/chart.svg``: one picture.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from ..automations.events import RunMetricFilter
from ..hooks.transport import RetryPolicy
from ..hooks.wandb import WandbHook
from . import chart, pages, records
from .plugin import PREFIX

log = logging.getLogger(__name__)

HISTORY_AROUND = 40  # steps of the run drawn before the firing step (and a quarter of it after)

app = FastAPI(title="W&B Automations", docs_url=None, redoc_url=None, openapi_url=None)


def readable_dags(user: GetUserDep) -> set[str]:
    """The DAG ids this user may read, as Airflow's auth manager says."""
    return get_auth_manager().get_authorized_dag_ids(user=user, method="GET")


Readable = Annotated[set[str], Depends(readable_dags)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=200)]


def _now() -> datetime:
    return datetime.now(UTC)


def _in_project(found: list[records.AutomationRecord], project: str | None) -> list[records.AutomationRecord]:
    return [a for a in found if not project or a.project == project]


def _one(session: Any, readable: set[str], dag_id: str) -> records.AutomationRecord:
    """The automation of a DAG the user may read; 404 for any other (whether or not it exists)."""
    found = records.automation(session, dag_id, _now()) if dag_id in readable else None
    if found is None:
        raise HTTPException(404, f"no automation {dag_id!r} that you may read")
    return found


@app.get("/api/automations")
def list_automations(session: SessionDep, readable: Readable, project: str | None = None) -> dict[str, Any]:
    found = _in_project(records.automations(session, readable, _now()), project)
    return {"automations": [a.as_json() for a in found]}


@app.get("/api/automations/{dag_id}/firings")
def list_firings(
    dag_id: str, session: SessionDep, readable: Readable, offset: Offset = 0, limit: Limit = 25
) -> dict[str, Any]:
    _one(session, readable, dag_id)
    found, total = records.firings(session, dag_id, offset, limit)
    return {"total": total, "offset": offset, "limit": limit, "firings": [f.as_json() for f in found]}


@app.get("/api/automations/{dag_id}/firings/{run_id}/events/{index}/chart.svg")
def event_chart(dag_id: str, run_id: str, index: int, session: SessionDep, readable: Readable) -> Response:
    automation = _one(session, readable, dag_id)
    found = records.firing(session, dag_id, run_id)
    events = found.events if found is not None else []
    if not 0 <= index < len(events) or "step" not in events[index]:
        raise HTTPException(404, f"run {run_id!r} of {dag_id!r} has no metric event {index}")
    (drawn,) = _pictures(automation, [events[index]])
    return Response(drawn or "", media_type="image/svg+xml")


@app.get("/", response_class=HTMLResponse)
def automations_page(session: SessionDep, readable: Readable, project: str | None = None) -> str:
    everything = records.automations(session, readable, _now())
    shown = _in_project(everything, project)
    projects = sorted({a.project for a in everything})
    return pages.automations_page(
        automations=shown, projects=projects, project=project, base=PREFIX, wandb=_wandb_app_url()
    )


@app.get("/dags/{dag_id}", response_class=HTMLResponse)
def history_page(
    dag_id: str, session: SessionDep, readable: Readable, offset: Offset = 0, limit: Limit = 25
) -> HTMLResponse:
    """The tab Airflow shows on every DAG: the history of an automation's; a short page for any other."""
    try:
        automation = _one(session, readable, dag_id)
    except HTTPException:
        return HTMLResponse(pages.not_an_automation_page(dag_id=dag_id, base=PREFIX), status_code=404)
    found, total = records.firings(session, dag_id, offset, limit)
    pairs = [(f, e) for f in found for e in (f.events or [{}])]
    pictures = _pictures(automation, [e for _, e in pairs])
    rows = [(f, e, p) for (f, e), p in zip(pairs, pictures, strict=True)]
    return HTMLResponse(pages.history_page(rows, a=automation, total=total, offset=offset, limit=limit, base=PREFIX))


def _pictures(automation: records.AutomationRecord, events: list[dict[str, Any]]) -> list[str | None]:
    """An SVG for each metric event, the run's history read from W&B once per project (the events'
    own window values when W&B cannot be read), ``None`` for the others."""
    event_filter = automation.automation.event.filter
    if not isinstance(event_filter, RunMetricFilter):
        return [None] * len(events)
    metric = event_filter.metric
    history = _histories(metric.name, [e for e in events if "step" in e])
    out: list[str | None] = []
    for event in events:
        if "step" not in event:
            out.append(None)
            continue
        key = (event.get("entity_name"), event.get("project_name"), event.get("run_id"))
        rows = history.get(key, [])
        out.append(chart.svg(chart.picture(metric, event, rows)))
    return out


def _histories(metric: str, events: list[dict[str, Any]]) -> dict[tuple[Any, Any, Any], list[tuple[int, float]]]:
    wanted: dict[tuple[str, str], dict[str, tuple[int, int]]] = defaultdict(dict)
    for e in events:
        step = int(e["step"])
        span = wanted[(str(e.get("entity_name")), str(e.get("project_name")))]
        low, high = span.get(str(e.get("run_id")), (step, step))
        span[str(e.get("run_id"))] = (min(low, step - HISTORY_AROUND), max(high, step + HISTORY_AROUND // 4 + 1))
    out: dict[tuple[Any, Any, Any], list[tuple[int, float]]] = {}
    for (entity, project), windows in wanted.items():
        try:
            hook = WandbHook(timeout=5.0, retry=RetryPolicy(max_attempts=2, max_total_seconds=10.0))  # a page waits
            read = hook.history(entity, project, windows, keys=[metric])
        except Exception as exc:  # W&B unreachable: the pictures fall back to the events' window values
            log.warning("W&B history of %s/%s not read for the pictures: %s", entity, project, type(exc).__name__)
            continue
        for run_id, rows in read.items():
            points = [(int(r["_step"]), float(r[metric])) for r in rows if _number(r.get(metric))]
            out[(entity, project, run_id)] = points
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wandb_app_url() -> str | None:
    """The W&B UI of the default connection, for the scope links (none without a connection)."""
    try:
        return WandbHook.app_url(WandbHook().endpoint)
    except Exception:  # no wandb_default connection here: the scopes are shown without links
        return None
