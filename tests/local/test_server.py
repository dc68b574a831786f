"""The local server over plain HTTP: auth, fault modes, W&B's mutations, and the fixture loader's errors."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from airflow_provider_wbauto.local import FixtureError, LocalWandb, Store, load
from tests.conftest import API_KEY


def gql(backend: LocalWandb, query: str, key: str | None = API_KEY, **variables: Any) -> httpx.Response:
    auth = ("api", key) if key is not None else None
    return httpx.post(backend.url + "/graphql", json={"query": query, "variables": variables}, auth=auth, timeout=30)


def test_wrong_or_missing_key_gets_401(backend: LocalWandb) -> None:
    assert gql(backend, "{ viewer { id } }", key="wrong-key").status_code == 401
    assert gql(backend, "{ viewer { id } }", key=None).status_code == 401
    response = gql(backend, "{ viewer { id } }")
    assert response.status_code == 200 and response.json()["data"]["viewer"]["id"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_status_fault(backend: LocalWandb, status: int) -> None:
    backend.inject(mode="status", status=status, count=2, path="/graphql")
    assert [gql(backend, "{ viewer { id } }").status_code for _ in range(3)] == [status, status, 200]


def test_rate_limit_fault_has_both_headers(backend: LocalWandb) -> None:
    backend.inject(mode="rate_limit", retry_after=2, reset=3)
    response = gql(backend, "{ viewer { id } }")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2" and response.headers["RateLimit-Reset"] == "3"


def test_latency_fault_exceeds_a_client_timeout(backend: LocalWandb) -> None:
    backend.inject(mode="latency", seconds=1.5)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(backend.url + "/graphql", json={"query": "{ viewer { id } }"}, auth=("api", API_KEY), timeout=0.3)
    assert gql(backend, "{ viewer { id } }").status_code == 200
    # On a loaded machine the client may give up before the server even took the request; wait
    # until it has, or it takes the fault the next test injects.
    deadline = time.monotonic() + 60
    while backend.requests() < 2:
        assert time.monotonic() < deadline, "the timed-out request never reached the server"
        time.sleep(0.02)


def test_drop_fault_closes_the_connection(backend: LocalWandb) -> None:
    backend.inject(mode="drop")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        gql(backend, "{ viewer { id } }")
    assert gql(backend, "{ viewer { id } }").status_code == 200


def test_malformed_fault_is_not_json(backend: LocalWandb) -> None:
    backend.inject(mode="malformed")
    response = gql(backend, "{ viewer { id } }")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_fault_on_another_path_leaves_graphql_alone(backend: LocalWandb) -> None:
    backend.inject(mode="status", path="/other", count=None)
    assert gql(backend, "{ viewer { id } }").status_code == 200
    assert httpx.get(backend.url + "/other", timeout=30).status_code == 503
    assert backend.requests("/graphql") == 1


def test_unknown_fault_mode_is_refused(backend: LocalWandb) -> None:
    response = httpx.post(backend.url + "/_local/faults", json={"mode": "explode"}, auth=("api", API_KEY))
    assert response.status_code == 400 and "status, rate_limit, latency, drop, malformed" in response.text


def test_graphql_errors_carry_the_message(backend: LocalWandb) -> None:
    body = gql(backend, '{ project(name: "x") { nosuchfield } }').json()
    assert "nosuchfield" in body["errors"][0]["message"]


def _one_version(backend: LocalWandb, entity: str) -> str:
    load(
        backend.store,
        {
            "entity": entity,
            "projects": [
                {
                    "name": "p",
                    "artifacts": [{"collection": "m", "versions": [{"aliases": []}, {"aliases": []}]}],
                }
            ],
        },
    )
    q = 'query($e: String, $p: String) { project(entityName: $e, name: $p) { artifact(name: "m:v0") { id } } }'
    return str(gql(backend, q, e=entity, p="p").json()["data"]["project"]["artifact"]["id"])


def _aliases(backend: LocalWandb, entity: str, name: str) -> list[str]:
    q = (
        "query($e: String, $p: String, $n: String!) { project(entityName: $e, name: $p) {"
        " artifactCollectionMembership(name: $n) { aliases { alias } } } }"
    )
    project, _, rest = name.partition("/")
    member = gql(backend, q, e=entity, p=project, n=rest).json()["data"]["project"]["artifactCollectionMembership"]
    return sorted(a["alias"] for a in member["aliases"]) if member else []


def test_alias_mutations_and_link_unlink(backend: LocalWandb, entity: str) -> None:
    art = _one_version(backend, entity)
    alias_in = {
        "alias": "production",
        "artifactCollectionName": "m",
        "entityName": entity,
        "projectName": "p",
    }
    add = "mutation($input: AddAliasesInput!) { result: addAliases(input: $input) { success } }"
    assert gql(backend, add, input={"artifactID": art, "aliases": [alias_in]}).json()["data"]["result"]["success"]
    assert _aliases(backend, entity, "p/m:v0") == ["production"]
    delete = "mutation($input: DeleteAliasesInput!) { result: deleteAliases(input: $input) { success } }"
    gql(backend, delete, input={"artifactID": art, "aliases": [alias_in]})
    assert _aliases(backend, entity, "p/m:v0") == []

    link = (
        "mutation($input: LinkArtifactInput!) { result: linkArtifact(input: $input) {"
        " versionIndex artifactMembership { id artifactCollection { id __typename name } } } }"
    )
    result = gql(
        backend,
        link,
        input={
            "artifactID": art,
            "artifactPortfolioName": "prod",
            "entityName": entity,
            "projectName": "wandb-registry-model",
            "aliases": [{"alias": "best", "artifactCollectionName": "prod"}],
        },
    ).json()["data"]["result"]
    assert result["versionIndex"] == 0
    portfolio = result["artifactMembership"]["artifactCollection"]
    assert portfolio["__typename"] == "ArtifactPortfolio" and portfolio["name"] == "prod"
    assert _aliases(backend, entity, "wandb-registry-model/prod:v0") == ["best", "latest"]
    unlink = "mutation($input: UnlinkArtifactInput!) { unlinkArtifact(input: $input) { success } }"
    gql(backend, unlink, input={"artifactID": art, "artifactPortfolioID": portfolio["id"]})
    assert _aliases(backend, entity, "wandb-registry-model/prod:v0") == []


def test_upsert_bucket_sets_the_run_state(backend: LocalWandb, entity: str) -> None:
    upsert = (
        "mutation($input: UpsertBucketInput!) { upsertBucket(input: $input) {"
        " bucket { name displayName state } inserted } }"
    )
    base = {"name": "r9", "modelName": "p", "entityName": entity}
    first = gql(backend, upsert, input={**base, "displayName": "dark-moon-9"}).json()["data"]["upsertBucket"]
    assert first == {
        "bucket": {"name": "r9", "displayName": "dark-moon-9", "state": "running"},
        "inserted": True,
    }
    second = gql(backend, upsert, input={**base, "state": "crashed"}).json()["data"]["upsertBucket"]
    assert second == {
        "bucket": {"name": "r9", "displayName": "dark-moon-9", "state": "crashed"},
        "inserted": False,
    }


def test_mongo_filters_on_runs(backend: LocalWandb, entity: str) -> None:
    load(
        backend.store,
        {
            "entity": entity,
            "projects": [
                {
                    "name": "p",
                    "runs": [
                        {
                            "id": "a",
                            "display_name": "sweep-1",
                            "state": "finished",
                            "config": {"lr": 0.1},
                            "tags": ["x"],
                        },
                        {"id": "b", "display_name": "base-2", "state": "failed", "config": {"lr": 0.5}},
                        {"id": "c", "display_name": "sweep-3", "state": "running", "config": {"lr": "high"}},
                    ],
                }
            ],
        },
    )
    q = (
        "query($e: String, $p: String, $f: JSONString) { project(entityName: $e, name: $p) {"
        " runs(filters: $f) { edges { node { name } } } } }"
    )

    def names(f: dict[str, Any]) -> list[str]:
        data = gql(backend, q, e=entity, p="p", f=json.dumps(f)).json()["data"]
        return sorted(e["node"]["name"] for e in data["project"]["runs"]["edges"])

    assert names({"display_name": {"$regex": "^sweep-"}}) == ["a", "c"]
    assert names({"config.lr": {"$gt": 0.2}}) == ["b"]
    assert names({"config.lr.value": {"$lte": 0.1}}) == ["a"]
    assert names({"$or": [{"state": "failed"}, {"tags": "x"}]}) == ["a", "b"]
    assert names({"state": {"$nin": ["running"]}, "display_name": {"$contains": "-"}}) == ["a", "b"]
    assert names({"$nor": [{"state": "running"}]}) == ["a", "b"]
    assert names({"tags": {"$exists": True}}) == ["a"]


def test_runs_page_without_skips_while_runs_change(backend: LocalWandb, entity: str) -> None:
    load(
        backend.store,
        {"entity": entity, "projects": [{"name": "p", "runs": [{"id": f"r{i:02d}"} for i in range(7)]}]},
    )
    q = (
        "query($e: String, $p: String, $a: String) { project(entityName: $e, name: $p) {"
        ' runs(first: 3, after: $a, order: "+heartbeat_at") { edges { node { name } }'
        " pageInfo { endCursor hasNextPage } } } }"
    )
    seen: list[str] = []
    after = None
    while True:
        page = gql(backend, q, e=entity, p="p", a=after).json()["data"]["project"]["runs"]
        seen += [e["node"]["name"] for e in page["edges"]]
        if len(seen) == 3:
            backend.store.log(entity, "p", "r00", [{"loss": 1.0}])  # r00 moves to the end
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(set(seen)) == [f"r{i:02d}" for i in range(7)]


def test_history_reads_use_the_step_index(tmp_path: Any) -> None:
    store = Store(str(tmp_path / "h.db"))
    plan = " ".join(
        r[3]
        for r in store.query(
            "EXPLAIN QUERY PLAN SELECT row FROM history"
            " WHERE run_id=? AND step >= ? AND step < ? ORDER BY step LIMIT 10",
            [1, 0, 10],
        )
    )
    assert "USING PRIMARY KEY (run_id=? AND step>? AND step<?)" in plan
    store.close()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"entity": "x", "projects": [', "not valid JSON"),
        (
            {"entity": "x", "projects": [{"name": "p", "runz": []}]},
            "projects.1.runz: Extra inputs are not permitted",
        ),
        (
            {"entity": "x", "projects": [{"name": "p", "runs": [{"id": "r", "state": "exploded"}]}]},
            "projects.1.runs.0.state",
        ),
        ({"projects": []}, "entity: Field required"),
        (
            {
                "entity": "x",
                "projects": [{"name": "p", "links": [{"source": "p/m:v3", "target": "wandb-registry-m/c"}]}],
            },
            "link source 'p/m:v3' names no existing version",
        ),
        (
            {"entity": "x", "projects": [{"name": "p", "links": [{"source": "nonsense", "target": "r/c"}]}]},
            "projects.1.links.0.source",
        ),
        (
            {
                "entity": "x",
                "projects": [{"name": "p", "runs": [{"id": "r", "history": [{"_step": 2}, {"_step": 1}]}]}],
            },
            "_step 1 must be an integer after 2",
        ),
        (
            {"entity": "x", "projects": [{"name": "p", "artifacts": [{"collection": "c", "tags": ["a/b"]}]}]},
            "tag 'a/b' is not a valid tag",
        ),
    ],
)
def test_bad_fixtures_are_rejected_and_nothing_stays(tmp_path: Any, data: Any, message: str) -> None:
    store = Store(str(tmp_path / "f.db"))
    if isinstance(data, dict):
        # a valid part before the faulty one, to prove the load is all-or-nothing
        data.setdefault("projects", []).insert(
            0,
            {
                "name": "ok",
                "runs": [{"id": "good", "history": [{"loss": 1}]}],
                "artifacts": [{"collection": "m", "versions": [{}]}],
            },
        )
    with pytest.raises(FixtureError, match=message.replace("(", r"\(").replace("'", ".")):
        load(store, json.dumps(data) if isinstance(data, dict) else data)
    for table in ("project", "run", "history", "artifact", "alias", "membership"):
        assert store.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] == 0, table
    store.close()


def test_load_is_an_upsert(tmp_path: Any) -> None:
    store = Store(str(tmp_path / "u.db"))
    fixture: dict[str, Any] = {
        "entity": "x",
        "projects": [
            {
                "name": "p",
                "runs": [{"id": "r", "history": [{"_step": 0, "loss": 1}]}],
                "artifacts": [{"collection": "m", "versions": [{"aliases": ["a"]}]}],
            }
        ],
    }
    load(store, fixture)
    fixture["projects"][0]["runs"][0].update(
        state="finished", history=[{"_step": 0, "loss": 1}, {"_step": 1, "loss": 2}]
    )
    fixture["projects"][0]["artifacts"][0]["versions"][0]["aliases"] = ["b"]
    counts = load(store, fixture)
    assert counts["history_rows"] == 1
    assert [r["step"] for r in store.query("SELECT step FROM history ORDER BY step")] == [0, 1]
    assert store.query("SELECT state FROM run")[0]["state"] == "finished"
    assert sorted(r["alias"] for r in store.query("SELECT alias FROM alias")) == ["b"]
    store.close()


def test_fixture_tags_are_set_to_the_lists_given(tmp_path: Any) -> None:
    store = Store(str(tmp_path / "t.db"))
    art = {"collection": "m", "tags": ["vision", "mnist"], "versions": [{"tags": ["reviewed", "prod ready"]}]}
    load(store, {"entity": "x", "projects": [{"name": "p", "artifacts": [art]}]})
    art = {"collection": "m", "tags": ["mnist"], "versions": [{"tags": ["prod ready", "gold"]}]}
    load(store, {"entity": "x", "projects": [{"name": "p", "artifacts": [art]}]})
    assert json.loads(store.query("SELECT tags FROM collection")[0]["tags"]) == ["mnist"]
    assert json.loads(store.query("SELECT tags FROM artifact")[0]["tags"]) == ["prod ready", "gold"]
    store.close()


def test_a_page_of_members_costs_a_few_statements_whatever_its_length(tmp_path: Any) -> None:
    """A page's artifacts, their collections and its aliases are read in one statement each, not one
    (or six) per member; the same query text is parsed and validated once."""
    from graphql import execute_sync

    from airflow_provider_wbauto.hooks.wandb import MEMBERSHIPS_QUERY  # what the hook sends
    from airflow_provider_wbauto.local import resolvers
    from airflow_provider_wbauto.local.server import _checker

    store = Store(str(tmp_path / "w.db"))
    for i in range(100):
        store.create_version("acme", "p", "model", aliases=[f"a{i}"])
    schema = resolvers.build()
    check = _checker(schema, 8)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    results = []
    for _ in range(2):
        statements.clear()
        document, errors = check(MEMBERSHIPS_QUERY)
        assert document is not None and not errors
        variables = {"entity": "acme", "project": "p", "collection": "model", "perPage": 100, "cursor": None}
        done = execute_sync(schema, document, variable_values=variables, context_value={"store": store})
        assert done.errors is None
        results.append(done.data)
        assert len(statements) <= 12, statements
    assert check.cache_info().hits == 1  # type: ignore[attr-defined]
    edges = results[0]["project"]["artifactCollection"]["artifactMemberships"]["edges"]  # type: ignore[index]
    assert [e["node"]["aliases"][0]["alias"] for e in edges] == [f"a{i}" for i in range(100)]
    assert {e["node"]["artifact"]["artifactSequence"]["project"]["name"] for e in edges} == {"p"}
    assert results[0] == results[1]


def test_an_organizations_registry_links_newest_first_with_the_sdks_filters(backend: LocalWandb, entity: str) -> None:
    store = backend.store
    for i, (registry, collection) in enumerate(
        [("model", "prod"), ("model", "dev"), ("data", "prod"), ("model", "prod")]
    ):
        store.link(store.create_version(entity, "p", "m"), entity, f"wandb-registry-{registry}", collection)
        del i
    query = """query($e: String!, $r: JSONString, $c: JSONString, $f: JSONString) { entity(name: $e) { organization {
      orgEntity { artifactMemberships(projectFilters: $r, collectionFilters: $c, filters: $f, order: "-createdAt") {
        edges { node { versionIndex artifactCollection { name project { name } } } } } } } } }"""

    def links(**filters: Any) -> list[tuple[str, str, int]]:
        data = gql(backend, query, e=entity, **filters).json()["data"]
        edges = data["entity"]["organization"]["orgEntity"]["artifactMemberships"]["edges"]
        return [
            (
                e["node"]["artifactCollection"]["project"]["name"],
                e["node"]["artifactCollection"]["name"],
                e["node"]["versionIndex"],
            )
            for e in edges
        ]

    model = json.dumps({"name": "wandb-registry-model"})
    assert links(r=model) == [
        ("wandb-registry-model", "prod", 1),
        ("wandb-registry-model", "dev", 0),
        ("wandb-registry-model", "prod", 0),
    ]
    assert links(r=model, c=json.dumps({"name": "prod"})) == [
        ("wandb-registry-model", "prod", 1),
        ("wandb-registry-model", "prod", 0),
    ]
    assert len(links()) == 4  # every registry of the organization
    bad = gql(backend, query, e=entity, r=json.dumps({"name": {"$regex": "model"}})).json()
    assert "projectFilters: only {'name': ...} and {'id': ...} are served here" in bad["errors"][0]["message"]
