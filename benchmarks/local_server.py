"""What the local server spends on a quiet poll, with and without its cache of parsed and validated queries.

python -m benchmarks.local_server   (a project of 30 runs and 12 collections of 3 versions; two servers
on copies of one database, one with ``--query-cache 0`` as the baseline, measured in the same run,
rounds interleaved, the median of each reported)

The quiet polls are the two reads a watcher repeats every interval when nothing changed: the run
listing since the newest heartbeat, and a project's collections with their members nested.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

KEY, ROUNDS, REQUESTS = "bench-key-" + "k" * 30, 5, 200


def main() -> None:
    from airflow_provider_wbauto.hooks.wandb import PROJECT_MEMBERSHIPS_QUERY, RUN_FIELDS, RUNS_QUERY
    from airflow_provider_wbauto.local import LocalWandb, Store

    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.db"
        store = Store(str(seed))
        for r in range(30):
            store.upsert_run("acme", "bench", f"r{r}")
            store.log("acme", "bench", f"r{r}", [{"loss": 1.0}] * 20)
        for c in range(12):
            for _ in range(3):
                store.create_version("acme", "bench", f"model-{c}")
        store.close()
        for name in ("baseline.db", "cached.db"):
            shutil.copy(seed, Path(tmp) / name)
        runs = {
            "query": RUNS_QUERY.replace("FIELDS", RUN_FIELDS),
            "variables": {
                "entity": "acme",
                "project": "bench",
                "filters": '{"$and": [{"heartbeat_at": {"$gte": "2999-01-01T00:00:00Z"}}]}',
                "order": "+heartbeat_at",
                "cursor": None,
                "perPage": 100,
            },
        }
        members = {
            "query": PROJECT_MEMBERSHIPS_QUERY,
            "variables": {"entity": "acme", "project": "bench", "perPage": 100, "cursor": None,
                          "collectionCursor": None, "types": None},
        }  # fmt: skip
        with (
            LocalWandb(Path(tmp) / "baseline.db", api_key=KEY, query_cache=0) as baseline,
            LocalWandb(Path(tmp) / "cached.db", api_key=KEY) as cached,
        ):
            print(f"{'quiet poll':<24}{'baseline req/s':>15}{'cached req/s':>14}{'ratio':>8}")
            for label, body in (("run listing", runs), ("project of collections", members)):
                rates: dict[str, list[float]] = {"baseline": [], "cached": []}
                for _ in range(ROUNDS):
                    for name, server in (("baseline", baseline), ("cached", cached)):
                        rates[name].append(_rate(server.url, body))
                base, ours = statistics.median(rates["baseline"]), statistics.median(rates["cached"])
                print(f"{label:<24}{base:>15.0f}{ours:>14.0f}{ours / base:>7.2f}x")


def _rate(url: str, body: dict[str, object]) -> float:
    with httpx.Client(base_url=url, auth=("api", KEY), timeout=30) as client:
        client.post("/graphql", json=body).raise_for_status()  # warm: the cache, the connection
        start = time.perf_counter()
        for _ in range(REQUESTS):
            response = client.post("/graphql", json=body)
            response.raise_for_status()
            assert "errors" not in response.json(), response.text
        return REQUESTS / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
