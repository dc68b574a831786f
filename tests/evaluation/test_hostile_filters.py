"""Filters come from DAG files and DAG-run confs: none may hang a process or crash one with anything
but a ``FilterSyntaxError`` naming the field. ``$regex`` is RE2 (linear time), nesting is bounded; the
same holds in the local server, which answers a bad filter with an error, never a stall or a 500."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_wbauto.automations import OnRunState, RunEvent
from airflow_provider_wbauto.evaluation.mongo import MAX_DEPTH, FilterSyntaxError, matches, validate
from airflow_provider_wbauto.local import LocalWandb
from tests.conftest import API_KEY

pytestmark = pytest.mark.hostile  # the hostile-input corpus (python -m reliability counts it)

CATASTROPHIC = ["^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "^([a-z]+)*$", "^(.*a){12}$"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_match_in_linear_time(pattern: str) -> None:
    """Backtracking engines take exponential time on these; at N=25 Python's re stalls for seconds."""
    validate({"display_name": {"$regex": pattern}})
    started = time.monotonic()
    for n in (25, 1_000, 100_000):
        assert not matches({"display_name": {"$regex": pattern}}, {"display_name": "a" * n + "!"})
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a)\1", "invalid escape sequence"),
        ("(?=a)b", "invalid perl operator"),
        ("(?<!a)b", "invalid perl operator"),
        ("[", "missing ]"),
        ("a{1001}", "invalid repetition size"),
        ("(", "missing )"),
    ],
)
def test_patterns_re2_cannot_run_are_errors_naming_the_field(pattern: str, why: str) -> None:
    with pytest.raises(FilterSyntaxError, match=rf"filter\.\$or\[0\]\.display_name\.\$regex .*RE2.*{re.escape(why)}"):
        validate({"$or": [{"display_name": {"$regex": pattern}}]})
    with pytest.raises(ValueError, match=r"display_name\.\$regex .*RE2"):  # where a DAG author writes it
        OnRunState(scope="acme/p", filter=(RunEvent.state == "FAILED") & RunEvent.name.matches_regex(pattern))


def _nested(depth: int, op: str = "$and") -> dict[str, Any]:
    node: dict[str, Any] = {"state": "failed"}
    for _ in range(depth):
        node = {"$not": node} if op == "$not" else {op: [node]}
    return node


@pytest.mark.parametrize("op", ["$and", "$or", "$nor", "$not"])
def test_nesting_is_bounded(op: str) -> None:
    validate(_nested(MAX_DEPTH, op))
    for depth in (MAX_DEPTH + 1, 100_000):  # the deep one was a RecursionError
        with pytest.raises(FilterSyntaxError, match=f"nest at most {MAX_DEPTH} levels"):
            validate(_nested(depth, op))


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ([], "filter must be an object"),
        ("state", "filter must be an object"),
        ({"$and": {"state": "x"}}, r"filter\.\$and must be a list"),
        ({"$and": ["x"]}, r"filter\.\$and\[0\] must be an object"),
        ({"$where": "1"}, "unknown operator '\\$where'"),
        ({"state": {"$gt": 1, "$foo": 2}}, "unknown operator '\\$foo'"),
        ({"tags": {"$in": "gpu"}}, r"filter\.tags\.\$in must be a list"),
        ({"display_name": {"$regex": 5}}, r"\$regex must be a string"),
        ({"state": {"$exists": "yes"}}, r"\$exists must be true or false"),
        ({1: "x"}, "keys are field names or operators"),
        ({"state": {1: 2, "$eq": "x"}}, r"filter\.state: unknown operator 1"),  # was AttributeError
        ({"$not": "x"}, r"filter\.\$not must be an object"),
        ({"display_name": {"$regex": "(" * 10_000}}, "RE2"),
    ],
)
def test_malformed_filters_name_what_is_wrong(expr: Any, message: str) -> None:
    with pytest.raises(FilterSyntaxError, match=message):
        validate(expr)


_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_ops = st.sampled_from(["$and", "$or", "$nor", "$not", "$eq", "$gt", "$in", "$regex", "$exists", "$contains", "x"])
_filters = st.recursive(
    st.dictionaries(st.one_of(_ops, st.text(max_size=6), st.integers()), _json, max_size=3),
    lambda inner: st.dictionaries(
        st.one_of(_ops, st.integers()), st.one_of(inner, st.lists(inner, max_size=3), _json), max_size=3
    ),
    max_leaves=20,
)
_records = st.dictionaries(st.sampled_from(["state", "x", "display_name", "tags"]), _json, max_size=4)


@settings(max_examples=500, deadline=None)
@given(_filters, _records)
def test_any_filter_is_rejected_clearly_or_matches_without_error(expr: dict[str, Any], record: dict[str, Any]) -> None:
    try:
        validate(expr)
    except FilterSyntaxError:
        return
    assert matches(expr, record) in (True, False)


def _gql(backend: LocalWandb, entity: str, filters: Any) -> httpx.Response:
    query = (
        'query($e: String, $f: JSONString) { project(entityName: $e, name: "p") {'
        " runs(filters: $f) { edges { node { name } } } } }"
    )
    variables = {"e": entity, "f": json.dumps(filters)}
    return httpx.post(
        backend.url + "/graphql", json={"query": query, "variables": variables}, auth=("api", API_KEY), timeout=30
    )


def test_the_local_server_matches_regexes_in_linear_time_and_refuses_bad_filters(
    backend: LocalWandb, entity: str
) -> None:
    for name in ("a" * 30 + "!", "aaa"):
        backend.store.upsert_run(entity, "p", name, display_name=name)
    started = time.monotonic()
    answer = _gql(backend, entity, {"display_name": {"$regex": "^(a+)+$"}}).json()
    assert [e["node"]["name"] for e in answer["data"]["project"]["runs"]["edges"]] == ["aaa"]
    assert time.monotonic() - started < 5.0  # Python's re took minutes on the first name
    for bad, message in [
        ({"display_name": {"$regex": "(?=a)"}}, "RE2"),
        (_nested(MAX_DEPTH + 1), f"nest at most {MAX_DEPTH} levels"),
    ]:
        response = _gql(backend, entity, bad)
        assert response.status_code == 200 and message in response.json()["errors"][0]["message"]
