"""One poll of one event spec against the local server: where the watch starts, what a poll costs,
and that polls are pure functions of the cursor."""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_wbauto.automations import (
    MetricChangeFilter,
    MetricThresholdFilter,
    MetricZScoreFilter,
    OnAddArtifactAlias,
    OnCreateArtifact,
    OnRunMetric,
    OnRunState,
    RunEvent,
)
from airflow_provider_wbauto.hooks.run_keys import RunKeys
from airflow_provider_wbauto.hooks.transport import GraphQLCall, WandbError
from airflow_provider_wbauto.hooks.wandb import HistoryMark, WandbHook, read_memberships, read_new_rows
from airflow_provider_wbauto.hooks.watch import Watch, normalise_since, poll
from airflow_provider_wbauto.local import LocalWandb

SERIES = [0.9, 0.8, 0.3, 0.2, 0.7, 0.9, 0.1, 0.1, 5.0, 0.2, 0.25, 0.3, 0.2, 0.1, 0.9, 0.3]
FILTERS = [
    MetricThresholdFilter(name="loss", cmp="<", threshold=0.5),
    MetricThresholdFilter(name="loss", cmp=">=", threshold=0.5, window=2, agg="min"),
    MetricChangeFilter(name="loss", threshold=0.5, change_type="relative", change_dir="any", window=2, agg="mean"),
    MetricZScoreFilter(name="loss", threshold=1.5, window=4),
]


def rows(values: list[float], first: int = 0) -> list[dict[str, Any]]:
    return [{"_step": first + i, "loss": v, "other": i} for i, v in enumerate(values)]


class Recorder:
    """Runs a read through the hook and keeps the GraphQL calls it made."""

    def __init__(self, hook: WandbHook) -> None:
        self.hook, self.calls = hook, []  # type: list[GraphQLCall]

    def __call__(self, watch: Watch, cursor: Any) -> tuple[list[dict[str, Any]], Any]:
        return self.run(poll(watch, cursor))  # type: ignore[no-any-return]

    def run(self, read: Generator[GraphQLCall, Any, Any]) -> Any:
        self.calls = []
        return self.hook.run(self._record(read))

    def _record(self, read: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        """The read, passing on what the runner answers or throws in (a batch too big), keeping the
        GraphQL calls it asked for (a probe's calls are the runner's, once per process)."""
        answer: Any = None
        thrown: Exception | None = None
        while True:
            try:
                call = read.throw(thrown) if thrown is not None else read.send(answer)
            except StopIteration as stop:
                return stop.value
            thrown = None
            if isinstance(call, GraphQLCall):
                self.calls.append(call)
            try:
                answer = yield call
            except Exception as exc:
                thrown = exc


@pytest.fixture
def hook(wandb_conn: LocalWandb) -> WandbHook:
    return WandbHook()


@pytest.mark.parametrize("rearm", [False, True])
@pytest.mark.parametrize("metric", FILTERS, ids=lambda f: f.event_type)
def test_since_beginning_on_a_finished_run_fires_what_firing_steps_says(
    hook: WandbHook, wandb_conn: LocalWandb, entity: str, metric: Any, rearm: bool
) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "p", "done")
    store.log(entity, "p", "done", rows(SERIES))
    store.set_state(entity, "p", "done", "finished")
    event = OnRunMetric(scope=f"{entity}/p", filter=metric)

    expected = metric.firing_steps(rows(SERIES), rearm=rearm)
    assert expected, "the series must make every filter fire at least once"
    events, _ = hook.run(poll(Watch(event, "a", since="beginning", rearm=rearm), None))
    assert [e["step"] for e in events] == expected

    # without a start point, history that predates the watch never fires, now or later
    cursor = None
    for _ in range(2):
        events, cursor = hook.run(poll(Watch(event, "a", rearm=rearm), cursor))
        assert events == []


def test_since_a_time_backfills_runs_created_after_it(hook: WandbHook, wandb_conn: LocalWandb, entity: str) -> None:
    store = wandb_conn.store
    now = datetime.now(UTC)
    store.upsert_run(entity, "p", "before", created_at=(now - timedelta(hours=2)).isoformat())
    store.upsert_run(entity, "p", "after", created_at=(now - timedelta(minutes=30)).isoformat())
    for run in ("before", "after"):
        store.log(entity, "p", run, rows([0.1, 0.1]))
    event = OnRunMetric(scope=f"{entity}/p", filter=RunEvent.metric("loss") < 0.5)
    since = (now - timedelta(hours=1)).isoformat()
    events, _ = hook.run(poll(Watch(event, "a", since=since), None))
    assert [e["run_id"] for e in events] == ["after"]


