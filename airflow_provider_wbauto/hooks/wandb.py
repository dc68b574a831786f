"""WandbHook: the W&B credentials of an Airflow connection and the GraphQL reads the provider needs.

Every read is written once, as a generator of GraphQL calls (see ``transport``), and offered twice:
``hook.runs(...)`` for workers and ``await hook.aruns(...)`` for triggerers. Reads ask only for the
fields in use, page with Relay cursors, batch several runs into one request with GraphQL aliases,
and never read sampled history: a history page covers a step window no wider than its ``samples``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, TypedDict, cast

import httpx
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from ..evaluation.engine import history_step
from .capabilities import advanced_search, organizations_of
from .run_keys import NO_KEYS, RunKeys
from .times import parse_time
from .transport import (
    Batch,
    BatchLimit,
    BatchTooBig,
    Endpoint,
    GraphQLCall,
    Read,
    RetryPolicy,
    T,
    WandbError,
    WandbNotFoundError,
    base_url,
    batched,
    extra_number,
    run_async,
    run_sync,
    shared_async_client,
    shared_sync_client,
)

DEFAULT_BASE_URL = "https://api.wandb.ai"
DEFAULT_TIMEOUT = 20.0
PAGE = 100


class RunInfo(TypedDict):
    id: str
    display_name: str | None
    state: str
    created_at: str
    heartbeat_at: str
    history_line_count: int
    last_step: int | None  # None: listed without it (``with_last_step=False``)
    tags: list[str]
    group: str | None
    job_type: str | None
    config: dict[str, Any]  # only the keys the listing asked for (``RunKeys``)
    summary: dict[str, Any]


class AliasInfo(TypedDict):
    id: str
    alias: str


class _ArtifactFields(TypedDict):
    """A version's own fields, whichever collection it is seen in."""

    artifact_id: str
    artifact_state: str
    artifact_created_at: str
    artifact_metadata: dict[str, Any]
    artifact_type: str
    source_project: str
    source_collection: str
    source_version_index: int
    artifact_tags: list[str]


class MembershipInfo(_ArtifactFields):
    """One version as a member of one collection (its own sequence, or a portfolio it is linked to)."""

    id: str
    collection: str
    collection_type: str
    version_index: int
    created_at: str
    aliases: list[AliasInfo]
    collection_tags: list[str]


RUN_FIELDS = "name displayName state createdAt heartbeatAt historyLineCount tags group jobType"
# historyKeys carries a run's last step with every metric key the run logged (52 KiB at a thousand
# keys); W&B has no field for the last step alone, so runs are listed with it only when asked.
LAST_STEP_FIELD = "historyKeys"

RUNS_QUERY = """query WbautoRuns($entity: String!, $project: String!, $filters: JSONString, $order: String,
  $cursor: String, $perPage: Int DECL) {
  project(name: $project, entityName: $entity) {
    runs(filters: $filters, order: $order, after: $cursor, first: $perPage) {
      edges { node { FIELDS } cursor } pageInfo { endCursor hasNextPage } } } }"""

MEMBERSHIP_FIELDS = """id versionIndex createdAt aliases { id alias }
  artifactCollection { __typename name tags { edges { node { name } } } }
  artifact { id state createdAt metadata versionIndex artifactType { name } tags { name }
    artifactSequence { name project { name } } }"""

MEMBERSHIPS_PAGE = """artifactMemberships(after: $cursor, first: $perPage) {
  edges { node { FIELDS } } pageInfo { endCursor hasNextPage } }""".replace("FIELDS", MEMBERSHIP_FIELDS)

# A project's collections, then the first page of each one's members (or aliases), several collections
# a request (aliased ``artifactCollection(name:)``, as W&B's clients read one): W&B's clients never
# nest a paged connection in the page of collections. Portfolios are told by ``__typename``: W&B's
# clients send ``collectionTypes`` only on an entity's collections.
COLLECTIONS_QUERY = """query WbautoCollections($entity: String!, $project: String!, $collectionCursor: String,
  $perPage: Int) {
  project(name: $project, entityName: $entity) {
    artifactCollections(after: $collectionCursor, first: $perPage) {
      edges { node { __typename name } } pageInfo { endCursor hasNextPage } } } }"""
COLLECTIONS_PER_REQUEST = 10  # collections whose first page one request reads

MEMBERSHIPS_QUERY = """query WbautoMemberships($entity: String!, $project: String!, $collection: String!,
  $cursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) {
    artifactCollection(name: $collection) { PAGE } } }""".replace("PAGE", MEMBERSHIPS_PAGE)


@dataclass(frozen=True)
class Tuning:
    """How reads are cut into requests. A hook's (``WandbHook(history_page=..., runs_per_request=...)``)
    is the one every watch polled through it uses.

    :param history_page: the most history rows one request asks for per run.
    :param runs_per_request: runs whose history one request reads (GraphQL aliases).
    """

    history_page: int = 1000
    runs_per_request: int = 20


