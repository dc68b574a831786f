"""The evidence rule (issue 25): every request the provider sends to W&B occurs in a real W&B client.

- The committed evidence (``local/wire_evidence.json``) cannot drift: its SDK items are read again
  from the installed ``wandb`` package, its wandb-core and captured items from the committed copies.
- Every read generator of ``hooks/wandb.py`` is run against the local backend (lenient, so each read
  goes to its end) and every request it sent is checked against the evidence.
- A mutation check: an invented argument, field or order, a ``$not`` in a runs filter, a spec of
  ``_step`` alone each make the checker fail, and the strict server refuse as W&B refuses.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from airflow_provider_wbauto.hooks import wandb as hooks_wandb
from airflow_provider_wbauto.hooks.run_keys import RunKeys
from airflow_provider_wbauto.hooks.transport import GraphQLCall, Read, RetryPolicy, WandbError
from airflow_provider_wbauto.hooks.wandb import HistoryMark, WandbHook
from airflow_provider_wbauto.local import LocalWandb, load
from airflow_provider_wbauto.local import evidence as ev
from tests.conftest import API_KEY

ENTITY = "acme"


@pytest.fixture(scope="module")
def evidence() -> ev.Evidence:
    return ev.Evidence.load()


# -- (a) the committed evidence is what the clients hold ---------------------------------------------------


def test_every_sdk_item_still_occurs_in_the_installed_sdk(evidence: ev.Evidence) -> None:
    import wandb

    assert evidence.data["sdk_version"] == wandb.__version__, "regenerate: python -m ...local.evidence --regenerate"
    installed = ev.sdk_items()
    gone = sorted(set(evidence.data["sdk"]) - set(installed))
    assert not gone, f"SDK items in the evidence that the installed wandb no longer sends: {gone}"
    for item, where in evidence.data["sdk"].items():
        assert where and set(where) <= set(installed[item]), f"{item}: cited at {where}, found at {installed[item]}"


@pytest.mark.parametrize(("section", "directory"), [("wandb_core", ev.CORE_DIR), ("captured", ev.CAPTURED_DIR)])
def test_client_query_items_are_those_of_the_committed_copies(
    evidence: ev.Evidence, section: str, directory: Any
) -> None:
    found = ev.items_of_documents(ev.graphql_files(directory))
    assert set(evidence.data[section]) == set(found)
    assert len(list(directory.glob("*.graphql"))) >= 20


def test_every_value_form_is_cited_and_on_an_evidenced_argument(evidence: ev.Evidence) -> None:
    cited_items = evidence.data.get("cited_items") or {}
    assert all(isinstance(c, str) and c for c in cited_items.values()), "every cited item names its source"
    for item, form in evidence.values.forms.items():
        assert item in evidence.items, f"value form of {item}, an argument no client sends"
        if "same_as" in form:
            assert form["same_as"] in evidence.values.forms and form.get("cite"), item
            continue
        (kind,) = set(form) & {"order", "filter", "spec"}
        body = form[kind]
        citations: list[Any] = []
        if kind == "order":
            citations = list(body.values())
        elif kind == "filter":
            stamps = body.get("timestamps") or {}
            for part in (body.get("keys"), body.get("key_patterns"), body.get("operators")):
                citations += list((part or {}).values())
            citations += list((stamps.get("keys") or {}).values()) + list((stamps.get("formats") or {}).values())
        else:
            citations = [*body["forms"].values(), body["cite"]]
        assert citations and all(isinstance(c, str) and ":" in c for c in citations), f"{item}: cite file:line"


# -- (b) every request the provider's reads send is on evidence ---------------------------------------------


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWandb]:
    """A server of this module's own that serves requests outside the evidence (answering strictly
    otherwise): each read goes as far as it can."""
    with LocalWandb(tmp_path_factory.mktemp("wire") / "local.db", api_key=API_KEY, evidence_check=False) as server:
        runs = [
            {
                "id": f"r{i}",
                "display_name": f"{'sweep' if i % 2 else 'base'}-{i}",
                "state": "finished" if i else "running",
                "tags": ["t"],
                "config": {"lr": 0.1 * i},
                "history": [{"_step": s, "loss": 1 / (s + 1), **({"acc": s} if s % 3 == 0 else {})} for s in range(12)],
            }
            for i in range(3)
        ]
        artifacts = [
            {"collection": "m", "versions": [{"metadata": {"n": 0}}, {"aliases": ["best"], "metadata": {"n": 1}}]},
        ]
        links = [{"source": "p/m:v0", "target": "wandb-registry-model/prod", "aliases": ["production"]}]
        load(
            server.store,
            {"entity": ENTITY, "projects": [{"name": "p", "runs": runs, "artifacts": artifacts, "links": links}]},
        )
        server.store.set_advanced_search(ENTITY, True)  # the ordered reads of registry links too
        yield server


@dataclass(frozen=True)
class Sent:
    """One GraphQL request as it went on the wire."""

    query: str
    variables: dict[str, Any]

    @property
    def operation(self) -> str:
        return GraphQLCall(self.query, self.variables).operation


class Recorder:
    """Runs reads as a worker does (``WandbHook.run``: the transport, its probes and batches), on an
    HTTP client that keeps every GraphQL body it sends, by the read that sent it. A read that fails
    (the local backend refuses some values whatever its mode) is left there, its error kept."""

    def __init__(self, server: LocalWandb, conn_id: str) -> None:
        self.sent: list[tuple[str, Sent]] = []
        self.errors: list[str] = []
        self.reading = ""
        self.client = httpx.Client(event_hooks={"request": [self._record]})
        self.hook = WandbHook(conn_id, retry=RetryPolicy(max_attempts=1))

    def _record(self, request: httpx.Request) -> None:
        if not request.url.path.endswith("/graphql"):
            return
        body = json.loads(request.content)
        for one in body if isinstance(body, list) else [body]:
            self.sent.append((self.reading, Sent(one["query"], one.get("variables") or {})))

    def drive(self, name: str, read: Read[Any]) -> Any:
        self.reading = name
        try:
            return self.hook.run(read)
        except WandbError as exc:
            self.errors.append(f"{name}: {exc}")
            return None


def _scenarios(rec: Recorder) -> dict[str, Callable[[], Any]]:
    """One or more runs of every read generator of hooks/wandb.py, keyed by its name."""
    p = "p"

    def memberships() -> None:
        rec.drive("read_memberships", hooks_wandb.read_memberships(ENTITY, p, "m"))
        rec.drive("read_memberships", hooks_wandb.read_memberships(ENTITY, p, per_page=1))
        rec.drive("read_memberships", hooks_wandb.read_memberships(ENTITY, p, portfolios_only=True))
        rec.drive("read_memberships", hooks_wandb.read_memberships(ENTITY, "wandb-registry-model"))

    def versions_by_id() -> None:
        found = rec.drive("read_versions_by_id", hooks_wandb.read_memberships(ENTITY, p, "m")) or []
        versions = [(m["artifact_id"], m["version_index"]) for m in found]
        rec.drive("read_versions_by_id", hooks_wandb.read_versions_by_id("m", versions))

    def connection() -> None:
        rec.reading = "test_connection"
        rec.hook.test_connection()

    caps = _capabilities()
    probes: dict[str, Callable[[], Any]] = {}
    if caps is not None:
        probes = {
            "capabilities.read_viewer": lambda: rec.drive("capabilities.read_viewer", caps.read_viewer()),
            "capabilities.read_organizations": lambda: rec.drive(
                "capabilities.read_organizations", caps.read_organizations(ENTITY)
            ),
            "capabilities.read_capabilities": lambda: rec.drive(
                "capabilities.read_capabilities", caps.read_capabilities([ENTITY])
            ),
            "capabilities.read_diagnosis": lambda: rec.drive("capabilities.read_diagnosis", caps.read_diagnosis()),
        }
    marks = {"r0": HistoryMark(step=3, lines=4, lines_now=12), "r1": HistoryMark(step=None, lines=None, lines_now=12)}
    return probes | {
        "test_connection": connection,
        "read_runs": lambda: [
            rec.drive("read_runs", hooks_wandb.read_runs(ENTITY, p, **kwargs))  # type: ignore[arg-type]
            for kwargs in (
                {},
                {"per_page": 1, "keys": RunKeys.of({"config.lr": {"$gt": 0}, "summary_metrics.loss": {"$lt": 1}})},
                {"per_page": 1, "keys": RunKeys(config=None, summary=None)},
                {"filters": {"display_name": {"$regex": "^sweep-"}}, "with_last_step": False},
                {"changed_since": "2000-01-01T00:00:00Z", "per_page": 1},
            )
        ],
        "read_run_state": lambda: rec.drive("read_run_state", hooks_wandb.read_run_state(ENTITY, p, "r0")),
        "read_last_steps": lambda: rec.drive(
            "read_last_steps", hooks_wandb.read_last_steps(ENTITY, p, ["r0", "r1"], 1)
        ),
        "read_new_rows": lambda: [
            rec.drive("read_new_rows", hooks_wandb.read_new_rows(ENTITY, p, marks, keys, 5, 2))
            for keys in (["loss", "acc"], None)
        ],
        "read_history": lambda: [
            rec.drive("read_history", hooks_wandb.read_history(ENTITY, p, {"r0": (0, 11), "r2": (2, 5)}, keys, 5, 1))
            for keys in (["loss"], None)
        ],
        "read_projects": lambda: [
            rec.drive("read_projects", hooks_wandb.read_projects(ENTITY, organization=org, per_page=1))
            for org in (False, True)
        ],
        "read_memberships": memberships,
        "read_newest_versions": lambda: [
            rec.drive("read_newest_versions", hooks_wandb.read_newest_versions(ENTITY, p, "m", stop=stop, per_page=1))
            for stop in (lambda page: True, lambda page: False)
        ],
        "read_newest_links": lambda: [
            rec.drive(
                "read_newest_links",
                hooks_wandb.read_newest_links(ENTITY, "wandb-registry-model", coll, stop=lambda page: False, ordered=o),
            )
            for coll in (None, "prod")
            for o in (True, False)
        ],
        "read_versions_by_id": versions_by_id,
        "read_aliases": lambda: [
            rec.drive("read_aliases", hooks_wandb.read_aliases(ENTITY, p, coll, per_page=1)) for coll in ("m", None)
        ],
        "read_members_by_alias": lambda: rec.drive(
            "read_members_by_alias", hooks_wandb.read_members_by_alias(ENTITY, p, [("m", "best"), ("m", "latest")])
        ),
    }


def _capabilities() -> Any:
    """``hooks/capabilities.py`` (the probes W&B's clients send), once it exists."""
    if importlib.util.find_spec("airflow_provider_wbauto.hooks.capabilities") is None:
        return None
    return importlib.import_module("airflow_provider_wbauto.hooks.capabilities")


def _read_generators() -> set[str]:
    """The read generators of hooks/wandb.py (by name) and hooks/capabilities.py (``capabilities.<name>``)."""
    modules = [("", hooks_wandb)] + ([("capabilities.", caps)] if (caps := _capabilities()) else [])
    return {
        prefix + name
        for prefix, module in modules
        for name, fn in vars(module).items()
        if name.startswith("read_") and inspect.isgeneratorfunction(fn) and fn.__module__ == module.__name__
    }


@pytest.fixture(scope="module")
def recorded(lenient: LocalWandb) -> Iterator[Recorder]:
    conn = {"conn_type": "wandb", "host": lenient.url, "password": API_KEY, "extra": {"timeout": 30}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_WANDB_EVIDENCE", json.dumps(conn))
        rec = Recorder(lenient, "wandb_evidence")
        patch.setattr(hooks_wandb, "shared_sync_client", lambda: rec.client)
        for run in _scenarios(rec).values():
            run()
        yield rec
    rec.client.close()


@pytest.fixture(scope="module")
def provider_requests(recorded: Recorder) -> list[tuple[str, Sent]]:
    return recorded.sent


def test_every_read_generator_is_covered(provider_requests: list[tuple[str, Sent]]) -> None:
    scenarios = set(_scenarios(Recorder.__new__(Recorder)))  # the names only: nothing runs
    missing = _read_generators() - scenarios
    assert not missing, f"read generators of hooks/wandb.py with no scenario here: {sorted(missing)}"
    sent_by = {name for name, _ in provider_requests}
    assert scenarios - sent_by - {"read_versions_by_id"} <= set(), f"scenarios that sent nothing: {scenarios - sent_by}"


def test_every_provider_request_is_on_evidence(
    provider_requests: list[tuple[str, Sent]], evidence: ev.Evidence
) -> None:
    found: dict[str, set[str]] = {}
    for name, call in provider_requests:
        for line in ev.violations(call.query, call.variables):
            found.setdefault(line, set()).add(f"{name} ({call.operation})")
    report = "\n".join(f"  {line}  <- {', '.join(sorted(by))}" for line, by in sorted(found.items()))
    assert not found, f"requests with items no real W&B client sends:\n{report}"


def test_every_provider_read_is_answered(recorded: Recorder) -> None:
    assert not recorded.errors, "reads the local backend refused:\n" + "\n".join(sorted(set(recorded.errors)))


# -- (c) the checker and the strict server refuse what no client sends ---------------------------------------

BASE = """query Q($entity: String!, $project: String!, $order: String, $filters: JSONString, $specs: [JSONString!]!) {
  project(name: $project, entityName: $entity) {
    runs(order: $order, filters: $filters, first: 10) { edges { node { name displayName } } }
    run(name: "r0") { sampledHistory(specs: $specs) } } }"""
GOOD: dict[str, Any] = {
    "entity": ENTITY,
    "project": "p",
    "order": "-heartbeat_at",
    "filters": json.dumps({"$and": [{"display_name": {"$regex": "^a"}}, {"config.lr": {"$gte": 0.1}}]}),
    "specs": [json.dumps({"keys": ["_step", "loss"], "samples": 500})],
}
MUTANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "an invented argument": (BASE.replace("first: 10", "first: 10, bogus: 1"), {}, 'Unknown argument "bogus"'),
    "an invented field": (BASE.replace("displayName", "displayName bogusField"), {}, 'field "bogusField"'),
    "an invented order": (BASE, {"order": "-createdAt"}, 'Unknown order "-createdAt"'),
    "$not in a runs filter": (BASE, {"filters": json.dumps({"$not": {"tags": "x"}})}, 'operator "$not"'),
    "an invented filter key": (BASE, {"filters": json.dumps({"heartbeat_at": {"$gte": "x"}})}, 'key "heartbeat_at"'),
    "a timestamp with microseconds": (
        BASE,
        {"filters": json.dumps({"created_at": {"$gte": "2024-01-01T00:00:00.000000Z"}})},
        "Invalid timestamp",
    ),
    "a spec of _step alone": (BASE, {"specs": [json.dumps({"keys": ["_step"], "samples": 5})]}, "no metric key"),
    "a spec of another form": (
        BASE,
        {"specs": [json.dumps({"keys": ["_step", "loss"], "samples": 5, "x": 1})]},
        "not a form",
    ),
    "a subscription": ("subscription S { viewer { id } }", {}, "no subscription operations"),
}


def test_the_unmutated_request_is_on_evidence() -> None:
    assert ev.violations(BASE, GOOD) == []


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_a_mutation_makes_the_checker_fail(mutant: str) -> None:
    query, change, expected = MUTANTS[mutant]
    found = ev.violations(query, GOOD | change)
    assert found and expected in found[0], found


def test_walk_resolves_aliases_fragments_and_skips_connection_plumbing() -> None:
    query = """query Q { p: project(name: "x") { ...F ... on Project { runs(first: 1) { pageInfo { endCursor } } } } }
      fragment F on Project { runs { edges { node { name cursor: id } cursor } } }"""
    uses, unknown = ev.walk(ev.parse(query))
    assert not unknown
    assert ev.items_of(uses) == {
        "operation:query",
        "Query.project",
        "Query.project(name)",
        "project.runs",
        "project.runs(first)",
        "runs.name",
        "runs.id",
        "runs.cursor",
        "runs.endCursor",
    }


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWandb]:
    with LocalWandb(tmp_path_factory.mktemp("strict") / "local.db", api_key=API_KEY, evidence_check=True) as server:
        load(
            server.store,
            {
                "entity": ENTITY,
                "projects": [{"name": "p", "runs": [{"id": "r0", "display_name": "alpha", "config": {"lr": 0.2}}]}],
            },
        )
        server.store.set_advanced_search(ENTITY, True)  # the ordered reads of registry links too
        yield server


