"""GraphQL resolvers of the local W&B stand-in: the schema file bound to the SQLite store.

Nodes are plain dicts whose keys are the GraphQL field names (graphql-core's default resolver reads
them); fields that need another query get a resolver below. ``_pk`` keys carry row ids.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from graphql import OperationType

from .mongo_sql import Column, artifact_field, compile_filter, run_field
from .store import REGISTRY_PREFIX, Store, StoreError, gid, parse_gid
from .wire_options import CONTEXT_KEY, WireOptions

Node = dict[str, Any]
FEATURES = (
    # What the SDK probes before it sends `order` / `filters` to artifact collections, and before it asks
    # organization.advancedRegistryFeatures (wandb/apis/public/registries/_utils.py advanced_search_enabled).
    "ARTIFACT_COLLECTIONS_FILTERING_SORTING",
    "ARTIFACT_MEMBERSHIP_IN_LINK_ARTIFACT_RESPONSE",
    "ARTIFACT_REGISTRY_SEARCH",  # orgEntity.artifactMemberships: what Api().registries().versions() reads
    "AUTOMATION_EVENT_RUN_METRIC",
    "AUTOMATION_EVENT_RUN_METRIC_CHANGE",
    "AUTOMATION_EVENT_RUN_STATE",
)
MAX_PAGE = 1000
# What serverInfo.latestLocalVersionInfo answers (wandb-core's ServerInfo query reads it): the W&B server
# release whose GraphQL this stand-in follows (advancedRegistryFeatures came with 0.78), marked local in
# semver build metadata, which no version comparison looks at.
SERVER_VERSION = "0.78.0+local"


def _store(info: Any) -> Store:
    store: Store = info.context["store"]
    return store


def _wire(info: Any) -> WireOptions:
    """The request's wire options: the server's (``context["wire"]``), else the database's, read once."""
    wire: WireOptions | None = info.context.get(CONTEXT_KEY)
    if wire is None:
        wire = info.context[CONTEXT_KEY] = _store(info).wire
    return wire


def _float_step(step: Any, wire: WireOptions) -> Any:
    """``5`` as ``5.0`` for an odd step under ``float_steps``: W&B may answer a step as a float64."""
    if wire.float_steps and type(step) is int and step % 2:
        return float(step)
    return step


def _signed(order: str) -> tuple[bool, str]:
    """``"-name"`` -> (descending, "name"); no sign is ascending, as the SDK's OrderValidator reads it."""
    return order.startswith("-"), order.lstrip("+-")


# -- paging --------------------------------------------------------------------------------------


def _cursor(values: list[Any]) -> str:
    return base64.b64encode(json.dumps(values).encode()).decode()


def _uncursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        value = json.loads(base64.b64decode(cursor))
    except ValueError:
        raise StoreError(f"invalid cursor {cursor!r}") from None
    if not isinstance(value, list):
        raise StoreError(f"invalid cursor {cursor!r}")
    return value


def _page_size(first: int | None, default: int = 50) -> int:
    if first is None:
        return default
    if first < 0:
        raise StoreError("first must not be negative")
    return min(first, MAX_PAGE)


def _connection(nodes: list[Node], cursors: list[str], has_next: bool, **extra: Any) -> Node:
    edges = [{"node": n, "cursor": c} for n, c in zip(nodes, cursors, strict=True)]
    return {
        "edges": edges,
        "pageInfo": {
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
            "hasNextPage": has_next,
            "hasPreviousPage": False,
        },
        **extra,
    }


def _offset_page(
    store: Store,
    rows_sql: str,
    params: list[Any],
    after: str | None,
    first: int | None,
    make: Callable[[sqlite3.Row], Node],
) -> tuple[list[Node], list[str], bool]:
    """Offset paging for lists that only grow at the end (collections, versions, memberships)."""
    start = int((_uncursor(after) or [0])[0])
    size = _page_size(first)
    rows = store.query(rows_sql + " LIMIT ? OFFSET ?", [*params, size + 1, start])
    nodes = [make(r) for r in rows[:size]]
    return nodes, [_cursor([start + i + 1]) for i in range(len(nodes))], len(rows) > size


# -- node builders --------------------------------------------------------------------------------


def project_node(row: sqlite3.Row) -> Node:
    return {
        "_pk": row["id"],
        "id": gid("Project", row["id"]),
        "internalId": gid("ProjectInternalId", row["id"]),  # base64, as the SDK's decode_project_id reads it
        "name": row["name"],
        "entityName": row["entity"],
        "entity": entity_node(row["entity"]),
        "createdAt": row["created_at"],
        "updatedAt": row["created_at"],
        "description": None,
        "access": "PRIVATE",  # a registry visible to the whole organization (the SDK's Visibility)
        "allowAllArtifactTypesInRegistry": True,
        "readOnly": False,
        "isBenchmark": False,
        "user": USER,
    }


def entity_node(name: str) -> Node:
    """An entity that is its own organization: registries of ``acme`` live in ``acme``."""
    org: Node = {"id": gid("Organization", name), "name": name, "coreWeaveOrganizationId": None}
    user = {**USER, "entity": name, "organizations": [org]}
    node: Node = {"id": gid("Entity", name), "name": name, "organization": org, "user": user}
    org["orgEntity"] = {**node, "_org_entity": True}  # its projects are the organization's registries
    return node


USER: Node = {
    "id": gid("User", 1),
    "name": "local",
    "username": "local",
    "email": "local@localhost",
    "entity": None,
    "admin": True,
    "flags": "{}",
    "deletedAt": None,
    "apiKeys": {"edges": []},  # the local server has one key, and never shows it
    "organizations": [],
}


