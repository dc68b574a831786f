"""The real ``wandb`` SDK writes into the local backend: the demo's training script (``demo/train.py``)
runs in a subprocess in online mode with ``WANDB_BASE_URL`` at the server, as a user's own script
would, while the provider's sensors watch in whole DAGs under ``dag.test()``: its loss makes a
RunMetricSensor fire at the step the numbers say; a raising script ends ``failed`` and a RunStateSensor
fires; a SIGKILLed one ends ``crashed``; its model, logged with ``production`` and linked into the
registry, makes an ArtifactAliasSensor and an ArtifactLinkedSensor fire, and a second job downloads the
same bytes."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wbauto.local import LocalWandb, Store
from demo.cluster import wait_for
from demo.scenario import PORTFOLIO, REGISTRY, SOURCE
from demo.train import losses
from demo.training import start_training
from tests.airflow_env import SENSOR_MODES, play_during, ti_state, write_dag, xcom
from tests.conftest import API_KEY

CRASH_AFTER = 8.0  # seconds of silence: short, so a killed script's run is crashed within the test


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWandb]:
    with LocalWandb(tmp_path_factory.mktemp("sdk") / "w.db", api_key=API_KEY, crash_after=CRASH_AFTER) as backend:
        yield backend


@pytest.fixture
def sdk_conn(server: LocalWandb, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> LocalWandb:
    """``wandb_default`` points at this module's server (the one that crashes silent runs quickly)."""
    import json

    conn = {"conn_type": "wandb", "host": server.url, "password": API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_WANDB_DEFAULT", json.dumps(conn))
    return server


def script(server: LocalWandb, tmp: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m demo.train ARGS`` against the server, as a user runs a training script."""
    return start_training(server.url, API_KEY, tmp, *args)


def finished(proc: subprocess.Popen[str], ok: bool = True) -> str:
    out, _ = proc.communicate(timeout=240)
    assert (proc.returncode == 0) is ok, out
    return out


def fired_while_training(
    server: LocalWandb, tmp: Path, sensor: str, args: str, *command: str, ok: bool = True
) -> tuple[list[dict[str, Any]], str]:
    """A DAG of one deferrable ``sensor`` run while ``python -m demo.train COMMAND`` writes: the
    sensor's events, and what the script printed (it exits 0, or not when ``ok`` is false)."""
    out: list[str] = []

    def train(_: Store) -> None:
        out.append(finished(script(server, tmp, *command), ok=ok))

    dag = write_dag(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_provider_wbauto.automations import ArtifactEvent, RunEvent
        from airflow_provider_wbauto.sensors import {sensor}

        with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
            {sensor}(task_id="watch", {args}, poke_interval=0.5, timeout=240, {SENSOR_MODES["deferrable"]})
        """
    )
    run = play_during(server, dag, [train], polls=2)
    assert ti_state(run, "watch") == "success"
    events: list[dict[str, Any]] = xcom(run, "watch")
    return events, out[0]


def _state(server: LocalWandb, run: str) -> str:
    return str(server.store.query("SELECT state FROM run WHERE name=?", [run])[0]["state"])


@pytest.mark.timeout(400)
def test_a_finished_script_fires_a_metric_sensor_at_the_step_its_loss_crossed(
    sdk_conn: LocalWandb, entity: str, tmp_path: Path
) -> None:
    metric = f"scope='{entity}/p', filter=RunEvent.metric('loss') < 0.05"
    command = ("--entity", entity, "--project", "p", "--run", "ok1", "--name", "bright-sun-1")
    events, _ = fired_while_training(sdk_conn, tmp_path, "RunMetricSensor", metric, *command)
    crossed = next(step for step, loss in enumerate(losses(50)) if loss < 0.05)
    assert [(e["run_id"], e["step"], e["run_name"]) for e in events] == [("ok1", crossed, "bright-sun-1")]
    assert events[0]["metric_value"] == pytest.approx(losses(50)[crossed])
    wait_for(lambda: _state(sdk_conn, "ok1") == "finished", "the run finished")  # wandb-core may end it after exit
    (run,) = sdk_conn.store.query("SELECT last_step, history_line_count FROM run WHERE name='ok1'")
    assert (run["last_step"], run["history_line_count"]) == (49, 50)
    uploaded = sdk_conn.store.query(
        "SELECT f.name, f.body FROM run_file f JOIN run r ON r.id = f.run_id WHERE r.name='ok1'"
    )
    files = {row["name"]: bytes(row["body"]) for row in uploaded}  # PUT to the addresses createRunFiles gave
    assert b"loss" in files["wandb-summary.json"] and "config.yaml" in files


@pytest.mark.timeout(400)
def test_a_script_that_raises_ends_failed_and_a_state_sensor_fires(
    sdk_conn: LocalWandb, entity: str, tmp_path: Path
) -> None:
    failed = f"scope='{entity}/p', filter=RunEvent.state == 'FAILED'"
    command = ("--entity", entity, "--project", "p", "--run", "bad1", "--fail-at", "5")
    events, out = fired_while_training(sdk_conn, tmp_path, "RunStateSensor", failed, *command, ok=False)
    assert "the loss diverged at step 5" in out
    assert [(e["run_id"], e["run_state"]) for e in events] == [("bad1", "failed")]


@pytest.mark.timeout(300)
def test_a_killed_script_ends_crashed_after_the_silence(server: LocalWandb, entity: str, tmp_path: Path) -> None:
    proc = script(server, tmp_path, "--entity", entity, "--project", "p", "--run", "gone1", "--hang-at", "10")
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "hanging"
        wait_for(lambda: server.store.query("SELECT 1 FROM run WHERE name='gone1' AND streamed=1"), "streaming")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        wait_for(lambda: _state(server, "gone1") == "crashed", "the killed run crashed", timeout=CRASH_AFTER + 60)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _while_a_model_is_logged(
    server: LocalWandb, tmp: Path, entity: str, run: str, sensor: str, args: str
) -> tuple[list[dict[str, Any]], str]:
    """``sensor``'s events while a script trains, logs its model as production and links it; and what
    the script printed."""
    command = ("--entity", entity, "--project", "p", "--run", run, "--steps", "5", "--model")
    return fired_while_training(server, tmp, sensor, args, *command)


def _printed(out: str, word: str) -> list[str]:
    (line,) = [line for line in out.splitlines() if line.startswith(word + " ")]
    return line.split()[1:]


@pytest.mark.timeout(400)
def test_a_logged_model_fires_an_alias_sensor_and_downloads_as_logged(
    sdk_conn: LocalWandb, entity: str, tmp_path: Path
) -> None:
    events, out = _while_a_model_is_logged(
        sdk_conn,
        tmp_path,
        entity,
        "m1",
        "ArtifactAliasSensor",
        f"scope='{entity}/p/{SOURCE}', filter=ArtifactEvent.alias.matches_regex('^production$')",
    )
    version, logged_md5 = _printed(out, "model")
    assert version == "v0"
    (event,) = events
    assert (event["event_type"], event["alias"], event["artifact_version_index"]) == (
        "ADD_ARTIFACT_ALIAS",
        "production",
        0,
    )
    assert event["artifact_collection_name"] == SOURCE and "loss" in event["artifact_metadata"]

    used = finished(script(sdk_conn, tmp_path, "--entity", entity, "--project", "p", "--run", "u1", "--use"))
    assert _printed(used, "downloaded") == ["v0", logged_md5]  # the bytes that were logged
    (use,) = sdk_conn.store.query(
        "SELECT r.name FROM artifact_use u JOIN run r ON r.id = u.run_id JOIN artifact a ON a.id = u.artifact_id"
        " JOIN collection c ON c.id = a.sequence_id JOIN project p ON p.id = c.project_id WHERE p.entity=?",
        [entity],
    )
    assert use["name"] == "u1"  # useArtifact kept the lineage
    assert _printed(used, "aliases") == ["evaluated", "latest", "production"]  # wandb.Api() read and saved it


@pytest.mark.timeout(400)
def test_a_model_linked_into_the_registry_fires_a_linked_sensor(
    sdk_conn: LocalWandb, entity: str, tmp_path: Path
) -> None:
    events, _ = _while_a_model_is_logged(
        sdk_conn, tmp_path, entity, "m2", "ArtifactLinkedSensor", f"scope='{entity}/{REGISTRY}'"
    )
    (event,) = events
    assert event["event_type"] == "LINK_MODEL"
    assert event["artifact_collection_name"] == PORTFOLIO
    assert event["artifact_version_string"] == f"{entity}/{REGISTRY}/{PORTFOLIO}:v0"
    assert "production" in event["aliases"]
