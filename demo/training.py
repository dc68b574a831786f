"""The demo's story told by real training scripts (``python -m demo --train``): each phase runs
``python -m demo.train`` (the real ``wandb`` SDK in online mode against the local backend, as a
user's own script would run) instead of writing to the backend's store, with what it must make the
automations deliver."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from airflow_provider_wbauto.local import Store

from .scenario import ENTITY, PORTFOLIO, PROJECT, REGISTRY, SOURCE, Phase

ROOT = Path(__file__).resolve().parent.parent
SCRIPT_TIMEOUT = 300.0


def start_training(url: str, api_key: str, folder: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m demo.train ARGS`` pointed at the backend by ``WANDB_BASE_URL`` and ``WANDB_API_KEY``."""
    env = {
        # never WANDB_SERVICE: a wandb-core this process started (wandb.Api does) would take the script's
        # run and outlive it, holding this process's exit on a stream that never ends
        **{k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"},
        "WANDB_BASE_URL": url,
        "WANDB_API_KEY": api_key,
        "WANDB_MODE": "online",
        "WANDB_DIR": str(folder),
        "WANDB_SILENT": "true",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "demo.train", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def training_phases(url: str, api_key: str, folder: Path, entity: str = ENTITY) -> list[Phase]:
    def train(*args: str, fails: bool = False) -> Callable[[Store, str], None]:
        def play(store: Store, entity: str) -> None:  # the store is the scripts' to write
            command = ("--entity", entity, "--project", PROJECT, *args)
            proc = start_training(url, api_key, folder, *command)
            out, _ = proc.communicate(timeout=SCRIPT_TIMEOUT)
            if (proc.returncode != 0) is not fails:
                raise RuntimeError(f"python -m demo.train {' '.join(command)} exited {proc.returncode}:\n{out}")
            print(f"  python -m demo.train {' '.join(args)}: exit code {proc.returncode}")

        return play

    return [
        Phase(
            "baseline-1 trains: the loss flattens; its model is logged as production and linked into the registry",
            train("--run", "baseline-1", "--steps", "40", "--model"),
            {
                "loss-plateau": ["baseline-1"],
                "webhook-on-new-model-version": [f"{entity}/{PROJECT}/{SOURCE}:v0"],
                "deploy-on-production-alias": [f"{entity}/{REGISTRY}/{PORTFOLIO}:v0"],
            },
        ),
        Phase(
            "finetune-2 trains while its validation data drifts at step 12: the accuracy drops",
            train("--run", "finetune-2", "--steps", "20", "--drift-at", "12"),
            {"retrain-on-accuracy-drop": ["finetune-2"], "retrain-on-accuracy-drop-dry-run": ["finetune-2"]},
        ),
        Phase(
            "sweep-lr-3 raises at step 3",
            train("--run", "sweep-lr-3", "--fail-at", "3", fails=True),
            {"alert-on-failed-runs": ["sweep-lr-3"]},
        ),
    ]