class WandbHook(BaseHook):
    """Talk to W&B (or the local stand-in) with the credentials of a ``wandb`` connection.

    Connection: host = base URL (default ``https://api.wandb.ai``), password = API key, extra
    ``timeout``. Without the connection, ``WANDB_API_KEY`` / ``WANDB_BASE_URL`` are used.

    :param wandb_conn_id: the ``wandb`` connection.
    :param timeout: seconds per request (default: the connection's ``timeout``, else 20).
    :param retry: bounds for retrying 5xx, 429, timeouts and connection errors (``RetryPolicy``).
    :param runs_per_request: runs whose history one request reads (GraphQL aliases).
    :param history_page: the most history rows one request asks for per run.
    """

    conn_name_attr = "wandb_conn_id"
    default_conn_name = "wandb_default"
    conn_type = "wandb"
    hook_name = "W&B"

    def __init__(
        self,
        wandb_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        runs_per_request: int = 20,
        history_page: int = 1000,
    ) -> None:
        super().__init__()
        self.wandb_conn_id = wandb_conn_id
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.tuning = Tuning(history_page=history_page, runs_per_request=runs_per_request)

    def __repr__(self) -> str:
        return f"WandbHook(wandb_conn_id={self.wandb_conn_id!r})"

    # -- credentials --------------------------------------------------------------------------

    @cached_property
    def endpoint(self) -> Endpoint:
        try:
            conn = self.get_connection(self.wandb_conn_id)
        except AirflowNotFoundException:
            return self._env_endpoint()
        return self._endpoint(conn.host, conn.password, conn.extra_dejson)

    async def aendpoint(self) -> Endpoint:
        if "endpoint" in self.__dict__:
            cached: Endpoint = self.__dict__["endpoint"]
            return cached
        try:
            conn = await self.aget_connection(self.wandb_conn_id)
        except AirflowNotFoundException:
            endpoint = self._env_endpoint()
        else:
            endpoint = self._endpoint(conn.host, conn.password, await conn.aextra_dejson())
        self.__dict__["endpoint"] = endpoint
        return endpoint

    def _env_endpoint(self) -> Endpoint:
        if not os.environ.get("WANDB_API_KEY"):
            raise AirflowNotFoundException(
                f"no Airflow connection {self.wandb_conn_id!r} and no WANDB_API_KEY in the environment"
            )
        return self._endpoint(os.environ.get("WANDB_BASE_URL"), os.environ["WANDB_API_KEY"], {})

    def _endpoint(self, host: str | None, key: str | None, extra: Mapping[str, Any]) -> Endpoint:
        if not (key or "").strip():
            raise AirflowNotFoundException(f"connection {self.wandb_conn_id!r} has no API key (password)")
        timeout = self.timeout or extra_number(extra, "timeout", self.wandb_conn_id, DEFAULT_TIMEOUT)
        return Endpoint(
            url=base_url(host, DEFAULT_BASE_URL) + "/graphql",
            auth=httpx.BasicAuth("api", str(key).strip()),
            timeout=timeout,
            conn_id=self.wandb_conn_id,
            policy=self.retry,
        )

    @staticmethod
    def app_url(endpoint: Endpoint) -> str:
        """The W&B UI for an API endpoint: ``https://api.wandb.ai/graphql`` -> ``https://wandb.ai``."""
        base = endpoint.url.removesuffix("/graphql")
        scheme, _, host = base.partition("://")
        return f"{scheme}://{host.removeprefix('api.')}"

    # -- running reads ------------------------------------------------------------------------

    def run(self, read: Read[T]) -> T:
        """Run a read (a generator of GraphQL calls) in a worker, with the connection's retries."""
        return run_sync(read, self.endpoint, shared_sync_client())

    async def arun(self, read: Read[T]) -> T:
        """Run a read in a triggerer's event loop, on the loop's pooled client."""
        return await run_async(read, await self.aendpoint(), shared_async_client())

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL call with retries; returns ``data``."""
        return self.run(_single(query, variables or {}))

    async def aquery(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.arun(_single(query, variables or {}))

    def test_connection(self) -> tuple[bool, str]:
        """Powers the UI's Test button: the key's viewer, the server's version and features, and how
        registry links will be read, in one line (``wbauto doctor`` prints the whole read plan)."""
        from .capabilities import read_diagnosis, summary
        from .transport import probe_errors

        try:
            found = self.run(read_diagnosis())
        except (WandbError, AirflowNotFoundException, httpx.HTTPError) as exc:
            return False, str(exc)
        if not found.viewer:
            return False, "W&B accepted the request but returned no viewer"
        return True, summary(found, self.endpoint.host, probe_errors(self.endpoint))

    # -- reads: runs --------------------------------------------------------------------------

    def runs(self, entity: str, project: str, **kwargs: Any) -> list[RunInfo]:
        return self.run(read_runs(entity, project, **kwargs))

    async def aruns(self, entity: str, project: str, **kwargs: Any) -> list[RunInfo]:
        return await self.arun(read_runs(entity, project, **kwargs))

    def history(self, entity: str, project: str, windows: Mapping[str, tuple[int, int]], **kw: Any) -> Any:
        return self.run(self.read_history(entity, project, windows, **kw))

    async def ahistory(self, entity: str, project: str, windows: Mapping[str, tuple[int, int]], **kw: Any) -> Any:
        return await self.arun(self.read_history(entity, project, windows, **kw))

    def run_state(self, entity: str, project: str, run_id: str) -> str | None:
        return self.run(read_run_state(entity, project, run_id))

    async def arun_state(self, entity: str, project: str, run_id: str) -> str | None:
        return await self.arun(read_run_state(entity, project, run_id))

    def read_history(
        self,
        entity: str,
        project: str,
        windows: Mapping[str, tuple[int, int]],
        keys: Sequence[str] | None = None,
    ) -> Read[dict[str, list[dict[str, Any]]]]:
        return read_history(entity, project, windows, keys, self.tuning.history_page, self.tuning.runs_per_request)

    # -- reads: artifacts ---------------------------------------------------------------------

    def memberships(self, entity: str, project: str, collection: str | None = None, **kw: Any) -> list[MembershipInfo]:
        return self.run(read_memberships(entity, project, collection, **kw))

    async def amemberships(
        self, entity: str, project: str, collection: str | None = None, **kw: Any
    ) -> list[MembershipInfo]:
        return await self.arun(read_memberships(entity, project, collection, **kw))


# -- the reads, as generators of GraphQL calls ---------------------------------------------------------


def _single(query: str, variables: dict[str, Any]) -> Read[dict[str, Any]]:
    data = yield GraphQLCall(query, variables)
    return data


def _project(data: dict[str, Any], entity: str, project: str) -> dict[str, Any]:
    node = data.get("project")
    if node is None:
        raise WandbNotFoundError(f"W&B project {entity}/{project} does not exist or is not visible to this API key")
    result: dict[str, Any] = node
    return result


def _next_cursor(page: dict[str, Any], followed: set[str], what: str) -> str:
    """The cursor of the page after ``page``. An answer that says there is more but gives no cursor, or
    one already followed, is a WandbError: looping on it would end only when the server stops answering."""
    cursor = page["pageInfo"].get("endCursor")
    if not isinstance(cursor, str) or not cursor or cursor in followed:
        raise WandbError(f"W&B paged {what} with a next-page cursor of {cursor!r} again or none; not following it")
    followed.add(cursor)
    return cursor


RUNS_FIRST_PAGE = 10  # what a quiet poll of a project's runs lists, newest heartbeat first


def read_runs(
    entity: str,
    project: str,
    *,
    filters: Mapping[str, Any] | None = None,
    changed_since: str | None = None,
    keys: RunKeys = NO_KEYS,
    with_last_step: bool = True,
    per_page: int = PAGE,
) -> Read[list[RunInfo]]:
    """Runs of a project matching ``filters`` (server-side), only those whose heartbeat is at or after
    ``changed_since`` when given: the runs are listed newest heartbeat first (``order: "-heartbeat_at"``,
    as the SDK documents) and the listing stops at the first page reaching past ``changed_since``, so
    a project where nothing changed costs one small request and no timestamp is ever sent to W&B.
    Only the config and summary ``keys`` are read (what a run filter compares). Without
    ``with_last_step`` (``last_step`` is None) a run's size does not grow with the keys it logged."""
    server_filter = json.dumps({"$and": [runs_filter(filters)]}) if filters else None
    keyed = {"configKeys": keys.config, "summaryKeys": keys.summary}
    listed = {name: sorted(wanted) for name, wanted in keyed.items() if wanted}  # only the variables in use
    fields = RUN_FIELDS + _keyed("config", "configKeys", keys.config)
    fields += _keyed("summaryMetrics", "summaryKeys", keys.summary)
    fields += f" {LAST_STEP_FIELD}" if with_last_step else ""
    query = RUNS_QUERY.replace("FIELDS", fields).replace("DECL", "".join(f", ${n}: [String!]" for n in listed))
    bound = parse_time(changed_since) if changed_since else None
    out: dict[str, RunInfo] = {}
    cursor, followed = None, set[str]()
    while True:
        variables = {
            "entity": entity,
            "project": project,
            "filters": server_filter,
            "order": "-heartbeat_at",
            "cursor": cursor,
            "perPage": min(RUNS_FIRST_PAGE, per_page) if bound and cursor is None else per_page,
            **listed,
        }
        data = yield GraphQLCall(query, variables)
        runs = _project(data, entity, project)["runs"]
        page = [_run_info(edge["node"]) for edge in runs["edges"]]
        # a run that moved up between two pages is listed twice: the first listing (newest) counts
        out |= {r["id"]: r for r in page if r["id"] not in out and (bound is None or _heard_since(r, bound))}
        if not runs["pageInfo"]["hasNextPage"] or (bound and any(not _heard_since(r, bound) for r in page)):
            return list(out.values())
        cursor = _next_cursor(runs, followed, f"the runs of {entity}/{project}")


