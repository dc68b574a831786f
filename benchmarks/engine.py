"""Engine cost per history row, as a ratio to decoding the same rows with json.loads (same run, same data).

python -m benchmarks.engine [ROWS]   (default 1,000,000; goal: every ratio below 1.0)

Each round decodes the rows and runs every filter over them; the ratio is the median over rounds of
each filter's time to that round's decode time.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
import time

from airflow_provider_wbauto.automations import RunEvent
from airflow_provider_wbauto.evaluation.engine import MetricEvaluator

ROUNDS = 5


def main(n: int = 1_000_000) -> None:
    rng = random.Random(7)
    lines = [
        json.dumps({"_step": s, "_timestamp": 1.7e9 + s, "loss": 2.3 * math.exp(-s / 1e5) + rng.random() * 0.01,
                    "acc": rng.random()})
        for s in range(n)
    ]  # fmt: skip
    filters = {
        "latest loss < 0.5": RunEvent.metric("loss") < 0.5,
        "max(acc, 10) > 0.999": RunEvent.metric("acc").max(10) > 0.999,
        "mean(loss, 50) < 1.0": RunEvent.metric("loss").mean(50) < 1.0,
        "sum(acc, 100) > 60": RunEvent.metric("acc").sum(100) > 60,
        "mean(loss, 10) decreases by 1% vs prior 10": RunEvent.metric("loss").mean(10).decreases_by(frac=0.01),
        "abs(zscore(acc, 30)) > 3": abs(RunEvent.metric("acc").zscore(30)) > 3,
    }
    decode: list[float] = []
    took: dict[str, list[float]] = {label: [] for label in filters}
    fired: dict[str, int] = {}
    for _ in range(ROUNDS):  # interleaved: the baseline and every filter in each round, on a machine as busy
        started = time.perf_counter()
        rows = [json.loads(line) for line in lines]
        decode.append(time.perf_counter() - started)
        for label, metric_filter in filters.items():
            evaluator = MetricEvaluator(metric_filter.spec(), rearm=True)
            started = time.perf_counter()
            fired[label] = len(evaluator.feed(rows))
            took[label].append(time.perf_counter() - started)
    base = statistics.median(decode)
    print(f"json.loads of {n:,} rows: {base:.2f}s ({base / n * 1e6:.2f} us/row) = baseline 1.00 (median of {ROUNDS})")
    for label, times in took.items():
        ratio = statistics.median(t / d for t, d in zip(times, decode, strict=True))
        print(f"{label:45s} {statistics.median(times):6.2f}s  ratio {ratio:4.2f}  ({fired[label]} firings)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
