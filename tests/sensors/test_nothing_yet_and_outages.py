"""A watched project that does not exist yet is "nothing yet" (W&B creates a project with its first
run, and that run's events fire); a W&B outage is waited out within the sensor's timeout, and the
error when it finally times out names the connection and the host."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_provider_wbauto.automations import OnRunState, RunEvent
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.hooks.watch import SnapshotState, Watch, absent, poll, read_snapshot
from airflow_provider_wbauto.local import LocalWandb, Store
from demo.cluster import free_port
from tests.airflow_env import SENSOR_MODES, play_during, ti_state, write_dag, xcom
from tests.conftest import API_KEY
from tests.own_server import local_wandb  # noqa: F401  (faults are injected here)

NOTHING_YET = "nothing to watch yet"


def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """What the DAG run logged: its tasks log to the process's output under ``dag.test()``."""
    out = capfd.readouterr()
    return out.out + out.err + caplog.text


def state_sensor_dag(scope: str, mode: str, *, timeout: float = 120, since: str | None = None) -> Any:
    return write_dag(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_provider_wbauto.automations import RunEvent
        from airflow_provider_wbauto.sensors import RunStateSensor

        with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
                 max_active_runs=1) as dag:
            RunStateSensor(task_id="watch", scope="{scope}", filter=RunEvent.state == "FAILED", since={since!r},
                           poke_interval=0.2, timeout={timeout}, {SENSOR_MODES[mode]})
        """
    )


def test_a_missing_project_is_an_empty_baseline_and_its_first_run_fires(wandb_conn: LocalWandb, entity: str) -> None:
    hook = WandbHook()
    watch = Watch(OnRunState(scope=f"{entity}/later", filter=RunEvent.state == "FAILED"), "a")
    events, cursor = hook.run(poll(watch, None))
    assert (
        events == []
        and absent(cursor) == f"W&B project {entity}/later does not exist or is not visible to this API key"
    )
    assert hook.run(poll(watch, cursor)) == ([], cursor)  # still nothing, nothing new to store
    wandb_conn.store.upsert_run(entity, "later", "first")  # W&B creates the project with its first run
    wandb_conn.store.set_state(entity, "later", "first", "failed")
    events, cursor = hook.run(poll(watch, cursor))
    assert [e["run_id"] for e in events] == ["first"] and absent(cursor) is None


def test_a_shared_snapshot_of_a_missing_project_says_so_and_the_first_run_fires(
    wandb_conn: LocalWandb, entity: str
) -> None:
    """The watchers' path: the producer's shared read, and an automation polling against it."""
    hook = WandbHook()
    event = OnRunState(scope=f"{entity}/later", filter=RunEvent.state == "FAILED")
    watch, state = Watch(event, "a"), SnapshotState()
    snapshot, state = hook.run(read_snapshot("runs", event.scope, state))
    assert snapshot.runs == [] and snapshot.absent is not None
    events, cursor = hook.run(poll(watch, None, snapshot))
    assert events == [] and absent(cursor) == snapshot.absent
    wandb_conn.store.upsert_run(entity, "later", "first")
    wandb_conn.store.set_state(entity, "later", "first", "failed")
    snapshot, state = hook.run(read_snapshot("runs", event.scope, state))
    events, cursor = hook.run(poll(watch, cursor, snapshot))
    assert [e["run_id"] for e in events] == ["first"] and absent(cursor) is None


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_a_sensor_waits_for_a_project_that_does_not_exist_yet(
    wandb_conn: LocalWandb, entity: str, mode: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    def first_run(store: Store) -> None:
        store.upsert_run(entity, "new", "r1", display_name="first-run")
        store.set_state(entity, "new", "r1", "failed")

    with caplog.at_level(logging.INFO):
        run = play_during(wandb_conn, state_sensor_dag(f"{entity}/new", mode), [lambda s: None, first_run])
    assert ti_state(run, "watch") == "success"
    assert [e["run_name"] for e in xcom(run, "watch")] == ["first-run"]
    assert logs(caplog, capfd).count(NOTHING_YET) == 1  # said once, not at every poke


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_an_outage_is_waited_out_within_the_timeout(
    wandb_conn: LocalWandb, entity: str, mode: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    wandb_conn.store.upsert_run(entity, "p", "r1", display_name="crashed-run")
    wandb_conn.store.set_state(entity, "p", "r1", "crashed")
    wandb_conn.inject(mode="status", status=503, count=7, path="/graphql")  # more than one poll's 5 attempts
    with caplog.at_level(logging.INFO):
        run = state_sensor_dag(f"{entity}/p", mode, since="beginning").test()
    assert ti_state(run, "watch") == "success"
    assert [e["run_name"] for e in xcom(run, "watch")] == ["crashed-run"]
    assert "W&B is unreachable" in logs(caplog, capfd)


def test_timing_out_during_an_outage_names_the_connection_and_host(
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    conn = {"conn_type": "wandb", "host": closed, "password": API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_WANDB_DEFAULT", json.dumps(conn))
    with caplog.at_level(logging.INFO):
        run = state_sensor_dag("acme/p", "reschedule", timeout=1).test()
    assert ti_state(run, "watch") == "failed"
    text = logs(caplog, capfd)
    assert "Sensor has timed out" in text
    assert f"W&B was unreachable at the last poke: W&B at {closed} (connection 'wandb_default')" in text
    assert API_KEY not in text
