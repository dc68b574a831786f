"""``wbauto doctor`` and the connection's Test button: the server, its version and features, the API
key's viewer, the read plan; against the local backend, and against a server that refuses the probes
(the conservative plan, saying which probe failed). The API key never appears."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_wbauto.cli import main
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.local import LocalWandb
from tests.conftest import API_KEY
from tests.hooks.stub_server import Answer, StubServer

FAMILIES = ("run state / metric", "created versions", "registry links", "aliases", "tags", "unlinks")


def test_doctor_against_the_local_backend(wandb_conn: LocalWandb, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out, err = capsys.readouterr()
    assert f"server:        {wandb_conn.url} (connection 'wandb_default')" in out
    for line in ("version:", "features:", "viewer:", "advanced registry search:", "read plan:"):
        assert line in out
    assert "ServerFeaturesQuery" not in out  # no probe failed
    for family in FAMILIES:
        assert f"  {family}" in out
    assert API_KEY not in out + err


def test_the_test_button_is_one_line(wandb_conn: LocalWandb) -> None:
    ok, message = WandbHook().test_connection()
    assert ok, message
    assert "\n" not in message and wandb_conn.url in message and "registry links" in message
    assert API_KEY not in message


def _viewer_only(body: dict[str, Any]) -> Answer:
    """A server that knows the viewer and nothing the probes ask (an old self-managed W&B)."""
    if "viewer" in body["query"]:
        return 200, {}, {"data": {"viewer": {"username": "old", "entity": "team"}}}
    return 200, {}, {"errors": [{"message": 'Cannot query field "features" on type "ServerInfo".'}]}


def test_doctor_says_which_probe_failed_and_uses_the_conservative_plan(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with StubServer(_viewer_only) as server:
        host = server.url.removesuffix("/graphql")
        connection = json.dumps({"conn_type": "wandb", "host": host, "password": API_KEY})
        monkeypatch.setenv("AIRFLOW_CONN_WANDB_OLD", connection)
        assert main(["doctor", "--conn-id", "wandb_old"]) == 0
        out, err = capsys.readouterr()
        ok, message = WandbHook("wandb_old").test_connection()
    assert "viewer:        old (entity team)" in out
    assert "version:       unknown (the probe failed)" in out
    assert "probes that failed (their conservative answer is used):" in out
    assert "  server-features: " in out and "  organizations:team: " in out
    assert "read in full, O(links)" in out
    assert ok and "probe(s) failed, conservative plan" in message
    assert API_KEY not in out + err + message


def test_doctor_with_a_wrong_key_says_so(wandb_conn: LocalWandb, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    wrong = "wrong-key-" + "q" * 30
    connection = json.dumps({"conn_type": "wandb", "host": wandb_conn.url, "password": wrong})
    monkeypatch.setenv("AIRFLOW_CONN_WANDB_WRONG", connection)
    assert main(["doctor", "--conn-id", "wandb_wrong"]) == 2
    out, err = capsys.readouterr()
    assert "rejected the API key of connection 'wandb_wrong'" in err
    assert wrong not in out + err