def test_a_quiet_project_costs_one_small_request_and_changes_read_only_new_rows_of_the_metric(
    hook: WandbHook, wandb_conn: LocalWandb, entity: str
) -> None:
    store = wandb_conn.store
    for i in range(30):
        store.upsert_run(entity, "p", f"r{i}")
        store.log(entity, "p", f"r{i}", rows([1.0] * 50))
    event = OnRunMetric(scope=f"{entity}/p", filter=RunEvent.metric("loss").mean(3) < 0.5)
    watch = Watch(event, "a")
    recorder = Recorder(hook)
    _, cursor = recorder(watch, None)

    for _ in range(3):  # nothing changed: the listing only (all 30 heartbeats are within the margin)
        events, cursor = recorder(watch, cursor)
        assert events == [] and [c.variables["perPage"] for c in recorder.calls] == [10, 100]
        assert all(c.query.startswith("query WbautoRuns") for c in recorder.calls)

    store.log(entity, "p", "r7", rows([0.1, 0.1, 0.1], first=50))
    events, cursor = recorder(watch, cursor)
    assert [(e["run_id"], e["step"]) for e in events] == [("r7", 52)]
    *_, history_call = recorder.calls
    assert "r7" in history_call.variables.values() and len([v for v in history_call.variables if v[0] == "n"]) == 1
    (loss,) = [json.loads(s) for s in history_call.variables["s0"]]  # the metric only: no spec of _step alone
    assert loss["keys"] == ["_step", "loss"]
    assert loss["minStep"] == 50 and loss["maxStep"] == 50 + hook.tuning.history_page - 1
    assert "historyKeys" not in recorder.calls[0].query  # the listing's size does not grow with the keys logged


def test_a_quiet_poll_of_a_long_project_lists_ten_runs(hook: WandbHook, wandb_conn: LocalWandb, entity: str) -> None:
    """Runs are listed newest heartbeat first and the listing stops at the first page reaching past the
    cursor: 200 runs heard from a minute apart cost one request of 10 runs, whatever their number."""
    store = wandb_conn.store
    start = datetime.now(UTC) - timedelta(hours=4)
    with store.transaction():
        for i in range(200):
            store.upsert_run(entity, "p", f"r{i}", created_at=(start + timedelta(minutes=i)).isoformat())
    watch = Watch(OnRunState(scope=f"{entity}/p", filter=RunEvent.state == "FAILED"), "a")
    recorder = Recorder(hook)
    _, cursor = recorder(watch, None)
    events, cursor = recorder(watch, cursor)
    (listing,) = recorder.calls
    assert events == [] and listing.variables["perPage"] == 10 and listing.variables["order"] == "-heartbeat_at"
    assert listing.variables["filters"] is None  # no heartbeat filter, no timestamp sent
    store.set_state(entity, "p", "r7", "failed")  # an old run fails: its heartbeat is now the newest
    events, cursor = recorder(watch, cursor)
    assert [e["run_id"] for e in events] == ["r7"] and len(recorder.calls) == 1


def test_a_quiet_project_of_aliases_costs_a_few_requests(hook: WandbHook, wandb_conn: LocalWandb, entity: str) -> None:
    """An alias watch on a project lists its collections, then their aliases 10 collections a request,
    and the version each alias names (50 a request); a moved alias fires for its new version."""
    store = wandb_conn.store
    versions = {c: [store.create_version(entity, "p", f"model-{c}") for _ in range(3)] for c in range(12)}
    watch = Watch(OnAddArtifactAlias(scope=f"{entity}/p"), "a")
    recorder = Recorder(hook)
    _, cursor = recorder(watch, None)
    events, cursor = recorder(watch, cursor)
    listing = ["query WbautoCollections", "query WbautoProjectAliases", "query WbautoProjectAliases"]
    assert events == [] and [c.query.split("(")[0] for c in recorder.calls] == [*listing, "query WbautoMembersByAlias"]

    collection = store.collection_id(entity, "p", "model-5")
    store.add_aliases(versions[5][1], collection, ["production"])
    events, cursor = recorder(watch, cursor)
    assert [(e["artifact_collection_name"], e["artifact_version_index"], e["alias"]) for e in events] == [
        ("model-5", 1, "production")
    ]
    names = [c.query.split("(")[0] for c in recorder.calls]  # the aliases, what they name, the new one's version
    assert names == [*listing, "query WbautoMembersByAlias", "query WbautoMembersByAlias"]

    store.add_aliases(versions[5][2], collection, ["production"])  # moved: W&B may keep its id
    events, cursor = recorder(watch, cursor)
    assert [(e["artifact_version_index"], e["alias"]) for e in events] == [(2, "production")]
    store.add_aliases(versions[5][1], collection, ["production"])  # and back: a new generation, a new event
    events, cursor = recorder(watch, cursor)
    assert [(e["artifact_version_index"], e["alias"]) for e in events] == [(1, "production")]


