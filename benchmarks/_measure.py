"""What the run-metric benchmarks share: a local server with runs, a measured poll, and the baseline a
user writes by hand with the real ``wandb.Api`` (list the runs, ``scan_history`` each one)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

KEY = "bench-key-" + "k" * 40  # the SDK wants 40 characters or more
ENTITY = "acme"


@dataclass(frozen=True)
class Cost:
    """One poll: requests and response bytes the server saw, wall and CPU seconds of this process."""

    requests: int
    bytes: int
    wall: float
    cpu: float

    def ratio(self, other: Cost) -> str:
        """How many times ``other`` costs this, field by field."""

        def times(a: float, b: float) -> str:
            return f"{b / a:,.0f}x" if a else "-"

        return (
            f"requests {times(self.requests, other.requests)}, bytes {times(self.bytes, other.bytes)}, "
            f"wall {times(self.wall, other.wall)}, CPU {times(self.cpu, other.cpu)}"
        )

    def __str__(self) -> str:
        kib, wall, cpu = self.bytes / 1024, self.wall * 1e3, self.cpu * 1e3
        return f"{self.requests:>6} req {kib:>11,.1f} KiB {wall:>10,.1f} ms {cpu:>10,.1f} ms CPU"


def measure(server: Any, action: Callable[[], Any]) -> tuple[Cost, Any]:
    requests, sent = server.requests(), server.bytes_sent()
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu  # before asking the server for counts
    return Cost(server.requests() - requests, server.bytes_sent() - sent, wall, cpu), result


@contextmanager
def local_server(tmp: str) -> Iterator[Any]:
    """The local backend, with the ``wandb_default`` connection pointing at it."""
    os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
    from airflow_provider_wbauto.local import LocalWandb

    with LocalWandb(Path(tmp) / "bench.db", api_key=KEY) as server:
        os.environ["AIRFLOW_CONN_WANDB_DEFAULT"] = json.dumps(
            {"conn_type": "wandb", "host": server.url, "password": KEY}
        )
        yield server


def fill(server: Any, project: str, runs: int, steps: int) -> None:
    """``runs`` runs of ``steps`` rows of ``loss`` (and ``acc``), last heard of a minute or more ago."""
    from airflow_provider_wbauto.local.store import iso

    store = server.store
    for r in range(runs):
        store.upsert_run(ENTITY, project, f"r{r}")
        for start in range(0, steps, 50_000):
            rows = [{"_step": s, "loss": 1.0, "acc": 0.5} for s in range(start, min(steps, start + 50_000))]
            store.log(ENTITY, project, f"r{r}", rows)
    with store.transaction() as db:
        for r in range(runs):
            stamp = iso(datetime.now(UTC) - timedelta(minutes=runs - r))
            db.execute(
                "UPDATE run SET heartbeat_at=? WHERE name=? AND project_id=(SELECT id FROM project WHERE name=?)",
                (stamp, f"r{r}", project),
            )


class ByHand:
    """What a user writes with the real SDK: list the project's runs, read each one's history of the
    metric. ``whole``: every row at each poll (no state kept); else from the last step seen (kept in
    memory, so lost at a restart)."""

    def __init__(self, server: Any, project: str, *, whole: bool) -> None:
        import wandb

        self.api = wandb.Api(overrides={"base_url": server.url, "entity": ENTITY}, api_key=KEY, timeout=60)
        self.path, self.whole = f"{ENTITY}/{project}", whole
        self.last: dict[str, int] = {}

    def poll(self) -> int:
        """One poll; returns the rows read."""
        read = 0
        for run in self.api.runs(self.path, per_page=200):
            start = 0 if self.whole else self.last.get(run.id, -1) + 1
            for row in run.scan_history(keys=["loss"], page_size=1000, min_step=start):
                self.last[run.id] = row["_step"]
                read += 1
        return read


Series = dict[str, tuple[list[float], list[float]]]  # label -> (x values, y values)


def plot(path: Path, xlabel: str, panels: dict[str, Series]) -> None:
    """One log-log panel per title, a line per series (a baseline's dashed: its label says "by hand" or
    "full read"); skipped, saying so, without matplotlib (``make bench`` installs it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (make bench installs it): no plot")
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2))
    for ax, (title, series) in zip(axes, panels.items(), strict=True):
        for label, (xs, ys) in series.items():
            baseline = "by hand" in label or "full read" in label
            ax.plot(xs, ys, marker="x" if baseline else "o", linestyle="--" if baseline else "-", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")
