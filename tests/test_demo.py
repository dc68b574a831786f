"""`make demo` stays true: the demo runs end to end on a real Airflow (its own processes, temporary
AIRFLOW_HOME) and its report shows every expected event acted on, the retraining pipeline started
and the digest sent; nothing is left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from demo.scenario import phases

ROOT = Path(__file__).parent.parent


@pytest.mark.timeout(900)
def test_the_demo_runs_end_to_end_and_reports_each_delivery() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WBAUTO", "WANDB"))}
    done = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=840)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    report = out.split("\nREPORT", 1)[1]
    expected = [
        (name, subject) for phase in phases() for name, subjects in phase.expect.items() for subject in subjects
    ]
    for name, subject in expected:
        rows = [line for line in report.splitlines() if line.startswith(name + " ") and f" {subject}" in line]
        assert len(rows) == 1, f"{name} acted on {subject} {len(rows)} times:\n{report}"
        assert re.search(r"\d+\.\d s$", rows[0]), rows[0]  # a latency
    assert len([line for line in report.splitlines() if re.search(r"\d+\.\d s$", line)]) == len(expected)
    assert "retrain_model: 1 run(s) of retraining, for finetune-2" in report
    assert "wandb_daily_digest: 1 Slack message(s)" in report
    assert out.count("(signature ok)") == 4 and "BAD SIGNATURE" not in out  # 2 versions, 2 deployments
    assert not processes_of("wbauto-demo-"), "the demo left processes running"


def processes_of(home_prefix: str) -> list[int]:
    """Processes whose command line or environment names the demo's temporary home (Linux /proc)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            seen = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if home_prefix.encode() in seen:
            found.append(int(proc.name))
    return found
