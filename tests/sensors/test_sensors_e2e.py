"""Each event sensor in a whole DAG under ``dag.test()``, deferrable and in reschedule mode, against
the local W&B server while a scenario is played: exactly the events docs/semantics.md defines fire."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from airflow_provider_wbauto.automations import RunEvent
from airflow_provider_wbauto.local import LocalWandb, Store
from tests.airflow_env import SENSOR_MODES, play_during, ti_state, write_dag, xcom


def sensor_dag(sensor: str, args: str, mode: str) -> Any:
    return write_dag(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_provider_wbauto.automations import ArtifactEvent, RunEvent
        from airflow_provider_wbauto.sensors import {sensor}

        with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
                 max_active_runs=1) as dag:
            {sensor}(task_id="watch", {args}, poke_interval=0.2, timeout=120, {SENSOR_MODES[mode]})
        """
    )


def fired(server: LocalWandb, dag: Any, steps: list[Any]) -> list[dict[str, Any]]:
    run = play_during(server, dag, steps)
    assert ti_state(run, "watch") == "success"
    events: list[dict[str, Any]] = xcom(run, "watch")
    assert events, "a successful sensor returns its events"
    assert len({e["event_id"] for e in events}) == len(events)
    return events


def rows(first: int, values: list[float]) -> list[dict[str, Any]]:
    return [{"_step": first + i, "loss": v} for i, v in enumerate(values)]


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_run_metric(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "p", "r1", display_name="bright-sun-1")
    store.log(entity, "p", "r1", rows(0, [0.4] * 5))  # below the threshold before the watch: never fires
    spec = RunEvent.metric("loss").mean(3) < 0.5
    dag = sensor_dag("RunMetricSensor", f"scope='{entity}/p', filter=RunEvent.metric('loss').mean(3) < 0.5", mode)

    logged = rows(5, [0.9, 0.9, 0.9, 0.3, 0.2, 0.1])
    events = fired(
        wandb_conn,
        dag,
        [
            lambda s: s.log(entity, "p", "r1", logged[:2]),
            lambda s: s.log(entity, "p", "r1", logged[2:4]),
            lambda s: s.log(entity, "p", "r1", logged[4:]),
        ],
    )
    assert spec.firing_steps(logged) == [9]  # the batch form agrees on the rows logged after the watch began
    (event,) = events
    assert event["event_type"] == "RUN_METRIC"
    assert (event["run_id"], event["run_name"], event["step"]) == ("r1", "bright-sun-1", 9)
    assert event["window_values"] == [0.9, 0.3, 0.2]
    assert event["metric_name"] == "loss" and event["metric_value"] == pytest.approx(1.4 / 3)
    assert event["entity_name"] == entity and event["project_name"] == "p"
    assert event["url"] == f"{wandb_conn.url}/{entity}/p/runs/r1"
    assert event["automation_name"] == f"{dag.dag_id}.watch"

    def new_run(s: Store) -> None:
        s.upsert_run(entity, "p", "r2")
        s.log(entity, "p", "r2", rows(0, [0.2, 0.2, 0.2]))

    # r1 stays below (fires once per run); the new run r2 fires at its first full window
    events = fired(wandb_conn, dag, [lambda s: s.log(entity, "p", "r1", rows(11, [0.1, 0.1])), new_run])
    assert [(e["run_id"], e["step"]) for e in events] == [("r2", 2)]


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_run_state(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "p", "old", state="crashed")  # failed before the watch: never fires
    store.upsert_run(entity, "p", "a")
    dag = sensor_dag("RunStateSensor", f"scope='{entity}/p', filter=RunEvent.state == 'FAILED'", mode)

    events = fired(
        wandb_conn,
        dag,
        [
            lambda s: s.set_state(entity, "p", "a", "finished"),  # not a matching state
            lambda s: s.upsert_run(entity, "p", "b"),
            lambda s: s.set_state(entity, "p", "b", "crashed"),
        ],
    )
    assert [(e["run_id"], e["run_state"], e["event_type"]) for e in events] == [("b", "crashed", "RUN_STATE")]
    events = fired(wandb_conn, dag, [lambda s: s.upsert_run(entity, "p", "c", state="failed")])
    assert [(e["run_id"], e["run_state"]) for e in events] == [("c", "failed")]


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_artifact_created(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    store.create_version(entity, "p", "model", metadata={"acc": 0.8})  # v0, before the watch
    dag = sensor_dag("ArtifactCreatedSensor", f"scope='{entity}/p/model'", mode)
    pending: list[int] = []
    events = fired(
        wandb_conn,
        dag,
        [
            lambda s: pending.append(s.create_version(entity, "p", "model", metadata={"acc": 0.9}, state="PENDING")),
            lambda s: s.commit_version(pending[0]),  # created counts once committed
        ],
    )
    (event,) = events
    assert event["event_type"] == "CREATE_ARTIFACT"
    assert event["artifact_version_index"] == 1
    assert event["artifact_version_string"] == f"{entity}/p/model:v1"
    assert event["artifact_collection_name"] == "model"
    assert event["artifact_metadata"] == {"acc": 0.9}
    assert event["artifact_version"].startswith("wandb-artifact://_id/")
    assert event["url"] == f"{wandb_conn.url}/{entity}/p/artifacts/model/model/v1"


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_artifact_linked(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    registry = "wandb-registry-model"
    v0 = store.create_version(entity, "p", "model")
    v1 = store.create_version(entity, "p", "model")
    store.link(v0, entity, registry, "classifier")  # before the watch
    dag = sensor_dag("ArtifactLinkedSensor", f"scope='{entity}/{registry}'", mode)

    events = fired(wandb_conn, dag, [lambda s: s.link(v1, entity, registry, "classifier", aliases=["staging"])])
    (event,) = events
    assert event["event_type"] == "LINK_MODEL"
    assert event["artifact_collection_name"] == "classifier"
    assert event["artifact_version_string"] == f"{entity}/{registry}/classifier:v1"
    assert "staging" in event["aliases"]

    portfolio = store.collection_id(entity, registry, "classifier")
    events = fired(
        wandb_conn,
        dag,
        [lambda s: s.unlink(v1, portfolio), lambda s: s.link(v1, entity, registry, "classifier")],
    )
    assert [e["artifact_version_index"] for e in events] == [1]  # a new membership: unlinked and linked again


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_artifact_unlinked(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    registry = "wandb-registry-model"
    v0, v1, v2 = (store.create_version(entity, "p", "model") for _ in range(3))
    store.link(v0, entity, registry, "classifier")
    store.link(v1, entity, registry, "classifier")
    store.unlink(v1, store.collection_id(entity, registry, "classifier"))  # before the watch: never fires
    portfolio = store.collection_id(entity, registry, "classifier")
    dag = sensor_dag("ArtifactUnlinkedSensor", f"scope='{entity}/{registry}'", mode)

    first = fired(
        wandb_conn,
        dag,
        [lambda s: s.link(v2, entity, registry, "classifier"), lambda s: s.unlink(v0, portfolio)],
    )
    (event,) = first
    assert event["event_type"] == "UNLINK_ARTIFACT"
    assert (event["artifact_collection_name"], event["artifact_version_string"]) == (
        "classifier",
        f"{entity}/{registry}/classifier:v0",
    )
    v0_id = "wandb-artifact://_id/" + base64.b64encode(f"Artifact:{v0}".encode()).decode()  # W&B's node id
    assert event["artifact_version"] == v0_id

    # linked again and unlinked again: a new link, so a new unlink event
    again = fired(
        wandb_conn, dag, [lambda s: s.link(v0, entity, registry, "classifier"), lambda s: s.unlink(v0, portfolio)]
    )
    assert [e["artifact_version"] for e in again] == [v0_id]
    assert again[0]["event_id"] != event["event_id"]


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_artifact_alias(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    v0 = store.create_version(entity, "p", "model", aliases=["staging"])
    v1 = store.create_version(entity, "p", "model")
    seq = store.collection_id(entity, "p", "model")
    dag = sensor_dag(
        "ArtifactAliasSensor", f"scope='{entity}/p/model', filter=ArtifactEvent.alias.matches_regex('^prod')", mode
    )

    def pairs(events: list[dict[str, Any]]) -> list[tuple[int, str]]:
        assert all(e["event_type"] == "ADD_ARTIFACT_ALIAS" for e in events)
        return [(e["artifact_version_index"], e["alias"]) for e in events]

    added = fired(
        wandb_conn,
        dag,
        [
            lambda s: s.add_aliases(v1, seq, ["candidate"]),  # filtered out
            lambda s: s.add_aliases(v0, seq, ["production"]),
        ],
    )
    assert pairs(added) == [(0, "production")]
    moved = fired(wandb_conn, dag, [lambda s: s.add_aliases(v1, seq, ["production"])])
    assert pairs(moved) == [(1, "production")]
    readded = fired(
        wandb_conn,
        dag,
        [lambda s: s.remove_aliases(v1, seq, ["production"]), lambda s: s.add_aliases(v1, seq, ["production"])],
    )
    assert pairs(readded) == [(1, "production")]
    assert readded[0]["event_id"] != moved[0]["event_id"]  # removed and re-added: a new event


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_version_tags_added_removed_and_added_again(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    v0 = store.create_version(entity, "p", "model")
    v1 = store.create_version(entity, "p", "model")
    store.update_version(v0, add_tags=["prod"])  # before the watch: never fires
    added = sensor_dag("ArtifactTagAddedSensor", f"scope='{entity}/p/model', filter=ArtifactEvent.tag == 'prod'", mode)
    removed = sensor_dag("ArtifactTagRemovedSensor", f"scope='{entity}/p/model'", mode)
    events = fired(
        wandb_conn,
        added,
        [lambda s: s.update_version(v1, add_tags=["staging"]), lambda s: s.update_version(v1, add_tags=["prod"])],
    )
    assert [(e["event_type"], e["artifact_version_index"], e["tag"]) for e in events] == [
        ("ADD_ARTIFACT_TAG", 1, "prod")
    ]
    first = events[0]["event_id"]

    gone = fired(wandb_conn, removed, [lambda s: s.update_version(v0, remove_tags=["prod"])])
    assert [(e["event_type"], e["artifact_version_index"], e["tag"]) for e in gone] == [
        ("REMOVE_ARTIFACT_TAG", 0, "prod")
    ]

    # v1 loses "prod" and gets it back: a new pair, a new event id
    back = fired(
        wandb_conn,
        added,
        [lambda s: s.update_version(v1, remove_tags=["prod"]), lambda s: s.update_version(v1, add_tags=["prod"])],
    )
    assert [(e["artifact_version_index"], e["tag"]) for e in back] == [(1, "prod")] and back[0]["event_id"] != first


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_collection_tags_added_and_removed(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    store.create_version(entity, "p", "model")
    store.create_version(entity, "p", "data", type="dataset")
    model, data = store.collection_id(entity, "p", "model"), store.collection_id(entity, "p", "data")
    added = sensor_dag("CollectionTagAddedSensor", f"scope='{entity}/p'", mode)
    removed = sensor_dag("CollectionTagRemovedSensor", f"scope='{entity}/p'", mode)

    def tag_both(s: Store) -> None:
        with s.transaction():  # one write: a poll sees both tags or neither
            s.update_collection_tags(model, add=["vision"])
            s.update_collection_tags(data, add=["raw"])

    events = fired(wandb_conn, added, [tag_both])
    assert sorted((e["artifact_collection_name"], e["tag"]) for e in events) == [("data", "raw"), ("model", "vision")]
    assert all(e["event_type"] == "ADD_COLLECTION_TAG" and "artifact_version" not in e for e in events)
    gone = fired(wandb_conn, removed, [lambda s: s.update_collection_tags(model, remove=["vision"])])
    assert [(e["event_type"], e["artifact_collection_name"], e["tag"]) for e in gone] == [
        ("REMOVE_COLLECTION_TAG", "model", "vision")
    ]


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_run_state_at_team_scope_in_every_project_and_one_created_later(
    wandb_conn: LocalWandb, entity: str, mode: str
) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "vision", "a")
    store.upsert_run(entity, "vision", "old", state="failed")  # before the watch: never fires
    dag = sensor_dag("RunStateSensor", f"scope='team:{entity}', filter=RunEvent.state == 'FAILED'", mode)
    events = fired(
        wandb_conn,
        dag,
        [
            lambda s: s.upsert_run(entity, "nlp", "a"),  # a project created after the watch began
            lambda s: s.set_state(entity, "vision", "a", "finished"),  # not a matching state
            lambda s: s.set_state(entity, "nlp", "a", "failed"),
        ],
    )
    assert [(e["project_name"], e["run_id"], e["run_state"]) for e in events] == [("nlp", "a", "failed")]
    events = fired(wandb_conn, dag, [lambda s: s.upsert_run(entity, "vision", "b", state="crashed")])
    assert [(e["project_name"], e["run_id"], e["run_state"]) for e in events] == [("vision", "b", "crashed")]


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_run_metric_at_team_scope_reads_a_new_project_from_its_first_step(
    wandb_conn: LocalWandb, entity: str, mode: str
) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "vision", "r1")
    store.log(entity, "vision", "r1", rows(0, [0.2] * 3))  # below the threshold before the watch: never fires
    dag = sensor_dag("RunMetricSensor", f"scope='team:{entity}', filter=RunEvent.metric('loss') < 0.5", mode)

    def new_project(s: Store) -> None:
        s.upsert_run(entity, "nlp", "bert")
        s.log(entity, "nlp", "bert", rows(0, [0.9, 0.8]))

    events = fired(
        wandb_conn,
        dag,
        [
            new_project,
            lambda s: s.log(entity, "vision", "r1", rows(3, [0.9])),
            lambda s: s.log(entity, "nlp", "bert", rows(2, [0.3])),
        ],
    )
    assert [(e["project_name"], e["run_id"], e["step"]) for e in events] == [("nlp", "bert", 2)]
