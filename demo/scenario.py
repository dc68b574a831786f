"""A short training and model-registry story, played on the local backend's Store."""

from __future__ import annotations

import math

from airflow_provider_wbauto.local import Store

ENTITY = "acme"
PROJECT = "mnist"
REGISTRY = "wandb-registry-model"


def play(store: Store, entity: str = ENTITY) -> None:
    """Two training runs (one converges, one fails), a model version per good run, an alias and a link."""
    store.upsert_run(entity, PROJECT, "run-a", display_name="bright-sun-1", config={"lr": 0.01}, tags=["baseline"])
    store.upsert_run(entity, PROJECT, "run-b", display_name="sweep-lr-2", config={"lr": 0.5}, tags=["sweep"])
    for step in range(0, 40, 10):
        store.log(entity, PROJECT, "run-a", [_row(s, 0.01) for s in range(step, step + 10)])
        store.log(entity, PROJECT, "run-b", [_row(s, 0.5) for s in range(step // 2, step // 2 + 5)])
    store.set_state(entity, PROJECT, "run-b", "crashed")
    store.set_state(entity, PROJECT, "run-a", "finished")
    v0 = store.create_version(entity, PROJECT, "mnist-cnn", metadata={"accuracy": 0.91, "run": "run-a"})
    v1 = store.create_version(entity, PROJECT, "mnist-cnn", metadata={"accuracy": 0.96, "run": "run-a"})
    seq = store.collection_id(entity, PROJECT, "mnist-cnn")
    store.add_aliases(v1, seq, ["candidate"])
    store.link(v0, entity, REGISTRY, "mnist-classifier", aliases=["staging"])
    store.link(v1, entity, REGISTRY, "mnist-classifier", aliases=["production"])


def _row(step: int, lr: float) -> dict[str, float | int]:
    loss = 2.3 * math.exp(-step * lr * 8) + 0.05 if lr < 0.1 else 2.3 + 0.3 * math.sin(step)
    return {"_step": step, "loss": round(loss, 4), "accuracy": round(1 - loss / 2.5, 4)}
