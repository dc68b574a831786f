"""What the local server spends on a quiet poll, with and without its cache of parsed and validated queries.

python -m benchmarks.local_server   (a project of 30 runs and 12 collections of 3 versions; two servers
on copies of one database, one with ``--query-cache 0`` as the baseline, measured in the same run,
rounds interleaved, the median of each reported)

The quiet polls are the reads a watcher repeats every interval when nothing changed, as the provider
sends them (its read generators are run once against the server and their requests kept): the run
listing (newest heartbeat first, stopping at the cursor: one page), and a project's collections
(listed, then the first page of members of 10 collections a request).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

KEY, ROUNDS, REQUESTS = "bench-key-" + "k" * 30, 5, 200


def main() -> None:
    from airflow_provider_wbauto.hooks.wandb import read_memberships, read_runs
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
        with (
            LocalWandb(Path(tmp) / "baseline.db", api_key=KEY, query_cache=0) as baseline,
            LocalWandb(Path(tmp) / "cached.db", api_key=KEY) as cached,
        ):
            # a listing from a cursor later than every heartbeat: nothing changed
            runs = _bodies(cached.url, read_runs("acme", "bench", changed_since="2999-01-01T00:00:00Z"))
            collections, first_pages, _ = _bodies(cached.url, read_memberships("acme", "bench"))
            print(f"{'quiet poll':<32}{'baseline req/s':>15}{'cached req/s':>14}{'ratio':>8}")
            for label, body in (
                ("run listing", runs[0]),
                ("collections of a project", collections),
                ("first pages of 10 collections", first_pages),
            ):
                rates: dict[str, list[float]] = {"baseline": [], "cached": []}
                for _ in range(ROUNDS):
                    for name, server in (("baseline", baseline), ("cached", cached)):
                        rates[name].append(_rate(server.url, body))
                base, ours = statistics.median(rates["baseline"]), statistics.median(rates["cached"])
                print(f"{label:<32}{base:>15.0f}{ours:>14.0f}{ours / base:>7.2f}x")


def _bodies(url: str, read: Any) -> list[dict[str, Any]]:
    """The GraphQL requests ``read`` sends, in order, answered by the server at ``url`` (a batch gets
    its default size, a probe its fallback)."""
    from airflow_provider_wbauto.hooks.transport import BatchLimit, GraphQLCall, Probe

    bodies: list[dict[str, Any]] = []
    answer: Any = None
    with httpx.Client(base_url=url, auth=("api", KEY), timeout=30) as client:
        try:
            while True:
                call = read.send(answer)
                if isinstance(call, BatchLimit):
                    answer = call.default
                elif isinstance(call, Probe):
                    answer = call.fallback
                else:
                    assert isinstance(call, GraphQLCall)
                    bodies.append({"query": call.query, "variables": call.variables})
                    response = client.post("/graphql", json=bodies[-1])
                    response.raise_for_status()
                    answer = response.json()["data"]
        except StopIteration:
            return bodies


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
