"""The Automations pages' API and HTML on Airflow's own api-server app (``create_app``, the plugin
mounted from its entry point, a FastAPI test client), over automations that really fired under
``dag.test()``: the listing, the history newest first and paged, a failed delivery marked, the picture
of a metric event, and permissions: a user who may not read a DAG gets neither its automation nor its
events, in the listing, the history or the picture."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_wbauto.local import LocalWandb, Store
from airflow_provider_wbauto.local.receiver import Answer, Receiver
from tests.airflow_env import DAGS, play_during
from tests.conftest import API_KEY

AUTOMATIONS = """# the DAGs of two automations (safe mode opens files that say "dag")
from airflow_provider_wbauto.automations import (
    DoNothing, OnRunMetric, OnRunState, RunEvent, SendWebhook, WebhookIntegration,
)

WATCH = dict(mode="sensor", poll_interval=0.2, since="beginning")
OnRunMetric(scope="ENTITY/p", filter=RunEvent.metric("loss") < 0.5).then(DoNothing()).save(name="ENTITY-loss", **WATCH)
OnRunState(scope="ENTITY/p", filter=RunEvent.state == "FAILED").then(
    SendWebhook(integration=WebhookIntegration(conn_id="ui_hook"), payload={"run": "${run_name}"})
).save(name="secret-ENTITY-failures", **WATCH)
"""


@pytest.fixture(scope="module")
def fired(local_wandb: LocalWandb, airflow_db: None) -> Iterator[str]:
    """Two automations that fired (one module-wide scenario, read by every test): the metric one twice
    (two runs), the webhook one once delivered and once refused by the receiver (a 400: the action task
    fails)."""
    from airflow.dag_processing.dagbag import DagBag

    entity = "ui" + uuid.uuid4().hex[:10]
    with pytest.MonkeyPatch.context() as env, Receiver() as receiver:
        wandb = {"conn_type": "wandb", "host": local_wandb.url, "password": API_KEY}
        env.setenv("AIRFLOW_CONN_WANDB_DEFAULT", json.dumps(wandb))
        env.setenv("AIRFLOW_CONN_UI_HOOK", json.dumps({"conn_type": "wandb_webhook", "host": receiver.url()}))
        DAGS.mkdir(parents=True, exist_ok=True)
        path = DAGS / f"ui_{entity}.py"
        path.write_text(AUTOMATIONS.replace("ENTITY", entity))
        bag = DagBag(dag_folder=str(path), safe_mode=False)
        assert not bag.import_errors
        metric, failures = bag.dags[f"{entity}-loss"], bag.dags[f"secret-{entity}-failures"]

        def run(name: str, rows: list[float]) -> Any:
            return lambda s: (s.upsert_run(entity, "p", name), s.log(entity, "p", name, _rows(rows)))

        play_during(local_wandb, metric, [run("r1", [0.9, 0.8, 0.4, 0.3])])
        play_during(local_wandb, metric, [run("r2", [0.7, 0.2])])
        play_during(local_wandb, failures, [lambda s: _failed(s, entity, "fail-one")])
        receiver.answer(*[Answer(status=400)] * 5)
        play_during(local_wandb, failures, [lambda s: _failed(s, entity, "fail-two")])
        path.unlink()
        yield entity


def _rows(values: list[float]) -> list[dict[str, Any]]:
    return [{"_step": i, "loss": v} for i, v in enumerate(values)]


def _failed(store: Store, entity: str, name: str) -> None:
    store.upsert_run(entity, "p", name, display_name=f"run <b>{name}</b>")  # markup in a name stays text
    store.set_state(entity, "p", name, "failed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Airflow's api-server app (the plugin mounted from its entry point) with an auth manager that hides
    the ``secret*`` DAGs from the user ``outsider``."""
    from airflow.api_fastapi import app as api_app
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__CORE__AUTH_MANAGER", "tests.ui.auth.SomeDagsHiddenAuthManager")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,outsider:viewer")
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "ui-tests-jwt-signing-key-" + "k" * 40)  # HS512 wants 64+
        api_app.purge_cached_app()
        with TestClient(api_app.create_app()) as test_client:
            yield test_client
        api_app.purge_cached_app()


def as_user(client: Any, name: str, role: str) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name, role=role))
    return {"Authorization": f"Bearer {token}"}


