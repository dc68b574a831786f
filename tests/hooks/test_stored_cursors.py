"""A stored cursor is read back only if it is exactly what a poll of its event family writes: a damaged
one is an error naming the state-store key and how to reset it, never a silent re-fire or re-baseline.

Every family's real cursors (polled against the local backend around real changes) pass the check
unchanged; damaged ones (a corpus below) fail it naming where; a sensor whose record was damaged
in Airflow's store fails with the key and the reset, and leaves the record as it was.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_wbauto.automations import (
    ArtifactEvent,
    OnAddArtifactAlias,
    OnAddArtifactTag,
    OnAddCollectionTag,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRemoveArtifactTag,
    OnRemoveCollectionTag,
    OnRunMetric,
    OnRunState,
    OnUnlinkArtifact,
    RunEvent,
)
from airflow_provider_wbauto.automations.events import Event
from airflow_provider_wbauto.hooks.cursors import (
    CursorError,
    StoredCursorError,
    check,
    family,
    stored_ids,
    stored_record,
)
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.hooks.watch import Watch, poll
from airflow_provider_wbauto.local import LocalWandb, Store
from tests.airflow_env import SENSOR_MODES, play_during, ti_state, write_dag, xcom
from tests.hooks.test_watch import rows

pytestmark = pytest.mark.hostile  # the hostile-input corpus (python -m reliability counts it)

REGISTRY = "wandb-registry-model"


def _events(entity: str) -> list[Event]:
    """One event of each cursor family, at project and narrower scopes, and at a team scope."""
    return [
        OnRunMetric(scope=f"{entity}/p", filter=RunEvent.metric("loss").mean(2) < 0.1),  # never fires: keeps its window
        OnRunState(scope=f"{entity}/p", filter=RunEvent.state == "FAILED"),
        OnCreateArtifact(scope=f"{entity}/p/model"),  # newest versions
        OnCreateArtifact(scope=f"{entity}/{REGISTRY}/prod"),  # present
        OnLinkArtifact(scope=f"{entity}/{REGISTRY}"),  # newest links
        OnLinkArtifact(scope=f"{entity}/p"),  # present
        OnUnlinkArtifact(scope=f"{entity}/{REGISTRY}"),
        OnAddArtifactAlias(scope=f"{entity}/p/model", filter=ArtifactEvent.alias == "production"),
        OnAddArtifactTag(scope=f"{entity}/p/model"),
        OnRemoveArtifactTag(scope=f"{entity}/p/model"),
        OnAddCollectionTag(scope=f"{entity}/p"),
        OnRemoveCollectionTag(scope=f"{entity}/p"),
        OnRunMetric(scope=f"team:{entity}", filter=RunEvent.metric("loss") < 0.5),
        OnAddArtifactAlias(scope=f"team:{entity}"),
    ]


def _changes(entity: str) -> list[Callable[[Store], Any]]:
    def runs(s: Store) -> None:
        s.upsert_run(entity, "p", "r1")
        s.log(entity, "p", "r1", rows([0.9, 0.4, 0.3]))
        s.upsert_run(entity, "p", "r2", state="failed")

    def artifacts(s: Store) -> None:
        v = s.create_version(entity, "p", "model", aliases=["production"])
        s.create_version(entity, "p", "model", state="PENDING")
        s.link(v, entity, REGISTRY, "prod")
        s.update_version(v, add_tags=["gold"])
        s.update_collection_tags(s.collection_id(entity, "p", "model"), add=["vision"])

    def removals(s: Store) -> None:
        v = s.version_id(entity, "p", "model", "v1")  # the one linked and tagged
        s.unlink(v, s.collection_id(entity, REGISTRY, "prod"))
        s.update_version(v, remove_tags=["gold"])
        s.update_collection_tags(s.collection_id(entity, "p", "model"), remove=["vision"])
        s.log(entity, "p", "r1", rows([0.2], first=3))

    return [runs, artifacts, removals]


def test_every_familys_real_cursors_pass_the_check_unchanged(wandb_conn: LocalWandb, entity: str) -> None:
    hook, store = WandbHook(), wandb_conn.store
    store.upsert_run(entity, "p", "r0")
    store.create_version(entity, "p", "model")
    watches = [Watch(event, "a") for event in _events(entity)]
    cursors: list[Any] = [hook.run(poll(watch, None))[1] for watch in watches]
    families = set()
    for change in _changes(entity):
        change(store)
        for i, watch in enumerate(watches):
            cursors[i] = hook.run(poll(watch, cursors[i]))[1]
            assert check(watch.event, cursors[i]) == cursors[i], watch.event
            families.add(family(watch.event))
    assert families == {"runs", "newest", "aliases", "present", "linked", "tags"}
    # what the checked cursors held: runs with an engine, a pending version, a link, a removed tag
    assert any("engine" in e for e in cursors[0]["runs"].values())
    assert cursors[2]["uncommitted"] and cursors[4]["newest"]
    assert cursors[8]["untagged"] and set(cursors[12]["projects"]) == {"p", REGISTRY}


def _run_cursor() -> dict[str, Any]:
    return {
        "newest_heartbeat": "2026-01-01T00:00:00Z",
        "runs": {"r1": {"heartbeat": "2026-01-01T00:00:00Z", "state": "running", "last_step": 3, "lines": 4}},
    }


METRIC = OnRunMetric(scope="e/p", filter=RunEvent.metric("loss") < 0.5)
STATE = OnRunState(scope="e/p", filter=RunEvent.state == "FAILED")
VERSIONS = OnCreateArtifact(scope="e/p/model")
ALIASES = OnAddArtifactAlias(scope="e/p/model")
PRESENT = OnCreateArtifact(scope=f"e/{REGISTRY}/prod")
UNLINK = OnUnlinkArtifact(scope=f"e/{REGISTRY}")
TAGS = OnAddArtifactTag(scope="e/p/model")
TEAM = OnRunState(scope="team:e", filter=RunEvent.state == "FAILED")

# (event, damaged cursor, what the error must say)
DAMAGED: list[tuple[Event, Any, str]] = [
    (METRIC, {}, "newest_heartbeat: Field required"),
    (METRIC, {"runs": {}}, "newest_heartbeat: Field required"),  # would list every run as new
    (METRIC, {"newest_heartbeat": None}, "runs: Field required"),
    (METRIC, [], "the value: Input should be an object"),
    (METRIC, "cursor", "the value: Input should be an object"),
    (METRIC, 7, "the value: Input should be an object"),
    (METRIC, {"newest_heartbeat": "yesterday", "runs": {}}, "newest_heartbeat: Value error"),
    (METRIC, {"newest_heartbeat": 1767225600, "runs": {}}, "newest_heartbeat: Input should be a valid string"),
    (METRIC, {"newest_heartbeat": None, "runs": []}, "runs: Input should be an object"),
    (METRIC, {"newest_heartbeat": None, "runs": {"r1": 3}}, "runs.r1: Input should be an object"),
    (METRIC, {**_run_cursor(), "extra": 1}, "extra: Extra inputs are not permitted"),
    (
        METRIC,
        {"newest_heartbeat": None, "runs": {"r1": {"last_step": "3"}}},
        "runs.r1.last_step: Input should be a valid integer",
    ),
    (
        METRIC,
        {"newest_heartbeat": None, "runs": {"r1": {"last_step": 3.0}}},
        "runs.r1.last_step: Input should be a valid integer",
    ),
    (
        METRIC,
        {"newest_heartbeat": None, "runs": {"r1": {"lines": None}}},
        "runs.r1.lines: Input should be a valid integer",
    ),
    (
        METRIC,
        {"newest_heartbeat": None, "runs": {"r1": {"done": "yes"}}},
        "runs.r1.done: Input should be a valid boolean",
    ),
    (METRIC, {"newest_heartbeat": None, "runs": {"r1": {"engine": {}}}}, "runs.r1.engine.buf: Field required"),
    (
        METRIC,
        {"newest_heartbeat": None, "runs": {"r1": {"engine": {"buf": ["x"], "count": 1}}}},
        "runs.r1.engine.buf.0: Input should be a valid number",
    ),
    (
        METRIC,
        {"newest_heartbeat": None, "runs": {"r1": {"engine": {"buf": [], "count": 0, "evil": 1}}}},
        "runs.r1.engine.evil: Extra",
    ),
    (METRIC, {"newest_heartbeat": None, "runs": {"r1": {"stepp": 1}}}, "runs.r1.stepp: Extra inputs are not permitted"),
    (
        METRIC,
        {"hw": None, "runs": {"r1": {"s": "x"}}},
        "runs.r1.last_step: Input should be a valid integer",
    ),  # short keys, checked under today's
    (
        STATE,
        {"newest_heartbeat": None, "runs": {"r1": {"fired_states": "failed"}}},
        "runs.r1.fired_states: Input should be a valid array",
    ),
    (STATE, {"newest_heartbeat": None, "runs": {"r1": {"state": 1}}}, "runs.r1.state: Input should be a valid string"),
    (STATE, {"present": []}, "newest_heartbeat: Field required"),  # another family's cursor
    (VERSIONS, {"present": []}, "newest: Field required"),  # was taken as a baseline: events lost
    (VERSIONS, {}, "newest: Field required"),
    (
        VERSIONS,
        {"newest": None, "near_newest": [], "uncommitted": {"k": ["a"]}},
        "uncommitted.k.1: Field required",
    ),
    (
        VERSIONS,
        {"newest": None, "near_newest": [], "uncommitted": {"k": ["a", "1"]}},
        "uncommitted.k.1: Input should be a valid integer",
    ),
    (
        VERSIONS,
        {"newest": None, "near_newest": [1], "uncommitted": {}},
        "near_newest.0: Input should be a valid string",
    ),
    (VERSIONS, {"newest": "2026-13-01T00:00:00Z", "near_newest": [], "uncommitted": {}}, "newest: Value error"),
    (ALIASES, {"present": []}, "pairs: Field required"),
    (ALIASES, {"pairs": {}, "gone": []}, "gone: Input should be an object"),
    (ALIASES, {"pairs": {"k": "1"}, "gone": {}}, "pairs.k: Input should be a valid integer"),
    (ALIASES, {"aliases": "abc"}, "aliases: Input should be a valid array"),  # as stored before pairs
    (ALIASES, {"aliases": [None]}, "aliases.0: Input should be a valid string"),
    (VERSIONS, {"newest_index": {"model": 1.0}, "newest": None, "uncommitted": {}}, "newest_index.model: Input"),
    (VERSIONS, {"newest_index": [], "newest": None, "uncommitted": {}}, "newest_index: Input should be an object"),
    (PRESENT, {}, "present: Field required"),
    (PRESENT, {"present": {}}, "present: Input should be a valid array"),
    (UNLINK, {"linked": {"k": ["m", "c", 0, "a"]}}, "linked.k.4: Field required"),
    (UNLINK, {"linked": {"k": ["m", "c", "0", "a", "model"]}}, "linked.k.2: Input should be a valid integer"),
    (UNLINK, {"present": []}, "linked: Field required"),
    (TAGS, {"tagged": {}}, "untagged: Field required"),
    (
        TAGS,
        {"tagged": {"k": [1, "c", 0, "a", "model"]}, "untagged": {}},
        "tagged.k.5: Field required",
    ),
    (TAGS, {"tagged": {}, "untagged": {"k": "1"}}, "untagged.k: Input should be a valid integer"),
    (TEAM, {}, "projects: Field required"),
    (TEAM, {"projects": []}, "projects: Input should be an object"),
    (TEAM, {"projects": {"vision": {"runs": {}}}}, "projects.vision.newest_heartbeat: Field required"),
    (
        TEAM,
        {"projects": {"vision": _run_cursor() | {"absent": 3}}},
        "projects.vision.absent: Input should be a valid string",
    ),
]


@pytest.mark.parametrize(
    ("event", "cursor", "said"), DAMAGED, ids=[f"{e.event_type}-{i}" for i, (e, _, _) in enumerate(DAMAGED)]
)
def test_a_damaged_cursor_is_an_error_saying_where(event: Event, cursor: Any, said: str) -> None:
    with pytest.raises(CursorError, match=f"not a cursor of {event.event_type} at ") as err:
        check(event, cursor)
    assert said in str(err.value)


def test_the_error_names_the_key_and_the_reset_and_shows_at_most_three_problems() -> None:
    runs = {f"r{i}": {"last_step": "x"} for i in range(10)}
    with pytest.raises(StoredCursorError) as err:
        stored_record(
            METRIC,
            {"version": 3, "cursor": {"newest_heartbeat": None, "runs": runs}, "claims": []},
            asset="wandb://e/p",
            key="wbauto:d.t:abc",
        )
    text = str(err.value)
    assert text.startswith("State-store key 'wbauto:d.t:abc' of asset 'wandb://e/p' holds not a cursor of RUN_METRIC")
    assert "(and 7 more)" in text and "DELETE /api/v2/assets/<that asset's id>/state-store/wbauto:d.t:abc" in text


@pytest.mark.parametrize(
    ("record", "said"),
    [
        ({}, "version: Field required"),
        ({"version": "1", "cursor": None, "claims": []}, "version: Input should be a valid integer"),
        ({"version": 1, "cursor": [], "claims": []}, "cursor: Input should be an object"),
        ({"version": 1, "cursor": None, "claims": {}}, "claims: Input should be a valid array"),
        ({"version": 1, "cursor": None, "claims": [["run", {}]]}, "claims.0.1: Input should be a valid array"),
        ({"version": 1, "cursor": None, "claims": [], "other": 1}, "other: Extra inputs are not permitted"),
        ({"version": 1, "cursor": {"runs": {}}, "claims": []}, "newest_heartbeat: Field required"),
    ],
)
def test_a_damaged_sensor_record_is_an_error_naming_the_key(record: Any, said: str) -> None:
    with pytest.raises(StoredCursorError, match="State-store key 'k' of asset 'a'") as err:
        stored_record(METRIC, record, asset="a", key="k")
    assert said in str(err.value)


@pytest.mark.parametrize(
    ("value", "said"),
    [({"a": 1}, "Input should be a valid list"), ([1], "0: Input should be a valid string"), ("ids", "valid list")],
)
def test_damaged_event_ids_are_an_error_naming_the_key(value: Any, said: str) -> None:
    with pytest.raises(StoredCursorError, match="'wbauto_processed' of asset 'a'") as err:
        stored_ids(value, asset="a", key="wbauto_processed")
    assert said in str(err.value)
    assert stored_ids(None, asset="a", key="k") == [] and stored_ids(["x"], asset="a", key="k") == ["x"]


def _stored_row(key: str) -> Any:
    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetStateStoreModel).filter(AssetStateStoreModel.key == key).one()


def _damage(key: str, value: Any) -> None:
    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(AssetStateStoreModel).filter(AssetStateStoreModel.key == key).one()
        row.value = json.dumps(value)


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_a_sensor_whose_stored_cursor_was_damaged_fails_naming_the_key_and_leaves_it(
    wandb_conn: LocalWandb, entity: str, mode: str, capfd: pytest.CaptureFixture[str]
) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "p", "old", state="failed")
    dag = write_dag(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_provider_wbauto.automations import RunEvent
        from airflow_provider_wbauto.sensors import RunStateSensor

        with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
                 max_active_runs=1) as dag:
            RunStateSensor(task_id="watch", scope="{entity}/p", cursor_key="k-DAG_ID", since="beginning",
                           filter=RunEvent.state == "FAILED", poke_interval=0.2, timeout=60, retries=0,
                           {SENSOR_MODES[mode]})
        """
    )
    run = play_during(wandb_conn, dag, [])
    assert ti_state(run, "watch") == "success" and [e["run_id"] for e in xcom(run, "watch")] == ["old"]
    key = f"k-{dag.dag_id}"
    record = json.loads(_stored_row(key).value)
    damaged = record | {"cursor": {"runs": record["cursor"]["runs"]}}  # its newest heartbeat lost
    _damage(key, damaged)
    capfd.readouterr()

    store.upsert_run(entity, "p", "new", state="failed")
    run = dag.test()
    assert ti_state(run, "watch") == "failed"  # not the old run fired again, nor the new one missed
    out = "".join(capfd.readouterr())
    assert f"State-store key '{key}' of asset 'wandb://{entity}/p'" in out
    assert "newest_heartbeat: Field required" in out and f"state-store/{key}" in out
    assert json.loads(_stored_row(key).value) == damaged  # left as it was


