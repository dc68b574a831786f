"""A quiet artifact poll costs the same at 10 versions as at 10,000: "version created", "linked" (into
a registry) and "alias added" watches against the local server, beside the full read they replaced.

python -m benchmarks.artifact_scale   (prints a table with ratios; writes benchmarks/artifact_scale.png)

For each size, one collection of N versions, each linked into a registry collection, two of them
aliased. Ours: a quiet poll from a stored cursor. Baseline, measured in the same run on the same data:
the full read these watches made before (every membership of the collection or registry, and a
cursor of one short hash per subject), which unlink and tag watches still make.

"linked" is measured twice, on two organizations holding the same data: one with W&B's advanced
registry search (links read newest first, ``-acm_created_at``, down to the first one seen) and one
without it, where W&B refuses any order on registry versions and every link is read at every poll:
O(links), the full read's cost.

The burst: 3,000 versions created within one second (the same ``created_at``) in a collection of 10
whose "created" watch has a cursor; the poll that reports them, then a quiet poll after the burst,
measured like the others.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._measure import Series, local_server, plot

SIZES = (10, 100, 1_000, 10_000)
BURST = 3_000
REGISTRY = "wandb-registry-bench"
PLOT = Path(__file__).with_name("artifact_scale.png")


def _counted(read: Generator[Any, Any, Any], tally: dict[str, int]) -> Generator[Any, Any, Any]:
    """The read, counting its GraphQL requests and the bytes of their answers' JSON (a probe's or a
    batch limit's answer comes from the runner's memory: no request)."""
    from airflow_provider_wbauto.hooks.transport import GraphQLCall

    data = None
    try:
        while True:
            call = read.send(data)
            data = yield call
            if isinstance(call, GraphQLCall):
                tally["requests"] += 1
                tally["bytes"] += len(json.dumps(data))
    except StopIteration as stop:
        return stop.value


def _measure(hook: Any, make_read: Any, repeat: int = 5) -> tuple[int, int, float, Any]:
    """(requests, bytes, ms) per read, median time of ``repeat``, and the last result."""
    times, result, tally = [], None, {"requests": 0, "bytes": 0}
    for _ in range(repeat):
        tally = {"requests": 0, "bytes": 0}
        started = time.perf_counter()
        result = hook.run(_counted(make_read(), tally))
        times.append(time.perf_counter() - started)
    return tally["requests"], tally["bytes"], sorted(times)[len(times) // 2] * 1e3, result


def _fill(store: Any, entity: str, n: int) -> None:
    start = datetime.now(UTC) - timedelta(days=1, minutes=2 * n)
    with store.transaction():
        ids = [
            store.create_version(entity, "p", "model", created_at=(start + timedelta(minutes=2 * i)).isoformat())
            for i in range(n)
        ]
        for i, artifact in enumerate(ids):
            store.link(
                artifact, entity, REGISTRY, "prod", created_at=(start + timedelta(minutes=2 * i + 1)).isoformat()
            )
        coll = store.collection_id(entity, "p", "model")
        store.add_aliases(ids[n // 2], coll, ["staging"])
        store.add_aliases(ids[-1], coll, ["production"])


def _full_read(hook: Any, members: Any) -> tuple[int, int, float, int]:
    """The baseline: every membership read, and a cursor of one short hash per subject."""
    requests, size, ms, found = _measure(hook, members)
    short = [hashlib.blake2b(m["id"].encode(), digest_size=8).hexdigest() for m in found]
    return requests, size, ms, len(json.dumps({"present": sorted(short)}))


def main() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, local_server(tmp) as server:
        from airflow_provider_wbauto.automations import OnAddArtifactAlias, OnCreateArtifact, OnLinkArtifact
        from airflow_provider_wbauto.hooks.wandb import WandbHook, links_ordered, read_memberships
        from airflow_provider_wbauto.hooks.watch import Watch, poll

        hook = WandbHook()
        for n in SIZES:
            basic, advanced = f"e{n}", f"a{n}"  # each entity is its own organization in the local backend
            _fill(server.store, basic, n)
            _fill(server.store, advanced, n)
            server.store.set_advanced_search(advanced, True)
            families = {
                "created": (basic, OnCreateArtifact(scope=f"{basic}/p/model"), ("p", "model", False)),
                "linked, advanced search": (advanced, OnLinkArtifact(scope=f"{advanced}/{REGISTRY}"), None),
                "linked, basic": (basic, OnLinkArtifact(scope=f"{basic}/{REGISTRY}"), None),
                "alias added": (basic, OnAddArtifactAlias(scope=f"{basic}/p/model"), ("p", "model", False)),
            }
            for family, (entity, event, where) in families.items():
                if where is None:  # a registry's links; the probe says which read the organization gets
                    assert hook.run(links_ordered(entity)) == (entity == advanced), family
                    where = (REGISTRY, None, True)
                project, collection, portfolios = where
                watch = Watch(event, "bench")
                cursor = hook.run(poll(watch, None))[1]
                requests, size, ms, (events, _) = _measure(hook, lambda w=watch, c=cursor: poll(w, c))
                assert events == [], events
                baseline = _full_read(
                    hook,
                    lambda e=entity, p=project, c=collection, f=portfolios: read_memberships(
                        e, p, c, portfolios_only=f
                    ),
                )
                rows.append(
                    {
                        "family": family,
                        "versions": n,
                        "ours": (requests, size, ms, len(json.dumps(cursor))),
                        "baseline": baseline,
                    }
                )
        burst = _burst(server.store, hook, Watch, poll, OnCreateArtifact, read_memberships)
    _report([*rows, burst])
    _plot(rows)


def _burst(store: Any, hook: Any, watch_class: Any, poll: Any, created: Any, read_memberships: Any) -> dict[str, Any]:
    """A quiet "created" poll after ``BURST`` versions made within one second, beside the full read."""
    entity = "burst"
    _fill(store, entity, 10)
    watch = watch_class(created(scope=f"{entity}/p/model"), "bench")
    cursor = hook.run(poll(watch, None))[1]
    stamp = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=0).isoformat()
    with store.transaction():
        for _ in range(BURST):
            store.create_version(entity, "p", "model", created_at=stamp)
    events, cursor = hook.run(poll(watch, cursor))
    assert len(events) == BURST, len(events)
    requests, size, ms, (events, _) = _measure(hook, lambda: poll(watch, cursor))
    assert events == [], events
    baseline = _full_read(hook, lambda: read_memberships(entity, "p", "model"))
    return {
        "family": f"created, {BURST:,} in 1 s",
        "versions": BURST + 10,
        "ours": (requests, size, ms, len(json.dumps(cursor))),
        "baseline": baseline,
    }


def _report(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'family':>24} {'versions':>8} | {'requests':>13} | {'KiB':>17} | {'ms':>15} | {'cursor B':>15} | time ratio"
    )
    for r in rows:
        (oq, ob, oms, oc), (bq, bb, bms, bc) = r["ours"], r["baseline"]
        print(
            f"{r['family']:>24} {r['versions']:>8} | {oq:>4} vs {bq:>6} | {ob / 1024:>6.1f} vs {bb / 1024:>7.1f} |"
            f" {oms:>5.1f} vs {bms:>6.1f} | {oc:>5} vs {bc:>6} | {bms / oms:>8.1f}x"
        )


def _plot(rows: list[dict[str, Any]]) -> None:
    panels: dict[str, Series] = {}
    for title, i, scale in (
        ("requests per quiet poll", 0, 1),
        ("answer KiB per quiet poll", 1, 1024),
        ("ms per quiet poll", 2, 1),
        ("cursor bytes", 3, 1),
    ):
        series: Series = {}
        for family in dict.fromkeys(r["family"] for r in rows):
            mine = [r for r in rows if r["family"] == family]
            sizes = [float(r["versions"]) for r in mine]
            series[f"{family}: ours"] = (sizes, [r["ours"][i] / scale for r in mine])
            if family != "linked, basic":  # the same full read as the advanced organization's
                series[f"{family}: full read"] = (sizes, [r["baseline"][i] / scale for r in mine])
        panels[title] = series
    plot(PLOT, "versions in the collection / registry", panels)


if __name__ == "__main__":
    main()
