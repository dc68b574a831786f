"""What a sensor's poll costs against the local server, beside reading everything again.

python -m benchmarks.poll_cost   (200 runs x 2,000 rows of `loss`; prints requests, time and ratios)

The baseline, measured in the same run, is a poll that reads the whole history (``since="beginning"``
from no cursor): what a watcher without a cursor would pay on every poll.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RUNS, ROWS, KEY = 200, 2_000, "bench-key-" + "k" * 30


def _measure(server: Any, action: Callable[[], Any], repeat: int = 3) -> tuple[int, float, Any]:
    """(requests per call, seconds per call, the last result)."""
    before = server.requests()
    started = time.perf_counter()
    for _ in range(repeat):
        result = action()
    return (server.requests() - before) // repeat, (time.perf_counter() - started) / repeat, result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        from airflow_provider_wbauto.automations import OnRunMetric, RunEvent
        from airflow_provider_wbauto.hooks.wandb import WandbHook
        from airflow_provider_wbauto.hooks.watch import Watch, poll
        from airflow_provider_wbauto.local import LocalWandb
        from airflow_provider_wbauto.local.store import iso

        with LocalWandb(Path(tmp) / "bench.db", api_key=KEY) as server:
            conn = {"conn_type": "wandb", "host": server.url, "password": KEY}
            os.environ["AIRFLOW_CONN_WANDB_DEFAULT"] = json.dumps(conn)
            store = server.store
            for r in range(RUNS):
                store.upsert_run("acme", "bench", f"r{r}")
                store.log("acme", "bench", f"r{r}", [{"_step": s, "loss": 1.0, "acc": 0.5} for s in range(ROWS)])
            with store.transaction() as db:  # the runs last logged a minute apart, the latest a minute ago
                for r in range(RUNS):
                    last = datetime.now(UTC) - timedelta(minutes=RUNS - r)
                    db.execute("UPDATE run SET heartbeat_at=? WHERE name=?", (iso(last), f"r{r}"))
            hook = WandbHook()
            event = OnRunMetric(scope="acme/bench", filter=RunEvent.metric("loss").mean(5) < 0.5)
            watch, everything = Watch(event, "bench"), Watch(event, "bench", since="beginning")

            full = _measure(server, lambda: hook.run(poll(everything, None)), repeat=1)
            _, _, (_, cursor) = _measure(server, lambda: hook.run(poll(watch, None)), repeat=1)
            quiet = _measure(server, lambda: hook.run(poll(watch, cursor)))
            cursor = quiet[2][1]
            store.log("acme", "bench", "r7", [{"_step": ROWS + i, "loss": 0.1} for i in range(5)])
            changed = _measure(server, lambda: hook.run(poll(watch, cursor)))
            assert [e["step"] for e in changed[2][0]] == [ROWS + 4]

            for name, (requests, seconds, _) in (("full re-read", full), ("quiet", quiet), ("5 new rows", changed)):
                print(f"{name:>13}: {requests:3d} request(s), {seconds * 1e3:8.1f} ms")
            print(f"ratios to the full re-read: quiet {quiet[1] / full[1]:.4f}, 5 new rows {changed[1] / full[1]:.4f}")


if __name__ == "__main__":
    main()
