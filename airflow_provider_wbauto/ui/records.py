"""What the Automations page shows, read from Airflow's metadata DB: the automations (DAGs tagged
``wandb-automation``, their spec in the DAG docs) a user may read, and each one's firings (one per DAG
run: the events, the action task's state, when it acted). Only DAG ids the caller passes as readable
are ever read, so a user sees neither the automation nor the events of a DAG they may not read.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.dag import DagModel, DagTag
from airflow.models.dagrun import DagRun
from airflow.models.serialized_dag import SerializedDagModel
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from ..automations.automation import Automation
from ..automations.events import filter_words
from ..factory import TAG, automation_of_spec, spec_from_docs
from ..hooks.actions import event_payloads

ACTION_TASK, SENSOR_TASK = "act", "wait_for_event"


@dataclass(frozen=True)
class AutomationRecord:
    """One row of the Automations table."""

    dag_id: str
    automation: Automation
    paused: bool
    last_fired: datetime | None = None
    fired_24h: int = 0
    fired_7d: int = 0

    @property
    def name(self) -> str:
        return self.automation.name

    @property
    def scope(self) -> str:
        return str(self.automation.scope)

    @property
    def project(self) -> str:
        scope = self.automation.scope
        return f"{scope.entity}/{scope.project}" if scope.project else str(scope.entity)

    @property
    def event(self) -> str:
        return self.automation.event.event_type

    @property
    def filter(self) -> str:
        return describe_filter(self.automation.event.filter)

    @property
    def action(self) -> str:
        return self.automation.action.action_type

    def as_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "name": self.name,
            "scope": self.scope,
            "project": self.project,
            "event": self.event,
            "filter": self.filter,
            "action": self.action,
            "enabled": self.automation.enabled,
            "paused": self.paused,
            "mode": self.automation.mode,
            "last_fired": self.last_fired.isoformat() if self.last_fired else None,
            "fired_24h": self.fired_24h,
            "fired_7d": self.fired_7d,
        }


@dataclass(frozen=True)
class Firing:
    """One DAG run of an automation: the events it was given and what its action did with them."""

    run_id: str
    started: datetime | None
    state: str | None  # the action task's: success, failed, up_for_retry, running, skipped...
    tries: int
    acted_at: datetime | None  # when the action's outlet asset event was emitted (delivered)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.state in ("failed", "upstream_failed", "up_for_retry")

    def latency(self, event: dict[str, Any]) -> float | None:
        """Seconds from the event (``occurred_at``) to the action's asset event."""
        happened = _when(event.get("occurred_at"))
        if happened is None or self.acted_at is None:
            return None
        return (self.acted_at - happened).total_seconds()

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started": self.started.isoformat() if self.started else None,
            "state": self.state,
            "tries": self.tries,
            "failed": self.failed,
            "acted_at": self.acted_at.isoformat() if self.acted_at else None,
            "events": [{**e, "latency_seconds": self.latency(e)} for e in self.events],
        }


def describe_filter(value: Any) -> str:
    """An event's filter in the words of ``str(event)``: ``mean(val_loss, 3) > 0.5``, ``state in [FAILED]
    and display_name matches ^sweep-``, ``alias matches ^prod``; ``any`` when there is none."""
    return filter_words(value)


def automations(session: Session, readable: Collection[str], now: datetime) -> list[AutomationRecord]:
    """Every automation among the ``readable`` DAGs, by name, with when it last fired and how often."""
    dags = session.execute(
        select(DagModel.dag_id, DagModel.is_paused)
        .join(DagTag, DagTag.dag_id == DagModel.dag_id)
        .where(DagTag.name == TAG, DagModel.dag_id.in_(list(readable)), ~DagModel.is_stale)
    ).all()
    paused = {dag_id: bool(is_paused) for dag_id, is_paused in dags}
    found = dict(_specs(session, list(paused)))
    fired = _fired(session, list(found), now)
    records = [
        AutomationRecord(dag_id, automation, paused[dag_id], *fired.get(dag_id, (None, 0, 0)))
        for dag_id, automation in found.items()
    ]
    return sorted(records, key=lambda r: r.name)


