"""`make demo` stays true: the demo runs to the end on a fresh AIRFLOW_HOME and every example DAG
delivers what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_demo_runs_the_examples_end_to_end() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WBAUTO", "WANDB"))}
    done = subprocess.run(
        [sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for dag_id in ("alert_on_failed_runs", "deploy_on_alias", "notify_new_model_versions", "retrain_on_metric"):
        assert f"wbauto_{dag_id}: success" in out
    assert '-> /retrain: {"run": "sweep-lr-2"' in out
    assert "deployed acme/wandb-registry-model/mnist-classifier:v1" in out
