"""The public model and the hook keep their types end to end, as ``wandb.automations`` does: mypy
checks this file (``make typecheck``; an ``assert_type`` fails the check when an inferred type
differs, ``Any`` included), and pytest runs it."""

from __future__ import annotations

from typing import assert_type

import pytest

from airflow_provider_wbauto.automations import (
    DoNothing,
    FilterExpr,
    Integration,
    MetricThresholdFilter,
    NewAutomation,
    OnRunMetric,
    OnRunState,
    RunEvent,
    RunMetricFilter,
    RunStateFilter,
    SlackIntegration,
)
from airflow_provider_wbauto.hooks.transport import GraphQLCall, Read
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.local import LocalWandb
from tests.conftest import API_KEY


def test_then_and_rshift_give_a_new_automation_and_filters_combine_into_filter_types() -> None:
    name = RunEvent.name.matches_regex("^sweep-")
    assert_type(name & RunEvent.tags.contains("prod"), FilterExpr)
    assert_type(name | RunEvent.tags.contains("prod"), FilterExpr)
    loss = assert_type(RunEvent.metric("loss").mean(5) > 0.5, MetricThresholdFilter)
    metric = assert_type(loss & name, RunMetricFilter)
    state = assert_type(RunEvent.state.in_(["FAILED"]) & name, RunStateFilter)
    assert metric.run == state.run == {"display_name": {"$regex": "^sweep-"}}
    on_state = assert_type(OnRunState(scope="acme/mnist", filter=state).then(DoNothing()), NewAutomation)
    on_metric = assert_type(OnRunMetric(scope="acme/mnist", filter=metric) >> DoNothing(), NewAutomation)
    assert isinstance(on_state, NewAutomation) and isinstance(on_metric, NewAutomation)
    assert isinstance(SlackIntegration(conn_id="slack"), Integration)


def test_the_hook_runs_a_read_and_returns_its_result_type(backend: LocalWandb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", backend.url)
    monkeypatch.setenv("WANDB_API_KEY", API_KEY)

    def viewer_fields() -> Read[int]:
        answer = yield GraphQLCall("query { viewer { id username } }", {})
        return len(answer["viewer"])

    assert assert_type(WandbHook("no_such_connection").run(viewer_fields()), int) == 2
