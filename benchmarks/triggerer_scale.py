"""N event-driven automations of mixed families in one real triggerer against the local backend: the
triggerer's CPU share of a core and memory, quiet and under 100 scripted events, and how long each event
takes to become an asset event (the triggerer's part) and to be acted on (scheduler and executor too).

python -m benchmarks.triggerer_scale [N]   (default 1,000; about 10 minutes; goals: < 10 % of a core,
< 300 MB, p99 event -> asset event < poll interval + 2 s)
python -m benchmarks.triggerer_scale N --idle   (Airflow's own share: N watchers that never fire, in N
DAGs like the automations', on 4 shared streams that never yield; about 5 minutes)

A real Airflow (scheduler, triggerer, dag-processor, api-server) on 127.0.0.1 with a SQLite metadata DB
(demo/cluster.py). Six in ten automations watch a run metric, two a run state, one an alias, one a
registry link, all on one project or registry, each for its own run or alias, so each scripted event
fires exactly one automation. The baseline, measured in the same run, is the same triggerer with no
automations (its own idle cost).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._measure import ENTITY, KEY, local_server
from demo.cluster import AirflowCluster, wait_for

INTERVAL, EVENTS, WINDOW = 5, 100, 60.0
FAMILIES = ["metric"] * 6 + ["state"] * 2 + ["alias", "link"]  # by automation number, modulo 10
REGISTRY = "wandb-registry-model"
AUTOMATIONS = """
import os

from airflow_provider_wbauto.automations import (
    ArtifactEvent, DoNothing, OnAddArtifactAlias, OnLinkArtifact, OnRunMetric, OnRunState, RunEvent,
)

E, N, INTERVAL = os.environ["B_ENTITY"], int(os.environ["B_N"]), int(os.environ["B_INTERVAL"])
for i in range(N):
    family = i % 10
    if family < 6:
        event = OnRunMetric(scope=f"{E}/p", filter=(RunEvent.metric("loss") > 1) & (RunEvent.name == f"m{i}"))
    elif family < 8:
        event = OnRunState(scope=f"{E}/p", filter=(RunEvent.state == "FAILED") & (RunEvent.name == f"s{i}"))
    elif family == 8:
        event = OnAddArtifactAlias(scope=f"{E}/p", filter=ArtifactEvent.alias == f"a{i}")
    else:
        event = OnLinkArtifact(scope=f"{E}/wandb-registry-model", filter=ArtifactEvent.alias == f"l{i}")
    event.then(DoNothing()).save(name=f"auto-{i}", poll_interval=INTERVAL)
"""
IDLE = """
import os

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, AssetWatcher

from benchmarks._idle_watcher import IdleWatcher

for i in range(int(os.environ["B_N"])):
    watcher = AssetWatcher(name=f"idle_{i}", trigger=IdleWatcher(name=f"idle-{i}", group=i % 4))
    watched = Asset(f"idle://{i}", watchers=[watcher])
    with DAG(f"idle-{i}", schedule=[watched], is_paused_upon_creation=False):
        EmptyOperator(task_id="act")
"""


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _rss_mb(pid: int) -> float:
    """A process's resident MB (OSError when it is gone)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0) / 1024


def _cpu_and_rss(root: int) -> tuple[float, float]:
    """CPU seconds so far and resident MB of a process tree."""
    ticks, rss = 0, 0.0
    for pid in _tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            rss += _rss_mb(pid)
        except OSError:
            continue
    return ticks / os.sysconf("SC_CLK_TCK"), rss


def _rss_by_process(root: int) -> str:
    """Each process of the tree: its command and resident MB."""
    out = []
    for pid in _tree(root):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
            out.append(f"{command.strip()}: {_rss_mb(pid):.0f} MB")
        except OSError:
            continue
    return "; ".join(out)


def _share(root: int, seconds: float) -> tuple[float, float]:
    """(share of one core, resident MB at the end) of a process tree over ``seconds``."""
    cpu, wall = _cpu_and_rss(root)[0], time.monotonic()
    time.sleep(seconds)
    after, rss = _cpu_and_rss(root)
    return (after - cpu) / (time.monotonic() - wall), rss


def _prepare(store: Any, n: int) -> dict[str, Any]:
    """The runs, the versions and the registry each automation watches; what to change to fire each."""
    with store.transaction():
        for i in range(n):
            if i % 10 < 8:
                name = f"m{i}" if i % 10 < 6 else f"s{i}"
                store.upsert_run(ENTITY, "p", name, display_name=name)
                store.log(ENTITY, "p", name, [{"loss": 0.5}] * 3)
        versions = [store.create_version(ENTITY, "p", "model") for _ in range(EVENTS)]
    return {"versions": versions, "collection": store.collection_id(ENTITY, "p", "model")}


def _fire(store: Any, i: int, made: dict[str, Any], k: int) -> None:
    family = i % 10
    if family < 6:
        store.log(ENTITY, "p", f"m{i}", [{"loss": 2.0}])
    elif family < 8:
        store.set_state(ENTITY, "p", f"s{i}", "failed")
    elif family == 8:
        store.add_aliases(made["versions"][k], made["collection"], [f"a{i}"])
    else:
        store.link(made["versions"][k], ENTITY, REGISTRY, "prod", aliases=[f"l{i}"])


