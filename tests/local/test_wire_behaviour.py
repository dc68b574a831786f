"""The local backend answers as W&B may where W&B is known, or allowed, to differ from a friendly
imitation (issue 25), strict by default (``WireOptions``), and as before with ``WireOptions.lenient()``.

Most tests execute GraphQL against the schema directly (the evidence checker in front of the server is
another module's subject); the SDK's capability and registry reads go through the server in the exact
text the installed ``wandb`` sends, and the SDK's own ``Api().registries()`` reads them end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import wandb
from graphql import GraphQLSchema, execute_sync, parse
from wandb.sdk.artifacts._generated import (
    FETCH_ADVANCED_REGISTRY_FEATURES_GQL,
    FETCH_ORG_INFO_FROM_ENTITY_GQL,
    FETCH_REGISTRIES_GQL,
    REGISTRY_VERSIONS_GQL,
)
from wandb.sdk.internal._generated import SERVER_FEATURES_QUERY_GQL

from airflow_provider_wbauto.local import LocalWandb, Store, load
from airflow_provider_wbauto.local import schema as local_schema
from airflow_provider_wbauto.local.wire_options import WireOptions
from tests.conftest import API_KEY
from tests.local.test_server import gql
from tests.own_server import local_wandb  # noqa: F401  (a server of this module's own: its options are set here)

STRICT, LENIENT = WireOptions(), WireOptions.lenient()


@pytest.fixture(scope="module")
def executable() -> GraphQLSchema:
    return local_schema.build()


@pytest.fixture
def strict(backend: LocalWandb) -> LocalWandb:
    """This module's server, answering strict whatever it was started with (the options live in its database)."""
    backend.store.set_wire(STRICT)
    return backend


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    db = Store(str(tmp_path / "wire.db"))
    yield db
    db.close()


def ask(schema: GraphQLSchema, store: Store, query: str, wire: WireOptions | None = None, **variables: Any) -> Any:
    """Execute one query; ``wire`` None reads the options from the database, as the server does by default."""
    context: dict[str, Any] = {"store": store, "default_entity": "acme"}
    if wire is not None:
        context["wire"] = wire
    done = execute_sync(schema, parse(query), variable_values=variables, context_value=context)
    if done.errors:
        raise AssertionError(done.errors[0].message)
    return done.data


def refused(schema: GraphQLSchema, store: Store, query: str, wire: WireOptions | None = None, **variables: Any) -> str:
    context: dict[str, Any] = {"store": store, "default_entity": "acme", **({"wire": wire} if wire else {})}
    done = execute_sync(schema, parse(query), variable_values=variables, context_value=context)
    assert done.errors, done.data
    return done.errors[0].message


def test_strict_is_the_default_and_the_database_carries_the_options(store: Store) -> None:
    assert store.wire == STRICT and all(vars(STRICT).values())
    assert not any(vars(LENIENT).values())
    store.set_wire(LENIENT)
    assert store.wire == LENIENT
    assert WireOptions.from_json('{"float_steps": false, "retired_option": true}') == WireOptions(float_steps=False)


# -- 1. float steps ------------------------------------------------------------------------------------

HISTORY = """query($minStep: Int64, $spec: JSONString!) { project(name: "p", entityName: "acme") { run(name: "r") {
  historyKeys history(minStep: $minStep, maxStep: 100, samples: 100) sampledHistory(specs: [$spec]) } } }"""


@pytest.mark.parametrize("wire", [STRICT, LENIENT], ids=["strict", "lenient"])
def test_odd_steps_come_back_as_floats(executable: GraphQLSchema, store: Store, wire: WireOptions) -> None:
    store.upsert_run("acme", "p", "r")
    store.log("acme", "p", "r", [{"_step": s, "loss": s / 10} for s in range(6)])
    spec = json.dumps({"keys": ["_step", "loss"], "minStep": 0, "maxStep": 5, "samples": 10})
    run = ask(executable, store, HISTORY, wire, minStep=0, spec=spec)["project"]["run"]
    rows = [json.loads(r) for r in run["history"]]
    sampled = run["sampledHistory"][0]
    if wire.float_steps:
        expected: list[int | float] = [0, 1.0, 2, 3.0, 4, 5.0]
        assert [type(r["_step"]) for r in rows] == [int, float] * 3
        assert [type(r["_step"]) for r in sampled] == [int, float] * 3
        assert type(run["historyKeys"]["lastStep"]) is float and run["historyKeys"]["lastStep"] == 5.0
    else:
        expected = [0, 1, 2, 3, 4, 5]
        assert {type(r["_step"]) for r in rows + sampled} == {int}
        assert type(run["historyKeys"]["lastStep"]) is int
    assert [r["_step"] for r in rows] == [r["_step"] for r in sampled] == expected
    assert [r["loss"] for r in rows] == [s / 10 for s in range(6)]  # the rest of each row untouched


