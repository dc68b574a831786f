"""A tiny training script, written as a user writes one: the real ``wandb`` SDK (pointed at the local
backend by ``WANDB_BASE_URL`` and ``WANDB_API_KEY``, as at W&B) logs the loss of a small linear model
trained by gradient descent in pure Python and its validation accuracy, saves the model as an
artifact with the ``production`` alias and links it into the model registry as ``production``.
``--drift-at`` shifts the validation data mid-training (the accuracy drops), ``--fail-at`` raises (the
run ends failed), ``--hang-at`` stops and waits to be killed (the run ends crashed); ``--use`` is a
second job that uses the production model, prints the MD5 of the bytes it downloads, and marks the
model ``evaluated`` through the public API.

    python -m demo.train --entity acme --project mnist --run baseline-1 --model
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
import time
from pathlib import Path

import wandb

from .scenario import PORTFOLIO, REGISTRY, SOURCE

LINK_TO = f"{REGISTRY}/{PORTFOLIO}"  # where a model is linked for deployment


def _points(chance: random.Random, offset: float = 0.0) -> list[tuple[float, float]]:
    return [(x, 3 * x - 1 + offset + chance.gauss(0, 0.05)) for x in (chance.uniform(-1, 1) for _ in range(64))]


def history(steps: int, seed: int = 7, drift_at: int = -1) -> list[dict[str, float]]:
    """After each step of gradient descent on ``y = 3x - 1`` with noise: the training loss (mean squared
    error) and the validation accuracy (the share of predictions within 0.1), the validation data
    shifted by 0.3 from ``drift_at`` on. The same numbers on every machine for a seed, so a test knows at
    which step a threshold is crossed."""
    chance = random.Random(seed)
    train, validation, drifted = _points(chance), _points(chance), _points(chance, 0.3)
    w = b = 0.0
    out = []
    for step in range(steps):
        grad_w = sum(2 * (w * x + b - y) * x for x, y in train) / len(train)
        grad_b = sum(2 * (w * x + b - y) for x, y in train) / len(train)
        w, b = w - 0.5 * grad_w, b - 0.5 * grad_b
        checked = drifted if 0 <= drift_at <= step else validation
        out.append(
            {
                "loss": sum((w * x + b - y) ** 2 for x, y in train) / len(train),
                "val_accuracy": sum(abs(w * x + b - y) < 0.1 for x, y in checked) / len(checked),
            }
        )
    return out


def losses(steps: int, seed: int = 7) -> list[float]:
    return [row["loss"] for row in history(steps, seed)]


def train(args: argparse.Namespace) -> None:
    run = wandb.init(entity=args.entity, project=args.project, id=args.run, name=args.name or args.run)
    row: dict[str, float] = {}
    for step, row in enumerate(history(args.steps, drift_at=args.drift_at)):
        if step == args.fail_at:
            raise RuntimeError(f"the loss diverged at step {step}")
        if step == args.hang_at:
            print("hanging", flush=True)  # a killed process: W&B marks the run crashed after its silence
            time.sleep(3600)
        run.log({**row, "epoch": step // 10})
        time.sleep(args.pace)
    if args.model:
        with tempfile.TemporaryDirectory() as folder:
            weights = Path(folder) / "model.json"
            weights.write_text(json.dumps({"run": args.run, **row}))
            model = wandb.Artifact(SOURCE, type="model", metadata=row)
            model.add_file(str(weights))
            run.log_artifact(model, aliases=["production"])
            model.wait()
            run.link_artifact(model, LINK_TO, aliases=["production"])
            print("model", model.version, hashlib.md5(weights.read_bytes()).hexdigest(), flush=True)
    run.finish()


def use(args: argparse.Namespace) -> None:
    run = wandb.init(entity=args.entity, project=args.project, id=args.run, job_type="evaluate")
    model = run.use_artifact(f"{args.entity}/{args.project}/{SOURCE}:production")
    with tempfile.TemporaryDirectory() as folder:
        body = (Path(model.download(root=folder)) / "model.json").read_bytes()
    print("downloaded", model.version, hashlib.md5(body).hexdigest(), flush=True)
    run.finish()
    evaluated = wandb.Api().artifact(f"{args.entity}/{args.project}/{SOURCE}:production")  # the public API
    evaluated.aliases.append("evaluated")
    evaluated.save()
    print("aliases", *sorted(evaluated.aliases), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demo.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entity", required=True)
    parser.add_argument("--project", default="mnist")
    parser.add_argument("--run", required=True, help="the run id")
    parser.add_argument("--name", help="the display name (default: the run id)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between steps")
    parser.add_argument("--drift-at", type=int, default=-1, help="shift the validation data from this step")
    parser.add_argument("--fail-at", type=int, default=-1, help="raise at this step")
    parser.add_argument("--hang-at", type=int, default=-1, help="stop logging at this step and wait")
    parser.add_argument("--model", action="store_true", help="log the model as an artifact and link it")
    parser.add_argument("--use", action="store_true", help="use and download the production model instead")
    args = parser.parse_args(argv)
    use(args) if args.use else train(args)


if __name__ == "__main__":
    main()
