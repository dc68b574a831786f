"""`make demo`: start the embedded W&B backend, play the scenario, and show what the provider sees."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from airflow_provider_wbauto.local import LocalWandb

from .scenario import ENTITY, PROJECT, REGISTRY, play


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="wbauto-demo-"))
    os.environ.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    with LocalWandb(home / "wandb.db", api_key="demo-key-" + "0" * 32, entity=ENTITY) as backend:
        print(f"local W&B backend: {backend.url} (database {backend.db})")
        play(backend.store)
        os.environ["AIRFLOW_CONN_WANDB_DEFAULT"] = json.dumps(
            {"conn_type": "wandb", "host": backend.url, "password": backend.api_key, "extra": {"entity": ENTITY}}
        )
        from airflow_provider_wbauto.hooks.wandb import WandbHook

        hook = WandbHook()
        print(hook.test_connection()[1])
        runs = hook.runs(ENTITY, PROJECT)
        history = hook.history(ENTITY, PROJECT, {r["id"]: (0, r["last_step"]) for r in runs}, keys=["loss"])
        for run in runs:
            losses = [row["loss"] for row in history[run["id"]]]
            print(
                f"run {run['id']} ({run['display_name']}): {run['state']}, {run['history_line_count']} rows,"
                f" loss {losses[0]} -> {losses[-1]} (min {min(losses)})"
            )
        for m in hook.memberships(ENTITY, PROJECT, "mnist-cnn"):
            aliases = ", ".join(a["alias"] for a in m["aliases"]) or "-"
            print(f"version {m['collection']}:v{m['version_index']} [{aliases}] metadata {m['artifact_metadata']}")
        for m in hook.memberships(ENTITY, REGISTRY, portfolios_only=True):
            aliases = ", ".join(a["alias"] for a in m["aliases"])
            print(
                f"registry {REGISTRY}/{m['collection']}:v{m['version_index']} [{aliases}]"
                f" <- {m['source_collection']}:v{m['source_version_index']}"
            )


if __name__ == "__main__":
    main()
