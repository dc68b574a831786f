"""Every example in ``dags/examples/`` parsed from the DAGs folder (safe mode on) and run whole with
``dag.test()`` against the demo's story on the local backend, delivering to a real receiver. The
automations run in sensor mode here (``dag.test()`` runs no asset watchers; ``WBAUTO_MODE=sensor``):
the same event and action as in event mode, which the demo and ``tests/cluster`` run on a real Airflow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wbauto.local import LocalWandb
from airflow_provider_wbauto.local.receiver import Receiver
from demo.scenario import PORTFOLIO, PROJECT, REGISTRY, SOURCE, phases, play
from tests.airflow_env import DAGS, ti_state, xcom
from tests.secrets_scan import secret

EXAMPLES = Path(__file__).parent.parent / "dags" / "examples"
SECRET = secret("demo-signing-secret-" + "s" * 12)
AUTOMATION_FILES = {
    "retrain-on-accuracy-drop": "retrain_on_accuracy_drop",
    "retrain-on-accuracy-drop-dry-run": "retrain_on_accuracy_drop_dry_run",
    "deploy-on-production-alias": "deploy_on_production_alias",
    "alert-on-failed-runs": "alert_on_failed_runs",
    "webhook-on-new-model-version": "webhook_on_new_model_version",
    "loss-plateau": "loss_plateau",
}


@pytest.fixture
def examples(
    wandb_conn: LocalWandb, receiver: Receiver, entity: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalWandb]:
    for name, value in {"WBAUTO_ENTITY": entity, "WBAUTO_SINCE": "beginning", "WBAUTO_MODE": "sensor",
                        "WBAUTO_POLL_INTERVAL": "0.5"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    connections = {
        "SLACK_DEFAULT": {"conn_type": "wandb_slack", "password": receiver.url("/slack")},
        "MODEL_REGISTRY_HOOK": {"conn_type": "wandb_webhook", "host": receiver.url("/versions"),
                                "extra": {"signing_secret": SECRET}},
        "DEPLOY_HOOK": {"conn_type": "wandb_webhook", "host": receiver.url("/deploy"),
                        "extra": {"signing_secret": SECRET}},
    }  # fmt: skip
    for conn_id, conn in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps(conn))
    DAGS.mkdir(parents=True, exist_ok=True)
    for helper in ("_settings.py", "_events.py"):
        shutil.copy(EXAMPLES / helper, DAGS / helper)
    for module in ("_settings", "_events"):
        sys.modules.pop(module, None)  # read this test's environment
    sys.path.insert(0, str(DAGS))
    yield wandb_conn
    sys.path.remove(str(DAGS))


def load(stem: str) -> dict[str, Any]:
    """Copy an example into the DAGs folder and parse it as Airflow does: its DAGs by id."""
    from airflow.dag_processing.dagbag import DagBag

    shutil.copy(EXAMPLES / f"{stem}.py", DAGS / f"{stem}.py")
    bag = DagBag(dag_folder=str(DAGS / f"{stem}.py"), safe_mode=False)
    assert not bag.import_errors
    return dict(bag.dags)


def bodies(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received if r.path == path]


def run_automation(name: str) -> tuple[Any, list[dict[str, Any]]]:
    dag = load(AUTOMATION_FILES[name])[name]
    run = dag.test()
    assert ti_state(run, "wait_for_event") == "success" and ti_state(run, "act") == "success"
    return run, xcom(run, "wait_for_event")


def test_every_example_parses_in_safe_mode(monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.syspath_prepend(str(EXAMPLES))  # Airflow puts the DAGs folder on the path
    monkeypatch.setenv("AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE", "True")
    monkeypatch.setenv(
        "AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE", "airflow.utils.file.might_contain_dag_via_default_heuristic"
    )
    bag = DagBag(dag_folder=str(EXAMPLES), safe_mode=True)
    assert not bag.import_errors
    assert set(bag.dags) == {*AUTOMATION_FILES, "retrain_model", "wandb_daily_digest"}


def test_retrain_on_accuracy_drop(examples: LocalWandb, receiver: Receiver, entity: str) -> None:
    play(examples.store, entity)
    _, events = run_automation("retrain-on-accuracy-drop")
    assert [(e["run_name"], e["step"]) for e in events] == [("finetune-2", 11)]
    (message,) = bodies(receiver, "/slack")
    assert message["attachments"][0]["color"] == "#ecb22e" and "finetune-2" in json.dumps(message)  # WARN


def test_the_dry_run_acts_on_nothing(examples: LocalWandb, receiver: Receiver, entity: str) -> None:
    play(examples.store, entity)
    run, events = run_automation("retrain-on-accuracy-drop-dry-run")
    assert [e["run_name"] for e in xcom(run, "act")] == [e["run_name"] for e in events] == ["finetune-2"]
    assert receiver.received == []


def test_deploy_on_production_alias_follows_the_alias(examples: LocalWandb, receiver: Receiver, entity: str) -> None:
    story = phases(entity)
    for phase in story[:5]:  # up to: v0 linked as production
        phase.play(examples.store, entity)
    run_automation("deploy-on-production-alias")
    story[5].play(examples.store, entity)  # production moves to v1
    run_automation("deploy-on-production-alias")
    deliveries = [r for r in receiver.received if r.path == "/deploy"]
    assert [(b["deploy"], b["alias"]) for b in map(lambda r: json.loads(r.body), deliveries)] == [
        (f"{entity}/{REGISTRY}/{PORTFOLIO}:v0", "production"),
        (f"{entity}/{REGISTRY}/{PORTFOLIO}:v1", "production"),
    ]
    for r in deliveries:  # signed
        expected = base64.b64encode(hmac.new(SECRET.encode(), r.body, hashlib.sha256).digest()).decode()
        assert r.headers["X-Wandb-Signature"] == expected


def test_alert_on_failed_runs(examples: LocalWandb, receiver: Receiver, entity: str) -> None:
    play(examples.store, entity)
    _, events = run_automation("alert-on-failed-runs")
    assert [(e["run_name"], e["run_state"]) for e in events] == [("sweep-lr-3", "crashed")]
    (message,) = bodies(receiver, "/slack")
    assert message["attachments"][0]["color"] == "#e01e5a" and "sweep-lr-3" in json.dumps(message)


def test_webhook_on_new_model_version(examples: LocalWandb, receiver: Receiver, entity: str) -> None:
    play(examples.store, entity)
    run_automation("webhook-on-new-model-version")
    deliveries = [r for r in receiver.received if r.path == "/versions"]
    assert [json.loads(r.body)["version"] for r in deliveries] == [f"{entity}/{PROJECT}/{SOURCE}:v{i}" for i in (0, 1)]
    assert json.loads(deliveries[1].body)["metadata"] == {"val_accuracy": 0.95, "run": "baseline-1"}
    for r in deliveries:
        expected = base64.b64encode(hmac.new(SECRET.encode(), r.body, hashlib.sha256).digest()).decode()
        assert r.headers["X-Wandb-Signature"] == expected
        assert r.headers["Idempotency-Key"] == json.loads(r.body)["event"]


def test_loss_plateau(examples: LocalWandb, receiver: Receiver, entity: str) -> None:
    play(examples.store, entity)
    _, events = run_automation("loss-plateau")
    assert [(e["run_name"], e["step"]) for e in events] == [("baseline-1", 28)]
    (message,) = bodies(receiver, "/slack")
    assert "Loss has plateaued" in json.dumps(message)


def test_daily_digest(examples: LocalWandb, receiver: Receiver, entity: str) -> None:
    play(examples.store, entity)
    run = load("daily_digest")["wandb_daily_digest"].test()
    assert xcom(run, "send_digest") == 3
    (message,) = bodies(receiver, "/slack")
    text = message["attachments"][0]["blocks"][1]["text"]["text"]
    lines = text.split("```")[1].splitlines()
    assert lines[0].split() == ["RUN", "STATE", "STEPS", "loss", "val_accuracy"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["baseline-1", "finished", "40"],
        ["finetune-2", "finished", "20"],
        ["sweep-lr-3", "crashed", "3"],
    ]
    assert lines[2].split()[3:] == ["-", "0.85"]  # finetune-2 logged no loss


def test_retrain_model_starts_with_the_events_of_its_automation(examples: LocalWandb) -> None:
    """Parsed here; its real trigger (an asset event of the automation) is shown by the demo's test."""
    dags = load("retrain_on_accuracy_drop")
    (asset,) = dags["retrain_model"].timetable.asset_condition.objects
    assert asset.name == "wandb-automation://retrain-on-accuracy-drop"