def _keyed(field: str, variable: str, keys: frozenset[str] | None) -> str:
    """A run's config or summary in a listing: only ``keys`` (``field(keys:)``, as W&B's own clients
    ask), the whole of it for ``None``, nothing when no key is needed."""
    if keys is None:
        return f" {field}"
    return f" {field}(keys: ${variable})" if keys else ""


def _heard_since(run: RunInfo, bound: datetime) -> bool:
    return bool(run["heartbeat_at"]) and parse_time(run["heartbeat_at"]) >= bound


def runs_filter(expr: Mapping[str, Any]) -> dict[str, Any]:
    """A run filter in the operators W&B's runs filters take: ``{"$not": x}`` (an automation filter's
    ``~``, not a runs-filter operator) is sent as ``{"$nor": [x]}``, which means the same."""

    def wire(node: Any) -> Any:
        if isinstance(node, list):
            return [wire(x) for x in node]
        if not isinstance(node, Mapping):
            return node
        out = {k: wire(v) if k in ("$and", "$or", "$nor") else v for k, v in node.items() if k != "$not"}
        if "$not" not in node:
            return out
        nor = {"$nor": [wire(node["$not"])]}
        return {"$and": [out, nor]} if out else nor

    return cast(dict[str, Any], wire(expr))


def _json_field(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value) if value else {}
    return value if isinstance(value, dict) else {}


def _run_info(node: dict[str, Any]) -> RunInfo:
    config = {
        k: v.get("value") if isinstance(v, dict) and "value" in v else v
        for k, v in _json_field(node.get("config")).items()
    }
    return RunInfo(
        id=node["name"],
        display_name=node.get("displayName"),
        state=node.get("state") or "",
        created_at=node.get("createdAt") or "",
        heartbeat_at=node.get("heartbeatAt") or "",
        history_line_count=int(node.get("historyLineCount") or 0),
        last_step=_last_step(node, node["name"]) if LAST_STEP_FIELD in node else None,
        tags=list(node.get("tags") or []),
        group=node.get("group"),
        job_type=node.get("jobType"),
        config=config,
        summary=_json_field(node.get("summaryMetrics")),
    )


def read_run_state(entity: str, project: str, run_id: str) -> Read[str | None]:
    q = """query WbautoRunState($entity: String!, $project: String!, $name: String!) {
      project(name: $project, entityName: $entity) { run(name: $name) { state } } }"""
    data = yield GraphQLCall(q, {"entity": entity, "project": project, "name": run_id})
    run = _project(data, entity, project).get("run")
    return run["state"] if run else None


def _last_step(node: dict[str, Any], run: str = "") -> int:
    last = _json_field(node.get(LAST_STEP_FIELD)).get("lastStep")
    return _step_of(last, run) if last is not None else -1


def _step_of(value: Any, run: str) -> int:
    """A step as W&B sent it (``5`` or ``5.0``: wandb-core's reader says the backend sends floats at
    times) as an int; a step that is not a whole number is a WandbError naming the run."""
    try:
        return history_step(value)
    except ValueError as exc:
        raise WandbError(f"W&B run {run}: {exc}") from None


def _stepped(rows: Iterable[dict[str, Any]], run: str) -> list[dict[str, Any]]:
    """History rows with ``_step`` an int, whichever number form W&B sent it in."""
    return [row | {"_step": _step_of(row.get("_step"), run)} for row in rows]