# -- 2. an alias keeps its id when it moves -------------------------------------------------------------

ALIASES = """{ project(name: "p", entityName: "acme") { artifactCollection(name: "m") {
  aliases(first: 10) { edges { node { id alias } } }
  artifactMemberships(first: 10) { edges { node { versionIndex aliases { id alias } } } } } } }"""


@pytest.mark.parametrize("wire", [STRICT, LENIENT], ids=["strict", "lenient"])
def test_a_moved_alias_keeps_its_id_when_strict(executable: GraphQLSchema, store: Store, wire: WireOptions) -> None:
    store.set_wire(wire)  # a write: the store reads the option from the database
    store.create_version("acme", "p", "m", aliases=["production"])

    def production() -> tuple[str, list[int]]:
        coll = ask(executable, store, ALIASES)["project"]["artifactCollection"]
        (alias_id,) = [e["node"]["id"] for e in coll["aliases"]["edges"] if e["node"]["alias"] == "production"]
        holders = [
            e["node"]["versionIndex"]
            for e in coll["artifactMemberships"]["edges"]
            if {"id": alias_id, "alias": "production"} in e["node"]["aliases"]
        ]
        return alias_id, holders

    before, held = production()
    assert held == [0]
    store.create_version("acme", "p", "m", aliases=["production"])  # production moves from v0 to v1
    after, held = production()
    assert held == [1]
    assert (after == before) is wire.alias_ids_move_in_place


# -- 3. a collection's versions: version-index orders, ascending by default; pending versions unindexed --

VERSIONS = """query($order: String) { project(name: "p", entityName: "acme") { artifactCollection(name: "m") {
  artifacts(first: 10, order: $order) { edges { version node { versionIndex state } } }
  artifactMemberships(first: 10) { edges { node { versionIndex } } } } } }"""


def _versions(executable: GraphQLSchema, store: Store, order: str | None, wire: WireOptions) -> list[str]:
    coll = ask(executable, store, VERSIONS, wire, order=order)["project"]["artifactCollection"]
    return [e["version"] for e in coll["artifacts"]["edges"]]


def test_versions_take_the_version_index_orders_and_ascend_by_default(executable: GraphQLSchema, store: Store) -> None:
    for _ in range(3):
        store.create_version("acme", "p", "m")
    assert _versions(executable, store, None, STRICT) == ["v0", "v1", "v2"]
    assert _versions(executable, store, "+version_index", STRICT) == ["v0", "v1", "v2"]
    assert _versions(executable, store, "version_index", STRICT) == ["v0", "v1", "v2"]
    assert _versions(executable, store, "-version_index", STRICT) == ["v2", "v1", "v0"]
    for order in ("-createdAt", "-created_at", "versionIndex"):
        said = refused(executable, store, VERSIONS, STRICT, order=order)
        assert f"invalid order {order!r}" in said and "-version_index" in said
    assert _versions(executable, store, None, LENIENT) == ["v2", "v1", "v0"]  # newest first, as before
    assert _versions(executable, store, "-createdAt", LENIENT) == ["v2", "v1", "v0"]


@pytest.mark.parametrize("wire", [STRICT, LENIENT], ids=["strict", "lenient"])
def test_a_pending_version_has_no_version_index_when_strict(
    executable: GraphQLSchema, store: Store, wire: WireOptions
) -> None:
    store.create_version("acme", "p", "m")
    store.create_version("acme", "p", "m", state="PENDING")
    coll = ask(executable, store, VERSIONS, wire)["project"]["artifactCollection"]
    nodes = [e["node"] for e in coll["artifacts"]["edges"]]
    pending = next(n for n in nodes if n["state"] == "PENDING")
    memberships = [e["node"]["versionIndex"] for e in coll["artifactMemberships"]["edges"]]
    if wire.pending_versions_unindexed:
        assert pending["versionIndex"] is None and memberships == [0, None]
    else:
        assert pending["versionIndex"] == 1 and memberships == [0, 1]


# -- 4. registry versions: ordered only with advanced search, in the SDK's names ------------------------


def _link_three(store: Store, entity: str) -> None:
    """v0, v1, v2 of a model linked (in that order) into the model registry, stamped as linked on the
    3rd, 1st and 2nd of January: link time and membership id disagree."""
    ids = [store.create_version(entity, "p", "m") for _ in range(3)]
    for aid, when in zip(ids, ["2026-01-03T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"], strict=True):
        store.link(aid, entity, "wandb-registry-model", "prod", created_at=when)


