"""The run cursor stays bounded: per run, only what the next poll needs (a window's values, not its
history); quiet runs are dropped and picked up again when they resume; a cursor stored under the
short keys of earlier versions goes on where it stood."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_wbauto.automations import OnRunMetric, OnRunState, RunEvent
from airflow_provider_wbauto.hooks.cursors import check
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.hooks.watch import RUNS_KEPT, SnapshotState, Watch, poll, read_snapshot
from airflow_provider_wbauto.local import LocalWandb

ACTIVE = 1000


def _active_runs(wandb_conn: LocalWandb, entity: str, steps: int) -> None:
    store = wandb_conn.store
    with store.transaction():
        for i in range(ACTIVE):
            store.upsert_run(entity, "p", f"run{i:04d}")
            store.log(entity, "p", f"run{i:04d}", [{"loss": 1.0 + (s % 7) / 8} for s in range(steps)])


@pytest.mark.parametrize(
    ("metric", "values_kept"),
    [(RunEvent.metric("loss").gt(10), 0), (RunEvent.metric("loss").zscore(window=30).gt(50), 30)],
    ids=["threshold", "zscore30"],
)
def test_a_run_entry_holds_what_the_next_poll_needs_whatever_the_history(
    wandb_conn: LocalWandb, entity: str, metric: Any, values_kept: int
) -> None:
    _active_runs(wandb_conn, entity, steps=60)
    hook = WandbHook()
    watch = Watch(OnRunMetric(scope=f"{entity}/p", filter=metric), "a", since="beginning")
    events, cursor = hook.run(poll(watch, None))
    assert events == [] and len(cursor["runs"]) == ACTIVE
    entry = cursor["runs"]["run0000"]
    assert set(entry) == {"heartbeat", "state", "last_step", "lines", "engine"}
    assert (entry["last_step"], entry["lines"]) == (59, 60)
    assert len(entry["engine"]["buf"]) == values_kept  # the window's values, not the 60 rows read
    per_run = len(json.dumps(cursor)) / ACTIVE
    assert per_run < 180 + 25 * values_kept, per_run  # 60 rows or a million
    print(f"\n{metric}: {ACTIVE} active runs, cursor {len(json.dumps(cursor)) / 1024:.1f} KiB")

    wandb_conn.store.log(entity, "p", "run0007", [{"loss": 100.0}])  # fires, and is read no further
    events, after = hook.run(poll(watch, cursor))
    assert [(e["run_id"], e["step"]) for e in events] == [("run0007", 60)]
    assert after["runs"]["run0007"] == {k: after["runs"]["run0007"][k] for k in ("heartbeat", "state", "last_step")} | {
        "done": True
    }


def test_quiet_runs_are_dropped_and_picked_up_again_when_they_resume(wandb_conn: LocalWandb, entity: str) -> None:
    store, hook = wandb_conn.store, WandbHook()
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    store.upsert_run(entity, "p", "stalled", created_at=two_days_ago)  # running, silent for two days
    store.upsert_run(entity, "p", "live")
    watch = Watch(OnRunMetric(scope=f"{entity}/p", filter=RunEvent.metric("loss").gt(1)), "a", since="beginning")
    _, cursor = hook.run(poll(watch, None))
    assert set(cursor["runs"]) == {"stalled", "live"}  # both listed at the first poll
    store.log(entity, "p", "live", [{"loss": 0.5}])
    _, cursor = hook.run(poll(watch, cursor))
    assert set(cursor["runs"]) == {"live"}  # a day quieter than the newest heartbeat: dropped

    store.log(entity, "p", "stalled", [{"loss": 0.5}])  # it resumes
    _, cursor = hook.run(poll(watch, cursor))
    assert set(cursor["runs"]) == {"live", "stalled"}
    store.log(entity, "p", "stalled", [{"loss": 2.0}])
    events, _ = hook.run(poll(watch, cursor))
    assert [(e["run_id"], e["step"]) for e in events] == [("stalled", 1)]


def test_past_runs_kept_the_least_recently_heard_of_go_first(
    wandb_conn: LocalWandb, entity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("airflow_provider_wbauto.hooks.watch.RUNS_KEPT", 3)
    store, hook = wandb_conn.store, WandbHook()
    watch = Watch(OnRunState(scope=f"{entity}/p", filter=RunEvent.state == "FAILED"), "a", since="beginning")
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(5):
        store.upsert_run(entity, "p", f"r{i}", created_at=(start + timedelta(minutes=i)).isoformat())
    _, cursor = hook.run(poll(watch, None))
    assert sorted(cursor["runs"]) == ["r2", "r3", "r4"] and RUNS_KEPT > 3


def test_a_cursor_under_the_short_keys_goes_on_where_it_stood(wandb_conn: LocalWandb, entity: str) -> None:
    store, hook = wandb_conn.store, WandbHook()
    store.upsert_run(entity, "p", "r")
    store.log(entity, "p", "r", [{"loss": 0.5}, {"loss": 0.6}])
    heartbeat = hook.run(poll(Watch(OnRunState(scope=f"{entity}/p", filter=RunEvent.state == "FAILED"), "x"), None))[1][
        "newest_heartbeat"
    ]
    metric = RunEvent.metric("loss").mean(2).gt(1)
    old = {"hw": heartbeat, "runs": {"r": {"s": 1, "st": "running", "e": {"buf": [0.5, 0.6], "count": 2}}}}
    store.log(entity, "p", "r", [{"loss": 1.5}])  # mean(0.6, 1.5) > 1: it fires at step 2, not before
    event = OnRunMetric(scope=f"{entity}/p", filter=metric)
    events, cursor = hook.run(poll(Watch(event, "a"), check(event, old)))
    assert [e["step"] for e in events] == [2] and cursor["runs"]["r"]["done"] is True
    assert "hw" not in cursor and cursor["newest_heartbeat"]


def test_runs_re_listed_unchanged_are_news_to_no_watch_in_step_with_the_snapshots(
    wandb_conn: LocalWandb, entity: str
) -> None:
    """A quiet project lists its last burst of runs at every poll (they are within MARGIN of the newest
    heartbeat): the shared snapshot says which changed, watches in step skip the rest, and every
    watch still ends with the events and the cursor it would have alone."""
    store, hook = wandb_conn.store, WandbHook()
    for r in range(20):
        store.upsert_run(entity, "p", f"r{r}", display_name=f"r{r}")
        store.log(entity, "p", f"r{r}", [{"loss": 0.5}])
    store.set_state(entity, "p", "r3", "finished")  # finished, still within the margin: kept alike
    events = [
        OnRunMetric(scope=f"{entity}/p", filter=(RunEvent.metric("loss") > 1) & (RunEvent.name == f"r{i}"))
        for i in range(5)
    ] + [OnRunState(scope=f"{entity}/p", filter=RunEvent.state == "FAILED")]
    watches = [Watch(e, f"a{i}") for i, e in enumerate(events)]
    state = SnapshotState()
    snapshot, state = hook.run(read_snapshot("runs", watches[0].event.scope, state, keys=frozenset({"loss"})))
    alone = [hook.run(poll(w, None))[1] for w in watches]
    shared = [hook.run(poll(w, None, snapshot))[1] for w in watches]
    assert alone == shared
    for step in range(3):
        if step == 1:
            store.log(entity, "p", "r2", [{"loss": 3.0}])
            store.set_state(entity, "p", "r4", "failed")
        snapshot, state = hook.run(read_snapshot("runs", watches[0].event.scope, state, keys=frozenset({"loss"})))
        assert snapshot.runs is not None and len(snapshot.runs) == 20  # every run listed again ...
        assert snapshot.fresh == ({"r2", "r4"} if step == 1 else set())  # ... and only these changed
        fired = []
        for i, w in enumerate(watches):
            got_alone, alone[i] = hook.run(poll(w, alone[i]))
            got_shared, shared[i] = hook.run(poll(w, shared[i], snapshot))
            assert got_alone == got_shared and alone[i] == shared[i]
            fired += [(e["automation_name"], e["run_id"]) for e in got_shared]
        assert fired == ([("a2", "r2"), ("a5", "r4")] if step == 1 else [])
