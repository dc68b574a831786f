"""What a poll of new versions or added aliases costs on a collection of 10,000 versions: one small
request when nothing changed, a cursor that does not grow with the collection, and exactly the events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_wbauto.automations import ArtifactEvent, OnAddArtifactAlias, OnCreateArtifact, OnLinkArtifact
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.hooks.watch import SnapshotState, Watch, poll, read_snapshot, stream_of
from airflow_provider_wbauto.local import LocalWandb
from tests.hooks.test_watch import Recorder

VERSIONS = 10_000


def _collection(wandb_conn: LocalWandb, entity: str, aliases: dict[int, str] | None = None) -> list[int]:
    """10,000 versions, one a minute until a day ago."""
    store, start = wandb_conn.store, datetime.now(UTC) - timedelta(days=1, minutes=VERSIONS)
    with store.transaction():  # one write: about half a second
        ids = [
            store.create_version(entity, "p", "model", created_at=(start + timedelta(minutes=i)).isoformat())
            for i in range(VERSIONS)
        ]
        for index, alias in (aliases or {}).items():
            store.add_aliases(ids[index], store.collection_id(entity, "p", "model"), [alias])
    return ids


def test_new_versions_of_a_long_collection(wandb_conn: LocalWandb, entity: str) -> None:
    _collection(wandb_conn, entity)
    store, recorder = wandb_conn.store, Recorder(WandbHook())
    watch = Watch(OnCreateArtifact(scope=f"{entity}/p/model", filter=ArtifactEvent.metadata("ok") == True), "new")  # noqa: E712
    events, cursor = recorder(watch, None)
    assert events == [] and len(recorder.calls) == 1
    for _ in range(3):  # quiet: one request, one page, whatever the length
        events, cursor = recorder(watch, cursor)
        assert events == [] and len(recorder.calls) == 1
    assert len(json.dumps(cursor)) < 8 * 1024

    store.create_version(entity, "p", "model", metadata={"ok": True})
    store.create_version(entity, "p", "model", metadata={"ok": False})  # not matching the filter
    pending = store.create_version(entity, "p", "model", metadata={"ok": True}, state="PENDING")
    events, cursor = recorder(watch, cursor)
    assert [e["artifact_version_index"] for e in events] == [VERSIONS] and len(recorder.calls) == 1
    store.commit_version(pending)  # committed later: created now
    events, cursor = recorder(watch, cursor)
    assert [e["artifact_version_index"] for e in events] == [VERSIONS + 2]
    assert recorder(watch, cursor)[0] == [] and len(recorder.calls) == 1
    assert len(json.dumps(cursor)) < 8 * 1024


def test_a_burst_of_3000_versions_in_one_second_then_a_quiet_poll_is_one_request(
    wandb_conn: LocalWandb, entity: str
) -> None:
    """Versions are told new by version index, not creation time: a burst made within one second is
    not re-listed at every poll, and the cursor holds an index, not the burst."""
    store, recorder = wandb_conn.store, Recorder(WandbHook())
    watch = Watch(OnCreateArtifact(scope=f"{entity}/p/model"), "new")
    _, cursor = recorder(watch, None)
    stamp = datetime.now(UTC).isoformat()
    with store.transaction():
        for _ in range(3000):
            store.create_version(entity, "p", "model", created_at=stamp)
    events, cursor = recorder(watch, cursor)
    assert sorted(e["artifact_version_index"] for e in events) == list(range(3000))
    assert len(recorder.calls) == 1 + 3000 // 100  # a short first page, then pages of 100
    events, cursor = recorder(watch, cursor)
    assert events == [] and len(recorder.calls) == 1
    assert recorder.calls[0].variables["order"] == "-version_index"
    assert len(json.dumps(cursor)) < 8 * 1024


def test_a_version_pending_longer_than_the_listing_goes_back_is_reread_until_it_commits(
    wandb_conn: LocalWandb, entity: str
) -> None:
    store, recorder = wandb_conn.store, Recorder(WandbHook())
    watch = Watch(OnCreateArtifact(scope=f"{entity}/p/model"), "new")
    _, cursor = recorder(watch, None)
    pending = store.create_version(entity, "p", "model", state="PENDING", created_at="2020-01-01T00:00:00Z")
    for i in range(25):  # more than a page newer than it, a minute apart: the listing does not reach it
        store.create_version(
            entity, "p", "model", created_at=(datetime.now(UTC) - timedelta(minutes=25 - i)).isoformat()
        )
    events, cursor = recorder(watch, cursor)
    assert [e["artifact_version_index"] for e in events] == list(range(1, 26)) and list(cursor["uncommitted"])
    store.commit_version(pending)
    events, cursor = recorder(watch, cursor)  # an old creation time: found by re-reading it by id
    assert [e["artifact_version_index"] for e in events] == [0] and cursor["uncommitted"] == {}
    assert [c.query.split("(")[0] for c in recorder.calls] == ["query WbautoNewestVersions", "query WbautoVersionsById"]


def test_aliases_added_to_a_long_collection(wandb_conn: LocalWandb, entity: str) -> None:
    ids = _collection(wandb_conn, entity, aliases={10: "staging", 20: "production"})
    store, recorder = wandb_conn.store, Recorder(WandbHook())
    coll = store.collection_id(entity, "p", "model")
    watch = Watch(OnAddArtifactAlias(scope=f"{entity}/p/model", filter=ArtifactEvent.alias == "production"), "prod")
    _, cursor = recorder(watch, None)
    events, cursor = recorder(watch, cursor)
    assert events == [] and len(recorder.calls) == 2  # the aliases, and the version each names
    assert len(json.dumps(cursor)) < 8 * 1024  # the aliases present: a few, whatever the number of versions

    store.set_aliases(ids[30], coll, ["production"])  # moved from v20 to v30 (keeping its id, as W&B may)
    store.add_aliases(ids[40], coll, ["candidate"])  # not matching the filter
    events, cursor = recorder(watch, cursor)
    assert [(e["artifact_version_index"], e["alias"]) for e in events] == [(30, "production")]
    assert len(recorder.calls) == 3  # the aliases, what they name, then the versions of the two new ones
    assert recorder(watch, cursor)[0] == []


REGISTRY = "wandb-registry-model"


def _registry(wandb_conn: LocalWandb, entity: str) -> list[int]:
    """10,000 versions, each linked into the registry's "prod" collection a minute after it was made."""
    ids, store = _collection(wandb_conn, entity), wandb_conn.store
    start = datetime.now(UTC) - timedelta(days=1, minutes=VERSIONS)
    with store.transaction():
        for i, artifact in enumerate(ids):
            store.link(artifact, entity, REGISTRY, "prod", created_at=(start + timedelta(minutes=i + 1)).isoformat())
    return ids


