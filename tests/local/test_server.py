"""The local server over plain HTTP: auth, fault modes, W&B's mutations, and the fixture loader's errors."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from airflow_provider_wbauto.local import FixtureError, LocalWandb, Store, load
from demo.cluster import wait_for
from tests.conftest import API_KEY


def gql(backend: LocalWandb, query: str, key: str | None = API_KEY, **variables: Any) -> httpx.Response:
    auth = ("api", key) if key is not None else None
    return httpx.post(backend.url + "/graphql", json={"query": query, "variables": variables}, auth=auth, timeout=30)


@pytest.mark.hostile
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
    assert httpx.get(backend.url + "/other", timeout=30, auth=("api", API_KEY)).status_code == 503
    assert httpx.get(backend.url + "/other", timeout=30).status_code == 404  # a stranger takes no fault
    assert backend.requests("/graphql") == 1


BAD_FAULTS = [
    ({"mode": "explode"}, "mode: Input should be 'status', 'rate_limit', 'latency', 'drop' or 'malformed'"),
    ({"mode": "status", "status": "503"}, "status: Input should be a valid integer"),
    ({"mode": "status", "status": 99}, "status: Input should be greater than or equal to 100"),
    ({"mode": "status", "count": 0}, "count: Input should be greater than or equal to 1"),
    ({"mode": "status", "count": "all"}, "count: Input should be a valid integer"),
    ({"mode": "latency", "seconds": -1}, "seconds: Input should be greater than or equal to 0"),
    ({"mode": "latency", "seconds": 1e9}, "seconds: Input should be less than or equal to 600"),
    ({"mode": "rate_limit", "retry_after": "soon"}, "retry_after: Input should be a valid number"),
    ({"mode": "drop", "path": "graphql"}, "path: String should match pattern"),
    ({"mode": "drop", "path": 7}, "path: Input should be a valid string"),
    ({"mode": "drop", "when": "now"}, "when: Unexpected keyword argument"),
    ({}, "mode: Field required"),
    ("drop", "the rule: Input should be an object"),
    ([{"mode": "drop"}, {"mode": "nope"}], "mode: Input should be"),  # one bad rule: none of them is kept
]


@pytest.mark.hostile
@pytest.mark.parametrize(("rule", "said"), BAD_FAULTS, ids=[str(i) for i in range(len(BAD_FAULTS))])
def test_a_fault_rule_of_the_wrong_shape_is_refused_naming_the_field(backend: LocalWandb, rule: Any, said: str) -> None:
    response = httpx.post(backend.url + "/_local/faults", json=rule, auth=("api", API_KEY), timeout=30)
    assert response.status_code == 400 and said in response.json()["errors"][0]["message"]
    assert backend.admin("GET", "/_local/faults") == {"faults": []}  # nothing kept
    assert gql(backend, "{ viewer { id } }").status_code == 200  # and nothing fails later


def raw_post(backend: LocalWandb, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = {"Authorization": httpx.BasicAuth("api", API_KEY)._auth_header, **(headers or {})}
    return httpx.post(backend.url + "/graphql", content=body, headers=headers, timeout=30)


BAD_BODIES = [
    (b"", 400, "the body is not JSON"),
    (b"{not json", 400, "the body is not JSON"),
    (b"\xff\xfe{}", 400, "the body is not JSON"),
    (b"[]", 400, "the body is a JSON list"),
    (b'"query"', 400, "the body is a JSON str"),
    (b"null", 400, "the body is a JSON NoneType"),
    (b"{}", 400, "query must be a string"),
    (b'{"query": 1}', 400, "query must be a string"),
    (b'{"query": ["{ viewer { id } }"]}', 400, "query must be a string"),
    (b'{"query": "{ viewer { id } }", "variables": []}', 400, "variables must be a JSON object or null"),
    (b'{"query": "{ viewer { id } }", "variables": "x"}', 400, "variables must be a JSON object or null"),
    (b'{"query": "{ viewer { id } }", "operationName": 3}', 400, "operationName must be a string or null"),
    (b'{"query": "{ viewer { id } }", "operationName": "Nope"}', 200, "Unknown operation named 'Nope'"),
    (b'{"query": "query {"}', 200, "Syntax Error"),
    (b'{"query": "{ viewer { id } }", "variables": {"x": 1}}', 200, None),  # an unused variable is harmless
]


@pytest.mark.hostile
@pytest.mark.parametrize(("body", "status", "said"), BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_a_malformed_body_is_a_4xx_naming_what_is_wrong(
    backend: LocalWandb, body: bytes, status: int, said: str | None
) -> None:
    response = raw_post(backend, body)
    assert response.status_code == status
    errors = response.json().get("errors") or []
    assert (said is None and not errors) or (said is not None and said in errors[0]["message"])


@pytest.mark.hostile
@pytest.mark.parametrize(
    "header",
    ["Basic", "Basic !!!", "Basic " + "é" * 4, "Basic w6k=", "Bearer " + API_KEY, "Basic YXBp", "basic", "x" * 5000],
)
def test_a_malformed_authorization_header_is_a_401_and_takes_no_fault(backend: LocalWandb, header: str) -> None:
    backend.inject(mode="status", status=500, count=1)
    response = httpx.post(
        backend.url + "/graphql",
        content=b'{"query": "{ viewer { id } }"}',
        headers={"Authorization": header.encode("latin-1")},
        timeout=30,
    )
    assert response.status_code == 401
    assert len(backend.admin("GET", "/_local/faults")["faults"]) == 1  # still there for a real client


@pytest.mark.hostile
def test_stats_and_faults_need_the_key(backend: LocalWandb) -> None:
    for method, path in [("GET", "/_local/stats"), ("DELETE", "/_local/stats"), ("GET", "/_local/faults"),
                         ("POST", "/_local/faults"), ("DELETE", "/_local/faults")]:  # fmt: skip
        assert httpx.request(method, backend.url + path, json={"mode": "drop"}, timeout=30).status_code == 401
    assert backend.admin("GET", "/_local/faults") == {"faults": []}


@pytest.mark.hostile
def test_a_body_past_the_limit_is_refused_before_it_is_read(backend: LocalWandb) -> None:
    big = b'{"query": "{ viewer { id } }", "pad": "' + b"x" * (2 << 20) + b'"}'
    assert raw_post(backend, big).status_code == 413
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))  # no Content-Length: counted as read
    response = httpx.post(backend.url + "/graphql", content=chunks, auth=("api", API_KEY), timeout=30)
    assert response.status_code == 413 and "at most 1048576" in response.json()["errors"][0]["message"]


def _history_query(aliases: int, samples: int) -> str:
    fields = " ".join(f"h{i}: history(samples: {samples})" for i in range(aliases))
    return f'{{ project(name: "p", entityName: "e") {{ run(name: "r") {{ {fields} }} }} }}'


@pytest.mark.hostile
@pytest.mark.parametrize(
    ("query", "variables", "said"),
    [
        (_history_query(101, 1), {}, "the query has 101 aliased fields; at most 100"),
        (_history_query(100, 5000), {}, "asks for up to 500000 history rows"),
        (_history_query(1, -1), {}, "history(samples:) must be an integer from 1 to 10000; got -1"),
        (_history_query(1, 0), {}, "must be an integer from 1 to 10000; got 0"),
        (_history_query(1, 10_001), {}, "got 10001"),
        ('query Q($n: Int) { project(name: "p") { run(name: "r") { history(samples: $n) } } }', {"n": -5}, "got -5"),
        (
            '{ project(name: "p") { run(name: "r") { sampledHistory(specs: ['
            + json.dumps('{"samples": -1}')
            + "]) } } }",
            {},
            "sampledHistory spec's samples must be",
        ),
        (
            '{ project(name: "p") { run(name: "r") { sampledHistory(specs: ["nope"]) } } }',
            {},
            "holds a spec that is not JSON",
        ),
        (
            '{ project(name: "p") { runs(first: 1000) { edges { node { history(samples: 500) } } } } }',
            {},
            "asks for up to 500000 history rows",
        ),
        (
            '{ project(name: "p") { runs { edges { node { history(samples: 5000) } } } } }',
            {},
            "asks for up to 250000",
        ),  # 50 a page
        (
            '{ project(name: "p") { ' + 'run(name: "r") { project { ' * 10 + "id" + " } }" * 10 + " } }",
            {},
            "nests 22 levels deep; at most 20",
        ),
    ],
)
def test_a_query_past_the_cost_limits_is_a_400_naming_the_limit(
    backend: LocalWandb, query: str, variables: dict[str, Any], said: str
) -> None:
    response = gql(backend, query, **variables)
    assert response.status_code == 400, response.text
    assert said in response.json()["errors"][0]["message"]


def test_the_hooks_largest_reads_are_within_the_limits(backend: LocalWandb) -> None:
    """What the provider sends at its widest (20 runs a request, 1,000 rows a spec) is served."""
    response = gql(backend, _history_query(20, 10_000).replace("history(samples: 10000)", "history(samples: 9999)"))
    assert response.status_code == 200, response.text


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
    update = "mutation($input: UpdateArtifactInput!) { updateArtifact(input: $input) { artifact { id } } }"
    staging = {**alias_in, "alias": "staging"}
    for aliases in ([alias_in, staging], [staging]):  # an older SDK's save(): the version's whole set
        answer = gql(backend, update, input={"artifactID": art, "aliases": aliases}).json()
        assert not answer.get("errors"), answer
        assert _aliases(backend, entity, "p/m:v0") == sorted(a["alias"] for a in aliases)
    gql(backend, update, input={"artifactID": art, "aliases": []})  # an empty set names no collection: kept
    assert _aliases(backend, entity, "p/m:v0") == ["staging"]
    gql(backend, delete, input={"artifactID": art, "aliases": [staging]})

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
    from airflow_provider_wbauto.local import schema as local_schema
    from airflow_provider_wbauto.local.server import _checker

    store = Store(str(tmp_path / "w.db"))
    for i in range(100):
        store.create_version("acme", "p", "model", aliases=[f"a{i}"])
    schema = local_schema.build()
    check = _checker(schema, 8)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    results = []
    for _ in range(2):
        statements.clear()
        document, errors, _ = check(MEMBERSHIPS_QUERY)
        assert document is not None and not errors
        variables = {"entity": "acme", "project": "p", "collection": "model", "perPage": 100, "cursor": None}
        done = execute_sync(schema, document, variable_values=variables, context_value={"store": store})
        assert done.errors is None
        results.append(done.data)
        assert len(statements) <= 12, statements
    assert check.cache_info().hits == 1  # type: ignore[attr-defined]
    edges = results[0]["project"]["artifactCollection"]["artifactMemberships"]["edges"]  # type: ignore[index]
    own = [[a["alias"] for a in e["node"]["aliases"] if a["alias"] != "latest"] for e in edges]
    assert own == [[f"a{i}"] for i in range(100)]  # latest moved in place: its row id is v0's, older than a99's
    assert {e["node"]["artifact"]["artifactSequence"]["project"]["name"] for e in edges} == {"p"}
    assert results[0] == results[1]


def test_an_organizations_registry_links_in_link_order_with_the_sdks_filters(backend: LocalWandb, entity: str) -> None:
    """Without an order (the SDK sends none unless the organization has advanced search), in ascending
    membership id: never newest first (tests/local/test_wire_behaviour.py has the orders)."""
    store = backend.store
    for i, (registry, collection) in enumerate(
        [("model", "prod"), ("model", "dev"), ("data", "prod"), ("model", "prod")]
    ):
        store.link(store.create_version(entity, "p", "m"), entity, f"wandb-registry-{registry}", collection)
        del i
    query = """query($e: String!, $r: JSONString, $c: JSONString, $f: JSONString) { entity(name: $e) { organization {
      orgEntity { artifactMemberships(projectFilters: $r, collectionFilters: $c, filters: $f) {
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
        ("wandb-registry-model", "prod", 0),
        ("wandb-registry-model", "dev", 0),
        ("wandb-registry-model", "prod", 1),
    ]
    assert links(r=model, c=json.dumps({"name": "prod"})) == [
        ("wandb-registry-model", "prod", 0),
        ("wandb-registry-model", "prod", 1),
    ]
    assert len(links()) == 4  # every registry of the organization
    bad = gql(backend, query, e=entity, r=json.dumps({"name": {"$regex": "model"}})).json()
    assert "projectFilters: only {'name': ...} and {'id': ...} are served here" in bad["errors"][0]["message"]


def test_a_fault_with_a_rate_takes_that_share_of_requests(backend: LocalWandb) -> None:
    backend.inject(mode="status", status=500, count=None, rate=0.3)
    codes = [gql(backend, "{ viewer { id } }").status_code for _ in range(200)]
    assert set(codes) == {200, 500} and 30 <= codes.count(500) <= 90  # 60 expected; far tails excluded


def test_an_operation_not_served_is_a_graphql_error_and_a_warning_naming_it(tmp_path: Any) -> None:
    log = tmp_path / "server.log"
    with LocalWandb(tmp_path / "w.db", api_key=API_KEY, log=log) as server:
        query = "mutation Alert($x: String) { notifyScriptableRunAlert(input: {title: $x}) { success } }"
        body = gql(server, query, x="m").json()
        assert (
            body["data"] is None
            and "Cannot query field 'notifyScriptableRunAlert' on type 'Mutation'" in body["errors"][0]["message"]
        )
        wait_for(lambda: "GraphQL operation Alert not served" in log.read_text(), "the warning in the log")


@pytest.mark.hostile
@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (b"[]", 400, "the body must be a JSON object"),
        (b"{not json", 400, "Expecting property name"),
        (b'{"files": []}', 400, "files must be an object"),
        (b'{"files": {"wandb-history.jsonl": {"offset": 0, "content": ["not json"]}}}', 400, "is not a JSON object"),
        (b'{"complete": "yes", "exitcode": 0}', 400, "complete must be a boolean"),
    ],
)
def test_a_bad_file_stream_body_is_a_400_and_changes_nothing(
    backend: LocalWandb, entity: str, body: bytes, status: int, said: str
) -> None:
    backend.store.upsert_run(entity, "p", "r")
    response = httpx.post(f"{backend.url}/files/{entity}/p/r/file_stream", content=body, auth=("api", API_KEY))
    assert response.status_code == status and said in response.text
    (run,) = backend.store.query(
        "SELECT state, last_step FROM run WHERE id=?", [backend.store.run_pk(entity, "p", "r")]
    )
    assert (run["state"], run["last_step"]) == ("running", -1)
    missing = httpx.post(f"{backend.url}/files/{entity}/p/nope/file_stream", json={}, auth=("api", API_KEY))
    assert missing.status_code == 404 and "does not exist" in missing.text
    assert httpx.post(f"{backend.url}/files/{entity}/p/r/file_stream", json={}).status_code == 401
    forged = httpx.put(f"{backend.url}/_local/files/{'0' * 32}/{entity}/p/r/config.yaml", content=b"x")
    assert forged.status_code == 403