def run_node(row: sqlite3.Row) -> Node:
    return {
        "_pk": row["id"],
        "_project_pk": row["project_id"],
        "id": gid("Run", row["id"]),
        "name": row["name"],
        "displayName": row["display_name"],
        "state": row["state"],
        "projectId": str(row["project_id"]),
        "user": USER,
        "tags": json.loads(row["tags"]),
        "sweepName": None,
        "group": row["group_name"],
        "jobType": row["job_type"],
        "commit": None,
        "host": None,
        "readOnly": False,
        "createdAt": row["created_at"],
        "updatedAt": row["heartbeat_at"],
        "heartbeatAt": row["heartbeat_at"],
        "description": row["notes"],
        "notes": row["notes"],
        "historyLineCount": row["history_line_count"],
        "config": row["config"],
        "summaryMetrics": row["summary"],
        "systemMetrics": "{}",
        "historyKeys": json.loads(row["history_keys"]) or {"lastStep": -1, "keys": {}},
    }


def collection_node(row: sqlite3.Row) -> Node:
    return {
        "_pk": row["id"],
        "_project_pk": row["project_id"],
        "__typename": "ArtifactSequence" if row["kind"] == "SEQUENCE" else "ArtifactPortfolio",
        "id": gid("ArtifactCollection", row["id"]),
        "name": row["name"],
        "description": row["description"],
        "createdAt": row["created_at"],
        "updatedAt": row["created_at"],
        "defaultArtifactType": type_node(row["project_id"], row["type"]),
        "tags": {"edges": [{"node": tag_node(name)} for name in json.loads(row["tags"])]},
    }


def tag_node(name: str) -> Node:
    return {"id": gid("Tag", name), "name": name}


def type_node(project_pk: int, name: str) -> Node:
    return {"_project_pk": project_pk, "id": gid("ArtifactType", f"{project_pk}:{name}"), "name": name}