def automation(session: Session, dag_id: str, now: datetime) -> AutomationRecord | None:
    """One automation (the caller has checked that its DAG is readable)."""
    found = automations(session, [dag_id], now)
    return found[0] if found else None


def firings(session: Session, dag_id: str, offset: int = 0, limit: int = 25) -> tuple[list[Firing], int]:
    """The automation's DAG runs, newest first, a page of them, with the total count. A run whose action
    was skipped had nothing to act on (an event-mode watcher's nudge): it is not a firing."""
    skipped = exists().where(
        TaskInstance.dag_id == DagRun.dag_id,
        TaskInstance.run_id == DagRun.run_id,
        TaskInstance.task_id == ACTION_TASK,
        TaskInstance.state == "skipped",
    )
    fired = (DagRun.dag_id == dag_id, ~skipped)
    total = session.scalar(select(func.count()).select_from(DagRun).where(*fired)) or 0
    runs = session.scalars(
        select(DagRun).where(*fired).order_by(DagRun.run_after.desc(), DagRun.id.desc()).offset(offset).limit(limit)
    ).all()
    return _firings(session, dag_id, list(runs)), total


def firing(session: Session, dag_id: str, run_id: str) -> Firing | None:
    runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).all()
    found = _firings(session, dag_id, list(runs))
    return found[0] if found else None


def _firings(session: Session, dag_id: str, runs: list[DagRun]) -> list[Firing]:
    if not runs:
        return []
    run_ids = [r.run_id for r in runs]
    actions = {
        ti.run_id: ti
        for ti in session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(run_ids), TaskInstance.task_id == ACTION_TASK
            )
        )
    }
    acted = {
        e.source_run_id: e
        for e in session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == f"wandb-automation://{dag_id}", AssetEvent.source_run_id.in_(run_ids))
        )
    }
    sensed = {
        x.run_id: x.value
        for x in session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id.in_(run_ids),
                XComModel.task_id == SENSOR_TASK,
                XComModel.key == "return_value",
            )
        )
    }
    out = []
    for run in runs:
        ti, outlet = actions.get(run.run_id), acted.get(run.run_id)
        if outlet is not None:
            events = list(event_payloads(outlet.extra))
        elif run.run_id in sensed:
            events = list(event_payloads(_loaded(sensed[run.run_id])))
        else:
            events = [p for e in run.consumed_asset_events for p in event_payloads((e.extra or {}).get("payload"))]
        out.append(
            Firing(
                run_id=run.run_id,
                started=run.start_date or run.run_after,
                state=str(ti.state) if ti is not None and ti.state is not None else None,
                tries=ti.try_number if ti is not None else 0,
                acted_at=outlet.timestamp if outlet is not None else None,
                events=events,
            )
        )
    return out


def _specs(session: Session, dag_ids: list[str]) -> Iterator[tuple[str, Automation]]:
    if not dag_ids:
        return
    for row in SerializedDagModel.get_latest_serialized_dags(dag_ids=dag_ids, session=session):
        data = row.data or {}
        spec = spec_from_docs((data.get("dag") or {}).get("doc_md"))
        if spec is not None:
            yield row.dag_id, automation_of_spec(spec)


def _fired(session: Session, dag_ids: list[str], now: datetime) -> dict[str, tuple[datetime | None, int, int]]:
    """Per automation: its last outlet asset event, and how many in the last 24 hours and 7 days."""
    if not dag_ids:
        return {}
    uris = {f"wandb-automation://{d}": d for d in dag_ids}
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    rows = session.execute(
        select(
            AssetModel.name,
            func.max(AssetEvent.timestamp),
            func.count().filter(AssetEvent.timestamp >= day),
            func.count().filter(AssetEvent.timestamp >= week),
        )
        .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
        .where(AssetModel.name.in_(list(uris)))
        .group_by(AssetModel.name)
    ).all()
    return {uris[uri]: (last, int(day_n), int(week_n)) for uri, last, day_n, week_n in rows}


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _when(stamp: Any) -> datetime | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
