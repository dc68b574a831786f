"""Capability probes as W&B's clients probe: the SDK's own documents, verbatim; each probe run once per
endpoint and process however many reads ask; a failed probe is the conservative answer, logged once;
and the read plan that follows from what was probed."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from wandb.sdk.artifacts._generated.operations import FETCH_ADVANCED_REGISTRY_FEATURES_GQL
from wandb.sdk.internal._generated.operations import SERVER_FEATURES_QUERY_GQL

from airflow_provider_wbauto.hooks import capabilities as caps
from airflow_provider_wbauto.hooks.capabilities import (
    Capabilities,
    advanced_search,
    read_capabilities,
    read_plan,
    server_features,
)
from airflow_provider_wbauto.hooks.transport import (
    HEADERS,
    Endpoint,
    Read,
    RetryPolicy,
    WandbAuthError,
    probe_errors,
    run_sync,
)
from tests.hooks.stub_server import Answer, StubServer


def _endpoint(url: str) -> Endpoint:
    policy = RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_cap=0.01)
    return Endpoint(url, httpx.BasicAuth("api", "k"), 5.0, "probes-" + uuid.uuid4().hex[:8], policy)


class Wandb:
    """Answers the probes as a server with ``features`` (names enabled) and these organizations' advanced
    search; ``refuse`` names operations answered with a GraphQL error, as by a server without the field."""

    def __init__(self, features: set[str], search: dict[str, bool], refuse: set[str] | None = None) -> None:
        self.features, self.search, self.refuse = features, search, refuse or set()
        self.sent: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Answer:
        query = body["query"]
        name = query.split("(")[0].split("{")[0].split()[1]
        self.sent.append(name)
        if name in self.refuse:
            return 200, {}, {"errors": [{"message": f'Cannot query field in "{name}"'}]}
        if name == "ServerFeaturesQuery":
            listed = [{"name": f, "isEnabled": True} for f in self.features] + [{"name": "OFF", "isEnabled": False}]
            return 200, {}, {"data": {"serverInfo": {"features": listed}}}
        if name == "FetchAdvancedRegistryFeatures":
            on = self.search.get(body["variables"]["organization"])
            org = None if on is None else {"advancedRegistryFeatures": {"advancedSearch": on}}
            return 200, {}, {"data": {"organization": org}}
        if name == "ServerInfo":
            version = {"outOfDate": False, "latestVersionString": "0.79.0", "versionOnThisInstanceString": "0.78.2"}
            return 200, {}, {"data": {"serverInfo": {"cliVersionInfo": {}, "latestLocalVersionInfo": version}}}
        return 200, {}, {"data": {"viewer": {"username": "u"}}}


def _twice(read: Any) -> Read[tuple[Any, Any]]:
    first = yield from read()
    second = yield from read()
    return first, second


def test_probes_send_the_sdks_documents_verbatim() -> None:
    assert caps.SERVER_FEATURES_QUERY == SERVER_FEATURES_QUERY_GQL
    assert caps.FETCH_ADVANCED_REGISTRY_FEATURES_QUERY == FETCH_ADVANCED_REGISTRY_FEATURES_GQL
    server = Wandb({caps.FILTERING_SORTING}, {"acme": True})
    with StubServer(server) as stub, httpx.Client(headers=HEADERS) as client:
        run_sync(advanced_search("acme"), _endpoint(stub.url), client)
    assert [b["query"] for b in stub.bodies] == [SERVER_FEATURES_QUERY_GQL, FETCH_ADVANCED_REGISTRY_FEATURES_GQL]
    assert stub.bodies[1]["variables"] == {"organization": "acme"}


def test_each_probe_runs_once_per_endpoint_and_process() -> None:
    server = Wandb({caps.FILTERING_SORTING, "OTHER"}, {"acme": True, "beta": False})
    with StubServer(server) as stub, httpx.Client(headers=HEADERS) as client:
        endpoint = _endpoint(stub.url)
        assert (
            run_sync(_twice(server_features), endpoint, client) == (frozenset({caps.FILTERING_SORTING, "OTHER"}),) * 2
        )
        assert run_sync(_twice(lambda: advanced_search("acme")), endpoint, client) == (True, True)
        assert run_sync(advanced_search("beta"), endpoint, client) is False
        assert run_sync(advanced_search("acme"), endpoint, client) is True
        assert server.sent == ["ServerFeaturesQuery", "FetchAdvancedRegistryFeatures", "FetchAdvancedRegistryFeatures"]
        run_sync(server_features(), _endpoint(stub.url), client)  # another connection asks afresh
        assert server.sent[-1] == "ServerFeaturesQuery"


def test_without_the_filtering_feature_advanced_search_is_not_asked() -> None:
    server = Wandb(set(), {"acme": True})
    with StubServer(server) as stub, httpx.Client(headers=HEADERS) as client:
        assert run_sync(advanced_search("acme"), _endpoint(stub.url), client) is False
    assert server.sent == ["ServerFeaturesQuery"]


def test_an_unknown_organization_has_no_advanced_search() -> None:
    with StubServer(Wandb({caps.FILTERING_SORTING}, {})) as stub, httpx.Client(headers=HEADERS) as client:
        assert run_sync(advanced_search("nobody"), _endpoint(stub.url), client) is False


def test_a_failed_probe_is_the_conservative_answer_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    server = Wandb({caps.FILTERING_SORTING}, {"acme": True}, refuse={"FetchAdvancedRegistryFeatures"})
    with StubServer(server) as stub, httpx.Client(headers=HEADERS) as client, caplog.at_level(logging.WARNING):
        endpoint = _endpoint(stub.url)
        assert run_sync(_twice(lambda: advanced_search("acme")), endpoint, client) == (False, False)
        assert run_sync(advanced_search("acme"), endpoint, client) is False
    assert server.sent == ["ServerFeaturesQuery", "FetchAdvancedRegistryFeatures"]  # not asked again
    assert len([r for r in caplog.records if "probe advanced-search:acme failed" in r.getMessage()]) == 1
    assert "Cannot query field" in probe_errors(endpoint)["advanced-search:acme"]


def test_an_unavailable_probe_is_asked_again_later(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: Iterator[Answer] = iter([(503, {}, {}), (503, {}, {})])

    def flaky(body: dict[str, Any]) -> Answer:
        return next(answers, (200, {}, {"data": {"serverInfo": {"features": [{"name": "F", "isEnabled": True}]}}}))

    monkeypatch.setattr("airflow_provider_wbauto.hooks.transport.PROBE_RETRY_SECONDS", 0.0)
    with StubServer(flaky) as stub, httpx.Client(headers=HEADERS) as client:
        endpoint = _endpoint(stub.url)
        assert run_sync(server_features(), endpoint, client) == frozenset()
        assert "server-features" in probe_errors(endpoint)
        assert run_sync(server_features(), endpoint, client) == frozenset({"F"})
        assert probe_errors(endpoint) == {}


def test_a_rejected_key_is_not_a_failed_probe() -> None:
    rejected: Answer = (401, {}, {})
    with (
        StubServer(lambda body: rejected) as stub,
        httpx.Client(headers=HEADERS) as client,
        pytest.raises(WandbAuthError),
    ):
        run_sync(server_features(), _endpoint(stub.url), client)


def test_capabilities_and_the_version_a_self_managed_server_gives() -> None:
    server = Wandb({caps.FILTERING_SORTING}, {"acme": True, "beta": False})
    with StubServer(server) as stub, httpx.Client(headers=HEADERS) as client:
        found = run_sync(read_capabilities(["acme", "beta"]), _endpoint(stub.url), client)
    assert found == Capabilities(frozenset({caps.FILTERING_SORTING}), {"acme": True, "beta": False}, "0.78.2")


def test_the_read_plan_follows_advanced_search() -> None:
    conservative = read_plan(Capabilities())
    assert set(conservative) == {
        "run state / metric",
        "created versions",
        "registry links",
        "aliases",
        "tags",
        "unlinks",
    }
    assert "read in full, O(links)" in conservative["registry links"]
    assert '"-heartbeat_at"' in conservative["run state / metric"]
    assert '"-version_index"' in conservative["created versions"]
    fast = read_plan(Capabilities(advanced_search={"acme": True}))["registry links"]
    assert '"-acm_created_at"' in fast and "O(links)" not in fast
    mixed = read_plan(Capabilities(advanced_search={"acme": True, "beta": False}))["registry links"]
    assert "acme" in mixed and "beta" in mixed and "O(links)" in mixed