@pytest.mark.parametrize("advanced", [True, False], ids=["advanced search", "basic search"])
@pytest.mark.parametrize("collection", ["", "/prod"], ids=["registry", "collection"])
def test_new_links_into_a_long_registry(wandb_conn: LocalWandb, entity: str, collection: str, advanced: bool) -> None:
    """With advanced search (probed once, as the SDK does) links are read newest first: a quiet poll is
    one small request. Without it no order may be asked for, so every link is read: 100 a request."""
    ids = _registry(wandb_conn, entity)
    store, recorder = wandb_conn.store, Recorder(WandbHook())
    store.set_advanced_search(entity, advanced)
    quiet = 1 if advanced else VERSIONS // 100 + 1  # the first page is short
    scope = f"{entity}/{REGISTRY}{collection}"
    watch = Watch(OnLinkArtifact(scope=scope, filter=ArtifactEvent.metadata("ok") != False), "linked")  # noqa: E712
    events, cursor = recorder(watch, None)
    assert events == [] and len(recorder.calls) == quiet
    for _ in range(2 if advanced else 1):  # quiet
        events, cursor = recorder(watch, cursor)
        assert events == [] and len(recorder.calls) == quiet
    assert len(json.dumps(cursor)) < 8 * 1024
    if not advanced:
        return

    store.link(ids[5], entity, REGISTRY, "staging")  # another collection of the registry
    store.link(store.create_version(entity, "p", "model"), entity, REGISTRY, "prod", aliases=["production"])
    store.link(store.create_version(entity, "p", "model", metadata={"ok": False}), entity, REGISTRY, "prod")
    events, cursor = recorder(watch, cursor)
    expected = [("staging", 0), ("prod", VERSIONS)] if not collection else [("prod", VERSIONS)]
    assert [(e["artifact_collection_name"], e["artifact_version_index"]) for e in events] == expected
    assert {e["event_type"] for e in events} == {"LINK_MODEL"} and len(recorder.calls) == 1
    assert recorder(watch, cursor)[0] == [] and len(recorder.calls) == 1
    assert len(json.dumps(cursor)) < 8 * 1024