def test_registry_versions_are_ordered_only_with_advanced_search(executable: GraphQLSchema, store: Store) -> None:
    """The SDK's RegistryVersions text, with its variables as it sends them (filters as compact JSON)."""
    _link_three(store, "acme")
    registry = json.dumps({"name": "wandb-registry-model"}, separators=(",", ":"))

    def versions(order: str | None = None) -> Any:
        variables = {"organization": "acme", "perPage": 100, "registryFilter": registry, "order": order}
        context = {"store": store, "wire": STRICT}
        done = execute_sync(executable, parse(REGISTRY_VERSIONS_GQL), variable_values=variables, context_value=context)
        if done.errors:
            return done.errors[0].message
        assert done.data is not None
        edges = done.data["organization"]["orgEntity"]["artifactMemberships"]["edges"]
        return [e["node"]["artifact"]["versionIndex"] for e in edges]

    assert versions() == [0, 1, 2]  # no order: ascending membership id (the order of linking), never newest first
    assert "ordering registry versions needs advanced search" in versions("-acm_created_at")
    load(store, {"entity": "acme", "advanced_search": True})
    assert versions("-acm_created_at") == [0, 2, 1]
    assert versions("+acm_created_at") == [1, 2, 0]
    assert versions("-artifact_created_at") == [2, 1, 0]
    for order in ("acm_created_at", "-createdAt", "-linked_at"):  # the SDK signs and canonicalises its names
        assert f"invalid order {order!r}" in versions(order)
    load(store, {"entity": "acme", "projects": []})  # a fixture without the field leaves it as it is
    assert store.advanced_search("acme")


def test_registry_versions_lenient_are_newest_first(executable: GraphQLSchema, store: Store) -> None:
    _link_three(store, "acme")
    query = """query($order: String) { organization(name: "acme") { orgEntity {
      artifactMemberships(order: $order, first: 10) { edges { node { artifact { versionIndex } } } } } } }"""

    def indexes(order: str | None) -> list[int]:
        edges = ask(executable, store, query, LENIENT, order=order)["organization"]["orgEntity"]["artifactMemberships"]
        return [e["node"]["artifact"]["versionIndex"] for e in edges["edges"]]

    assert indexes(None) == indexes("-createdAt") == [0, 2, 1]  # by link time, newest first


# -- 5. capability probes, in the SDK's own texts --------------------------------------------------------


def test_the_sdks_capability_probes(strict: LocalWandb, entity: str) -> None:
    backend = strict
    features = gql(backend, SERVER_FEATURES_QUERY_GQL).json()["data"]["serverInfo"]["features"]
    enabled = {f["name"] for f in features if f["isEnabled"]}
    assert {"ARTIFACT_COLLECTIONS_FILTERING_SORTING", "ARTIFACT_REGISTRY_SEARCH"} <= enabled

    def advanced() -> Any:
        body = gql(backend, FETCH_ADVANCED_REGISTRY_FEATURES_GQL, organization=entity).json()
        return body["data"]["organization"]["advancedRegistryFeatures"]["advancedSearch"]

    assert advanced() is False
    backend.store.set_advanced_search(entity, True)
    assert advanced() is True


def test_the_server_version(executable: GraphQLSchema, store: Store) -> None:
    """wandb-core's ServerInfo query text (core/api/graphql/query_server_info.graphql)."""
    query = """query ServerInfo{ serverInfo { cliVersionInfo latestLocalVersionInfo {
      outOfDate latestVersionString versionOnThisInstanceString } } }"""
    info = ask(executable, store, query)["serverInfo"]["latestLocalVersionInfo"]
    assert info == {
        "outOfDate": False,
        "latestVersionString": "0.78.0+local",
        "versionOnThisInstanceString": "0.78.0+local",
    }


# -- 6. an organization's registries, the SDK's way -------------------------------------------------------


def test_an_organizations_registries_as_the_sdk_lists_them(strict: LocalWandb, entity: str) -> None:
    backend = strict
    for project in ("plain", "wandb-registry-model", "wandb-registry-data"):
        backend.store.project(entity, project)

    def registries(**variables: Any) -> Any:
        body = gql(backend, FETCH_REGISTRIES_GQL, organization=entity, perPage=100, **variables).json()
        if body.get("errors"):
            return body["errors"][0]["message"]
        return [e["node"]["name"] for e in body["data"]["organization"]["orgEntity"]["projects"]["edges"]]

    assert registries() == ["wandb-registry-model", "wandb-registry-data"]  # no filter: registries only
    assert registries(filters='{"name":"wandb-registry-data"}') == ["wandb-registry-data"]
    assert registries(filters='{"name":{"$regex":"mod"}}') == ["wandb-registry-model"]
    assert registries(order="+name") == ["wandb-registry-data", "wandb-registry-model"]
    assert registries(order="-created_at") == ["wandb-registry-data", "wandb-registry-model"]
    assert "-createdAt" in registries(order="-createdAt")  # refused, naming the order (here or by the evidence check)
    info = gql(backend, FETCH_ORG_INFO_FROM_ENTITY_GQL, entity=entity).json()["data"]["entity"]
    assert info["organization"] == {"name": entity, "orgEntity": {"name": entity}}
    assert info["user"]["organizations"] == [{"name": entity, "orgEntity": {"name": entity}}]