def test_collections_longer_than_a_page_are_paged_on_their_own(
    hook: WandbHook, wandb_conn: LocalWandb, entity: str
) -> None:
    store = wandb_conn.store
    for c in range(3):
        for _ in range(5):
            store.create_version(entity, "p", f"model-{c}")
    recorder = Recorder(hook)
    members = recorder.run(read_memberships(entity, "p", per_page=2))
    assert sorted((m["collection"], m["version_index"]) for m in members) == [
        (f"model-{c}", i) for c in range(3) for i in range(5)
    ]
    # 2 pages of collections, then their first pages in one request; then 2 more pages per collection
    assert [c.query.split("(")[0] for c in recorder.calls] == [
        *["query WbautoCollections"] * 2,
        "query WbautoProjectMemberships",
        *["query WbautoMemberships"] * 6,
    ]


def test_polls_are_pure_functions_of_the_cursor(hook: WandbHook, wandb_conn: LocalWandb, entity: str) -> None:
    """Polling twice from the same cursor (a crash before storing) gives the same events and ids."""
    store = wandb_conn.store
    store.create_version(entity, "p", "model")
    watch = Watch(OnCreateArtifact(scope=f"{entity}/p/model"), "a")
    _, cursor = hook.run(poll(watch, None))
    store.create_version(entity, "p", "model")
    first, after_first = hook.run(poll(watch, cursor))
    again, after_again = hook.run(poll(watch, cursor))
    assert first == again and after_first == after_again and len(first) == 1
    assert hook.run(poll(watch, after_first))[0] == []


def test_state_fires_once_per_run_and_state(hook: WandbHook, wandb_conn: LocalWandb, entity: str) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "p", "r")
    watch = Watch(OnRunState(scope=f"{entity}/p", filter=RunEvent.state.in_(["FAILED", "FINISHED"])), "a")
    _, cursor = hook.run(poll(watch, None))
    seen: list[str] = []
    for state in ("crashed", "running", "crashed", "finished"):  # crashed, resumed, crashed again, finished
        store.set_state(entity, "p", "r", state)
        events, cursor = hook.run(poll(watch, cursor))
        seen += [e["run_state"] for e in events]
    assert seen == ["crashed", "finished"]


def test_alias_events_keep_a_small_cursor(hook: WandbHook, wandb_conn: LocalWandb, entity: str) -> None:
    store = wandb_conn.store
    versions = [store.create_version(entity, "p", "model") for _ in range(20)]
    seq = store.collection_id(entity, "p", "model")
    watch = Watch(OnAddArtifactAlias(scope=f"{entity}/p/model"), "a")
    _, cursor = hook.run(poll(watch, None))
    for i, v in enumerate(versions):
        store.add_aliases(v, seq, [f"tag-{i}"])
    events, cursor = hook.run(poll(watch, cursor))
    assert sorted(e["alias"] for e in events) == sorted(f"tag-{i}" for i in range(20))
    assert len(json.dumps(cursor)) < 30 * 21  # a short hash per (version, alias) present


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", 5])
def test_a_bad_since_names_the_allowed_values(since: Any) -> None:
    with pytest.raises(ValueError, match="since must be None, 'beginning' or an ISO timestamp"):
        normalise_since(since)


def test_run_filters_on_name_and_config_select_the_runs(hook: WandbHook, wandb_conn: LocalWandb, entity: str) -> None:
    store = wandb_conn.store
    store.upsert_run(entity, "p", "a", display_name="sweep-1", config={"lr": 0.01})
    store.upsert_run(entity, "p", "b", display_name="sweep-2", config={"lr": 0.5})
    store.upsert_run(entity, "p", "c", display_name="baseline", config={"lr": 0.01})
    metric = (RunEvent.metric("loss") < 0.5) & RunEvent.name.matches_regex("^sweep-") & (RunEvent.config("lr") < 0.1)
    watch = Watch(OnRunMetric(scope=f"{entity}/p", filter=metric), "a")
    _, cursor = hook.run(poll(watch, None))
    for run in ("a", "b", "c"):
        store.log(entity, "p", run, rows([0.1]))
    events, _ = hook.run(poll(watch, cursor))
    assert [e["run_id"] for e in events] == ["a"]


