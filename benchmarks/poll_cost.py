"""What a run-metric poll costs: ours against what users write by hand with the real ``wandb.Api``.

python -m benchmarks.poll_cost [RUNS] [STEPS]   (default 200 runs x 10,000 steps; 2 runs log 5 rows
between polls; prints requests, response bytes, wall and CPU per poll, and the ratios)

Both baselines run in the same process against the same server and data: the SDK listing the runs and
``scan_history`` of each one, either re-reading every row (no state) or from the last step it saw
(state kept in memory). Ours is ``poll(watch, cursor)`` from the stored cursor.
"""

from __future__ import annotations

import sys
import tempfile

from benchmarks._measure import ENTITY, ByHand, fill, local_server, measure

LOGGING, NEW = 2, 5


def main(runs: int = 200, steps: int = 10_000) -> None:
    with tempfile.TemporaryDirectory() as tmp, local_server(tmp) as server:
        from airflow_provider_wbauto.automations import OnRunMetric, RunEvent
        from airflow_provider_wbauto.hooks.wandb import WandbHook
        from airflow_provider_wbauto.hooks.watch import Watch, poll

        fill(server, "bench", runs, steps)
        hook = WandbHook()
        watch = Watch(OnRunMetric(scope=f"{ENTITY}/bench", filter=RunEvent.metric("loss").mean(5) < 0.5), "bench")
        cursor = hook.run(poll(watch, None))[1]
        whole, from_last = ByHand(server, "bench", whole=True), ByHand(server, "bench", whole=False)
        from_last.poll()  # its state: the last step of every run
        step = [steps]

        def log_some() -> None:
            for r in range(LOGGING):
                server.store.log(ENTITY, "bench", f"r{r}", [{"_step": step[0] + i, "loss": 0.1} for i in range(NEW)])
            step[0] += NEW

        quiet, (events, cursor) = measure(server, lambda: hook.run(poll(watch, cursor)))
        assert events == []
        log_some()
        ours, (events, cursor) = measure(server, lambda: hook.run(poll(watch, cursor)))
        assert sorted(e["run_id"] for e in events) == [f"r{r}" for r in range(LOGGING)]
        by_last, rows = measure(server, from_last.poll)
        assert rows == LOGGING * NEW, rows
        by_whole, rows = measure(server, whole.poll)
        assert rows == runs * steps + LOGGING * NEW, rows

        print(f"{runs} runs x {steps:,} steps, {LOGGING} runs logging {NEW} rows between polls")
        print(f"  ours, quiet poll:             {quiet}")
        print(f"  ours, {LOGGING * NEW} new rows:            {ours}")
        print(f"  by hand, from the last step:  {by_last}")
        print(f"  by hand, every row:           {by_whole}")
        print(f"ours vs by hand from the last step: {ours.ratio(by_last)}")
        print(f"ours vs by hand, every row:         {ours.ratio(by_whole)}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
