"""Team and organization scopes: every project of the entity, projects created later included, each
watched as a project watch is, with the project in the event ids."""

from __future__ import annotations

from typing import Any

from airflow_provider_wbauto.automations import ArtifactEvent, OnAddArtifactAlias, OnRunMetric, OnRunState, RunEvent
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.hooks.watch import SnapshotState, Watch, poll, read_snapshot, stream_of
from airflow_provider_wbauto.local import LocalWandb
from tests.hooks.test_watch import rows


def _hook(wandb_conn: LocalWandb) -> WandbHook:
    return WandbHook()


def test_team_scope_run_states_in_every_project_and_in_one_created_later(wandb_conn: LocalWandb, entity: str) -> None:
    store, hook = wandb_conn.store, _hook(wandb_conn)
    store.upsert_run(entity, "vision", "r1")
    store.upsert_run(entity, "vision", "old", state="failed")  # failed before the watch began: never news
    watch = Watch(OnRunState(scope=f"team:{entity}", filter=RunEvent.state == "FAILED"), "alerts")
    events, cursor = hook.run(poll(watch, None))
    assert events == [] and set(cursor["projects"]) == {"vision"}

    store.set_state(entity, "vision", "r1", "failed")
    store.upsert_run(entity, "nlp", "r1", state="failed")  # a project created after the watch began
    events, cursor = hook.run(poll(watch, cursor))
    assert sorted((e["project_name"], e["run_id"], e["entity_name"]) for e in events) == [
        ("nlp", "r1", entity),
        ("vision", "r1", entity),
    ]
    assert len({e["event_id"] for e in events}) == 2  # the same run id in two projects: two events
    assert {e["url"] for e in events} == {f"https://wandb.ai/{entity}/{p}/runs/r1" for p in ("nlp", "vision")}
    assert hook.run(poll(watch, cursor))[0] == []


def test_team_scope_metric_reads_a_new_project_from_its_first_step(wandb_conn: LocalWandb, entity: str) -> None:
    store, hook = wandb_conn.store, _hook(wandb_conn)
    store.upsert_run(entity, "vision", "r1")
    store.log(entity, "vision", "r1", rows([0.1, 0.1]))  # below the threshold before the watch: not news
    watch = Watch(OnRunMetric(scope=f"team:{entity}", filter=RunEvent.metric("loss") < 0.5), "low-loss")
    _, cursor = hook.run(poll(watch, None))

    store.upsert_run(entity, "nlp", "bert")
    store.log(entity, "nlp", "bert", rows([0.9, 0.4, 0.3]))
    store.upsert_run(entity, "vision", "r2")
    store.log(entity, "vision", "r2", rows([0.8, 0.2]))
    events, cursor = hook.run(poll(watch, cursor))
    assert sorted((e["project_name"], e["run_id"], e["step"]) for e in events) == [
        ("nlp", "bert", 1),
        ("vision", "r2", 1),
    ]
    assert hook.run(poll(watch, cursor))[0] == []


def test_a_shared_snapshot_gives_the_same_events_and_cursors_at_team_scope(wandb_conn: LocalWandb, entity: str) -> None:
    """The triggerer reads a team once per interval for all its automations; each polls against it."""
    store, hook = wandb_conn.store, _hook(wandb_conn)
    store.upsert_run(entity, "vision", "r1")
    event = OnRunMetric(scope=f"team:{entity}", filter=RunEvent.metric("loss") < 0.5)
    watch = Watch(event, "low-loss")
    state = SnapshotState()
    snapshot, state = hook.run(read_snapshot(stream_of(event), event.scope, state, keys=frozenset({"loss"})))
    alone: Any = hook.run(poll(watch, None))[1]
    shared: Any = hook.run(poll(watch, None, snapshot))[1]
    assert alone == shared
    for step in range(3):
        store.log(entity, "vision", "r1", rows([0.9 - 0.3 * step], first=step))
        store.upsert_run(entity, f"new-{step}", "r")
        store.log(entity, f"new-{step}", "r", rows([0.2]))
        snapshot, state = hook.run(read_snapshot(stream_of(event), event.scope, state, keys=frozenset({"loss"})))
        got_alone, alone = hook.run(poll(watch, alone))
        got_shared, shared = hook.run(poll(watch, shared, snapshot))
        assert got_alone == got_shared and alone == shared
        assert sorted(e["project_name"] for e in got_shared) == [f"new-{step}"] + (["vision"] if step == 2 else [])
    assert snapshot.parts is not None and set(snapshot.parts) == {"vision", "new-0", "new-1", "new-2"}


def test_org_scope_watches_the_registries_including_one_created_later(wandb_conn: LocalWandb, entity: str) -> None:
    store, hook = wandb_conn.store, _hook(wandb_conn)
    model = store.create_version(entity, "mnist", "cnn")
    store.link(model, entity, "wandb-registry-model", "mnist", aliases=["staging"])
    watch = Watch(OnAddArtifactAlias(scope=f"org:{entity}", filter=ArtifactEvent.alias == "production"), "deploy")
    _, cursor = hook.run(poll(watch, None))

    store.link(model, entity, "wandb-registry-model", "mnist", aliases=["production"])
    data = store.create_version(entity, "mnist", "train-set", type="dataset")
    store.link(data, entity, "wandb-registry-dataset", "mnist-train", aliases=["production"])  # a new registry
    store.add_aliases(data, store.collection_id(entity, "mnist", "train-set"), ["production"])  # not a registry
    events, cursor = hook.run(poll(watch, cursor))
    assert sorted((e["project_name"], e["artifact_version_string"]) for e in events) == [
        ("wandb-registry-dataset", f"{entity}/wandb-registry-dataset/mnist-train:v0"),
        ("wandb-registry-model", f"{entity}/wandb-registry-model/mnist:v0"),
    ]  # the organization's registries, listed as the SDK lists them: never its entity's other projects
    assert sorted(cursor["projects"]) == ["wandb-registry-dataset", "wandb-registry-model"]
    assert hook.run(poll(watch, cursor))[0] == []