def test_a_run_listing_carries_only_the_config_and_summary_keys_a_filter_compares(
    hook: WandbHook, wandb_conn: LocalWandb, entity: str
) -> None:
    """W&B warns a run's summary reaches 771 KB: a filter on ``config.lr`` and ``summary_metrics.acc``
    asks for those keys alone (``config(keys:)``, ``summaryMetrics(keys:)``, as W&B's clients do),
    and a filter on ``group`` or ``job_type`` compares the run's own (never all runs left out)."""
    store = wandb_conn.store
    big = {f"k{i}": "x" * 100 for i in range(200)}
    for name, lr, group in (("a", 0.01, "g1"), ("b", 0.5, "g1"), ("c", 0.01, "g2")):
        store.upsert_run(entity, "p", name, config={"lr": lr, **big}, summary={"acc": 0.9, **big}, group=group)
    run_filter = (RunEvent.config("lr") < 0.1) & (RunEvent.summary("acc") > 0.5) & (RunEvent.group == "g1")
    watch = Watch(OnRunState(scope=f"{entity}/p", filter=run_filter & (RunEvent.state == "FAILED")), "a")
    recorder = Recorder(hook)
    _, cursor = recorder(watch, None)
    (listing,) = recorder.calls
    assert "config(keys: $configKeys)" in listing.query and "summaryMetrics(keys: $summaryKeys)" in listing.query
    assert (listing.variables["configKeys"], listing.variables["summaryKeys"]) == (["lr"], ["acc"])
    for run in ("a", "b", "c"):
        store.set_state(entity, "p", run, "failed")
    events, _ = recorder(watch, cursor)
    assert [e["run_id"] for e in events] == ["a"]
    runs = hook.runs(entity, "p", keys=RunKeys.of(run_filter.to_dict()))
    assert all(set(r["config"]) == {"lr"} and set(r["summary"]) == {"acc"} for r in runs)


def test_a_watch_polled_by_a_hook_reads_history_as_the_hook_is_tuned(wandb_conn: LocalWandb, entity: str) -> None:
    """One source of tuning: ``WandbHook(history_page=..., runs_per_request=...)`` is what its polls use."""
    store = wandb_conn.store
    counts = {}
    for page, per_request in ((1000, 20), (2, 1)):
        project = f"p{page}"
        event = OnRunMetric(scope=f"{entity}/{project}", filter=RunEvent.metric("loss") < 0.0)  # reads every row
        for run in ("a", "b"):
            store.upsert_run(entity, project, run)
        tuned = WandbHook(history_page=page, runs_per_request=per_request)
        recorder = Recorder(tuned)
        watch = Watch(event, "a").polled_by(tuned, tuned.endpoint)
        _, cursor = recorder(watch, None)
        for run in ("a", "b"):
            store.log(entity, project, run, rows([0.5] * 5))
        recorder(watch, cursor)
        history = [c for c in recorder.calls if c.query.startswith("query WbautoHistory")]
        counts[page] = len(history)
        assert all(len([v for v in c.variables if v.startswith("n")]) <= per_request for c in history)
    assert counts == {1000: 1, 2: 2 * 3}  # 5 rows a run: pages of 2, 2 and 1, one run a request


def test_history_steps_sent_as_floats_are_those_steps_everywhere(
    hook: WandbHook, wandb_conn: LocalWandb, entity: str
) -> None:
    """The strict backend sends odd steps as floats (``3.0``), as wandb-core says W&B does at times: a
    metric crossing at step 3 fires at step 3, the cursor and the rows read hold ints; before, the
    row was skipped and nothing fired, with no error. A step that is not whole names the run."""
    store = wandb_conn.store
    store.upsert_run(entity, "p", "r")
    watch = Watch(OnRunMetric(scope=f"{entity}/p", filter=RunEvent.metric("loss") < 0.5), "a")
    _, cursor = hook.run(poll(watch, None))
    store.log(entity, "p", "r", rows([1.0, 1.0, 1.0, 0.1, 1.0, 1.0]))
    spec = json.dumps({"keys": ["_step", "loss"], "minStep": 0, "maxStep": 5, "samples": 10})
    raw = hook.query(
        "query Q($e: String!, $p: String!, $s: [JSONString!]!) { project(name: $p, entityName: $e) {"
        ' run(name: "r") { sampledHistory(specs: $s) } } }',
        {"e": entity, "p": "p", "s": [spec]},
    )
    assert [row["_step"] for row in raw["project"]["run"]["sampledHistory"][0]] == [0, 1.0, 2, 3.0, 4, 5.0]
    events, cursor = hook.run(poll(watch, cursor))
    assert [(e["run_id"], e["step"]) for e in events] == [("r", 3)]
    assert type(cursor["runs"]["r"]["last_step"]) is int and cursor["runs"]["r"]["last_step"] == 5
    got = hook.history(entity, "p", {"r": (0, 5)}, keys=["loss"])["r"]  # what the UI's picture reads
    assert [row["_step"] for row in got] == list(range(6)) and all(type(row["_step"]) is int for row in got)

    answer = {"project": {"r0": {"sampledHistory": [[{"_step": 2.5, "loss": 0.1}]]}}}  # no server sends this
    read = read_new_rows(entity, "p", {"r": HistoryMark(1, 2, 3)}, ["loss"], 10, 1)
    next(read)  # how many runs a request
    with pytest.raises(WandbError, match=rf"W&B run {entity}/p/r: a history row's _step must be a whole number"):
        read.send(1)
        read.send(answer)