def _runs_query(name: str, fields: Sequence[str], decl: str = "") -> str:
    """One query reading ``fields[i]`` of run ``$n{i}`` (aliased ``r{i}``); ``decl`` declares more
    variables of each run, ``{i}`` standing for its number."""
    decls = "".join(f", $n{i}: String!" + decl.format(i=i) for i in range(len(fields)))
    parts = " ".join(f"r{i}: run(name: $n{i}) {{ {f} }}" for i, f in enumerate(fields))
    return (
        f"query {name}($entity: String!, $project: String!{decls}) {{"
        f" project(name: $project, entityName: $entity) {{ {parts} }} }}"
    )


def _run_node(node: dict[str, Any], i: int, entity: str, project: str, run_id: str) -> dict[str, Any]:
    got: dict[str, Any] | None = node.get(f"r{i}")
    if got is None:
        raise WandbError(f"W&B run {entity}/{project}/{run_id} does not exist")
    return got


LAST_STEPS_PER_REQUEST = 5  # historyKeys carries every key a run logged: ~52 KiB a run at 1,000 keys


def read_last_steps(entity: str, project: str, run_ids: Sequence[str], runs_per_request: int) -> Read[dict[str, int]]:
    """Each run's last history step (-1: none yet), a few runs a request (halved on a timeout or a 5xx)."""

    def call(batch: Sequence[str]) -> GraphQLCall:
        variables = {"entity": entity, "project": project} | {f"n{i}": rid for i, rid in enumerate(batch)}
        return GraphQLCall(_runs_query("WbautoLastSteps", [LAST_STEP_FIELD] * len(batch)), variables)

    out: dict[str, int] = {}
    size = min(runs_per_request, LAST_STEPS_PER_REQUEST)
    for batch, data in (yield from batched(list(run_ids), "last steps", size, call)):
        node = _project(data, entity, project)
        for i, rid in enumerate(batch):
            out[rid] = _last_step(_run_node(node, i, entity, project, rid), f"{entity}/{project}/{rid}")
    return out


@dataclass(frozen=True)
class HistoryMark:
    """Where a reader of one run's history stands, and what the run listing says of the run now.

    :param step: the last step read (``None``: none; take the run where it stands, reading nothing).
    :param lines: the run's history lines up to ``step`` (``None``: not known).
    :param lines_now: the run's history lines as listed (``historyLineCount``).
    :param last: the run's last step as listed (``None``: listed without it).
    """

    step: int | None
    lines: int | None
    lines_now: int
    last: int | None = None


@dataclass(frozen=True)
class RowsRead:
    """History rows of one run: every row of steps ``first..last`` inclusive, carrying (at most) ``keys``
    (none: every key); ``lines`` is the run's history lines up to ``last``."""

    first: int
    last: int
    lines: int
    keys: frozenset[str]
    rows: list[dict[str, Any]]


@dataclass
class _Reading:
    """One run's read in progress (``read_new_rows``): the next window starts at step ``at``."""

    mark: HistoryMark
    at: int
    last: int | None  # the run's last step, once known
    newest: int  # the newest step read
    counted: int = 0  # the lines read
    rows: list[dict[str, Any]] = field(default_factory=list)
    needs_last: bool = False
    done: bool = False

    @classmethod
    def of(cls, mark: HistoryMark) -> _Reading:
        first = 0 if mark.step is None else mark.step + 1
        reading = cls(mark, at=first, last=None, newest=first - 1)
        if mark.last is not None:
            reading.bound(mark.last)
        else:
            reading.needs_last = mark.step is None or mark.lines is None
        return reading

    def bound(self, last: int) -> None:
        """The run's last step, read: a run taken where it stands is read no further."""
        self.last, self.needs_last = last, False
        if self.mark.step is None:
            self.newest = last
        self.done = self.mark.step is None or self.at > last

    def upper(self, page: int) -> int:
        """The last step of the next window: never wider than a page, so never sampled."""
        return self.at + page - 1 if self.last is None else min(self.at + page - 1, self.last)

    def took(self, steps: list[int], rows: list[dict[str, Any]], upper: int, page: int) -> None:
        self.rows.extend(rows)
        self.counted += len(steps)
        self.newest = max([self.newest, *steps])
        self.at = upper + 1
        if self.last is not None:
            self.done = self.at > self.last
        elif len(steps) < page:  # a window not full: every line so far is read, unless the steps skip ahead
            lines = self.mark.lines
            self.done = lines is not None and lines + self.counted >= self.mark.lines_now
            self.needs_last = not self.done

    def result(self, keys: Sequence[str] | None) -> RowsRead:
        mark, keyset = self.mark, frozenset(keys or ())
        if mark.step is None:  # taken where it stands
            return RowsRead(self.newest + 1, self.newest, mark.lines_now, keyset, [])
        if self.last is None:
            assert mark.lines is not None, "a read without a last step counts from known lines"
            return RowsRead(mark.step + 1, self.newest, mark.lines + self.counted, keyset, self.rows)
        # never behind its mark: a rewound run goes on from there
        lines = mark.lines_now if mark.lines is None else max(mark.lines + self.counted, mark.lines_now)
        return RowsRead(mark.step + 1, max(self.last, mark.step), lines, keyset, self.rows)


