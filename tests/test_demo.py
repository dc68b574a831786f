"""`make demo` stays true: the demo runs end to end on a real Airflow (its own processes, temporary
AIRFLOW_HOME), with its scripted story and with real training scripts (``--train``: the wandb SDK
writing to the backend), and its report shows every expected event acted on, the retraining pipeline
started and the digest sent; nothing is left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from demo.scenario import Phase, phases
from demo.training import training_phases

ROOT = Path(__file__).parent.parent


STORIES: dict[str, list[Phase]] = {"scripted": phases(), "--train": training_phases("", "", ROOT)}
SIGNED = ("webhook-on-new-model-version", "deploy-on-production-alias")  # the automations with signed webhooks


@pytest.mark.timeout(900)
@pytest.mark.parametrize("story", STORIES)
def test_the_demo_runs_end_to_end_and_reports_each_delivery(story: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WBAUTO", "WANDB"))}
    args = [story] if story.startswith("--") else []
    done = subprocess.run([sys.executable, "-m", "demo", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=840)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    report = out.split("\nREPORT", 1)[1]
    expected = [
        (name, subject) for phase in STORIES[story] for name, subjects in phase.expect.items() for subject in subjects
    ]
    for name, subject in expected:
        rows = [line for line in report.splitlines() if line.startswith(name + " ") and f" {subject}" in line]
        assert len(rows) == 1, f"{name} acted on {subject} {len(rows)} times:\n{report}"
        assert re.search(r"\d+\.\d s$", rows[0]), rows[0]  # a latency
    assert len([line for line in report.splitlines() if re.search(r"\d+\.\d s$", line)]) == len(expected)
    assert "retrain_model: 1 run(s) of retraining, for finetune-2" in report
    assert "wandb_daily_digest: 1 Slack message(s)" in report
    signed = sum(1 for name, _ in expected if name in SIGNED)  # versions and deployments
    assert out.count("(signature ok)") == signed and "BAD SIGNATURE" not in out
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
