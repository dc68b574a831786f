"""The example DAGs in ``dags/examples/``, each run whole with ``dag.test()`` against the demo's
scenario on the local backend (``WBAUTO_SINCE=beginning`` replays it), delivering to a real receiver."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wbauto.local import LocalWandb
from airflow_provider_wbauto.local.receiver import Receiver
from demo.scenario import REGISTRY, play
from tests.airflow_env import DAGS, ti_state, write_dag, xcom

EXAMPLES = Path(__file__).parent.parent / "dags" / "examples"


@pytest.fixture
def example_env(
    wandb_conn: LocalWandb, receiver: Receiver, entity: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    play(wandb_conn.store, entity)
    monkeypatch.setenv("WBAUTO_ENTITY", entity)
    monkeypatch.setenv("WBAUTO_SINCE", "beginning")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_DEFAULT", json.dumps({"conn_type": "wandb_slack", "password": receiver.url("/slack")})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_RETRAIN_HOOK", json.dumps({"conn_type": "wandb_webhook", "host": receiver.url("/retrain")})
    )
    DAGS.mkdir(parents=True, exist_ok=True)
    (DAGS / "_settings.py").write_text((EXAMPLES / "_settings.py").read_text())
    sys.modules.pop("_settings", None)  # read the environment of this test
    sys.path.insert(0, str(DAGS))
    yield entity
    sys.path.remove(str(DAGS))


def run_example(name: str) -> Any:
    source = (EXAMPLES / f"{name}.py").read_text()
    dag_id = f"wbauto_{name}"
    return write_dag(source, dag_id=dag_id)


def bodies(receiver: Receiver, path: str) -> list[Any]:
    return [json.loads(r.body) for r in receiver.received if r.path == path]


def test_retrain_on_metric(example_env: str, receiver: Receiver) -> None:
    run = run_example("retrain_on_metric").test()
    assert ti_state(run, "request_retraining") == "success"
    (body,) = bodies(receiver, "/retrain")
    assert (body["run"], body["at_step"]) == ("sweep-lr-2", 4) and body["loss"] > 2.1


def test_deploy_on_alias(example_env: str, receiver: Receiver) -> None:
    run = run_example("deploy_on_alias").test()
    assert xcom(run, "deploy") == [f"deployed {example_env}/{REGISTRY}/mnist-classifier:v1"]
    (message,) = bodies(receiver, "/slack")
    assert "mnist-classifier:v1" in json.dumps(message)


def test_alert_on_failed_runs(example_env: str, receiver: Receiver) -> None:
    run = run_example("alert_on_failed_runs").test()
    assert [e["run_name"] for e in xcom(run, "failed")] == ["sweep-lr-2"]
    (message,) = bodies(receiver, "/slack")
    assert message["attachments"][0]["color"] == "#e01e5a"


def test_notify_new_model_versions(example_env: str, receiver: Receiver) -> None:
    run = run_example("notify_new_model_versions").test()
    assert sorted(e["artifact_version_index"] for e in xcom(run, "record")) == [0, 1]
    (message,) = bodies(receiver, "/slack")  # one batched message for both links
    assert "mnist-classifier:v0" in json.dumps(message) and "mnist-classifier:v1" in json.dumps(message)
