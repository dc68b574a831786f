"""Reading 1,000 new history rows of a run costs the same out of 1,000 or out of 1,000,000 rows.

python -m benchmarks.local_history   (prints the ratio: about 1.0 means the (run, step) index works)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from airflow_provider_wbauto.local import Store
from airflow_provider_wbauto.local.resolvers import run_history


def _read_last_1000(store: Store, run_pk: int, last: int, repeat: int = 50) -> float:
    info = SimpleNamespace(context={"store": store})
    started = time.perf_counter()
    for _ in range(repeat):
        rows = run_history({"_pk": run_pk}, info, samples=1000, minStep=last - 999, maxStep=last + 1)
        assert len(rows) == 1000
    return (time.perf_counter() - started) / repeat


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "bench.db"))
        for run, n in (("small", 1_000), ("large", 1_000_000)):
            store.upsert_run("acme", "bench", run)
            for start in range(0, n, 50_000):
                store.log(
                    "acme",
                    "bench",
                    run,
                    [{"_step": s, "loss": 1 / (s + 1)} for s in range(start, min(n, start + 50_000))],
                )
        small = _read_last_1000(store, store.run_pk("acme", "bench", "small"), 999)
        large = _read_last_1000(store, store.run_pk("acme", "bench", "large"), 999_999)
        print(
            f"last 1,000 of 1,000 rows: {small * 1e3:.2f} ms; of 1,000,000 rows: {large * 1e3:.2f} ms; "
            f"ratio {large / small:.2f}"
        )
        store.close()


if __name__ == "__main__":
    main()