def read_new_rows(
    entity: str,
    project: str,
    marks: Mapping[str, HistoryMark],
    keys: Sequence[str] | None,
    page: int,
    runs_per_request: int,
) -> Read[dict[str, RowsRead]]:
    """The rows each run logged after its mark, in step order, and where each read ends.

    Windows of ``page`` steps go on while full, or until the run's new lines (``lines_now`` less
    ``lines``) are read, so what a run logged before does not enter. Only a run whose steps skip past
    a window, or whose lines or position are unknown, has its last step read (``historyKeys``, with
    every key it logged). With ``keys``, one ``sampledHistory`` spec per key (a row needs only the key
    it carries) merged by step; the lines counted are the rows read, so a run whose lines do not all
    carry a key in use has its last step read to know its windows are read (W&B's clients send no
    spec without a metric key, so the lines of a window are not counted apart). A request covers up
    to ``runs_per_request`` runs, aliased, and at most ``ROWS_PER_REQUEST`` rows; after a timeout or a
    5xx, half as many runs (remembered for the connection).
    """
    reads = {rid: _Reading.of(mark) for rid, mark in marks.items()}
    out: dict[str, RowsRead] = {}
    wanted = BatchLimit("history", _history_runs(runs_per_request, page, len(keys or ()) or 1))
    limit: int = (yield wanted) if reads else 1
    while reads:
        unbounded = [rid for rid, r in reads.items() if r.needs_last]
        if unbounded:
            lasts = yield from read_last_steps(entity, project, unbounded, runs_per_request)
            for rid in unbounded:
                reads[rid].bound(lasts[rid])
        for rid in [rid for rid, r in reads.items() if r.done]:
            out[rid] = reads.pop(rid).result(keys)
        batch = [(rid, r, r.upper(page)) for rid, r in list(reads.items())[:limit]]
        if not batch:
            break
        variables: dict[str, Any] = {"entity": entity, "project": project}
        fields = []
        for i, (rid, r, upper) in enumerate(batch):
            variables[f"n{i}"] = rid
            if keys:
                window = {"minStep": r.at, "maxStep": upper, "samples": page}
                variables[f"s{i}"] = [json.dumps({"keys": ["_step", key]} | window) for key in keys]
                fields.append(f"sampledHistory(specs: $s{i})")
            else:
                fields.append(f"history(minStep: {r.at}, maxStep: {upper + 1}, samples: {page})")
        decl = ", $s{i}: [JSONString!]!" if keys else ""
        query = _runs_query("WbautoHistory", fields, decl)
        try:
            data = yield GraphQLCall(query, variables, batch=Batch("history", len(batch)))
        except BatchTooBig:  # timed out or a 5xx: the same windows, fewer runs a request
            limit = max(1, len(batch) // 2)
            continue
        node = _project(data, entity, project)
        for i, (rid, r, upper) in enumerate(batch):
            got, run = _run_node(node, i, entity, project, rid), f"{entity}/{project}/{rid}"
            if keys:
                rows = _merge_by_step(_stepped(spec_rows, run) for spec_rows in got["sampledHistory"])
            else:
                rows = _stepped((json.loads(row) for row in got["history"]), run)
            r.took([row["_step"] for row in rows], rows, upper, page)
    return out


ROWS_PER_REQUEST = 5000  # history rows one request may ask for: five of the SDK's 1,000-row pages


def _history_runs(runs_per_request: int, page: int, specs: int) -> int:
    """Runs one history request reads: ``runs_per_request``, fewer when their windows would ask for
    more than ``ROWS_PER_REQUEST`` rows (W&B's own clients read one run, one spec a request)."""
    return max(1, min(runs_per_request, ROWS_PER_REQUEST // (page * specs)))


def read_history(
    entity: str,
    project: str,
    windows: Mapping[str, tuple[int, int]],
    keys: Sequence[str] | None,
    page: int,
    runs_per_request: int,
) -> Read[dict[str, list[dict[str, Any]]]]:
    """History rows of several runs, each from ``first`` to ``last`` step inclusive, in step order."""
    marks = {rid: HistoryMark(first - 1, lines=None, lines_now=0, last=last) for rid, (first, last) in windows.items()}
    got = yield from read_new_rows(entity, project, marks, keys, page, runs_per_request)
    return {rid: got[rid].rows for rid in windows}


def _merge_by_step(per_key: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for spec_rows in per_key:
        for row in spec_rows:
            rows.setdefault(row["_step"], {}).update(row)
    return [rows[s] for s in sorted(rows)]


PROJECTS_QUERY = """query WbautoProjects($entity: String!, $cursor: String, $perPage: Int) {
  models(entityName: $entity, after: $cursor, first: $perPage) {
    edges { node { name } } pageInfo { endCursor hasNextPage } } }"""

# An organization's registries, as the SDK's FetchRegistries lists them (no filter: W&B answers
# registries only), with the organization's own entity, whose projects they are
REGISTRIES_QUERY = """query WbautoRegistries($organization: String!, $cursor: String, $perPage: Int) {
  organization(name: $organization) { orgEntity { name
    projects(after: $cursor, first: $perPage) { edges { node { name } } pageInfo { endCursor hasNextPage } } } } }"""


def read_projects(entity: str, *, organization: bool = False, per_page: int = PAGE) -> Read[tuple[str, list[str]]]:
    """The names of an entity's projects (registries included), as ``Api().projects(entity)`` lists them.

    With ``organization``, ``entity`` names an organization and its registries are listed, as
    ``Api().registries(organization)`` lists them; its own entity's name (whose projects they are)
    comes back with the names.
    """
    query, variables = (
        (REGISTRIES_QUERY, {"organization": entity}) if organization else (PROJECTS_QUERY, {"entity": entity})
    )
    names: list[str] = []
    cursor, followed = None, set[str]()
    while True:
        data = yield GraphQLCall(query, {**variables, "cursor": cursor, "perPage": per_page})
        if organization:
            org_entity = (data.get("organization") or {}).get("orgEntity")
            if not org_entity:
                raise WandbNotFoundError(f"W&B organization {entity} does not exist or is not visible to this API key")
            owner, page = org_entity["name"], org_entity["projects"]
        else:
            owner, page = entity, data.get("models")
            if page is None:
                raise WandbNotFoundError(f"W&B entity {entity} does not exist or is not visible to this API key")
        names += [edge["node"]["name"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return owner, sorted(set(names))
        cursor = _next_cursor(page, followed, f"the projects of {entity}")


def read_memberships(
    entity: str, project: str, collection: str | None = None, *, portfolios_only: bool = False, per_page: int = PAGE
) -> Read[list[MembershipInfo]]:
    """Every version in a collection (or in every collection of a project / registry), with aliases.

    The same read serves "version created" (a sequence's members), "linked" (a portfolio's members)
    and "alias added" (the alias ids of each membership: a moved or re-added alias has a new id).
    A project is read with each collection's first page nested in the page of collections, so a
    project of short collections costs one request; longer collections are paged on their own.
    """
    variables = {"entity": entity, "project": project, "perPage": per_page, "cursor": None}
    if collection is not None:
        return (yield from _members(variables, collection))
    kept = _is_portfolio if portfolios_only else None
    read: Read[list[MembershipInfo]] = _each_collection(
        ("WbautoProjectMemberships", "cursor", MEMBERSHIPS_PAGE), variables, "artifactMemberships", _members, kept
    )
    return (yield from read)


def _is_portfolio(collection: dict[str, Any]) -> bool:
    return bool(collection["__typename"] == "ArtifactPortfolio")


def _each_collection(
    first_pages: tuple[str, str, str],
    variables: dict[str, Any],
    nested: str,
    rest: Callable[[dict[str, Any], str, dict[str, Any]], Read[list[T]]],
    kept: Callable[[dict[str, Any]], bool] | None = None,
) -> Read[list[T]]:
    """What ``rest`` reads of every collection of a project (those ``kept`` says, when given), given
    the first page of its ``nested`` connection: the collections are listed, then their first pages
    are read ``COLLECTIONS_PER_REQUEST`` collections a request (``first_pages``: the operation's name,
    its cursor variable and the page's text)."""
    entity, project = variables["entity"], variables["project"]
    names: list[str] = []
    after, followed = None, set[str]()
    while True:
        data = yield GraphQLCall(COLLECTIONS_QUERY, {**variables, "collectionCursor": after})
        page = _project(data, entity, project)["artifactCollections"]
        names += [edge["node"]["name"] for edge in page["edges"] if kept is None or kept(edge["node"])]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = _next_cursor(page, followed, f"the collections of {entity}/{project}")
    operation, cursor_name, page_text = first_pages

    def first_pages_of(chunk: Sequence[str]) -> GraphQLCall:
        decl = "".join(f", $c{i}: String!" for i in range(len(chunk)))
        parts = " ".join(f"c{i}: artifactCollection(name: $c{i}) {{ {page_text} }}" for i in range(len(chunk)))
        query = (
            f"query {operation}($entity: String!, $project: String!, ${cursor_name}: String, $perPage: Int{decl}) {{"
            f" project(name: $project, entityName: $entity) {{ {parts} }} }}"
        )
        return GraphQLCall(query, {**variables, cursor_name: None, **{f"c{i}": c for i, c in enumerate(chunk)}})

    out: list[T] = []
    read = batched(names, "collections", COLLECTIONS_PER_REQUEST, first_pages_of) if names else None
    for chunk, data in (yield from read) if read else []:
        node = _project(data, entity, project)
        for i, name in enumerate(chunk):
            collection = node.get(f"c{i}")
            if collection is None:  # deleted between the two reads: nothing of it is present
                continue
            out += yield from rest(variables, name, collection[nested])
    return out


VERSION_FIELDS = """id state createdAt metadata versionIndex artifactType { name } tags { name }
  aliases { id alias artifactCollection { name } } artifactSequence { name project { name } }"""

NEWEST_VERSIONS_QUERY = """query WbautoNewestVersions($entity: String!, $project: String!, $collection: String!,
  $cursor: String, $perPage: Int, $order: String) {
  project(name: $project, entityName: $entity) { artifactCollection(name: $collection) {
    __typename tags { edges { node { name } } }
    artifacts(after: $cursor, first: $perPage, order: $order) {
      edges { version node { FIELDS } } pageInfo { endCursor hasNextPage } } } } }""".replace("FIELDS", VERSION_FIELDS)
# W&B's clients order a collection's versions by version index (the SDK's ProjectArtifacts takes an
# order; wandb/wandb's system test sends "-version_index"): newest first, whatever their times
VERSIONS_ORDER = "-version_index"

Stop = Callable[[list[MembershipInfo]], bool]  # given a page read newest first: is it the last one needed?


def read_newest_versions(
    entity: str, project: str, collection: str, *, stop: Stop, per_page: int = PAGE
) -> Read[tuple[list[MembershipInfo], bool]]:
    """A collection's versions, highest version index first, page by page until ``stop`` says a page
    is the last one needed; and whether older ones were left unread. What a watch of new versions
    reads: one small request when nothing is new, whatever the collection's length."""
    variables = {
        "entity": entity,
        "project": project,
        "collection": collection,
        "perPage": per_page,
        "order": VERSIONS_ORDER,
    }

    def versions(data: dict[str, Any]) -> tuple[dict[str, Any], list[MembershipInfo]]:
        coll = _project(data, entity, project).get("artifactCollection")
        if coll is None:
            raise WandbNotFoundError(f"W&B collection {entity}/{project}/{collection} does not exist")
        tags = [e["node"]["name"] for e in (coll.get("tags") or {}).get("edges", [])]
        page = coll["artifacts"]
        return page, [_version(edge, collection, coll["__typename"], tags) for edge in page["edges"]]

    return (yield from _pages(NEWEST_VERSIONS_QUERY, variables, versions, stop, "the versions of " + collection))


def links_ordered(entity: str) -> Read[bool]:
    """Can the links into ``entity``'s organization's registries be read newest first? Only where the
    organization has advanced search, probed as the SDK probes it before it sends any order."""
    organizations = yield from organizations_of(entity)
    return bool(organizations) and (yield from advanced_search(organizations[0]))


NEWEST_LINKS_QUERY = """query WbautoNewestLinks($entity: String!, $registry: JSONString, $collection: JSONString,
  $cursor: String, $perPage: Int, $order: String) {
  entity(name: $entity) { organization { orgEntity {
    artifactMemberships(projectFilters: $registry, collectionFilters: $collection, after: $cursor, first: $perPage,
      order: $order) {
      edges { node { FIELDS } } pageInfo { endCursor hasNextPage } } } } } }""".replace("FIELDS", MEMBERSHIP_FIELDS)
ALL_LINKS_QUERY = (
    NEWEST_LINKS_QUERY.replace("WbautoNewestLinks", "WbautoLinks")
    .replace(", $order: String", "")
    .replace(",\n      order: $order", "")
)
# The link-time order the SDK sends for registry versions, and only for an organization with
# advanced search (registries_search.py: any order is refused otherwise)
LINKS_ORDER = "-acm_created_at"


def read_newest_links(
    entity: str, registry: str, collection: str | None, *, stop: Stop, ordered: bool, per_page: int = PAGE
) -> Read[tuple[list[MembershipInfo], bool]]:
    """The links into a registry (or one of its collections), as the SDK's RegistryVersions reads them
    (the organization's ``artifactMemberships`` filtered by registry and collection). ``ordered``
    (the organization has advanced search): newest link first, until ``stop``; otherwise every link,
    in W&B's own order, which the SDK does not let a client choose: a poll costs O(links)."""
    variables: dict[str, Any] = {
        "entity": entity,
        "registry": json.dumps({"name": registry}, separators=(",", ":")),
        "perPage": per_page,
    }
    if collection:
        variables["collection"] = json.dumps({"name": collection}, separators=(",", ":"))
    if ordered:
        variables["order"] = LINKS_ORDER

    def links(data: dict[str, Any]) -> tuple[dict[str, Any], list[MembershipInfo]]:
        org_entity = ((data.get("entity") or {}).get("organization") or {}).get("orgEntity")
        if org_entity is None:
            raise WandbNotFoundError(f"W&B entity {entity} does not exist or has no organization")
        page = org_entity["artifactMemberships"]
        return page, [_membership(edge["node"]) for edge in page["edges"]]

    query = NEWEST_LINKS_QUERY if ordered else ALL_LINKS_QUERY
    return (yield from _pages(query, variables, links, stop if ordered else _never, "the links of " + registry))


def _never(_: list[MembershipInfo]) -> bool:
    return False


FIRST_PAGE = 5  # what a quiet poll of the newest versions or links reads: a few, newest first


def _pages(
    query: str,
    variables: dict[str, Any],
    page_of: Callable[[dict[str, Any]], tuple[dict[str, Any], list[MembershipInfo]]],
    stop: Stop,
    what: str,
) -> Read[tuple[list[MembershipInfo], bool]]:
    """Pages of a listing until ``stop`` says a page is the last one needed, or none is left; and
    whether some were left unread. The first page is short: a quiet poll needs only a few."""
    out: list[MembershipInfo] = []
    cursor, followed = None, set[str]()
    while True:
        size = variables["perPage"] if cursor else min(FIRST_PAGE, variables["perPage"])
        page, found = page_of((yield GraphQLCall(query, {**variables, "cursor": cursor, "perPage": size})))
        out += found
        more = bool(page["pageInfo"]["hasNextPage"])
        if not more or stop(found):
            return out, more
        cursor = _next_cursor(page, followed, what)


def _version(edge: dict[str, Any], collection: str, typename: str, collection_tags: list[str]) -> MembershipInfo:
    """A version listed by ``artifacts`` as a member of ``collection`` (its index there is the edge's)."""
    art = edge["node"]
    return MembershipInfo(
        id="",
        collection=collection,
        collection_type="PORTFOLIO" if typename == "ArtifactPortfolio" else "SEQUENCE",
        version_index=_index_of(art, edge.get("version")),
        created_at=art["createdAt"],
        aliases=[
            AliasInfo(id=a["id"], alias=a["alias"])
            for a in art.get("aliases") or []
            if (a.get("artifactCollection") or {}).get("name") == collection
        ],
        collection_tags=collection_tags,
        **_artifact_fields(art),
    )


def _index_of(art: dict[str, Any], version: Any) -> int:
    """A version's index in its collection: the edge's ``v3`` or the node's ``versionIndex``; -1 while
    W&B gives none (a version not committed yet may have no index)."""
    if isinstance(version, str) and version.removeprefix("v").isdigit():
        return int(version.removeprefix("v"))
    index = art.get("versionIndex")
    return int(index) if isinstance(index, int) else -1


VERSIONS_BY_ID_QUERY = "query WbautoVersionsById(DECL) { PARTS }"


def read_versions_by_id(
    collection: str, versions: Sequence[tuple[str, int]], per_request: int = 20
) -> Read[dict[str, MembershipInfo | None]]:
    """``artifact id -> the version`` as a member of ``collection`` (at the index given, or W&B's
    when -1), ``per_request`` a request (``None``: deleted). Re-reads the versions a watch saw uncommitted."""
    out: dict[str, MembershipInfo | None] = {}
    for start in range(0, len(versions), per_request):
        batch = versions[start : start + per_request]
        decl = ", ".join(f"$a{i}: ID!" for i in range(len(batch)))
        parts = " ".join(f"a{i}: artifact(id: $a{i}) {{ {VERSION_FIELDS} }}" for i in range(len(batch)))
        query = VERSIONS_BY_ID_QUERY.replace("DECL", decl).replace("PARTS", parts)
        data = yield GraphQLCall(query, {f"a{i}": artifact for i, (artifact, _) in enumerate(batch)})
        for i, (artifact, index) in enumerate(batch):
            node = data.get(f"a{i}")
            edge = {"version": f"v{index}" if index >= 0 else None, "node": node}
            out[artifact] = _version(edge, collection, "", []) if node else None
    return out


ALIASES_PAGE = (
    "aliases(after: $aliasCursor, first: $perPage) { edges { node { id alias } } pageInfo { endCursor hasNextPage } }"
)
COLLECTION_ALIASES_QUERY = """query WbautoCollectionAliases($entity: String!, $project: String!, $collection: String!,
  $aliasCursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) { artifactCollection(name: $collection) { name PAGE } } }""".replace(
    "PAGE", ALIASES_PAGE
)


class AliasRef(TypedDict):
    """An alias of a collection as its collection lists it, and the version it names now (``artifact_id``
    empty: none, it went between the two reads). W&B does not say whether an alias that moves keeps
    its id, so what an alias names is read, never inferred from its id."""

    collection: str
    id: str
    alias: str
    artifact_id: str
    version_index: int


def read_aliases(entity: str, project: str, collection: str | None, per_page: int = PAGE) -> Read[list[AliasRef]]:
    """The aliases of a collection, or of every collection of a project (nested: one request when no
    collection has more than a page of them), each with the version it names (looked up by
    ``collection:alias`` as the SDK does, 50 a request): O(aliases), whatever the number of versions."""
    variables: dict[str, Any] = {"entity": entity, "project": project, "perPage": per_page, "aliasCursor": None}
    if collection is not None:
        refs = yield from _collection_aliases(variables, collection)
    else:
        first_pages = ("WbautoProjectAliases", "aliasCursor", ALIASES_PAGE)
        refs = yield from _each_collection(first_pages, variables, "aliases", _collection_aliases)
    targets = yield from _alias_targets(entity, project, [(r["collection"], r["alias"]) for r in refs])
    for ref in refs:
        ref["artifact_id"], ref["version_index"] = targets.get((ref["collection"], ref["alias"]), ("", -1))
    return refs


ALIAS_TARGET_FIELDS = "versionIndex artifact { id }"


def _alias_targets(
    entity: str, project: str, refs: Sequence[tuple[str, str]], per_request: int = 50
) -> Read[dict[tuple[str, str], tuple[str, int]]]:
    """``(collection, alias) -> (artifact id, version index)`` of the version each alias names now."""
    got = yield from _by_alias(entity, project, refs, ALIAS_TARGET_FIELDS, per_request)
    return {ref: (node["artifact"]["id"], _index_of(node, None)) for ref, node in got.items() if node}


def _collection_aliases(
    variables: dict[str, Any], collection: str, page: dict[str, Any] | None = None
) -> Read[list[AliasRef]]:
    """The aliases of ``collection`` with their ids: those on ``page`` (when already read) and after."""

    def ref(node: dict[str, Any]) -> AliasRef:
        return AliasRef(collection=collection, id=node["id"], alias=node["alias"], artifact_id="", version_index=-1)

    return (
        yield from _collection_pages(
            COLLECTION_ALIASES_QUERY, "aliasCursor", "aliases", variables, collection, page, ref
        )
    )


def read_members_by_alias(
    entity: str, project: str, refs: Sequence[tuple[str, str]], per_request: int = 20
) -> Read[dict[tuple[str, str], MembershipInfo | None]]:
    """The membership each ``(collection, alias)`` names now (``None``: gone), ``per_request`` a request."""
    got = yield from _by_alias(entity, project, refs, MEMBERSHIP_FIELDS, per_request)
    return {ref: _membership(node) if node else None for ref, node in got.items()}


def _by_alias(
    entity: str, project: str, refs: Sequence[tuple[str, str]], fields: str, per_request: int
) -> Read[dict[tuple[str, str], dict[str, Any] | None]]:
    """``fields`` of the membership each ``(collection, alias)`` names (``None``: none), as the SDK looks
    a version up by name (``artifactCollectionMembership(name: "collection:alias")``)."""
    out: dict[tuple[str, str], dict[str, Any] | None] = {}
    refs = list(dict.fromkeys(refs))
    for start in range(0, len(refs), per_request):
        batch = refs[start : start + per_request]
        decl = "".join(f", $m{i}: String!" for i in range(len(batch)))
        parts = " ".join(f"m{i}: artifactCollectionMembership(name: $m{i}) {{ {fields} }}" for i in range(len(batch)))
        q = (
            f"query WbautoMembersByAlias($entity: String!, $project: String!{decl}) {{"
            f" project(name: $project, entityName: $entity) {{ {parts} }} }}"
        )
        variables = {"entity": entity, "project": project, **{f"m{i}": f"{c}:{a}" for i, (c, a) in enumerate(batch)}}
        node = _project((yield GraphQLCall(q, variables)), entity, project)
        for i, ref in enumerate(batch):
            out[ref] = node.get(f"m{i}")
    return out


def _members(
    variables: dict[str, Any], collection: str, page: dict[str, Any] | None = None
) -> Read[list[MembershipInfo]]:
    """The members of ``collection``: those on ``page`` (when already read) and on the pages after it."""
    read = _collection_pages(
        MEMBERSHIPS_QUERY, "cursor", "artifactMemberships", variables, collection, page, _membership
    )
    return (yield from read)


def _collection_pages(
    query: str,
    cursor_name: str,
    connection: str,
    variables: dict[str, Any],
    collection: str,
    page: dict[str, Any] | None,
    make: Callable[[dict[str, Any]], T],
) -> Read[list[T]]:
    """Every node of one of ``collection``'s connections, made by ``make``: those on ``page`` (when the
    caller read it nested in a page of collections), then page by page with ``query``."""
    out: list[T] = []
    cursor, followed = None, set[str]()
    while True:
        if page is None:
            data = yield GraphQLCall(query, {**variables, "collection": collection, cursor_name: cursor})
            entity, project = variables["entity"], variables["project"]
            coll = _project(data, entity, project).get("artifactCollection")
            if coll is None:
                raise WandbNotFoundError(f"W&B collection {entity}/{project}/{collection} does not exist")
            page = coll[connection]
        out += [make(edge["node"]) for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        cursor, page = _next_cursor(page, followed, f"the {connection} of {collection}"), None


def _membership(node: dict[str, Any]) -> MembershipInfo:
    art = node["artifact"]
    coll = node["artifactCollection"]
    return MembershipInfo(
        id=node["id"],
        collection=coll["name"],
        collection_type="PORTFOLIO" if coll["__typename"] == "ArtifactPortfolio" else "SEQUENCE",
        version_index=_index_of(node, None),
        created_at=node["createdAt"],
        aliases=[AliasInfo(id=a["id"], alias=a["alias"]) for a in node["aliases"]],
        collection_tags=[e["node"]["name"] for e in (coll.get("tags") or {}).get("edges", [])],
        **_artifact_fields(art),
    )


def _artifact_fields(art: dict[str, Any]) -> _ArtifactFields:
    """The version's own fields of a ``MembershipInfo``, from an ``Artifact`` node (however it was reached)."""
    seq = art["artifactSequence"]
    return _ArtifactFields(
        artifact_id=art["id"],
        artifact_state=art["state"],
        artifact_created_at=art["createdAt"],
        artifact_metadata=_json_field(art.get("metadata")),
        artifact_type=art["artifactType"]["name"],
        source_project=seq["project"]["name"],
        source_collection=seq["name"],
        source_version_index=_index_of(art, None),
        artifact_tags=[t["name"] for t in art.get("tags") or []],
    )
