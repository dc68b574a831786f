"""A run-metric poll costs the same whatever the length of the history: 10^3 to 10^6 steps, ours against
what users write by hand with the real ``wandb.Api``.

python -m benchmarks.history_scale   (2 runs, one logging 5 rows between polls; prints a table of
requests, response bytes and wall time per poll with ratios; writes benchmarks/history_scale.png)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks._measure import ENTITY, ByHand, Cost, Series, fill, local_server, measure, plot

LENGTHS = (1_000, 10_000, 100_000, 1_000_000)
RUNS, NEW = 2, 5
PLOT = Path(__file__).with_name("history_scale.png")


def main() -> None:
    results: dict[int, dict[str, Cost]] = {}
    with tempfile.TemporaryDirectory() as tmp, local_server(tmp) as server:
        from airflow_provider_wbauto.automations import OnRunMetric, RunEvent
        from airflow_provider_wbauto.hooks.wandb import WandbHook
        from airflow_provider_wbauto.hooks.watch import Watch, poll

        hook = WandbHook()
        for length in LENGTHS:
            project = f"h{length}"
            fill(server, project, RUNS, length)
            watch = Watch(OnRunMetric(scope=f"{ENTITY}/{project}", filter=RunEvent.metric("loss") < 0.5), "bench")
            cursor = hook.run(poll(watch, None))[1]
            whole, from_last = ByHand(server, project, whole=True), ByHand(server, project, whole=False)
            from_last.poll()
            server.store.log(ENTITY, project, "r0", [{"_step": length + i, "loss": 0.1} for i in range(NEW)])
            ours, (events, _) = measure(server, lambda w=watch, c=cursor: hook.run(poll(w, c)))
            assert [e["step"] for e in events] == [length], events
            by_last, rows = measure(server, from_last.poll)
            assert rows == NEW, rows
            by_whole, rows = measure(server, whole.poll)
            assert rows == RUNS * length + NEW, rows
            results[length] = {"ours": ours, "by hand, from the last step": by_last, "by hand, every row": by_whole}
            print(f"{length:>9,} steps: ours {ours}")
            print(f"{'':>16}by hand, last step {by_last}  ({ours.ratio(by_last)})")
            print(f"{'':>16}by hand, every row {by_whole}  ({ours.ratio(by_whole)})")
    _plot(results)


def _plot(results: dict[int, dict[str, Cost]]) -> None:
    lengths = sorted(results)
    xs = [float(n) for n in lengths]
    panels: dict[str, Series] = {}
    for title, value in (
        ("requests per poll", lambda c: float(c.requests)),
        ("response KiB per poll", lambda c: c.bytes / 1024),
        ("wall ms per poll", lambda c: c.wall * 1e3),
    ):
        panels[title] = {name: (xs, [value(results[n][name]) for n in lengths]) for name in results[lengths[0]]}
    plot(PLOT, "history steps per run", panels)


if __name__ == "__main__":
    main()
