"""A run-metric poll reads what is new whatever the run logged before: listings leave out ``historyKeys``
(every metric key a run logged) after the baseline, new rows are found by counting lines, and a run
whose steps skip past a window has its last step read only then. Shared or alone, the same events."""

from __future__ import annotations

from typing import Any

from airflow_provider_wbauto.automations import OnRunMetric, RunEvent
from airflow_provider_wbauto.hooks.transport import forget_endpoint
from airflow_provider_wbauto.hooks.wandb import HistoryMark, RowsRead, WandbHook, read_new_rows
from airflow_provider_wbauto.hooks.watch import SnapshotState, Watch, poll, read_snapshot
from airflow_provider_wbauto.local import LocalWandb
from tests.hooks.test_watch import Recorder

KEYS = 1000
RUNS = 20


def _rows(first: int, count: int, keys: int, loss: float = 1.0, every: int = 1) -> list[dict[str, Any]]:
    extra = {f"layer{k}/grad": 0.5 for k in range(keys - 1)}
    return [{"_step": first + i * every, "loss": loss} | extra for i in range(count)]


def test_poll_bytes_do_not_grow_with_the_keys_a_run_logged(wandb_conn: LocalWandb, entity: str) -> None:
    store, hook = wandb_conn.store, WandbHook()
    cost: dict[int, list[int]] = {}
    for keys in (1, KEYS):
        project = f"k{keys}"
        with store.transaction():
            for r in range(RUNS):
                store.upsert_run(entity, project, f"r{r}")
                store.log(entity, project, f"r{r}", _rows(0, 10, keys))
        watch = Watch(OnRunMetric(scope=f"{entity}/{project}", filter=RunEvent.metric("loss") < 0.5), "a")
        before = wandb_conn.bytes_sent()
        _, cursor = hook.run(poll(watch, None))  # the baseline lists where each run stands, keys and all
        sent = [wandb_conn.bytes_sent() - before]
        for loss in (None, 0.1):  # quiet, then two runs log 5 rows each, one firing
            if loss is not None:
                store.log(entity, project, "r3", _rows(10, 5, keys, loss=loss))
                store.log(entity, project, "r4", _rows(10, 5, keys))
            before = wandb_conn.bytes_sent()
            events, cursor = hook.run(poll(watch, cursor))
            sent.append(wandb_conn.bytes_sent() - before)
            assert [(e["run_id"], e["step"]) for e in events] == ([("r3", 10)] if loss else [])
        cost[keys] = sent
    print(f"\nbytes per poll (baseline, quiet, 10 new rows): 1 key {cost[1]}, {KEYS} keys {cost[KEYS]}")
    assert cost[KEYS][0] > 100 * cost[1][0]  # the baseline's historyKeys: what every poll would carry
    for one, many in zip(cost[1][1:], cost[KEYS][1:], strict=True):
        assert many <= one * 1.1 + 64, cost  # after it, the keys never travel


def test_steps_that_skip_past_a_window_are_read_to_the_run_s_last_step(wandb_conn: LocalWandb, entity: str) -> None:
    """Pages of 4 steps; a run logs every 10th step, then step after step, then far ahead."""
    store, hook = wandb_conn.store, WandbHook(history_page=4)
    metric = RunEvent.metric("loss").mean(2) < 0.5
    watch = Watch(OnRunMetric(scope=f"{entity}/p", filter=metric), "a", rearm=True).polled_by(hook, hook.endpoint)
    store.upsert_run(entity, "p", "r")
    recorder, alone, shared, state = Recorder(hook), None, None, SnapshotState()
    logged: list[dict[str, Any]] = []
    fired: list[int] = []
    batches = [
        ([], 0),  # (rows, reads of the run's last step)
        (_rows(0, 6, 1, loss=0.2, every=10), 1),  # 0, 10, .., 50: the first window ends short of 6 lines
        (_rows(51, 7, 1, loss=0.9), 0),  # 51 .. 57: counting lines is enough
        (_rows(200, 2, 1, loss=0.1), 1),  # far ahead
    ]
    for batch, last_step_reads in batches:
        if batch:
            store.log(entity, "p", "r", batch)
            logged += batch
        snapshot, state = hook.run(read_snapshot("runs", watch.event.scope, state, keys=frozenset({"loss"})))
        got_shared, shared = hook.run(poll(watch, shared, snapshot))
        got_alone, alone = recorder(watch, alone)
        assert got_alone == got_shared and alone == shared
        fired += [e["step"] for e in got_alone]
        assert len([c for c in recorder.calls if c.query.startswith("query WbautoLastSteps")]) == last_step_reads
        assert alone is not None
        entry = alone["runs"]["r"]
        assert (entry["last_step"], entry["lines"]) == (logged[-1]["_step"] if logged else -1, len(logged))
    assert fired == metric.firing_steps(logged, rearm=True) == [10, 201]


def test_a_run_taken_where_it_stands_reads_no_rows(wandb_conn: LocalWandb, entity: str) -> None:
    """A run first seen mid-way is a baseline: its last step, as listed or else read, and no rows."""
    store, recorder = wandb_conn.store, Recorder(WandbHook())
    for run in ("listed", "unlisted"):
        store.upsert_run(entity, "p", run)
        store.log(entity, "p", run, _rows(0, 5, 1))
    marks = {"listed": HistoryMark(None, None, 5, last=4), "unlisted": HistoryMark(None, None, 5)}
    got = recorder.run(read_new_rows(entity, "p", marks, ["loss"], 1000, 20))
    assert got == {run: RowsRead(5, 4, 5, frozenset({"loss"}), []) for run in marks}
    (call,) = recorder.calls
    assert call.query.startswith("query WbautoLastSteps") and list(call.variables.values())[2:] == ["unlisted"]


def test_a_history_request_that_fails_is_asked_again_in_halves_and_the_halves_are_kept(
    wandb_conn: LocalWandb, entity: str
) -> None:
    """A 503 to a request of 4 runs' windows is not resent as is: the runs are read 2 a request, and
    the next read of the connection starts at 2; the rows are those a whole read gives."""
    store, hook = wandb_conn.store, WandbHook(runs_per_request=4)
    for r in range(4):
        store.upsert_run(entity, "p", f"r{r}")
        store.log(entity, "p", f"r{r}", _rows(0, 3, 1))
    marks = {f"r{r}": HistoryMark(-1, 0, 3) for r in range(4)}
    wandb_conn.inject(mode="status", status=503, path="/graphql", count=1)
    recorder = Recorder(hook)
    try:
        got = recorder.run(read_new_rows(entity, "p", marks, ["loss"], 1000, 4))
        runs_asked = [len([v for v in c.variables if v.startswith("n")]) for c in recorder.calls]
        assert runs_asked == [4, 2, 2]
        rows = {rid: [row["_step"] for row in r.rows] for rid, r in got.items()}
        assert rows == {f"r{r}": [0, 1, 2] for r in range(4)}
        recorder.run(read_new_rows(entity, "p", marks, ["loss"], 1000, 4))
        assert [len([v for v in c.variables if v.startswith("n")]) for c in recorder.calls] == [2, 2]
    finally:
        forget_endpoint(hook.endpoint)  # the session's server: later tests start from the default again