class _AsyncStore:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


@pytest.mark.parametrize("which", ["cursor", "waiting"])
def test_a_watcher_whose_stored_cursor_was_damaged_stops_naming_the_key(wandb_conn: LocalWandb, which: str) -> None:
    """The asset watcher reads its cursor and the ids waiting for a nudge once, as it starts."""
    from airflow.sdk import Asset

    from airflow_provider_wbauto.automations.events import event_to_json
    from airflow_provider_wbauto.hooks.watch import spec_digest
    from airflow_provider_wbauto.triggers.watcher import WandbAutomationTrigger

    event = event_to_json(STATE)
    trigger = WandbAutomationTrigger(event=event, automation="a", watch_asset="wandb://e/p")
    digest = spec_digest(event, None, False)
    values = {"cursor:" + digest: {"runs": {}}} if which == "cursor" else {"waiting:" + digest: {"id": 1}}
    trigger.asset_state_store = {Asset("wandb://e/p"): _AsyncStore(values)}  # as the triggerer injects it

    async def nothing() -> Any:
        return
        yield

    async def first() -> Any:
        return [e async for e in trigger.filter_shared_stream(nothing())]

    with pytest.raises(StoredCursorError, match=f"State-store key '{which}:{digest}' of asset 'wandb://e/p'"):
        asyncio.run(first())
