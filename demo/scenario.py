"""A training and model-registry story for the example automations, played phase by phase on the
local backend's ``Store``, with what each phase must make the automations deliver."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_wbauto.local import Store

ENTITY = "acme"
PROJECT = "mnist"
REGISTRY = "wandb-registry-model"
SOURCE = "mnist-cnn"  # the project's model collection
PORTFOLIO = "mnist-classifier"  # the registry collection


@dataclass(frozen=True)
class Phase:
    """One step of the story and the deliveries it causes: automation name -> subjects (run names or
    version strings, one per event)."""

    what: str
    play: Callable[[Store, str], None]
    expect: dict[str, list[str]] = field(default_factory=dict)


def _baseline(store: Store, entity: str) -> None:
    """Learns well: accuracy climbs to 0.95, the loss falls and then flattens (a plateau)."""
    store.upsert_run(entity, PROJECT, "baseline-1", display_name="baseline-1", config={"lr": 0.01})
    for start in range(0, 40, 10):  # logged in pieces, as a training loop does
        store.log(entity, PROJECT, "baseline-1", [_learning(s) for s in range(start, start + 10)])
    store.set_state(entity, PROJECT, "baseline-1", "finished")


def _learning(step: int) -> dict[str, float | int]:
    loss = 0.1 + 2.0 * math.exp(-step / 4) if step < 20 else 0.1 + 2.0 * math.exp(-5)
    return {"_step": step, "loss": round(loss, 5), "val_accuracy": round(0.95 - 0.45 * math.exp(-step / 5), 5)}


def _finetune(store: Store, entity: str) -> None:
    """A fine-tune whose validation accuracy falls from 0.95 to 0.85 halfway (no loss logged)."""
    store.upsert_run(entity, PROJECT, "finetune-2", display_name="finetune-2", config={"lr": 0.001})
    store.log(entity, PROJECT, "finetune-2", [{"_step": s, "val_accuracy": 0.95} for s in range(10)])
    store.log(entity, PROJECT, "finetune-2", [{"_step": s, "val_accuracy": 0.85} for s in range(10, 20)])
    store.set_state(entity, PROJECT, "finetune-2", "finished")


def _crash(store: Store, entity: str) -> None:
    """A sweep run with a learning rate far too high: it crashes after three steps."""
    store.upsert_run(entity, PROJECT, "sweep-lr-3", display_name="sweep-lr-3", config={"lr": 0.5})
    store.log(entity, PROJECT, "sweep-lr-3", [{"_step": s, "lr": 0.5} for s in range(3)])
    store.set_state(entity, PROJECT, "sweep-lr-3", "crashed")


def _versions(store: Store, entity: str) -> None:
    """The baseline's model is logged twice: v0, then v1 after more epochs."""
    store.create_version(entity, PROJECT, SOURCE, metadata={"val_accuracy": 0.93, "run": "baseline-1"})
    store.create_version(entity, PROJECT, SOURCE, metadata={"val_accuracy": 0.95, "run": "baseline-1"})


def _link_v0(store: Store, entity: str) -> None:
    """v0 is linked into the registry as ``production``."""
    store.link(store.version_id(entity, PROJECT, SOURCE, "v0"), entity, REGISTRY, PORTFOLIO, aliases=["production"])


def _promote_v1(store: Store, entity: str) -> None:
    """v1 is linked too, and ``production`` moves from v0 to v1."""
    v1 = store.version_id(entity, PROJECT, SOURCE, "v1")
    store.link(v1, entity, REGISTRY, PORTFOLIO)
    store.add_aliases(v1, store.collection_id(entity, REGISTRY, PORTFOLIO), ["production"])


def phases(entity: str = ENTITY) -> list[Phase]:
    versions = [f"{entity}/{PROJECT}/{SOURCE}:v{i}" for i in (0, 1)]
    return [
        Phase("baseline-1 trains: accuracy climbs, the loss flattens", _baseline, {"loss-plateau": ["baseline-1"]}),
        Phase(
            "finetune-2: validation accuracy drops from 0.95 to 0.85",
            _finetune,
            {"retrain-on-accuracy-drop": ["finetune-2"], "retrain-on-accuracy-drop-dry-run": ["finetune-2"]},
        ),
        Phase("sweep-lr-3 crashes", _crash, {"alert-on-failed-runs": ["sweep-lr-3"]}),
        Phase(f"two versions of {SOURCE} are logged", _versions, {"webhook-on-new-model-version": versions}),
        Phase(
            f"v0 is linked into {REGISTRY}/{PORTFOLIO} as production",
            _link_v0,
            {"deploy-on-production-alias": [f"{entity}/{REGISTRY}/{PORTFOLIO}:v0"]},
        ),
        Phase(
            "v1 is linked and production moves to it",
            _promote_v1,
            {"deploy-on-production-alias": [f"{entity}/{REGISTRY}/{PORTFOLIO}:v1"]},
        ),
    ]


def play(store: Store, entity: str = ENTITY) -> None:
    """The whole story at once (tests of single examples)."""
    for phase in phases(entity):
        phase.play(store, entity)