@pytest.mark.parametrize("family", ["created", "linked"])
def test_a_burst_before_the_watch_begins_is_all_baseline(wandb_conn: LocalWandb, entity: str, family: str) -> None:
    """More versions or links within the margin than a first page holds: none of them fires later."""
    store, hook = wandb_conn.store, WandbHook()
    now = datetime.now(UTC)
    stamps = [(now - timedelta(seconds=12 - i)).isoformat() for i in range(12)]  # 12 in 12 s
    ids = [store.create_version(entity, "p", "model", created_at=stamp) for stamp in stamps]
    for artifact, stamp in zip(ids, stamps, strict=True):
        store.link(artifact, entity, REGISTRY, "prod", created_at=stamp)
    event = (
        OnCreateArtifact(scope=f"{entity}/p/model")
        if family == "created"
        else OnLinkArtifact(scope=f"{entity}/{REGISTRY}")
    )
    watch = Watch(event, "a")
    events, cursor = hook.run(poll(watch, None))
    assert events == [] and cursor["newest_index"] == {"model" if family == "created" else "prod": 11}
    assert hook.run(poll(watch, cursor))[0] == []
    new = store.create_version(entity, "p", "model")
    store.link(new, entity, REGISTRY, "prod")
    assert [e["artifact_version_index"] for e in hook.run(poll(watch, cursor))[0]] == [12]


def test_shared_reads_of_versions_and_aliases_give_what_each_watch_reads_alone(
    wandb_conn: LocalWandb, entity: str
) -> None:
    ids = _collection(wandb_conn, entity)[:100]
    store, hook = wandb_conn.store, WandbHook()
    coll = store.collection_id(entity, "p", "model")
    events = (
        OnCreateArtifact(scope=f"{entity}/p/model"),
        OnAddArtifactAlias(scope=f"{entity}/p/model"),
        OnLinkArtifact(scope=f"{entity}/{REGISTRY}"),
    )
    for event in events:
        watch, state = Watch(event, "a"), SnapshotState()
        snapshot, state = hook.run(read_snapshot(stream_of(event), event.scope, state))
        alone: Any = hook.run(poll(watch, None))[1]
        shared: Any = hook.run(poll(watch, None, snapshot))[1]
        assert alone == shared
        for n in range(3):
            store.create_version(entity, "p", "model")
            store.add_aliases(ids[n], coll, [f"{type(event).__name__}-{n}"])
            store.link(ids[n], entity, REGISTRY, f"{type(event).__name__}-{n % 2}")
            snapshot, state = hook.run(read_snapshot(stream_of(event), event.scope, state))
            got_alone, alone = hook.run(poll(watch, alone))
            got_shared, shared = hook.run(poll(watch, shared, snapshot))
            assert _timeless(got_alone) == _timeless(got_shared) and alone == shared
            assert len(got_shared) == (
                2 if isinstance(event, OnAddArtifactAlias) else 1
            )  # a new alias and latest moved; a version; a link


def _timeless(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alias events occur when seen (W&B does not say when an alias was added): compare the rest."""
    return [{k: v for k, v in e.items() if k != "occurred_at"} for e in events]


def test_a_version_uncommitted_when_the_watch_begins_fires_when_it_commits(wandb_conn: LocalWandb, entity: str) -> None:
    store, hook = wandb_conn.store, WandbHook()
    store.create_version(entity, "p", "model")
    pending = store.create_version(entity, "p", "model", state="PENDING")
    watch = Watch(OnCreateArtifact(scope=f"{entity}/p/model"), "new")
    events, cursor = hook.run(poll(watch, None))
    assert events == [] and len(cursor["uncommitted"]) == 1
    store.commit_version(pending)
    assert [e["artifact_version_index"] for e in hook.run(poll(watch, cursor))[0]] == [1]
