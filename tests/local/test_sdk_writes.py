"""The real ``wandb`` SDK writes into the local backend: a training script in a subprocess (online mode,
``WANDB_BASE_URL`` at the server) logs metrics, and its runs end finished, failed or (killed) crashed,
with their history readable through the hook and seen by the provider's polls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_wbauto.automations import OnRunMetric, OnRunState, RunEvent
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.hooks.watch import Watch, poll
from airflow_provider_wbauto.local import LocalWandb
from demo.cluster import wait_for
from tests.conftest import API_KEY

CRASH_AFTER = 8.0  # seconds of silence: short, so a killed script's run is crashed within the test

SCRIPT = """
import os, sys, time
import wandb

run = wandb.init(entity=os.environ["E"], project="p", id=os.environ["RUN"], name="train-" + os.environ["RUN"])
for step in range(int(os.environ.get("STEPS", "50"))):
    run.log({"loss": 1 / (step + 1), "acc": step / 50})
if os.environ["HOW"] == "raise":
    raise RuntimeError("diverged")
if os.environ["HOW"] == "hang":
    print("logged", flush=True)
    time.sleep(600)
run.finish()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWandb]:
    with LocalWandb(tmp_path_factory.mktemp("sdk") / "w.db", api_key=API_KEY, crash_after=CRASH_AFTER) as backend:
        yield backend


def train(server: LocalWandb, entity: str, run: str, how: str, tmp: Path) -> subprocess.Popen[str]:
    (tmp / "train.py").write_text(textwrap.dedent(SCRIPT))
    env = {
        # never WANDB_SERVICE: a wandb-core this process started (wandb.Api does) would take the script's
        # run, outlive it, and hold this process's exit waiting on a stream that never ends
        **{k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"},
        "WANDB_BASE_URL": server.url,
        "WANDB_API_KEY": API_KEY,
        "WANDB_MODE": "online",
        "WANDB_DIR": str(tmp),
        "WANDB_SILENT": "true",
        "E": entity,
        "RUN": run,
        "HOW": how,
    }
    return subprocess.Popen(
        [sys.executable, str(tmp / "train.py")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _state(server: LocalWandb, run: str) -> str:
    return str(server.store.query("SELECT state FROM run WHERE name=?", [run])[0]["state"])


def _hook(server: LocalWandb, monkeypatch: pytest.MonkeyPatch) -> WandbHook:
    monkeypatch.setenv("WANDB_API_KEY", API_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", server.url)
    return WandbHook("wandb_sdk_writes_none")  # no such connection: the environment's key and URL


@pytest.mark.timeout(300)
def test_a_finished_script_leaves_its_history_and_a_metric_watch_fires_at_the_step(
    server: LocalWandb, entity: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = train(server, entity, "ok1", "finish", tmp_path)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    wait_for(lambda: _state(server, "ok1") == "finished", "the run finished")  # wandb-core may end it after exit
    (run,) = server.store.query("SELECT last_step FROM run WHERE name='ok1'")
    assert run["last_step"] == 49
    uploaded = server.store.query(
        "SELECT f.name, f.body FROM run_file f JOIN run r ON r.id = f.run_id WHERE r.name='ok1'"
    )
    files = {row["name"]: bytes(row["body"]) for row in uploaded}  # PUT to the addresses createRunFiles gave
    assert b"loss" in files["wandb-summary.json"] and "config.yaml" in files
    hook = _hook(server, monkeypatch)
    watch = Watch(OnRunMetric(scope=f"{entity}/p", filter=RunEvent.metric("loss") < 0.05), "low", since="beginning")
    events, _ = hook.run(poll(watch, None))
    assert [(e["run_id"], e["step"], e["run_name"]) for e in events] == [("ok1", 20, "train-ok1")]  # 1/21 < 0.05
    assert events[0]["metric_value"] == pytest.approx(1 / 21)


@pytest.mark.timeout(300)
def test_a_script_that_raises_ends_failed_and_a_state_watch_fires(
    server: LocalWandb, entity: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(server, monkeypatch)
    watch = Watch(OnRunState(scope=f"{entity}/p", filter=RunEvent.state == "FAILED"), "failed")
    _, cursor = hook.run(poll(watch, None))
    proc = train(server, entity, "bad1", "raise", tmp_path)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode != 0 and "diverged" in out
    wait_for(lambda: _state(server, "bad1") == "failed", "the run failed")
    events, _ = hook.run(poll(watch, cursor))
    assert [(e["run_id"], e["run_state"]) for e in events] == [("bad1", "failed")]


@pytest.mark.timeout(300)
def test_a_killed_script_ends_crashed_after_the_silence(server: LocalWandb, entity: str, tmp_path: Path) -> None:
    proc = train(server, entity, "gone1", "hang", tmp_path)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "logged"
        wait_for(lambda: server.store.query("SELECT 1 FROM run WHERE name='gone1' AND streamed=1"), "streaming")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        wait_for(lambda: _state(server, "gone1") == "crashed", "the killed run crashed", timeout=CRASH_AFTER + 60)
    finally:
        proc.kill()
        proc.wait(timeout=30)
