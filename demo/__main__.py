"""`make demo`: start the embedded W&B backend, play the scenario, and show what the provider reads."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx

from airflow_provider_wbauto.local import LocalWandb

from .scenario import ENTITY, PROJECT, play

RUNS = """query($e: String, $p: String) { project(entityName: $e, name: $p) {
  runs { edges { node { name displayName state historyLineCount historyKeys } } } } }"""


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="wbauto-demo-"))
    with LocalWandb(home / "wandb.db", api_key="demo-key-" + "0" * 32, entity=ENTITY) as backend:
        print(f"local W&B backend: {backend.url}")
        play(backend.store)
        response = httpx.post(
            backend.url + "/graphql",
            json={"query": RUNS, "variables": {"e": ENTITY, "p": PROJECT}},
            auth=("api", backend.api_key),
            timeout=30,
        )
        response.raise_for_status()
        for edge in response.json()["data"]["project"]["runs"]["edges"]:
            run = edge["node"]
            print(
                f"run {run['name']} ({run['displayName']}): {run['state']}, {run['historyLineCount']} history rows,"
                f" last step {run['historyKeys']['lastStep']}"
            )


if __name__ == "__main__":
    main()