def main(n: int = 1000, idle: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp, local_server(tmp) as server:
        dags = Path(tmp) / "dags"
        dags.mkdir()
        made = _prepare(server.store, n)
        env = {
            "B_ENTITY": ENTITY,
            "B_N": str(n),
            "B_INTERVAL": str(INTERVAL),
            "AIRFLOW_CONN_WANDB_DEFAULT": json.dumps({"conn_type": "wandb", "host": server.url, "password": KEY}),
            "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, 2 * n)),
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "benchmarks._airflow_db.CONNECT_ARGS",
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        cluster = AirflowCluster(Path(tmp) / "home", dags, env)
        try:
            cluster.start()
            triggerer = cluster.procs["triggerer"].pid
            idle_share, idle_rss = _share(triggerer, 20)  # the baseline: the triggerer before any watcher
            (dags / "automations.py").write_text(textwrap.dedent(IDLE if idle else AUTOMATIONS))
            started = time.monotonic()
            running = "SELECT COUNT(*) FROM trigger WHERE triggerer_id IS NOT NULL"
            wait_for(lambda: cluster.sql(running)[0][0] >= n, f"{n} watchers running", timeout=1800, every=5)
            print(f"{n} watchers taken by the triggerer {time.monotonic() - started:.0f} s after the DAG file")
            if idle:
                _share(triggerer, 20)  # let the last ones start
                quiet_share, quiet_rss = _share(triggerer, WINDOW)
                print(f"triggerer, no watchers (baseline):  {idle_share:6.1%} of a core, {idle_rss:6.0f} MB")
                print(f"triggerer, {n} idle watchers, quiet: {quiet_share:6.1%} of a core, {quiet_rss:6.0f} MB")
                print(f"  by process: {_rss_by_process(triggerer)}")
                return
            # a watcher's first poll takes what exists as its baseline: script nothing before every one stored it
            stored = "SELECT COUNT(*) FROM asset_state_store WHERE key LIKE 'cursor:%'"
            wait_for(lambda: cluster.sql(stored)[0][0] >= n, f"{n} first cursors stored", timeout=1800, every=5)
            print(f"{n} watchers polled and stored their cursors {time.monotonic() - started:.0f} s after the DAG file")
            quiet_share, quiet_rss = _share(triggerer, WINDOW)
            print(f"quiet, by process: {_rss_by_process(triggerer)}")
            step = max(10, n // EVENTS)  # every family in its share: 6 metric, 2 state, 1 alias, 1 link of 10
            chosen = [k * step + k % 10 for k in range(min(EVENTS, n // step))]
            fired_at: dict[str, float] = {}
            cpu0, wall0 = _cpu_and_rss(triggerer)[0], time.monotonic()
            for k, i in enumerate(chosen):
                _fire(server.store, i, made, k)
                fired_at[f"auto-{i}"] = time.time()
                time.sleep(0.5)
            events_sql = (
                "SELECT a.uri, MIN(e.timestamp) FROM asset_event e JOIN asset a ON a.id = e.asset_id"
                " WHERE a.uri LIKE 'wandb://%' GROUP BY a.uri"
            )
            wait_for(lambda: len(cluster.sql(events_sql)) >= len(chosen), "every event an asset event", timeout=600)
            busy_cpu, rss = _cpu_and_rss(triggerer)
            busy_share = (busy_cpu - cpu0) / (time.monotonic() - wall0)
            done_sql = "SELECT dag_id, MIN(end_date) FROM dag_run WHERE state = 'success' GROUP BY dag_id"
            wait_for(lambda: len(cluster.sql(done_sql)) >= len(chosen), "every event acted on", timeout=1200, every=5)
            to_event = _latencies(fired_at, {_automation(u): t for u, t in cluster.sql(events_sql)})
            to_action = _latencies(fired_at, dict(cluster.sql(done_sql)))
        except BaseException:
            print(cluster.log_tail(60))
            raise
        finally:
            cluster.stop()
    print(f"triggerer, no automations (baseline): {idle_share:6.1%} of a core, {idle_rss:6.0f} MB")
    print(f"triggerer, {n} automations, quiet:    {quiet_share:6.1%} of a core, {quiet_rss:6.0f} MB")
    print(f"triggerer, {n} automations, events:   {busy_share:6.1%} of a core, {rss:6.0f} MB")
    for name, latencies in (("event -> asset event", to_event), ("event -> action done", to_action)):
        values = list(latencies.values())
        q = statistics.quantiles(values, n=100)
        print(f"{name}: p50 {statistics.median(values):5.1f} s, p99 {q[98]:5.1f} s (poll interval {INTERVAL} s)")
    slowest = sorted(to_event, key=lambda a: to_event[a], reverse=True)[:5]
    print(
        "slowest to the asset event: "
        + ", ".join(f"{a} ({FAMILIES[int(a.split('-')[1]) % 10]}) {to_event[a]:.1f} s" for a in slowest)
    )


def _automation(uri: str) -> str:
    return uri.rsplit("automation=", 1)[1]


def _latencies(fired_at: dict[str, float], seen: dict[str, Any]) -> dict[str, float]:
    """Seconds from each scripted event to what Airflow recorded for it (UTC stamps of the metadata DB)."""
    out = {}
    for name, at in fired_at.items():
        when = datetime.fromisoformat(str(seen[name]).replace(" ", "T"))
        out[name] = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - at
    return out


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2] if a != "--idle"), idle="--idle" in sys.argv)
