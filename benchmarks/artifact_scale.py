"""A quiet artifact poll costs the same at 10 versions as at 10,000: "version created", "linked" (into
a registry) and "alias added" watches against the local server, beside the full read they replaced.

python -m benchmarks.artifact_scale   (prints a table with ratios; writes benchmarks/artifact_scale.png)

For each size, one collection of N versions, each linked into a registry collection, two of them
aliased. Ours: a quiet poll from a stored cursor. Baseline, measured in the same run on the same data:
the full read these watches made before (every membership of the collection or registry, and a
cursor of one short hash per subject), which unlink and tag watches still make.
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
REGISTRY = "wandb-registry-bench"
PLOT = Path(__file__).with_name("artifact_scale.png")


def _counted(read: Generator[Any, Any, Any], tally: dict[str, int]) -> Generator[Any, Any, Any]:
    """The read, counting its requests and the bytes of the answers' JSON."""
    data = None
    try:
        while True:
            call = read.send(data)
            data = yield call
            tally["requests"] += 1
            tally["bytes"] += len(json.dumps(data))
    except StopIteration as stop:
        return stop.value


def _measure(hook: Any, make_read: Any, repeat: int = 5) -> tuple[float, float, float, Any]:
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


def main() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, local_server(tmp) as server:
        from airflow_provider_wbauto.automations import OnAddArtifactAlias, OnCreateArtifact, OnLinkArtifact
        from airflow_provider_wbauto.hooks.wandb import WandbHook, read_memberships
        from airflow_provider_wbauto.hooks.watch import Watch, poll

        hook = WandbHook()
        for n in SIZES:
            entity = f"e{n}"
            _fill(server.store, entity, n)
            families = {
                "created": (OnCreateArtifact(scope=f"{entity}/p/model"), ("p", "model", False)),
                "linked": (OnLinkArtifact(scope=f"{entity}/{REGISTRY}"), (REGISTRY, None, True)),
                "alias added": (OnAddArtifactAlias(scope=f"{entity}/p/model"), ("p", "model", False)),
            }
            for family, (event, (project, collection, portfolios)) in families.items():
                watch = Watch(event, "bench")
                cursor = hook.run(poll(watch, None))[1]
                requests, size, ms, (events, _) = _measure(hook, lambda w=watch, c=cursor: poll(w, c))
                assert events == [], events
                base_requests, base_size, base_ms, members = _measure(
                    hook,
                    lambda e=entity, p=project, c=collection, f=portfolios: read_memberships(
                        e, p, c, portfolios_only=f
                    ),
                )
                short = [hashlib.blake2b(m["id"].encode(), digest_size=8).hexdigest() for m in members]
                present = json.dumps({"present": sorted(short)})  # one short hash per subject
                rows.append(
                    {
                        "family": family,
                        "versions": n,
                        "ours": (requests, size, ms, len(json.dumps(cursor))),
                        "baseline": (base_requests, base_size, base_ms, len(present)),
                    }
                )
    _report(rows)
    _plot(rows)


def _report(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'family':>12} {'versions':>8} | {'requests':>13} | {'KiB':>17} | {'ms':>15} | {'cursor B':>15} | time ratio"
    )
    for r in rows:
        (oq, ob, oms, oc), (bq, bb, bms, bc) = r["ours"], r["baseline"]
        print(
            f"{r['family']:>12} {r['versions']:>8} | {oq:>4} vs {bq:>6} | {ob / 1024:>6.1f} vs {bb / 1024:>7.1f} |"
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
            series[f"{family}: full read"] = (sizes, [r["baseline"][i] / scale for r in mine])
        panels[title] = series
    plot(PLOT, "versions in the collection / registry", panels)


if __name__ == "__main__":
    main()
