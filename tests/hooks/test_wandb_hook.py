"""WandbHook against the running local backend: reads, paging, batching, and every fault mode."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_wbauto.hooks.times import parse_time, wire_time
from airflow_provider_wbauto.hooks.transport import (
    RetryPolicy,
    WandbAuthError,
    WandbGraphQLError,
    WandbUnavailableError,
)
from airflow_provider_wbauto.hooks.wandb import WandbHook, runs_filter
from airflow_provider_wbauto.local import LocalWandb, load
from tests.conftest import API_KEY
from tests.own_server import local_wandb  # noqa: F401  (faults are injected here)

FAST = RetryPolicy(max_attempts=3, backoff_base=0.01, max_total_seconds=30)


@pytest.fixture
def conn(backend: LocalWandb, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WANDB_TEST",
        json.dumps({"conn_type": "wandb", "host": backend.url, "password": API_KEY, "extra": {"timeout": 10}}),
    )
    yield "wandb_test"


@pytest.fixture
def hook(conn: str) -> WandbHook:
    return WandbHook(conn, retry=FAST, history_page=7, runs_per_request=2)


@pytest.fixture
def project(backend: LocalWandb, entity: str) -> str:
    runs = [
        {
            "id": f"r{i}",
            "display_name": f"{'sweep' if i % 2 else 'base'}-{i}",
            "state": "running",
            "history": [{"_step": s, "loss": 1 / (s + 1 + i), **({"acc": s} if s % 3 == 0 else {})} for s in range(30)],
        }
        for i in range(5)
    ]
    artifacts = [{"collection": "m", "versions": [{"metadata": {"n": 0}}, {"aliases": ["best"], "metadata": {"n": 1}}]}]
    links = [{"source": "p/m:v0", "target": "wandb-registry-model/prod", "aliases": ["production"]}]
    load(
        backend.store,
        {"entity": entity, "projects": [{"name": "p", "runs": runs, "artifacts": artifacts, "links": links}]},
    )
    return "p"


def test_runs_with_server_filter_and_changed_since(
    hook: WandbHook, backend: LocalWandb, entity: str, project: str
) -> None:
    runs = hook.runs(entity, project, filters={"display_name": {"$regex": "^sweep-"}}, per_page=1)
    assert sorted(r["id"] for r in runs) == ["r1", "r3"]
    assert {r["last_step"] for r in runs} == {29} and {r["history_line_count"] for r in runs} == {30}
    latest = max(r["heartbeat_at"] for r in hook.runs(entity, project))
    backend.admin("DELETE", "/_local/stats")
    later = wire_time(parse_time(latest) + timedelta(seconds=1))
    assert [r["id"] for r in hook.runs(entity, project, changed_since=later)] == []  # nothing changed
    assert backend.requests() == 1
    backend.store.log(entity, project, "r4", [{"loss": 0.01}])
    changed = hook.runs(entity, project, changed_since=latest)
    assert "r4" in [r["id"] for r in changed]


def test_history_by_step_range_across_pages_and_runs(
    hook: WandbHook, backend: LocalWandb, entity: str, project: str
) -> None:
    backend.admin("DELETE", "/_local/stats")
    got = hook.history(entity, project, {"r0": (3, 20), "r1": (0, 29), "r2": (25, 29)}, keys=["acc"])
    assert [r["_step"] for r in got["r0"]] == [3, 6, 9, 12, 15, 18]
    assert got["r0"][0] == {"_step": 3, "acc": 3}
    assert [r["_step"] for r in got["r1"]] == list(range(0, 30, 3))
    assert [r["_step"] for r in got["r2"]] == [27]
    # pages of 7 steps, 2 runs per request: r1 needs 5 pages, the others 3 and 1, overlapped.
    assert backend.requests() == 5
    full = hook.history(entity, project, {"r0": (0, 29)})
    assert [r["_step"] for r in full["r0"]] == list(range(30))
    assert full["r0"][4]["loss"] == pytest.approx(1 / 5)
    two_keys = hook.history(entity, project, {"r0": (0, 3)}, keys=["loss", "acc"])
    assert two_keys["r0"] == [
        {"_step": 0, "loss": 1.0, "acc": 0},
        {"_step": 1, "loss": 0.5},
        {"_step": 2, "loss": pytest.approx(1 / 3)},
        {"_step": 3, "loss": 0.25, "acc": 3},
    ]


def test_artifacts_aliases_and_links(hook: WandbHook, entity: str, project: str) -> None:
    versions = hook.memberships(entity, project, "m")
    assert [(v["version_index"], v["artifact_state"], v["artifact_metadata"]) for v in versions] == [
        (0, "COMMITTED", {"n": 0}),
        (1, "COMMITTED", {"n": 1}),
    ]
    assert sorted(a["alias"] for a in versions[1]["aliases"]) == ["best", "latest"]
    links = hook.memberships(entity, "wandb-registry-model", portfolios_only=True)
    assert [
        (m["collection"], m["collection_type"], m["source_collection"], m["source_version_index"]) for m in links
    ] == [("prod", "PORTFOLIO", "m", 0)]
    assert sorted(a["alias"] for a in links[0]["aliases"]) == ["latest", "production"]
    across = hook.memberships(entity, project)
    assert len(across) == 2


def test_async_reads_match_sync(hook: WandbHook, conn: str, entity: str, project: str) -> None:
    async def both() -> tuple[Any, Any]:
        h = WandbHook(conn, retry=FAST, history_page=7)
        return await h.aruns(entity, project), await h.ahistory(entity, project, {"r3": (0, 29)}, keys=["loss"])

    runs, history = asyncio.run(both())
    assert [r["id"] for r in runs] == [r["id"] for r in hook.runs(entity, project)]
    assert history == hook.history(entity, project, {"r3": (0, 29)}, keys=["loss"])


def test_5xx_is_retried_then_succeeds(hook: WandbHook, backend: LocalWandb, entity: str, project: str) -> None:
    backend.inject(mode="status", status=502, count=2, path="/graphql")
    assert hook.run_state(entity, project, "r0") == "running"
    assert backend.requests() == 3


def test_5xx_past_the_attempt_budget_fails(hook: WandbHook, backend: LocalWandb, entity: str, project: str) -> None:
    backend.inject(mode="status", status=503, count=None, path="/graphql")
    with pytest.raises(WandbUnavailableError, match=r"after 3 attempt.*HTTP 503"):
        hook.run_state(entity, project, "r0")
    assert backend.requests() == 3


@pytest.mark.parametrize(("retry_after", "reset"), [(1.0, None), (None, 1.0)])
def test_429_honours_retry_after_or_ratelimit_reset(
    hook: WandbHook, backend: LocalWandb, entity: str, project: str, retry_after: float | None, reset: float | None
) -> None:
    backend.inject(mode="rate_limit", retry_after=retry_after, reset=reset, count=1)
    started = time.monotonic()
    assert hook.run_state(entity, project, "r0") == "running"
    assert time.monotonic() - started >= 1.0  # FAST's own backoff is 10 ms: the header set the wait
    assert backend.requests() == 2


def test_429_longer_than_the_time_budget_gives_up(conn: str, backend: LocalWandb, entity: str, project: str) -> None:
    hook = WandbHook(conn, retry=RetryPolicy(max_attempts=5, max_total_seconds=2))
    backend.inject(mode="rate_limit", retry_after=30, reset=30, count=None)
    with pytest.raises(WandbUnavailableError, match=r"after 1 attempt.*429"):
        hook.run_state(entity, project, "r0")
    assert backend.requests() == 1


def test_latency_past_the_timeout_is_retried(conn: str, backend: LocalWandb, entity: str, project: str) -> None:
    hook = WandbHook(conn, timeout=1.5, retry=FAST)  # room for the retry on a loaded machine
    backend.inject(mode="latency", seconds=4.0, count=1)
    assert hook.run_state(entity, project, "r0") == "running"
    assert backend.requests() == 2


def test_dropped_connections_are_retried(hook: WandbHook, backend: LocalWandb, entity: str, project: str) -> None:
    backend.inject(mode="drop", count=2)
    assert hook.run_state(entity, project, "r0") == "running"
    assert backend.requests() == 3


@pytest.mark.hostile
def test_malformed_json_is_retried_then_reported(
    hook: WandbHook, backend: LocalWandb, entity: str, project: str
) -> None:
    backend.inject(mode="malformed", count=1)
    assert hook.run_state(entity, project, "r0") == "running"
    assert backend.requests() == 2
    backend.inject(mode="malformed", count=None)
    with pytest.raises(WandbUnavailableError, match="malformed"):
        hook.run_state(entity, project, "r0")


@pytest.mark.hostile
def test_401_fails_at_once_naming_the_connection(
    backend: LocalWandb, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-key-" + "z" * 30
    monkeypatch.setenv(
        "AIRFLOW_CONN_WANDB_BAD", json.dumps({"conn_type": "wandb", "host": backend.url, "password": wrong})
    )
    hook = WandbHook("wandb_bad", retry=FAST)
    with caplog.at_level(logging.DEBUG), pytest.raises(WandbAuthError, match="'wandb_bad'") as err:
        hook.runs("x", "y")
    assert backend.requests() == 1
    ok, message = hook.test_connection()
    assert not ok and "wandb_bad" in message
    for text in (str(err.value), repr(hook), repr(hook.endpoint), message, caplog.text):
        assert wrong not in text


def test_graphql_errors_are_typed_with_the_server_message(hook: WandbHook) -> None:
    with pytest.raises(WandbGraphQLError, match="nosuch") as err:
        hook.query("{ viewer { nosuch } }")
    assert err.value.messages and "nosuch" in err.value.messages[0]


@pytest.mark.hostile
def test_secrets_absent_from_logs(
    hook: WandbHook,
    backend: LocalWandb,
    entity: str,
    project: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    backend.inject(mode="status", status=500, count=1)
    with caplog.at_level(logging.DEBUG):
        hook.runs(entity, project)
        assert hook.test_connection()[0]
    out, errors = capfd.readouterr()
    assert API_KEY not in caplog.text + out + errors
    assert "httpx" in caplog.text or "HTTP Request" in caplog.text or caplog.records  # something was logged


def test_env_fallback_without_a_connection(backend: LocalWandb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", API_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", backend.url)
    ok, message = WandbHook("no_such_conn").test_connection()
    assert ok, message


def _airflow_json(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "-o", "json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    table: list[dict[str, Any]] = json.loads(done.stdout[done.stdout.index("[{") :])  # after any log lines
    return table


def test_provider_is_listed_with_its_connection_form() -> None:
    assert "airflow-provider-wbauto" in {p["package_name"] for p in _airflow_json("providers", "list")}
    fields = {w["connection_parameter_name"]: w for w in _airflow_json("providers", "widgets")}
    assert fields["extra__wandb__timeout"]["class"] == "airflow_provider_wbauto.hooks.wandb.WandbHook"
    assert "extra__wandb__entity" not in fields  # nothing reads it
    hooks = {h["connection_type"]: h for h in _airflow_json("providers", "hooks")}
    assert hooks["wandb"]["class"] == "airflow_provider_wbauto.hooks.wandb.WandbHook"
    assert hooks["wandb_slack"]["class"] == "airflow_provider_wbauto.hooks.slack.SlackNotificationHook"
    assert hooks["wandb_webhook"]["class"] == "airflow_provider_wbauto.hooks.webhook.WebhookHook"
    assert "extra__wandb_webhook__signing_secret" in fields
    notifiers = {n["notification_class_name"] for n in _airflow_json("providers", "notifications")}
    assert "airflow_provider_wbauto.notifications.wandb.SendNotificationNotifier" in notifiers


def test_a_negated_run_filter_is_sent_as_nor_which_runs_filters_take(
    hook: WandbHook, backend: LocalWandb, entity: str, project: str
) -> None:
    """``$not`` is an automation-filter operator, not a runs-filter one (the SDK lists ``$nor``)."""
    sweeps = {"display_name": {"$regex": "^sweep-"}}
    assert runs_filter({"$not": sweeps}) == {"$nor": [sweeps]}
    assert runs_filter({"$or": [{"tags": "a"}, {"$not": sweeps, "group": "g"}]}) == {
        "$or": [{"tags": "a"}, {"$and": [{"group": "g"}, {"$nor": [sweeps]}]}]
    }
    everyone = {r["id"] for r in hook.runs(entity, project)}
    others = {r["id"] for r in hook.runs(entity, project, filters={"$not": sweeps})}
    assert others == everyone - {"r1", "r3"} and others
