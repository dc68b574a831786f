"""What N event-driven automations on one project cost per poll interval, shared stream vs one poll each.

python -m benchmarks.shared_poll   (N = 1, 10, 100, 1,000 metric automations on one project of 50 runs, 5 logging)

The shared stream is what ``WandbAutomationTrigger`` runs in the triggerer: one ``read_snapshot`` per
interval and each automation's ``poll(watch, cursor, snapshot)``. The baseline, measured in the same
run, is each automation polling on its own (what N sensors cost). Ratios are to one automation's:
requests per interval, and the CPU seconds per interval of this process (the triggerer's side).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

RUNS, LOGGING, KEY, INTERVALS = 50, 5, "bench-key-" + "k" * 30, 3


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        from airflow_provider_wbauto.automations import OnRunMetric, RunEvent
        from airflow_provider_wbauto.automations.scopes import Scope
        from airflow_provider_wbauto.hooks.wandb import WandbHook
        from airflow_provider_wbauto.hooks.watch import SnapshotState, Watch, poll, read_snapshot
        from airflow_provider_wbauto.local import LocalWandb

        with LocalWandb(Path(tmp) / "bench.db", api_key=KEY) as server:
            os.environ["AIRFLOW_CONN_WANDB_DEFAULT"] = json.dumps(
                {"conn_type": "wandb", "host": server.url, "password": KEY}
            )
            store, hook, scope = server.store, WandbHook(), Scope.model_validate("acme/bench")
            for r in range(RUNS):
                store.upsert_run("acme", "bench", f"r{r}")
                store.log("acme", "bench", f"r{r}", [{"loss": 1.0, "acc": 0.5}] * 20)
            step = [20]

            def log_some() -> None:
                for r in range(LOGGING):
                    store.log("acme", "bench", f"r{r}", [{"_step": step[0], "loss": 0.9, "acc": 0.6}])
                step[0] += 1

            def watches(n: int) -> list[Watch]:
                metric = ("loss", "acc")
                return [Watch(OnRunMetric(scope=scope, filter=RunEvent.metric(metric[i % 2]) > 5 + i), f"a{i}")
                        for i in range(n)]  # fmt: skip

            def shared(n: int) -> tuple[float, float]:
                ws, cursors, state = watches(n), [None] * n, SnapshotState()
                keys = frozenset(w.event.filter.metric.name for w in ws)  # type: ignore[union-attr]
                snap, state = hook.run(read_snapshot("runs", scope, state, keys=keys))
                cursors = [hook.run(poll(w, c, snap))[1] for w, c in zip(ws, cursors, strict=True)]
                before, cpu = server.requests(), time.process_time()
                for _ in range(INTERVALS):
                    log_some()
                    snap, state = hook.run(read_snapshot("runs", scope, state, keys=keys))
                    cursors = [hook.run(poll(w, c, snap))[1] for w, c in zip(ws, cursors, strict=True)]
                return (server.requests() - before) / INTERVALS, (time.process_time() - cpu) / INTERVALS

            def alone(n: int) -> tuple[float, float]:
                ws = watches(n)
                cursors = [hook.run(poll(w, None))[1] for w in ws]
                before, cpu = server.requests(), time.process_time()
                for _ in range(INTERVALS):
                    log_some()
                    cursors = [hook.run(poll(w, c))[1] for w, c in zip(ws, cursors, strict=True)]
                return (server.requests() - before) / INTERVALS, (time.process_time() - cpu) / INTERVALS

            one, one_cpu = shared(1)
            print(
                f"{'automations':>11}  {'shared req/interval':>19}  {'ratio to 1':>10}  {'CPU s/interval':>14}"
                f"  {'ratio to 1':>10}  {'one poll each: req':>18}  {'CPU s':>6}"
            )
            for n in (1, 10, 100, 1000):
                (s, s_cpu), (a, a_cpu) = shared(n), alone(n)
                print(
                    f"{n:>11}  {s:>19.1f}  {s / one:>10.2f}  {s_cpu:>14.3f}  {s_cpu / one_cpu:>10.1f}"
                    f"  {a:>18.1f}  {a_cpu:>6.2f}"
                )


if __name__ == "__main__":
    main()