def test_the_sdk_lists_registries_and_their_versions(strict: LocalWandb, entity: str) -> None:
    backend = strict
    _link_three(backend.store, entity)
    backend.store.project(entity, "plain")
    api = wandb.Api(overrides={"base_url": backend.url, "entity": entity}, api_key=API_KEY, timeout=30)
    assert [r.name for r in api.registries(organization=entity)] == ["model"]
    versions = api.registries(organization=entity).versions()
    assert [v.version for v in versions] == ["v0", "v1", "v2"]  # the portfolio's own indexes, in link order
    with pytest.raises(Exception, match="Ordering registry versions is not supported"):
        api.registries(organization=entity).versions(order="-linked_at")


# -- 7. summaryMetrics(keys:) / config(keys:) -------------------------------------------------------------


def test_summary_and_config_answer_only_the_keys_asked(executable: GraphQLSchema, store: Store) -> None:
    """As wandb/skills (``summaryMetrics(keys: [...])``) and wandb/weave (``config(keys: [...])``) send them."""
    store.upsert_run("acme", "p", "r", config={"lr": 0.1, "bs": 32}, summary={"loss": 0.5, "acc": 0.9})
    query = """{ project(name: "p", entityName: "acme") { runs(first: 5) { edges { node {
      summaryMetrics(keys: ["loss", "absent"]) config(keys: ["lr"]) all: summaryMetrics } } } } }"""
    (edge,) = ask(executable, store, query)["project"]["runs"]["edges"]
    assert json.loads(edge["node"]["summaryMetrics"]) == {"loss": 0.5}
    assert json.loads(edge["node"]["config"]) == {"lr": {"value": 0.1}}
    assert json.loads(edge["node"]["all"]) == {"loss": 0.5, "acc": 0.9}


# -- 8. run orders and $nor -----------------------------------------------------------------------------------

RUNS = """query($order: String, $filters: JSONString, $after: String) { project(name: "p", entityName: "acme") {
  runs(order: $order, filters: $filters, first: 2, after: $after) {
    edges { node { name } } pageInfo { endCursor hasNextPage } } } }"""


def _runs(executable: GraphQLSchema, store: Store, wire: WireOptions | None = None, **variables: Any) -> list[str]:
    """Every page, two runs a page (so the cursor of each order is used)."""
    names: list[str] = []
    after = None
    while True:
        page = ask(executable, store, RUNS, wire, after=after, **variables)["project"]["runs"]
        names += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return names
        after = page["pageInfo"]["endCursor"]


def test_runs_by_heartbeat_created_summary_and_nor(executable: GraphQLSchema, store: Store) -> None:
    for i, name in enumerate(["a", "b", "c", "d", "e"]):
        store.upsert_run("acme", "p", name, created_at=f"2026-01-0{i + 1}T00:00:00Z", tags=["x"] if i % 2 else [])
    for name, loss in [("c", 0.3), ("a", 0.1), ("e", None), ("b", 0.2)]:  # heartbeat order: c a e b, d untouched
        store.upsert_run("acme", "p", name, summary={} if loss is None else {"loss": loss}, notes=name)
    assert _runs(executable, store, order="+created_at") == ["a", "b", "c", "d", "e"]
    assert _runs(executable, store, order="-created_at") == ["e", "d", "c", "b", "a"]
    assert _runs(executable, store, order="+heartbeat_at") == ["d", "c", "a", "e", "b"]
    assert _runs(executable, store, order="-heartbeat_at") == ["b", "e", "a", "c", "d"]
    # the SDK's documented example; runs without the key sort first ascending, last descending
    assert _runs(executable, store, order="+summary_metrics.loss") == ["d", "e", "a", "b", "c"]
    assert _runs(executable, store, order="-summary_metrics.loss") == ["c", "b", "a", "e", "d"]
    nor = json.dumps({"$nor": [{"tags": "x"}, {"name": "a"}]})
    assert _runs(executable, store, order="+created_at", filters=nor) == ["c", "e"]
    said = refused(executable, store, RUNS, STRICT, order="-lastSeen")
    assert "invalid order '-lastSeen'" in said
    assert _runs(executable, store, LENIENT, order="-lastSeen") == ["e", "d", "c", "b", "a"]  # as -created_at
