"""``save()`` makes DAGs the DAG processor finds (safe mode on), with the documented shapes; names are
checked; the listing reads them back from the DAGs folder, and the CLI prints them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from airflow_provider_wbauto.automations import DoNothing, OnCreateArtifact, OnRunState, RunEvent

SNIPPET = """
from airflow_provider_wbauto.automations import MetricThresholdFilter, OnRunMetric, SendNotification
automation = OnRunMetric(
    scope="acme/mnist", filter=MetricThresholdFilter(name="accuracy", cmp=">", threshold=0.95)
).then(SendNotification(title="High Accuracy Achieved", message="Model accuracy exceeded 95%", severity="INFO"))
automation.save(name="accuracy-alert", enabled=True, owner="ml-team", retries=2)
"""
MORE = """
from airflow_provider_wbauto.automations import DoNothing, OnRunState, RunEvent
FAILED = RunEvent.state == "FAILED"
(OnRunState(scope="acme/mnist", filter=FAILED) >> DoNothing()).save(name="failed runs", mode="sensor")
(OnRunState(scope="acme/other", filter=RunEvent.state == "FAILED") >> DoNothing()).save(name="paused", enabled=False)
(OnRunState(scope="team:acme", filter=FAILED) >> DoNothing()).save(name="team failures")
(OnRunState(scope="team:other-team", filter=FAILED) >> DoNothing()).save(name="their failures", mode="sensor")
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "automations.py").write_text(textwrap.dedent(SNIPPET))
    (tmp_path / "more.py").write_text(textwrap.dedent(MORE))
    monkeypatch.setenv("AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE", "True")
    monkeypatch.setenv(
        "AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE", "airflow_provider_wbauto.discovery.might_contain_dag"
    )
    return tmp_path


def bag(folder: Path) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    dags = DagBag(dag_folder=str(folder), safe_mode=True)
    assert not dags.import_errors
    return dags.dags


def test_the_default_heuristic_skips_a_wandb_snippet_and_ours_opens_it(folder: Path) -> None:
    from airflow.utils.file import might_contain_dag_via_default_heuristic

    from airflow_provider_wbauto.discovery import might_contain_dag

    assert not might_contain_dag_via_default_heuristic(str(folder / "automations.py"))
    assert might_contain_dag(str(folder / "automations.py"))
    assert set(bag(folder)) == {"accuracy-alert", "failed_runs", "paused", "team_failures", "their_failures"}


def test_event_mode_dag_shape(folder: Path) -> None:
    from airflow_provider_wbauto.triggers.watcher import WandbAutomationTrigger

    dag = bag(folder)["accuracy-alert"]
    assert set(dag.tags) == {"wandb-automation", "RUN_METRIC", "NOTIFICATION"}
    assert dag.max_active_runs == 1 and dag.default_args == {"owner": "ml-team", "retries": 2}
    (asset,) = dag.timetable.asset_condition.objects
    assert asset.uri == "wandb://acme/mnist?automation=accuracy-alert"
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, WandbAutomationTrigger)
    assert "CreateFilterTriggerInput" in dag.doc_md and "threshold_filter" in dag.doc_md and "wbauto-spec" in dag.doc_md
    act = dag.get_task("act")
    assert [o.uri for o in act.outlets] == ["wandb-automation://accuracy-alert/"]
    assert act.dedupe_asset.uri == asset.uri and act.skip_without_events


def test_sensor_mode_and_disabled_shapes(folder: Path) -> None:
    dags = bag(folder)
    sensor = dags["failed_runs"]
    assert type(sensor.timetable).__name__ == "ContinuousTimetable" and sensor.max_active_runs == 1
    assert [t.task_id for t in sensor.topological_sort()] == ["wait_for_event", "act"]
    assert sensor.get_task("wait_for_event").mode == "reschedule"
    disabled = dags["paused"]
    assert "disabled" in disabled.tags and type(disabled.timetable).__name__ == "NullTimetable"


def test_watchers_on_one_scope_share_a_stream_key() -> None:
    from airflow_provider_wbauto.automations import Automation
    from airflow_provider_wbauto.factory import build_dag

    new = OnRunState(scope="acme/mnist", filter=RunEvent.state == "FAILED") >> DoNothing()
    keys = set()
    for name in ("one", "two"):
        dag = build_dag(Automation(name=name, event=new.event, action=new.action))
        (asset,) = dag.timetable.asset_condition.objects
        keys.add(asset.watchers[0].trigger.shared_stream_key())
    assert len(keys) == 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("X.save(name='same')\nX.save(name='same')", "'same' is saved twice"),
        ("X.save(name='a b')\nY.save(name='a_b')", "DAG id of 'a b'"),
        ("X.save(name='bad/name')", "cannot be a DAG id"),
    ],
)
def test_names_are_checked_at_parse_time(source: str, message: str) -> None:
    scope = {"X": OnCreateArtifact(scope="e/p/c") >> DoNothing(), "Y": OnCreateArtifact(scope="e/p/d") >> DoNothing()}
    with pytest.raises(ValueError, match=message):
        exec(source, scope)


def test_listing_from_the_dags_folder_and_the_cli(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_provider_wbauto import Api
    from airflow_provider_wbauto.cli import main

    api = Api(dags_folder=str(folder))
    mnist = ["accuracy-alert", "failed runs", "team failures"]  # the team's watch the project too
    assert [a.name for a in api.project("acme/mnist").automations()] == mnist
    assert [a.name for a in api.automations(entity="acme")] == [*mnist[:2], "paused", "team failures"]
    assert str(api.automation("team failures").scope) == "team:acme"
    alert = api.automation("accuracy-alert")
    assert alert.event.filter.metric.threshold == 0.95 and alert.mode == "event" and alert.dag_id == "accuracy-alert"
    assert not api.automation("paused").enabled
    with pytest.raises(KeyError, match="there are: accuracy-alert"):
        api.automation("nope")
    where = ["--dags-folder", str(folder)]
    assert main(["automations", "list", "--project", "acme/mnist", *where]) == 0
    out = capsys.readouterr().out.splitlines()
    table = out[next(i for i, line in enumerate(out) if line.startswith("NAME")) :]  # after Airflow's parse log
    assert table[0].split() == ["NAME", "SCOPE", "EVENT", "ACTION", "ENABLED", "MODE", "DAG", "ID"]
    assert table[1].split()[:3] == ["accuracy-alert", "acme/mnist", "RUN_METRIC"]
    assert main(["automations", "list", "--json", *where]) == 0
    text = capsys.readouterr().out
    rows = json.loads(text[text.find("\n[") + 1 :])  # after any parse log
    assert {r["dag_id"] for r in rows} == {"accuracy-alert", "failed_runs", "paused", "team_failures", "their_failures"}
