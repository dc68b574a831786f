"""``wbauto automations dry-run``: what an automation would have fired over the history already in the
backend, by name or by file, with a progress bar on stderr and the events on stdout."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wbauto.automations import RunEvent
from airflow_provider_wbauto.cli import main
from airflow_provider_wbauto.local import LocalWandb

PLATEAU = RunEvent.metric("loss").mean(3).changes_by(frac=0.05, cmp="<")  # changed by < 5 %: a plateau
AUTOMATIONS = """
\"\"\"The dry-run test's automations (a DAG file).\"\"\"
from airflow_provider_wbauto.automations import DoNothing, OnCreateArtifact, OnRunMetric, RunEvent

OnRunMetric(scope="ENTITY/train", filter=RunEvent.metric("loss").mean(3).changes_by(frac=0.05, cmp="<")
            ).then(DoNothing()).save(name="loss-plateau")
OnCreateArtifact(scope="ENTITY/train/model").then(DoNothing()).save(name="new-model")
"""


def series(seed: float, n: int = 60) -> list[dict[str, Any]]:
    return [{"_step": s, "loss": round(2.0 * math.exp(-s / (8 + seed)) + 0.1 + 0.02 * math.sin(s * seed), 5)}
            for s in range(n)]  # fmt: skip


@pytest.fixture
def folder(wandb_conn: LocalWandb, entity: str, tmp_path: Path) -> Path:
    store = wandb_conn.store
    store.upsert_run(entity, "train", "old", created_at="2026-01-01T00:00:00Z")  # before --since: left out
    store.log(entity, "train", "old", series(1.0))
    for i, seed in enumerate((1.5, 2.5, 3.5)):
        store.upsert_run(entity, "train", f"run-{i}", display_name=f"run-{i}", created_at="2026-06-01T00:00:00Z")
        store.log(entity, "train", f"run-{i}", series(seed))
    for day in ("2026-05-01", "2026-06-02", "2026-06-03", "2026-09-01"):
        store.create_version(entity, "train", "model", created_at=f"{day}T12:00:00Z")
    (tmp_path / "automations.py").write_text(textwrap.dedent(AUTOMATIONS).replace("ENTITY", entity))
    return tmp_path


def test_a_dry_run_fires_what_the_filter_fires_on_the_same_history(
    folder: Path, wandb_conn: LocalWandb, entity: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["automations", "dry-run", "loss-plateau", "--since", "2026-03-01T00:00:00Z", "--dags-folder", str(folder)]
    assert main([*args, "--json"]) == 0
    out = capsys.readouterr()
    fired = [(e["run_id"], e["step"]) for e in json.loads(out.out)["loss-plateau"]]
    expected = [
        (f"run-{i}", step) for i, seed in enumerate((1.5, 2.5, 3.5)) for step in PLATEAU.firing_steps(series(seed))
    ]
    assert expected and sorted(fired) == sorted(expected)  # "old" was created before --since
    assert "loss-plateau: [##############################] 4/4" in out.err  # one step per run of the scope

    assert main(args) == 0
    table = capsys.readouterr().out
    assert f"{len(expected)} event(s) would have fired" in table
    first = next(e for e in json.loads(out.out)["loss-plateau"])
    assert f"{first['run_name']}" in table and f"loss={first['metric_value']:.6g}" in table


def test_a_dry_run_of_a_file_with_until(folder: Path, capsys: pytest.CaptureFixture[str], entity: str) -> None:
    file = str(folder / "automations.py")
    args = ["automations", "dry-run", file, "--since", "2026-06-01T00:00:00Z", "--until", "2026-07-01T00:00:00Z"]
    assert main([*args, "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert set(events) == {"loss-plateau", "new-model"}  # every automation the file saves
    assert [e["artifact_version_string"] for e in events["new-model"]] == [
        f"{entity}/train/model:v1",
        f"{entity}/train/model:v2",
    ]  # v0 before --since, v3 after --until


def test_a_dry_run_names_what_is_wrong(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["automations", "dry-run", "nope", "--since", "2026-01-01", "--dags-folder", str(folder)]) == 2
    assert "no automation named 'nope'; there are: loss-plateau, new-model" in capsys.readouterr().err
    assert main(["automations", "dry-run", "new-model", "--since", "yesterday", "--dags-folder", str(folder)]) == 2
    assert "since must be None, 'beginning' or an ISO timestamp; got 'yesterday'" in capsys.readouterr().err


def test_a_dry_run_without_a_connection_says_so(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["automations", "dry-run", "new-model", "--since", "beginning", "--dags-folder", str(folder)]
    assert main([*args, "--conn-id", "no_such_connection"]) == 2
    assert "no Airflow connection 'no_such_connection' and no WANDB_API_KEY" in capsys.readouterr().err


def test_a_dry_run_at_team_scope_covers_every_project(
    folder: Path, wandb_conn: LocalWandb, entity: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wandb_conn.store.upsert_run(entity, "eval", "run-x", created_at="2026-06-01T00:00:00Z")
    wandb_conn.store.log(entity, "eval", "run-x", series(4.5))
    team = folder / "team.py"
    team.write_text(
        '"""A DAG file (Airflow parses only files that mention DAGs)."""\n'
        "from airflow_provider_wbauto.automations import DoNothing, OnRunMetric, RunEvent\n"
        f'OnRunMetric(scope="team:{entity}", filter=RunEvent.metric("loss").mean(3).changes_by(frac=0.05, cmp="<")'
        ').then(DoNothing()).save(name="team-plateau")\n'
    )
    assert main(["automations", "dry-run", str(team), "--since", "2026-03-01T00:00:00Z", "--json"]) == 0
    out = capsys.readouterr()
    fired = sorted((e["project_name"], e["run_id"], e["step"]) for e in json.loads(out.out)["team-plateau"])
    runs = [("eval", "run-x", 4.5)] + [("train", f"run-{i}", seed) for i, seed in enumerate((1.5, 2.5, 3.5))]
    expected = sorted((p, r, step) for p, r, seed in runs for step in PLATEAU.firing_steps(series(seed)))
    assert {p for p, _, _ in expected} == {"eval", "train"} and fired == expected
    assert "team-plateau: [##############################] 5/5" in out.err  # every run of every project
