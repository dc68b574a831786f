"""`make demo`: start the embedded W&B backend, play the scenario, show what the provider sees, then run
the example DAGs (``dags/examples``) whole with ``dag.test()``: their sensors fire on the scenario and
their actions deliver to a local stand-in for Slack and the retraining webhook."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from airflow_provider_wbauto.local import LocalWandb
from airflow_provider_wbauto.local.receiver import Receiver

from .scenario import ENTITY, PROJECT, REGISTRY, play

EXAMPLES = Path(__file__).resolve().parent.parent / "dags" / "examples"


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="wbauto-demo-"))
    os.environ["AIRFLOW_HOME"] = str(home / "airflow")
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLES)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
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
        run_examples()


def run_examples() -> None:
    """Each example DAG once, replaying the scenario (``WBAUTO_SINCE=beginning``)."""
    import importlib.util
    import logging
    import sys

    from airflow.utils.db import resetdb

    logging.disable(logging.WARNING)  # dag.test() narrates every step; the demo shows the outcome
    os.environ["WBAUTO_SINCE"] = "beginning"
    sys.path.insert(0, str(EXAMPLES))
    print("\nexample DAGs (dags/examples), run with dag.test():")
    resetdb()
    with Receiver() as receiver:
        os.environ["AIRFLOW_CONN_SLACK_DEFAULT"] = json.dumps(
            {"conn_type": "wandb_slack", "password": receiver.url("/slack")}
        )
        os.environ["AIRFLOW_CONN_RETRAIN_HOOK"] = json.dumps(
            {"conn_type": "wandb_webhook", "host": receiver.url("/retrain")}
        )
        for path in sorted(EXAMPLES.glob("[!_]*.py")):
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            before = len(receiver.received)
            run = module.dag.test()
            print(f"  {module.dag.dag_id}: {run.state}")
            for request in receiver.received[before:]:
                print(f"    -> {request.path}: {_summary(json.loads(request.body))}")


def _summary(body: dict[str, Any]) -> str:
    """A Slack message's text lines, or a webhook's JSON."""
    if "attachments" in body:
        texts = [b["text"]["text"] for b in body["attachments"][0]["blocks"] if b.get("type") in ("header", "section")]
        return " | ".join(t.replace("\n", " ") for t in texts)
    return json.dumps(body)


if __name__ == "__main__":
    main()
