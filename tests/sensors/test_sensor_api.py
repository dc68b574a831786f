"""The sensors as a DAG author meets them: parse-time validation, ``from_event``, Jinja, trigger kwargs."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import DAG
from pydantic import ValidationError

from airflow_provider_wbauto.automations import OnAddArtifactAlias, OnRunMetric, OnRunState, RunEvent
from airflow_provider_wbauto.local import LocalWandb
from airflow_provider_wbauto.sensors import (
    ArtifactAliasSensor,
    ArtifactCreatedSensor,
    RunMetricSensor,
    RunStateSensor,
)
from airflow_provider_wbauto.sensors.wandb import CLAIMS_BYTES, CLAIMS_KEPT, recent_claims
from airflow_provider_wbauto.triggers import WandbEventTrigger
from tests.airflow_env import ti_state, write_dag, xcom


@pytest.mark.parametrize(
    ("make", "field", "allowed"),
    [
        (
            lambda: RunMetricSensor(task_id="t", scope="acme", filter=RunEvent.metric("x") > 1),
            "scope",
            "entity/project",
        ),
        (
            lambda: RunStateSensor(task_id="t", scope="a/p", filter={"run_state_filter": {"states": ["DONE"]}}),
            "state",
            "FINISHED",
        ),
        (
            lambda: RunMetricSensor(
                task_id="t", scope="a/p", filter={"metric": {"name": "x", "cmp": "~", "threshold": 1}}
            ),
            "cmp",
            ">=",
        ),
        (lambda: ArtifactCreatedSensor(task_id="t", scope="a/p"), "scope", "entity/project/collection"),
        (lambda: ArtifactAliasSensor(task_id="t", scope="a/p/c", since="last week"), "since", "beginning"),
    ],
)
def test_bad_specs_fail_at_parse_time_naming_the_field(make: object, field: str, allowed: str) -> None:
    with pytest.raises((ValidationError, ValueError)) as caught:
        make()  # type: ignore[operator]
    assert field in str(caught.value) and allowed in str(caught.value)


def test_from_event_builds_the_same_sensor() -> None:
    event = OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("loss").mean(5) < 0.1)
    sensor = RunMetricSensor.from_event(task_id="t", event=event, deferrable=True)
    assert sensor.event() == event and sensor.deferrable
    assert [a.uri for a in sensor.inlets] == ["wandb://acme/mnist"]  # the cursor's asset, in the lineage
    with pytest.raises(TypeError, match="RunStateSensor takes an OnRunState"):
        RunStateSensor.from_event(task_id="u", event=OnAddArtifactAlias(scope="a/p/c"))  # type: ignore[arg-type]


def test_trigger_kwargs_are_plain_and_hold_no_secret(wandb_conn: LocalWandb) -> None:
    event = OnRunState(scope="acme/mnist", filter=RunEvent.state == "FAILED")
    trigger = WandbEventTrigger(
        event=event.model_dump(mode="json") | {"on": "OnRunState"}, automation="a", cursor=None, version=0
    )
    _, kwargs = trigger.serialize()
    text = repr(kwargs)
    assert kwargs["wandb_conn_id"] == "wandb_default" and wandb_conn.api_key not in text


def test_scope_and_filter_names_render_with_jinja_and_since_beginning_backfills(
    wandb_conn: LocalWandb, entity: str
) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "p", "r", state="finished")
    store.log(entity, "p", "r", [{"_step": i, "acc": 0.5 + i / 10} for i in range(6)])
    dag = write_dag(
        """
        import pendulum
        from airflow.sdk import DAG
        from airflow_provider_wbauto.automations import RunEvent
        from airflow_provider_wbauto.sensors import RunMetricSensor

        with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
                 params={"entity": "nobody", "metric": "loss"}) as dag:
            RunMetricSensor(task_id="watch", scope="{{ params.entity }}/p",
                            filter=RunEvent.metric("{{ params.metric }}") >= 0.9, since="beginning",
                            poke_interval=0.2, timeout=60, deferrable=True)
        """
    )
    run = dag.test(run_conf={"entity": entity, "metric": "acc"})
    assert ti_state(run, "watch") == "success"
    events = xcom(run, "watch")
    assert [(e["metric_name"], e["step"], e["entity_name"]) for e in events] == [("acc", 4, entity)]


@pytest.mark.parametrize(
    ("runs", "pool", "warned"), [(16, "default_pool", True), (1, "default_pool", False), (16, "one_slot", False)]
)
def test_a_dag_whose_runs_may_interleave_on_the_cursor_is_warned_about(
    runs: int, pool: str, warned: bool, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with DAG("d", schedule=None, max_active_runs=runs) as dag:
        sensor = ArtifactCreatedSensor(task_id="t", scope="a/p/c", pool=pool)
    sensor._warn_if_runs_may_interleave({"dag": dag})  # type: ignore[typeddict-item]
    out = capfd.readouterr()
    logs = out.err + out.out + caplog.text
    assert ("may claim the same W&B event" in logs) is warned


def test_claims_keep_the_recent_runs_within_the_state_stores_soft_limit() -> None:
    small = [[f"run-{i}", [{"event_id": str(i)}]] for i in range(40)]
    assert recent_claims(small) == small[-CLAIMS_KEPT:]
    big = [[f"run-{i}", [{"event_id": str(i), "artifact_metadata": {"blob": "x" * 10_000}}]] for i in range(10)]
    kept = recent_claims(big)
    assert kept == big[-len(kept) :] and 1 < len(kept) < 10
    assert len(json.dumps(kept)) <= CLAIMS_BYTES
    huge = [[f"run-{i}", [{"event_id": str(i), "blob": "x" * 100_000}]] for i in range(3)]
    assert recent_claims(huge) == huge[-1:]  # the newest claim stays, whatever its size