def artifact_node(row: sqlite3.Row) -> Node:
    return {
        "_pk": row["id"],
        "_sequence_pk": row["sequence_id"],
        "id": gid("Artifact", row["id"]),
        "versionIndex": row["version_index"],
        "description": row["description"],
        "metadata": row["metadata"],
        "ttlDurationSeconds": -1,
        "ttlIsInherited": True,
        "tags": [tag_node(name) for name in json.loads(row["tags"])],
        "historyStep": None,
        "state": row["state"],
        "size": row["size"],
        "digest": row["digest"],
        "digestAlgorithm": "MANIFEST_MD5",
        "commitHash": row["digest"][:12],
        "fileCount": row["file_count"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def membership_node(row: sqlite3.Row) -> Node:
    return {
        "_pk": row["id"],
        "_collection_pk": row["collection_id"],
        "_artifact_pk": row["artifact_id"],
        "id": gid("ArtifactCollectionMembership", row["id"]),
        "versionIndex": row["version_index"],
        "createdAt": row["created_at"],
    }


def alias_node(row: sqlite3.Row) -> Node:
    return {
        "_collection_pk": row["collection_id"],
        "_artifact_pk": row["artifact_id"],
        "id": gid("ArtifactAlias", row["id"]),
        "alias": row["alias"],
    }


# -- lookups ----------------------------------------------------------------------------------------


class Rows:
    """Rows by primary key, each read once per query request: a page of 100 members names the same
    collection, project and type 100 times, and ``prefetch`` reads a page's artifacts and aliases in one
    statement each. Mutations read afresh (``cached=False``): what they return follows their writes."""

    def __init__(self, store: Store, *, cached: bool) -> None:
        self.store, self.cached = store, cached
        self.rows: dict[tuple[str, int], sqlite3.Row | None] = {}
        self.member_aliases: dict[tuple[int, int], list[sqlite3.Row]] = {}

    def get(self, table: str, pk: int) -> sqlite3.Row | None:
        if (table, pk) not in self.rows or not self.cached:
            self.rows[(table, pk)] = self.store.one(f"SELECT * FROM {table} WHERE id=?", [pk])
        return self.rows[(table, pk)]

    def prefetch(self, table: str, pks: list[int]) -> None:
        todo = sorted({pk for pk in pks if (table, pk) not in self.rows})
        if not self.cached or not todo:
            return
        found = {r["id"]: r for r in self.store.query(f"SELECT * FROM {table} WHERE id IN ({_marks(todo)})", todo)}
        self.rows.update({(table, pk): found.get(pk) for pk in todo})

    def aliases(self, collection_pk: int, artifact_pk: int) -> list[sqlite3.Row]:
        key = (collection_pk, artifact_pk)
        if key not in self.member_aliases or not self.cached:
            self.member_aliases[key] = self.store.query(
                "SELECT * FROM alias WHERE collection_id=? AND artifact_id=? ORDER BY id", [collection_pk, artifact_pk]
            )
        return self.member_aliases[key]

    def prefetch_aliases(self, collection_pk: int, artifact_pks: list[int]) -> None:
        if not self.cached or not artifact_pks:
            return
        rows = self.store.query(
            f"SELECT * FROM alias WHERE collection_id=? AND artifact_id IN ({_marks(artifact_pks)}) ORDER BY id",
            [collection_pk, *artifact_pks],
        )
        for pk in artifact_pks:
            self.member_aliases[(collection_pk, pk)] = [r for r in rows if r["artifact_id"] == pk]


def _marks(values: list[Any]) -> str:
    return ",".join("?" for _ in values)


def _rows(info: Any) -> Rows:
    rows: Rows | None = info.context.get("rows")
    if rows is None:
        rows = info.context["rows"] = Rows(_store(info), cached=info.operation.operation == OperationType.QUERY)
    return rows


def _collection_by_pk(info: Any, pk: int) -> Node | None:
    row = _rows(info).get("collection", pk)
    return collection_node(row) if row else None


def _artifact_by_pk(info: Any, pk: int) -> Node | None:
    row = _rows(info).get("artifact", pk)
    return artifact_node(row) if row else None


def _project_by_pk(info: Any, pk: int) -> Node | None:
    row = _rows(info).get("project", pk)
    return project_node(row) if row else None


def _member(store: Store, project_pk: int, name: str) -> sqlite3.Row | None:
    """``collection:vN`` or ``collection:alias`` (``collection`` alone = ``:latest``)."""
    collection, _, version = name.partition(":")
    version = version or "latest"
    coll = store.one("SELECT id FROM collection WHERE project_id=? AND name=?", [project_pk, collection])
    if coll is None:
        return None
    if version.startswith("v") and version[1:].isdigit():
        return store.one(
            "SELECT * FROM membership WHERE collection_id=? AND version_index=?",
            [coll["id"], int(version[1:])],
        )
    return store.one(
        "SELECT m.* FROM membership m JOIN alias a ON a.collection_id=m.collection_id"
        " AND a.artifact_id=m.artifact_id WHERE m.collection_id=? AND a.alias=?",
        [coll["id"], version],
    )


# -- Query ------------------------------------------------------------------------------------------


def q_viewer(_: Any, info: Any) -> Node:
    entity = info.context.get("default_entity")
    teams = [{"node": entity_node(entity)}] if entity else []
    orgs = [entity_node(entity)["organization"]] if entity else []
    return {**USER, "entity": entity, "teams": {"edges": teams}, "organizations": orgs}


def q_server_info(_: Any, info: Any) -> Node:
    return {
        "features": [{"name": f, "isEnabled": True} for f in FEATURES],
        "cliVersionInfo": {},
        "latestLocalVersionInfo": {
            "outOfDate": False,
            "latestVersionString": SERVER_VERSION,
            "versionOnThisInstanceString": SERVER_VERSION,
        },
    }


def organization_advanced_features(org: Node, info: Any) -> Node:
    """``organization.advancedRegistryFeatures``, as the SDK's FetchAdvancedRegistryFeatures asks."""
    return {"advancedSearch": _store(info).advanced_search(org["name"])}


def _project_field(field: str) -> Column | None:
    """Registry (project) filter fields the SDK validates for FetchRegistries (BASIC_REGISTRIES_FILTER_FIELDS)."""
    columns = {
        "id": "project.id",
        "name": "project.name",
        "created_at": "project.created_at",
        "updated_at": "project.created_at",
        "description": "NULL",  # projects here have no description
    }
    return Column(columns[field]) if field in columns else None


_PROJECT_ORDER = {"name": "project.name", "created_at": "project.created_at", "updated_at": "project.created_at"}


def entity_projects(
    entity: Node,
    info: Any,
    filters: str | None = None,
    after: str | None = None,
    first: int | None = None,
    order: str | None = None,
) -> Node:
    """An entity's projects; reached as ``organization.orgEntity``, only the organization's registries
    (what the SDK's FetchRegistries lists). ``order`` takes the SDK's registry orders (``±name``,
    ``±created_at``, ``±updated_at``); without one, ascending id."""
    where, params = compile_filter(filters, _project_field)
    sql = f"SELECT project.* FROM project WHERE project.entity=? AND {where}"
    args: list[Any] = [entity["name"], *params]
    if entity.get("_org_entity"):
        sql += " AND substr(project.name, 1, ?) = ?"
        args += [len(REGISTRY_PREFIX), REGISTRY_PREFIX]
    ordering = "project.id ASC"
    if order:
        desc, name = _signed(order)
        if name not in _PROJECT_ORDER:
            raise StoreError(f"invalid order {order!r}: the projects' orders are {', '.join(sorted(_PROJECT_ORDER))}")
        direction = "DESC" if desc else "ASC"
        ordering = f"{_PROJECT_ORDER[name]} {direction}, project.id {direction}"
    nodes, cursors, more = _offset_page(_store(info), f"{sql} ORDER BY {ordering}", args, after, first, project_node)
    return _connection(nodes, cursors, more)


def q_entity(_: Any, info: Any, name: str | None = None) -> Node | None:
    return entity_node(name) if name else None


def q_organization(_: Any, info: Any, name: str | None = None) -> Node | None:
    return entity_node(name)["organization"] if name else None


def q_project(_: Any, info: Any, name: str | None = None, entityName: str | None = None) -> Node | None:
    entity = entityName or info.context.get("default_entity")
    row = _store(info).one("SELECT * FROM project WHERE entity=? AND name=?", [entity, name])
    return project_node(row) if row else None


def q_models(
    _: Any, info: Any, entityName: str | None = None, after: str | None = None, first: int | None = None
) -> Node:
    """An entity's projects (W&B's legacy name for them, as ``Api().projects()`` asks), oldest first."""
    entity = entityName or info.context.get("default_entity")
    nodes, cursors, more = _offset_page(
        _store(info), "SELECT * FROM project WHERE entity=? ORDER BY id", [entity], after, first, project_node
    )
    return _connection(nodes, cursors, more)


def q_artifact(_: Any, info: Any, id: str) -> Node | None:
    return _artifact_by_pk(info, parse_gid(id, "Artifact"))


def q_artifact_collection(_: Any, info: Any, id: str) -> Node | None:
    return _collection_by_pk(info, parse_gid(id, "ArtifactCollection"))


# -- Project ----------------------------------------------------------------------------------------

_RUN_ORDER = {  # Api.runs documents created_at, heartbeat_at, config.*.value, summary_metrics.*
    "created_at": "run.created_at",
    "createdAt": "run.created_at",
    "heartbeat_at": "run.heartbeat_at",
    "heartbeatAt": "run.heartbeat_at",
    "updated_at": "run.heartbeat_at",
    "updatedAt": "run.heartbeat_at",
    "name": "run.name",
    "display_name": "run.display_name",
    "history_line_count": "run.history_line_count",
}


def _run_order_column(name: str) -> str | None:
    """The SQL of a run order field: a column, or a config / summary value (``config.lr.value``,
    ``summary_metrics.loss``, as the SDK's docstring and its sweeps send them)."""
    if name in _RUN_ORDER:
        return _RUN_ORDER[name]
    if name.startswith(("config.", "summary_metrics.")):
        column = run_field(name)
        return column.sql if column is not None else None
    return None


def project_run_count(project: Node, info: Any, filters: str | None = None) -> int:
    where, params = compile_filter(filters, run_field)
    row = _store(info).one(f"SELECT COUNT(*) AS n FROM run WHERE project_id=? AND {where}", [project["_pk"], *params])
    return int(row["n"]) if row else 0


def project_runs(
    project: Node,
    info: Any,
    filters: str | None = None,
    after: str | None = None,
    first: int | None = None,
    order: str | None = None,
) -> Node:
    """Keyset paging on (order column, id), so runs updated between pages are neither skipped nor repeated."""
    where, params = compile_filter(filters, run_field)
    order = order or "+created_at"
    desc, name = _signed(order)
    column = _run_order_column(name)
    if column is None:
        if _wire(info).run_orders_known_only:
            known = ", ".join([*sorted(_RUN_ORDER), "config.<key>.value", "summary_metrics.<key>"])
            raise StoreError(f"invalid order {order!r}: the runs' orders are {known}")
        column = "run.created_at"
    size = _page_size(first)
    sql = f"SELECT run.*, {column} AS _order_value FROM run WHERE run.project_id=? AND {where}"
    args: list[Any] = [project["_pk"], *params]
    last = _uncursor(after)
    if last is not None:
        op = "<" if desc else ">"
        if last[0] is None:  # NULLs sort first: ascending, every value follows them; descending, none does
            sql += f" AND (({column} IS NULL AND run.id {op} ?){'' if desc else f' OR {column} IS NOT NULL'})"
            args += [last[1]]
        else:
            sql += (
                f" AND ({column} {op} ? OR ({column} = ? AND run.id {op} ?){f' OR {column} IS NULL' if desc else ''})"
            )
            args += [last[0], last[0], last[1]]
    direction = "DESC" if desc else "ASC"
    sql += f" ORDER BY {column} {direction}, run.id {direction} LIMIT ?"
    rows = _store(info).query(sql, [*args, size + 1])
    nodes = [run_node(r) for r in rows[:size]]
    cursors = [_cursor([r["_order_value"], r["id"]]) for r in rows[:size]]
    return _connection(nodes, cursors, len(rows) > size)


def project_run(project: Node, info: Any, name: str) -> Node | None:
    row = _store(info).one("SELECT * FROM run WHERE project_id=? AND name=?", [project["_pk"], name])
    return run_node(row) if row else None


def project_artifact_type(project: Node, info: Any, name: str) -> Node | None:
    row = _store(info).one("SELECT 1 FROM collection WHERE project_id=? AND type=?", [project["_pk"], name])
    return type_node(project["_pk"], name) if row else None


def project_artifact_types(
    project: Node, info: Any, after: str | None = None, first: int | None = None, includeAll: bool | None = None
) -> Node:
    nodes, cursors, more = _offset_page(
        _store(info),
        "SELECT DISTINCT type FROM collection WHERE project_id=? ORDER BY type",
        [project["_pk"]],
        after,
        first,
        lambda r: type_node(project["_pk"], r["type"]),
    )
    return _connection(nodes, cursors, more, totalCount=len(nodes))


def _collections(
    store: Store,
    sql_where: str,
    params: list[Any],
    after: str | None,
    first: int | None,
    kinds: list[str] | None,
) -> Node:
    if kinds:
        sql_where += " AND kind IN (" + ",".join("?" for _ in kinds) + ")"
        params = [*params, *kinds]
    total = store.query(f"SELECT COUNT(*) AS n FROM collection WHERE {sql_where}", params)[0]["n"]
    nodes, cursors, more = _offset_page(
        store,
        f"SELECT * FROM collection WHERE {sql_where} ORDER BY id",
        params,
        after,
        first,
        collection_node,
    )
    return _connection(nodes, cursors, more, totalCount=total)


def project_artifact_collections(
    project: Node,
    info: Any,
    after: str | None = None,
    first: int | None = None,
    filters: str | None = None,
    order: str | None = None,
    collectionTypes: list[str] | None = None,
) -> Node:
    return _collections(_store(info), "project_id=?", [project["_pk"]], after, first, collectionTypes)


def project_artifact_collection(project: Node, info: Any, name: str) -> Node | None:
    row = _store(info).one("SELECT * FROM collection WHERE project_id=? AND name=?", [project["_pk"], name])
    return collection_node(row) if row else None


def project_membership(project: Node, info: Any, name: str) -> Node | None:
    row = _member(_store(info), project["_pk"], name)
    return membership_node(row) if row else None


def project_artifact(project: Node, info: Any, name: str) -> Node | None:
    row = _member(_store(info), project["_pk"], name)
    return _artifact_by_pk(info, row["artifact_id"]) if row else None


# -- ArtifactType -------------------------------------------------------------------------------------


def type_collection(atype: Node, info: Any, name: str) -> Node | None:
    row = _store(info).one(
        "SELECT * FROM collection WHERE project_id=? AND type=? AND name=?",
        [atype["_project_pk"], atype["name"], name],
    )
    return collection_node(row) if row else None


def type_collections(atype: Node, info: Any, after: str | None = None, first: int | None = None, **_: Any) -> Node:
    return _collections(
        _store(info), "project_id=? AND type=?", [atype["_project_pk"], atype["name"]], after, first, None
    )


def type_artifact(atype: Node, info: Any, name: str) -> Node | None:
    row = _member(_store(info), atype["_project_pk"], name)
    return _artifact_by_pk(info, row["artifact_id"]) if row else None


# -- ArtifactCollection ---------------------------------------------------------------------------------


def collection_project(coll: Node, info: Any) -> Node | None:
    return _project_by_pk(info, coll["_project_pk"])


VERSION_ORDERS = ("+version_index", "-version_index", "version_index")  # wandb tests/.../test_artifact_public_api.py
REGISTRY_VERSION_ORDERS = {  # the SDK's ADVANCED_VERSIONS_ORDER_FIELDS, each sent signed (its OrderValidator)
    "artifact_created_at": "artifact.created_at",
    "artifact_size": "artifact.size",
    "acm_created_at": "m.created_at",
}


def collection_artifacts(
    coll: Node,
    info: Any,
    after: str | None = None,
    first: int | None = None,
    order: str | None = None,
    filters: str | None = None,
) -> Node:
    """A collection's versions. Strict (``version_index_orders``): only the orders W&B's clients send,
    ``±version_index``, and ascending version index without one. Lenient: also ``createdAt`` /
    ``created_at`` / ``versionIndex``, and newest first without one (or with any other order)."""
    where, params = compile_filter(filters, artifact_field)
    if _wire(info).version_index_orders:
        if order not in (None, *VERSION_ORDERS):
            raise StoreError(
                f"invalid order {order!r}: a collection's versions are ordered by {', '.join(VERSION_ORDERS)}"
            )
        column, direction = "m.version_index", "DESC" if (order or "").startswith("-") else "ASC"
    else:
        field = (order or "").lstrip("+-")
        column = {"createdAt": "artifact.created_at", "created_at": "artifact.created_at"}.get(field, "m.version_index")
        known = field in ("versionIndex", "createdAt", "created_at")
        direction = "ASC" if known and not (order or "").startswith("-") else "DESC"  # newest first by default
    base = f"FROM membership m JOIN artifact ON artifact.id=m.artifact_id WHERE m.collection_id=? AND {where}"
    args = [coll["_pk"], *params]
    total = _store(info).one(f"SELECT COUNT(*) AS n {base}", args)
    nodes, cursors, more = _offset_page(
        _store(info),
        f"SELECT artifact.*, m.version_index AS member_index {base}"
        f" ORDER BY {column} {direction}, m.version_index {direction}",
        args,
        after,
        first,
        lambda r: {"_node": artifact_node(r), "version": f"v{r['member_index']}"},
    )
    edges = [{"node": n["_node"], "version": n["version"], "cursor": c} for n, c in zip(nodes, cursors, strict=True)]
    page = _connection([], [], more, totalCount=total["n"] if total else 0)
    page["edges"] = edges
    page["pageInfo"]["endCursor"] = cursors[-1] if cursors else None
    return page


def collection_aliases(coll: Node, info: Any, after: str | None = None, first: int | None = None) -> Node:
    nodes, cursors, more = _offset_page(
        _store(info),
        "SELECT * FROM alias WHERE collection_id=? ORDER BY id",
        [coll["_pk"]],
        after,
        first,
        alias_node,
    )
    return _connection(nodes, cursors, more)


def collection_memberships(
    coll: Node, info: Any, after: str | None = None, first: int | None = None, order: str | None = None
) -> Node:
    direction = "DESC" if (order or "").startswith("-") else "ASC"
    nodes, cursors, more = _offset_page(
        _store(info),
        f"SELECT * FROM membership WHERE collection_id=? ORDER BY id {direction}",
        [coll["_pk"]],
        after,
        first,
        membership_node,
    )
    rows, artifacts = _rows(info), [n["_artifact_pk"] for n in nodes]  # what the page's fields will ask for
    rows.prefetch("artifact", artifacts)
    rows.prefetch("collection", [r["sequence_id"] for pk in artifacts if (r := rows.get("artifact", pk))])
    rows.prefetch_aliases(coll["_pk"], artifacts)
    return _connection(nodes, cursors, more)


def entity_memberships(
    entity: Node,
    info: Any,
    projectFilters: str | None = None,
    collectionFilters: str | None = None,
    filters: str | None = None,
    after: str | None = None,
    first: int | None = None,
    order: str | None = None,
) -> Node:
    """An organization's registry links (``orgEntity.artifactMemberships``, as the SDK's RegistryVersions
    asks): the portfolio memberships of its projects, filtered by registry and collection name or id.
    Ordered as ``_registry_order`` says (strict), or (lenient) newest first unless ``order`` is ``+…``."""
    where, params = ["p.entity=?", "c.kind='PORTFOLIO'"], [entity["name"]]
    for table, given in (("p", projectFilters), ("c", collectionFilters)):
        for column, value in _equalities(given, "projectFilters" if table == "p" else "collectionFilters").items():
            where.append(f"{table}.{column}=?")
            params.append(value)
    artifact_where, artifact_params = compile_filter(filters, artifact_field)
    if _wire(info).registry_orders_need_advanced_search:
        ordering = _registry_order(_store(info), entity["name"], order)
    else:
        direction = "DESC" if (order or "-createdAt").startswith("-") else "ASC"
        ordering = f"m.created_at {direction}, m.id {direction}"
    nodes, cursors, more = _offset_page(
        _store(info),
        "SELECT m.* FROM membership m JOIN collection c ON c.id=m.collection_id JOIN project p ON p.id=c.project_id"
        f" JOIN artifact ON artifact.id=m.artifact_id WHERE {' AND '.join(where)} AND {artifact_where}"
        f" ORDER BY {ordering}",
        [*params, *artifact_params],
        after,
        first,
        membership_node,
    )
    rows, artifacts = _rows(info), [n["_artifact_pk"] for n in nodes]
    rows.prefetch("artifact", artifacts)
    rows.prefetch("collection", [n["_collection_pk"] for n in nodes])
    return _connection(nodes, cursors, more)


def _registry_order(store: Store, organization: str, order: str | None) -> str:
    """The ORDER BY of an organization's registry versions (strict): ascending membership id without an
    order; an order only where the organization has advanced search, and then only as the SDK sends it."""
    if order is None:
        return "m.id ASC"
    if not store.advanced_search(organization):
        raise StoreError(
            f"invalid order {order!r}: ordering registry versions needs advanced search, which organization"
            f" {organization!r} does not have"
        )
    desc, name = _signed(order)
    if order[:1] not in "+-" or name not in REGISTRY_VERSION_ORDERS:
        named = ", ".join(f"{sign}{n}" for n in REGISTRY_VERSION_ORDERS for sign in "+-")
        raise StoreError(f"invalid order {order!r}: registry versions are ordered by {named}")
    direction = "DESC" if desc else "ASC"
    return f"{REGISTRY_VERSION_ORDERS[name]} {direction}, m.id {direction}"


def _equalities(filters: str | None, argument: str) -> dict[str, Any]:
    """``{"name": ...}`` / ``{"id": ...}`` of a registry or collection filter, the forms the SDK sends."""
    given = json.loads(filters) if filters else {}
    scalars = isinstance(given, dict) and all(isinstance(v, str | int) for v in given.values())
    if not scalars or not set(given) <= {"name", "id"}:
        raise StoreError(f"{argument}: only {{'name': ...}} and {{'id': ...}} are served here; got {filters}")
    return given


def sequence_latest(coll: Node, info: Any) -> Node | None:
    row = _store(info).one(
        "SELECT * FROM artifact WHERE sequence_id=? ORDER BY version_index DESC LIMIT 1", [coll["_pk"]]
    )
    return artifact_node(row) if row else None


# -- Artifact, alias, membership ------------------------------------------------------------------------


def artifact_sequence(art: Node, info: Any) -> Node | None:
    return _collection_by_pk(info, art["_sequence_pk"])


def artifact_type(art: Node, info: Any) -> Node:
    row = _rows(info).get("collection", art["_sequence_pk"])
    assert row is not None
    return type_node(row["project_id"], row["type"])


def artifact_aliases(art: Node, info: Any) -> list[Node]:
    rows = _store(info).query("SELECT * FROM alias WHERE artifact_id=? ORDER BY id", [art["_pk"]])
    return [alias_node(r) for r in rows]


def artifact_memberships(art: Node, info: Any, after: str | None = None, first: int | None = None) -> Node:
    nodes, cursors, more = _offset_page(
        _store(info),
        "SELECT * FROM membership WHERE artifact_id=? ORDER BY id",
        [art["_pk"]],
        after,
        first,
        membership_node,
    )
    return _connection(nodes, cursors, more)


def artifact_version_index(art: Node, info: Any) -> int | None:
    """``null`` for a version not yet committed under ``pending_versions_unindexed``: the SDK's
    ArtifactFragment declares ``versionIndex`` optional, so W&B may leave it unset until the commit."""
    if art["state"] == "PENDING" and _wire(info).pending_versions_unindexed:
        return None
    index: int = art["versionIndex"]
    return index


def membership_version_index(member: Node, info: Any) -> int | None:
    """As ``artifact_version_index``, for the membership of a pending version (ArtifactMembershipFragment:
    ``version_index: int | None``)."""
    if _wire(info).pending_versions_unindexed:
        row = _rows(info).get("artifact", member["_artifact_pk"])
        if row is not None and row["state"] == "PENDING":
            return None
    index: int = member["versionIndex"]
    return index


def alias_collection(alias: Node, info: Any) -> Node | None:
    return _collection_by_pk(info, alias["_collection_pk"])


def alias_artifact(alias: Node, info: Any) -> Node | None:
    return _artifact_by_pk(info, alias["_artifact_pk"])


def membership_aliases(member: Node, info: Any) -> list[Node]:
    return [alias_node(r) for r in _rows(info).aliases(member["_collection_pk"], member["_artifact_pk"])]


# -- Run --------------------------------------------------------------------------------------------------


def run_project(run: Node, info: Any) -> Node | None:
    return _project_by_pk(info, run["_project_pk"])


def run_history(
    run: Node, info: Any, samples: int | None = None, minStep: int | None = None, maxStep: int | None = None
) -> list[str]:
    """Rows with ``minStep <= _step < maxStep`` in step order, at most ``samples`` of them (never sampled)."""
    sql = "SELECT row FROM history WHERE run_id=? AND step >= ?"
    args: list[Any] = [run["_pk"], minStep if minStep is not None else -(2**63)]
    if maxStep is not None:
        sql += " AND step < ?"
        args.append(maxStep)
    sql += " ORDER BY step LIMIT ?"
    args.append(samples if samples is not None else 500)
    sql = sql.replace("SELECT row", "SELECT step, row", 1)
    wire = _wire(info)
    out = []
    for r in _store(info).query(sql, args):
        step = _float_step(r["step"], wire)
        out.append(r["row"] if type(step) is int else _with_step(r["row"], step))
    return out


def _with_step(text: str, step: Any) -> str:
    row = json.loads(text)
    row["_step"] = step
    return json.dumps(row, allow_nan=True)


def run_history_keys(run: Node, info: Any) -> Any:
    keys = run["historyKeys"]
    return {**keys, "lastStep": _float_step(keys.get("lastStep", -1), _wire(info))}


def _only_keys(text: str, keys: list[str] | None) -> str:
    """``summaryMetrics(keys:)`` / ``config(keys:)``: only the keys asked for (all without ``keys``)."""
    if keys is None:
        return text
    whole = json.loads(text)
    return json.dumps({k: whole[k] for k in keys if k in whole}, allow_nan=True)


def run_sampled_history(run: Node, info: Any, specs: list[str]) -> list[list[Node]]:
    """Per spec, the rows holding every key of ``keys``, projected to those keys, in step order.

    Unlike ``history``, ``maxStep`` is inclusive here: wandb-core 0.31 pages ``scan_history(keys=...)``
    with ``minStep=k*n, maxStep=minStep+n-1`` (measured). A window no wider than ``samples`` is exact.
    """
    out, wire = [], _wire(info)
    for raw in specs:
        spec = json.loads(raw) if isinstance(raw, str) else raw
        keys = list(dict.fromkeys(spec.get("keys") or []))
        limit = int(spec.get("samples") or 500)
        sql = "SELECT row FROM history WHERE run_id=? AND step >= ?"
        args: list[Any] = [run["_pk"], spec.get("minStep", -(2**63))]
        if spec.get("maxStep") is not None:
            sql += " AND step <= ?"
            args.append(spec["maxStep"])
        for key in keys:
            sql += " AND json_type(row, ?) IS NOT NULL"
            args.append("$." + json.dumps(key))
        sql += " ORDER BY step LIMIT ?"
        rows = [json.loads(r["row"]) for r in _store(info).query(sql, [*args, limit])]
        picked = [{k: row[k] for k in keys} if keys else row for row in rows]
        for row in picked:
            if "_step" in row:
                row["_step"] = _float_step(row["_step"], wire)
        out.append(picked)
    return out


def run_parquet_history(run: Node, info: Any, liveKeys: list[str]) -> Node:
    # No parquet exports here: the client falls back to paging sampledHistory / history.
    return {"parquetUrls": [], "liveData": []}


def run_events(run: Node, info: Any, samples: int | None = None) -> list[str]:
    return []


# -- Mutations ---------------------------------------------------------------------------------------------


def m_create_run_files(_: Any, info: Any, input: dict[str, Any]) -> Node:
    """Upload addresses of the run's files on this server itself; the SDK PUTs to them without an
    Authorization header, so each carries a token (``signed``) that only this server can make."""
    entity, project, run = input["entityName"], input["projectName"], input["runName"]
    pk = _store(info).run_pk(entity, project, run)
    signed = info.context["signed"]
    return {
        "runID": gid("Run", pk),
        "uploadHeaders": [],
        "files": [{"name": n, "uploadUrl": signed("PUT", "files", entity, project, run, n)} for n in input["files"]],
        "clientMutationId": input.get("clientMutationId"),
    }


def m_upsert_bucket(_: Any, info: Any, input: dict[str, Any]) -> Node:
    store = _store(info)
    entity = input.get("entityName") or info.context.get("default_entity")
    project = input.get("modelName") or "uncategorized"
    if not entity or not input.get("name"):
        raise StoreError("upsertBucket needs entityName and name")
    existed = store.one(
        "SELECT 1 FROM run JOIN project p ON p.id=run.project_id WHERE p.entity=? AND p.name=? AND run.name=?",
        [entity, project, input["name"]],
    )
    config = json.loads(input["config"]) if input.get("config") else None
    summary = json.loads(input["summaryMetrics"]) if input.get("summaryMetrics") else None
    pk = store.upsert_run(
        entity,
        project,
        input["name"],
        display_name=input.get("displayName"),
        state=input.get("state"),
        tags=input.get("tags"),
        config=config,
        summary=summary,
        group=input.get("groupName"),
        job_type=input.get("jobType"),
        notes=input.get("notes"),
    )
    row = store.one("SELECT * FROM run WHERE id=?", [pk])
    assert row is not None
    return {"bucket": run_node(row), "inserted": existed is None}


def _alias_targets(store: Store, artifact_pk: int, aliases: list[dict[str, Any]]) -> list[tuple[int, str]]:
    seq = store.one(
        "SELECT c.name, p.entity, p.name AS project FROM artifact a JOIN collection c ON c.id=a.sequence_id"
        " JOIN project p ON p.id=c.project_id WHERE a.id=?",
        [artifact_pk],
    )
    if seq is None:
        raise StoreError(f"artifact {artifact_pk} does not exist")
    out = []
    for item in aliases:
        cid = store.collection_id(
            item.get("entityName") or seq["entity"],
            item.get("projectName") or seq["project"],
            item["artifactCollectionName"],
        )
        out.append((cid, item["alias"]))
    return out


def m_add_aliases(_: Any, info: Any, input: dict[str, Any]) -> Node:
    store = _store(info)
    pk = parse_gid(input["artifactID"], "Artifact")
    with store.transaction():
        for cid, alias in _alias_targets(store, pk, input["aliases"]):
            store.add_aliases(pk, cid, [alias])
    return {"success": True, "clientMutationId": input.get("clientMutationId")}


def m_delete_aliases(_: Any, info: Any, input: dict[str, Any]) -> Node:
    store = _store(info)
    pk = parse_gid(input["artifactID"], "Artifact")
    with store.transaction():
        for cid, alias in _alias_targets(store, pk, input["aliases"]):
            store.remove_aliases(pk, cid, [alias])
    return {"success": True, "clientMutationId": input.get("clientMutationId")}


def m_link_artifact(_: Any, info: Any, input: dict[str, Any]) -> Node:
    store = _store(info)
    if not input.get("artifactID"):
        raise StoreError("linkArtifact needs artifactID")
    pk = parse_gid(input["artifactID"], "Artifact")
    aliases = [a["alias"] for a in input.get("aliases") or []]
    with store.transaction():
        index = store.link(
            pk, input["entityName"], input["projectName"], input["artifactPortfolioName"], aliases=aliases
        )
        cid = store.collection_id(input["entityName"], input["projectName"], input["artifactPortfolioName"])
        row = store.one("SELECT * FROM membership WHERE collection_id=? AND artifact_id=?", [cid, pk])
    assert row is not None
    return {
        "versionIndex": index,
        "artifactMembership": membership_node(row),
        "clientMutationId": input.get("clientMutationId"),
    }


def m_unlink_artifact(_: Any, info: Any, input: dict[str, Any]) -> Node:
    store = _store(info)
    store.unlink(
        parse_gid(input["artifactID"], "Artifact"),
        parse_gid(input["artifactPortfolioID"], "ArtifactCollection"),
    )
    return {"success": True, "clientMutationId": input.get("clientMutationId")}


def _tag_names(tags: list[dict[str, Any]] | None) -> list[str]:
    return [t["tagName"] for t in tags or []]


def m_update_artifact(_: Any, info: Any, input: dict[str, Any]) -> Node:
    """Tags added and removed, description and metadata replaced, and with ``aliases`` (what SDKs before
    addAliases / deleteAliases send) the version's aliases in each collection named made exactly those,
    ``latest`` staying where it is."""
    store = _store(info)
    pk = parse_gid(input["artifactID"], "Artifact")
    metadata = json.loads(input["metadata"]) if input.get("metadata") else None
    with store.transaction():
        store.update_version(
            pk,
            add_tags=_tag_names(input.get("tagsToAdd")),
            remove_tags=_tag_names(input.get("tagsToDelete")),
            description=input.get("description"),
            metadata=metadata,
        )
        wanted: dict[int, list[str]] = {}
        for cid, alias in _alias_targets(store, pk, input.get("aliases") or []):
            wanted.setdefault(cid, []).append(alias)
        for cid, names in wanted.items():
            held = [r["alias"] for r in _rows(info).aliases(cid, pk)]
            store.set_aliases(pk, cid, [*names, *(["latest"] if "latest" in held else [])])
    return {"artifact": _artifact_by_pk(info, pk), "clientMutationId": input.get("clientMutationId")}


def _collection_of(store: Store, input: dict[str, Any]) -> int:
    return store.collection_id(input["entityName"], input["projectName"], input["artifactCollectionName"])


def m_add_collection_tags(_: Any, info: Any, input: dict[str, Any]) -> Node:
    store = _store(info)
    tags = store.update_collection_tags(_collection_of(store, input), add=_tag_names(input["tags"]))
    added = set(_tag_names(input["tags"]))
    return {"tags": [tag_node(t) for t in tags if t in added], "clientMutationId": input.get("clientMutationID")}


def m_delete_collection_tags(_: Any, info: Any, input: dict[str, Any]) -> Node:
    store = _store(info)
    store.update_collection_tags(_collection_of(store, input), remove=_tag_names(input["tags"]))
    return {"success": True, "clientMutationId": input.get("clientMutationID")}


def m_update_collection(kind: str) -> Callable[..., Node]:
    """``updateArtifactSequence`` / ``updateArtifactPortfolio``: a new name or description."""

    def update(_: Any, info: Any, input: dict[str, Any]) -> Node:
        store = _store(info)
        pk = parse_gid(input[f"artifact{kind}ID"], "ArtifactCollection")
        store.update_collection(pk, name=input.get("name"), description=input.get("description"))
        return {"artifactCollection": _collection_by_pk(info, pk), "clientMutationId": input.get("clientMutationId")}

    return update


# -- binding ------------------------------------------------------------------------------------------------

RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "Query": {
        "viewer": q_viewer,
        "serverInfo": q_server_info,
        "entity": q_entity,
        "organization": q_organization,
        "project": q_project,
        "models": q_models,
        "artifact": q_artifact,
        "artifactCollection": q_artifact_collection,
    },
    "Mutation": {
        "upsertBucket": m_upsert_bucket,
        "linkArtifact": m_link_artifact,
        "unlinkArtifact": m_unlink_artifact,
        "addAliases": m_add_aliases,
        "deleteAliases": m_delete_aliases,
        "updateArtifact": m_update_artifact,
        "createRunFiles": m_create_run_files,
        "createArtifactCollectionTagAssignments": m_add_collection_tags,
        "deleteArtifactCollectionTagAssignments": m_delete_collection_tags,
        "updateArtifactSequence": m_update_collection("Sequence"),
        "updateArtifactPortfolio": m_update_collection("Portfolio"),
    },
    "Project": {
        "runCount": project_run_count,
        "runs": project_runs,
        "run": project_run,
        "artifactType": project_artifact_type,
        "artifactTypes": project_artifact_types,
        "artifactCollections": project_artifact_collections,
        "artifactCollection": project_artifact_collection,
        "artifactCollectionMembership": project_membership,
        "artifact": project_artifact,
    },
    "Entity": {"artifactMemberships": entity_memberships, "projects": entity_projects},
    "Organization": {"advancedRegistryFeatures": organization_advanced_features},
    "ArtifactType": {
        "artifactCollection": type_collection,
        "artifactCollections": type_collections,
        "artifact": type_artifact,
    },
    "Artifact": {
        "artifactSequence": artifact_sequence,
        "artifactType": artifact_type,
        "aliases": artifact_aliases,
        "artifactMemberships": artifact_memberships,
        "versionIndex": artifact_version_index,
    },
    "ArtifactAlias": {"artifactCollection": alias_collection, "artifact": alias_artifact},
    "ArtifactCollectionMembership": {
        "aliases": membership_aliases,
        "versionIndex": membership_version_index,
        "artifactCollection": lambda m, info: _collection_by_pk(info, m["_collection_pk"]),
        "artifact": lambda m, info: _artifact_by_pk(info, m["_artifact_pk"]),
    },
    "Run": {
        "project": run_project,
        "history": run_history,
        "sampledHistory": run_sampled_history,
        "parquetHistory": run_parquet_history,
        "events": run_events,
        "historyKeys": run_history_keys,
        "summaryMetrics": lambda run, info, keys=None: _only_keys(run["summaryMetrics"], keys),
        "config": lambda run, info, keys=None: _only_keys(run["config"], keys),
    },
}
_COLLECTION_FIELDS: dict[str, Callable[..., Any]] = {
    "project": collection_project,
    "artifacts": collection_artifacts,
    "aliases": collection_aliases,
    "artifactMemberships": collection_memberships,
}
RESOLVERS["ArtifactSequence"] = {**_COLLECTION_FIELDS, "latestArtifact": sequence_latest}
RESOLVERS["ArtifactPortfolio"] = dict(_COLLECTION_FIELDS)