def test_the_strict_server_answers_as_w_and_b_refuses_an_invalid_query(strict: LocalWandb) -> None:
    def post(query: str, variables: dict[str, Any]) -> httpx.Response:
        body = {"query": query, "variables": variables}
        return httpx.post(strict.url + "/graphql", json=body, auth=("api", API_KEY), timeout=30)

    served = post(BASE, GOOD)
    assert served.status_code == 200 and "errors" not in served.json(), served.json()
    assert served.json()["data"]["project"]["runs"]["edges"]
    strict.admin("DELETE", "/_local/stats")
    refused = post(BASE, GOOD | {"order": "-createdAt"})
    assert refused.status_code == 200
    assert refused.json()["data"] is None
    (error,) = refused.json()["errors"]
    assert error["message"].startswith('Unknown order "-createdAt" for argument "order" on field "Project.runs".')
    negated = post(BASE, GOOD | {"filters": json.dumps({"$not": {"tags": "x"}})})
    assert negated.json() == {
        "data": None,
        "errors": [{"message": 'Unknown filter operator "$not" in argument "filters" on field "Project.runs".'}],
    }
    invented = post(BASE.replace("first: 10", "first: 10, bogus: 1"), GOOD)
    assert "bogus" in invented.json()["errors"][0]["message"]  # the schema's own validation says it first
    assert strict.refused() == {'project.runs(order)="-createdAt"': 1, "project.runs(filters):$not": 1}