def test_the_listing_and_history_of_what_fired(fired: str, client: Any) -> None:
    entity, admin = fired, as_user(client, "admin", "admin")
    listed = client.get("/wbauto/api/automations", params={"project": f"{entity}/p"}, headers=admin).json()
    by_name = {a["name"]: a for a in listed["automations"]}
    assert set(by_name) == {f"{entity}-loss", f"secret-{entity}-failures"}
    loss = by_name[f"{entity}-loss"]
    assert (loss["event"], loss["filter"], loss["action"], loss["mode"]) == (
        "RUN_METRIC", "loss < 0.5", "NO_OP", "sensor",
    )  # fmt: skip
    assert (loss["fired_24h"], loss["fired_7d"]) == (2, 2) and loss["last_fired"]
    assert by_name[f"secret-{entity}-failures"]["fired_24h"] == 1  # the refused delivery emitted nothing
    assert by_name[f"secret-{entity}-failures"]["filter"] == "state in [FAILED]"  # as str(event) says it
    assert client.get("/wbauto/api/automations", params={"project": "nobody/p"}, headers=admin).json() == {
        "automations": []
    }

    page = client.get(f"/wbauto/api/automations/{entity}-loss/firings", params={"limit": 1}, headers=admin).json()
    assert page["total"] == 2 and len(page["firings"]) == 1
    (newest,) = page["firings"]
    (event,) = newest["events"]
    assert (event["run_id"], event["step"], newest["state"]) == ("r2", 1, "success")  # newest first
    assert event["latency_seconds"] is not None and event["latency_seconds"] >= 0
    older = client.get(f"/wbauto/api/automations/{entity}-loss/firings?offset=1&limit=1", headers=admin).json()
    assert [(f["events"][0]["run_id"], f["events"][0]["step"]) for f in older["firings"]] == [("r1", 2)]

    failures = client.get(f"/wbauto/api/automations/secret-{entity}-failures/firings", headers=admin).json()
    assert [(f["events"][0]["run_id"], f["failed"], f["state"]) for f in failures["firings"]] == [
        ("fail-two", True, "failed"), ("fail-one", False, "success"),
    ]  # fmt: skip


def test_the_pages_show_rows_links_a_failed_delivery_and_the_threshold(fired: str, client: Any) -> None:
    entity, admin = fired, as_user(client, "admin", "admin")
    listing = client.get("/wbauto/", headers=admin)
    assert listing.status_code == 200 and f'data-dag-id="{entity}-loss"' in listing.text
    assert f'href="/wbauto/dags/{entity}-loss"' in listing.text and f'href="/dags/{entity}-loss"' in listing.text

    history = client.get(f"/wbauto/dags/{entity}-loss", headers=admin).text
    assert history.count('class="event"') == 2 and history.count("<svg") == 2
    assert 'class="threshold" data-value="0.5"' in history  # the line the metric crossed
    assert 'data-label="window"' in history and "fired at step 1" in history
    run_id = _run_id(client, entity, admin)
    chart = client.get(f"/wbauto/api/automations/{entity}-loss/firings/{run_id}/events/0/chart.svg", headers=admin)
    assert chart.headers["content-type"] == "image/svg+xml" and 'data-value="0.5"' in chart.text

    failures = client.get(f"/wbauto/dags/secret-{entity}-failures", headers=admin).text
    assert failures.count('class="event failed"') == 1 and failures.count('class="event"') == 1
    assert "run &lt;b&gt;fail-two&lt;/b&gt;" in failures and "<b>fail-two</b>" not in failures  # a run name is text


def _run_id(client: Any, entity: str, headers: dict[str, str]) -> str:
    page = client.get(f"/wbauto/api/automations/{entity}-loss/firings?limit=1", headers=headers).json()
    return str(page["firings"][0]["run_id"])


def test_a_user_who_may_not_read_a_dag_gets_neither_its_automation_nor_its_events(fired: str, client: Any) -> None:
    entity, outsider = fired, as_user(client, "outsider", "viewer")
    hidden = f"secret-{entity}-failures"
    listed = client.get("/wbauto/api/automations", headers=outsider).json()["automations"]
    assert f"{entity}-loss" in {a["name"] for a in listed} and hidden not in {a["name"] for a in listed}
    assert hidden not in client.get("/wbauto/", headers=outsider).text
    for path in (f"/wbauto/api/automations/{hidden}/firings", f"/wbauto/dags/{hidden}"):
        answer = client.get(path, headers=outsider)
        assert answer.status_code == 404 and "fail-one" not in answer.text and "fail-two" not in answer.text
    assert (
        "is not a W&amp;B automation that you may read" in client.get(f"/wbauto/dags/{hidden}", headers=outsider).text
    )
    run_id = client.get(f"/wbauto/api/automations/{hidden}/firings", headers=as_user(client, "admin", "admin")).json()
    chart = f"/wbauto/api/automations/{hidden}/firings/{run_id['firings'][0]['run_id']}/events/0/chart.svg"
    assert client.get(chart, headers=outsider).status_code == 404
    assert client.get("/wbauto/api/automations").status_code == 401  # no credentials at all
    assert client.get("/wbauto/", headers={"Authorization": "Bearer not-a-token"}).status_code in (401, 403)


@pytest.fixture(autouse=True)
def _clean_dags() -> Iterator[None]:
    yield
    shutil.rmtree(DAGS / "__pycache__", ignore_errors=True)


def test_a_run_whose_action_was_skipped_is_not_a_firing(fired: str, client: Any) -> None:
    """An event-mode watcher's nudge makes a DAG run with nothing to act on: its action is skipped."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    entity, admin = fired, as_user(client, "admin", "admin")
    path = f"/wbauto/api/automations/{entity}-loss/firings"
    oldest = client.get(path, headers=admin).json()["firings"][-1]["run_id"]

    def action_state(state: str) -> None:
        with create_session() as session:
            ti = session.query(TaskInstance).filter_by(dag_id=f"{entity}-loss", run_id=oldest, task_id="act").one()
            ti.state = state

    action_state("skipped")
    try:
        page = client.get(path, headers=admin).json()
        assert page["total"] == 1 and oldest not in {f["run_id"] for f in page["firings"]}
    finally:
        action_state("success")
    assert client.get(path, headers=admin).json()["total"] == 2
