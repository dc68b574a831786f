"""``wbauto automations list`` / ``dry-run`` and ``Api()`` parse the DAGs folder as Airflow's DAG processor
does: the folder and the plugins folder on ``sys.path`` (a DAG file imports its sibling modules),
``.airflowignore`` honoured, and a file that fails to import named with its error and exit 2, the
other files' automations still listed."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_wbauto import Api
from airflow_provider_wbauto.cli import main
from airflow_provider_wbauto.local import LocalWandb

EXAMPLES = Path(__file__).parent.parent / "dags" / "examples"
SIBLING = '''
"""Where the automations of this folder look (a helper module, as dags/examples/_settings.py)."""
ENTITY = "ENTITY"
'''
AUTOMATIONS = '''
"""New model versions (a DAG file importing its sibling module, as every file of dags/examples/ does)."""
from _sibling_scope import ENTITY

from airflow_provider_wbauto.automations import DoNothing, OnCreateArtifact

OnCreateArtifact(scope=f"{ENTITY}/train/model").then(DoNothing()).save(name="sibling-new-model")
'''
OTHER = '''
"""Another DAG file, importing nothing of its folder."""
from airflow_provider_wbauto.automations import DoNothing, OnCreateArtifact

OnCreateArtifact(scope="acme/train/other").then(DoNothing()).save(name="other-new-model")
'''
BROKEN = '''
"""A DAG file that raises at import (airflow dag)."""
from airflow_provider_wbauto.automations import DoNothing, OnCreateArtifact

OnCreateArtifact(scope="acme/train/broken").then(DoNothing()).save(name="broken-new-model")
1 / 0
'''


def write(folder: Path, files: dict[str, str], entity: str = "acme") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        (folder / name).write_text(textwrap.dedent(source).replace("ENTITY", entity))
    return folder


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["automations", "list", "--json", *args])
    out = capsys.readouterr()
    return code, [row["name"] for row in json.loads(out.out)], out.err


@pytest.fixture
def sibling(tmp_path: Path, wandb_conn: LocalWandb, entity: str) -> Path:
    for day in ("2026-05-01", "2026-06-02"):
        wandb_conn.store.create_version(entity, "train", "model", created_at=f"{day}T12:00:00Z")
    return write(tmp_path / "dags", {"_sibling_scope.py": SIBLING, "automations.py": AUTOMATIONS}, entity)


def test_a_dag_file_importing_a_sibling_module_is_listed(sibling: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path_before = list(sys.path)
    assert listed(capsys, "--dags-folder", str(sibling))[:2] == (0, ["sibling-new-model"])
    assert [a.name for a in Api(dags_folder=str(sibling)).automations()] == ["sibling-new-model"]
    assert sys.path == path_before  # the folder was on sys.path while parsing only
    assert "_sibling_scope" not in sys.modules  # the next parse reads the folder afresh


def test_a_dag_file_importing_a_sibling_module_is_dry_run_by_file_and_by_name(
    sibling: Path, entity: str, capsys: pytest.CaptureFixture[str]
) -> None:
    versions = [f"{entity}/train/model:v0", f"{entity}/train/model:v1"]
    by_file = ["automations", "dry-run", str(sibling / "automations.py"), "--since", "beginning", "--json"]
    assert main(by_file) == 0
    events = json.loads(capsys.readouterr().out)
    assert [e["artifact_version_string"] for e in events["sibling-new-model"]] == versions
    by_name = ["automations", "dry-run", "sibling-new-model", "--since", "beginning", "--dags-folder", str(sibling)]
    assert main([*by_name, "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [e["artifact_version_string"] for e in events["sibling-new-model"]] == versions


def test_the_plugins_folder_is_on_sys_path_while_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = write(tmp_path / "plugins", {"_sibling_scope.py": SIBLING})
    monkeypatch.setenv("AIRFLOW__CORE__PLUGINS_FOLDER", str(plugins))
    dags = write(tmp_path / "dags", {"automations.py": AUTOMATIONS})
    assert listed(capsys, "--dags-folder", str(dags))[:2] == (0, ["sibling-new-model"])


@pytest.mark.parametrize(
    ("syntax", "pattern"), [("glob", "hidden*.py"), ("regexp", r"hidden_.*\.py")]
)  # fmt: skip
def test_airflowignore_hides_a_file(
    tmp_path: Path, syntax: str, pattern: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", syntax)
    files = {"other.py": OTHER, "hidden_broken.py": BROKEN, ".airflowignore": pattern + "\n"}
    folder = write(tmp_path / "dags", files)
    code, names, err = listed(capsys, "--dags-folder", str(folder))
    assert (code, names) == (0, ["other-new-model"])  # the ignored file is not even imported
    assert "failed to import" not in err


def test_a_file_that_fails_to_import_is_named_with_its_error_and_exits_2(
    sibling: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(sibling, {"broken.py": BROKEN, "other.py": OTHER})
    code, names, err = listed(capsys, "--dags-folder", str(sibling))
    assert code == 2
    assert names == ["other-new-model", "sibling-new-model"]  # the other files' automations, on stdout
    assert f"wbauto: {sibling / 'broken.py'} failed to import: ZeroDivisionError: division by zero\n" in err
    assert "Traceback" not in err.split("failed to import", 1)[1]  # one line, no traceback

    assert main(["automations", "list", "--dags-folder", str(sibling)]) == 2  # the table too
    out = capsys.readouterr()
    assert "sibling-new-model" in out.out and "broken.py failed to import" in out.err

    api = Api(dags_folder=str(sibling))
    assert [a.name for a in api.automations()] == ["other-new-model", "sibling-new-model"]
    assert api.import_errors == {str(sibling / "broken.py"): "ZeroDivisionError: division by zero"}


def test_a_dry_run_of_a_file_that_fails_to_import_says_so(sibling: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(sibling, {"broken.py": BROKEN})
    assert main(["automations", "dry-run", str(sibling / "broken.py"), "--since", "beginning"]) == 2
    err = capsys.readouterr().err
    assert "broken.py failed to import: ZeroDivisionError: division by zero" in err
    assert "saves no automation" not in err
    by_name = ["automations", "dry-run", "broken-new-model", "--since", "beginning", "--dags-folder", str(sibling)]
    assert main(by_name) == 2
    err = capsys.readouterr().err
    assert "broken.py failed to import: ZeroDivisionError" in err
    assert "no automation named 'broken-new-model'; there are: sibling-new-model (1 DAG file(s) failed" in err
    by_name[2] = "sibling-new-model"  # found, and run; the broken file still makes it exit 2
    assert main([*by_name, "--json"]) == 2
    out = capsys.readouterr()
    assert len(json.loads(out.out)["sibling-new-model"]) == 2 and "broken.py failed to import" in out.err


def test_the_examples_folder_lists_every_example_automation(capsys: pytest.CaptureFixture[str]) -> None:
    saved = {m for f in EXAMPLES.glob("*.py") for m in re.findall(r'\.save\(\s*name="([^"]+)"', f.read_text())}
    assert len(saved) == 6
    code, names, err = listed(capsys, "--dags-folder", str(EXAMPLES))
    assert code == 0 and set(names) == saved, err
    dry = ["automations", "dry-run", str(EXAMPLES / "loss_plateau.py"), "--since", "beginning", "--conn-id", "nope"]
    assert main(dry) == 2  # parsed (no "saves no automation"): it stops at the missing connection
    assert "saves no automation" not in capsys.readouterr().err
