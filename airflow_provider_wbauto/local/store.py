"""SQLite storage of the local W&B stand-in, and the small Python API that records a scenario.

Everything W&B shows through GraphQL lives in a handful of tables: projects, runs, history rows
(keyed by ``(run, step)`` so a step-range read is an index seek whatever the run's length),
collections (a source ``SEQUENCE`` or a registry/linked ``PORTFOLIO``), artifact versions,
memberships of versions in collections (a version is a member of its own sequence too) and aliases.
An alias moved to another version keeps its row and id (``WireOptions.alias_ids_move_in_place``, the
strict default: W&B does not say which it does), or, lenient, is deleted and inserted with a new id.
The wire options themselves are kept in the database (``setting``), so that the server and a test
process recording into the same file agree; organizations (``organization``) hold the flags W&B
keeps per organization, such as advanced registry search.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ..evaluation.mongo import regex
from .wire_options import WireOptions

SCHEMA = """
CREATE TABLE IF NOT EXISTS project (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, name TEXT NOT NULL,
    created_at TEXT NOT NULL, UNIQUE (entity, name));
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL REFERENCES project(id),
    name TEXT NOT NULL, display_name TEXT, state TEXT NOT NULL DEFAULT 'running',
    created_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]',
    config TEXT NOT NULL DEFAULT '{}', summary TEXT NOT NULL DEFAULT '{}',
    history_keys TEXT NOT NULL DEFAULT '{}', last_step INTEGER NOT NULL DEFAULT -1,
    history_line_count INTEGER NOT NULL DEFAULT 0, group_name TEXT, job_type TEXT, notes TEXT,
    streamed INTEGER NOT NULL DEFAULT 0, UNIQUE (project_id, name));
CREATE INDEX IF NOT EXISTS run_by_heartbeat ON run (project_id, heartbeat_at);
CREATE TABLE IF NOT EXISTS history (
    run_id INTEGER NOT NULL, step INTEGER NOT NULL, row TEXT NOT NULL,
    PRIMARY KEY (run_id, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collection (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL REFERENCES project(id),
    name TEXT NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('SEQUENCE', 'PORTFOLIO')),
    description TEXT, created_at TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]', UNIQUE (project_id, name));
CREATE TABLE IF NOT EXISTS artifact (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sequence_id INTEGER NOT NULL REFERENCES collection(id),
    version_index INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'COMMITTED', digest TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}', description TEXT, tags TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (sequence_id, version_index));
CREATE TABLE IF NOT EXISTS membership (
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection_id INTEGER NOT NULL REFERENCES collection(id),
    artifact_id INTEGER NOT NULL REFERENCES artifact(id), version_index INTEGER NOT NULL,
    created_at TEXT NOT NULL, UNIQUE (collection_id, artifact_id), UNIQUE (collection_id, version_index));
CREATE TABLE IF NOT EXISTS alias (
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection_id INTEGER NOT NULL REFERENCES collection(id),
    artifact_id INTEGER NOT NULL REFERENCES artifact(id), alias TEXT NOT NULL,
    created_at TEXT NOT NULL, UNIQUE (collection_id, alias));
CREATE INDEX IF NOT EXISTS alias_by_artifact ON alias (artifact_id);
CREATE TABLE IF NOT EXISTS run_file (
    run_id INTEGER NOT NULL REFERENCES run(id), name TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (run_id, name));
CREATE TABLE IF NOT EXISTS setting (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS organization (
    name TEXT PRIMARY KEY, advanced_search INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob (md5 TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS upload_part (
    upload_id TEXT NOT NULL, part INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (upload_id, part));
CREATE TABLE IF NOT EXISTS artifact_manifest (
    artifact_id INTEGER PRIMARY KEY REFERENCES artifact(id), digest TEXT NOT NULL, type TEXT NOT NULL,
    body BLOB, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifact_file (
    artifact_id INTEGER NOT NULL REFERENCES artifact(id), name TEXT NOT NULL, md5 TEXT NOT NULL,
    size INTEGER NOT NULL, PRIMARY KEY (artifact_id, name));
CREATE TABLE IF NOT EXISTS artifact_use (
    run_id INTEGER NOT NULL REFERENCES run(id), artifact_id INTEGER NOT NULL REFERENCES artifact(id),
    used_as TEXT, PRIMARY KEY (run_id, artifact_id));
"""
ADDED_COLUMNS = {  # columns newer than a database file may be: added when it is opened
    "collection": {"tags": "TEXT NOT NULL DEFAULT '[]'"},
    "run": {"streamed": "INTEGER NOT NULL DEFAULT 0"},
    "artifact": {
        "pending_aliases": "TEXT NOT NULL DEFAULT '[]'",  # what createArtifact asked for, applied at commit
        "size": "INTEGER NOT NULL DEFAULT 0",
        "file_count": "INTEGER NOT NULL DEFAULT 0",
    },
}

REGISTRY_PREFIX = "wandb-registry-"
RUN_STATES = ("running", "finished", "failed", "crashed", "killed", "preempting", "preempted", "pending")


TAG = re.compile(r"^[-\w]+( +[-\w]+)*$")  # W&B's TagInput.tagName


def _retagged(tags: list[str], add: Sequence[str], remove: Sequence[str]) -> list[str]:
    """Tags in the order first added, without duplicates; W&B's rule for names (at most 128 characters)."""
    for tag in (*add, *remove):
        if not isinstance(tag, str) or len(tag) > 128 or not TAG.match(tag):
            raise StoreError(
                f"tag {tag!r} is not a valid tag: letters, digits, '_', '-' and single spaces between words, "
                "at most 128 characters"
            )
    gone = set(remove)
    kept = [t for t in tags if t not in gone]
    return kept + [t for t in dict.fromkeys(add) if t not in kept and t not in gone]


class StoreError(ValueError):
    """A request the store cannot satisfy (missing project, version, bad state...)."""


def gid(typename: str, pk: int | str) -> str:
    """W&B's Relay global id: base64 of ``Type:pk``."""
    return base64.b64encode(f"{typename}:{pk}".encode()).decode()


def parse_gid(value: str, typename: str) -> int:
    try:
        kind, _, pk = base64.b64decode(value, validate=True).decode().partition(":")
        if kind == typename:
            return int(pk)
    except (ValueError, UnicodeDecodeError):
        pass
    raise StoreError(f"not a {typename} id: {value!r}")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(value: datetime | str | None) -> str:
    """Normalise a timestamp to W&B's wire form, ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (sorts as text)."""
    if value is None:
        return now_iso()
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and regex(pattern).search(str(value)) is not None


def _wrap_config(config: dict[str, Any]) -> dict[str, Any]:
    """W&B stores config as ``{key: {"value": v}}``; fixtures may give plain values."""
    return {k: v if isinstance(v, dict) and "value" in v else {"value": v} for k, v in config.items()}


def _content(files: dict[str, Any], name: str) -> list[Any]:
    lines = (files.get(name) or {}).get("content") or []
    if not isinstance(lines, list):
        raise StoreError(f"files.{name}.content must be a list of lines")
    return lines


def _stream_line(line: Any, name: str) -> dict[str, Any]:
    try:
        value = json.loads(line) if isinstance(line, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StoreError(f"a line of {name} is not a JSON object")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Store:
    """One SQLite database (a file, shared by several processes, or ``:memory:``)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.create_function("regexp", 2, _regexp, deterministic=True)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        for table, added in ADDED_COLUMNS.items():
            columns = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for column, ddl in added.items():
                if column not in columns:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")

    def close(self) -> None:
        self._db.close()

    # -- settings and organizations -------------------------------------------------------------

    @property
    def wire(self) -> WireOptions:
        """The wire options this database is served with (strict unless ``set_wire`` said otherwise)."""
        row = self.one("SELECT value FROM setting WHERE key='wire'")
        return WireOptions.from_json(row["value"] if row else None)

    def set_wire(self, options: WireOptions) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO setting (key, value) VALUES ('wire', ?)", (options.to_json(),))

    def advanced_search(self, organization: str) -> bool:
        """Whether the organization has W&B's (ClickHouse-backed) advanced registry search; off by default."""
        row = self.one("SELECT advanced_search FROM organization WHERE name=?", (organization,))
        return bool(row and row["advanced_search"])

    def set_advanced_search(self, organization: str, enabled: bool) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO organization (name, advanced_search) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET advanced_search=excluded.advanced_search",
                (organization, int(enabled)),
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing writes; nested calls join the outer transaction."""
        with self._lock:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- projects and runs -------------------------------------------------------------------

    def project(self, entity: str, name: str, *, create: bool = True, created_at: str | None = None) -> int:
        with self.transaction() as db:
            row = db.execute("SELECT id FROM project WHERE entity=? AND name=?", (entity, name)).fetchone()
            if row:
                return int(row["id"])
            if not create:
                raise StoreError(f"project {entity}/{name} does not exist")
            cur = db.execute(
                "INSERT INTO project (entity, name, created_at) VALUES (?, ?, ?)",
                (entity, name, iso(created_at)),
            )
            return int(cur.lastrowid or 0)

    def upsert_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        display_name: str | None = None,
        state: str | None = None,
        created_at: str | None = None,
        tags: list[str] | None = None,
        config: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        group: str | None = None,
        job_type: str | None = None,
        notes: str | None = None,
    ) -> int:
        """Create a run or update the fields given (None means "unchanged", as in UpsertBucket)."""
        if state is not None and state not in RUN_STATES:
            raise StoreError(f"run {run_id}: state {state!r} is not one of {', '.join(RUN_STATES)}")
        with self.transaction() as db:
            pid = self.project(entity, project)
            row = db.execute("SELECT * FROM run WHERE project_id=? AND name=?", (pid, run_id)).fetchone()
            if row is None:
                stamp = iso(created_at)
                cur = db.execute(
                    "INSERT INTO run (project_id, name, display_name, state, created_at, heartbeat_at)"
                    " VALUES (?, ?, ?, 'running', ?, ?)",
                    (pid, run_id, display_name or run_id, stamp, stamp),
                )
                pk = int(cur.lastrowid or 0)
            else:
                pk = int(row["id"])
            updates: dict[str, Any] = {
                "display_name": display_name,
                "state": state,
                "tags": None if tags is None else json.dumps(tags),
                "config": None if config is None else json.dumps(_wrap_config(config)),
                "group_name": group,
                "job_type": job_type,
                "notes": notes,
            }
            if summary is not None:
                old = json.loads(row["summary"]) if row is not None else {}
                updates["summary"] = json.dumps({**old, **summary})
            sets = {k: v for k, v in updates.items() if v is not None}
            if row is not None and sets:
                sets["heartbeat_at"] = now_iso()
            if sets:
                cols = ", ".join(f"{k}=?" for k in sets)
                db.execute(f"UPDATE run SET {cols} WHERE id=?", (*sets.values(), pk))
            return pk

    def run_pk(self, entity: str, project: str, run_id: str) -> int:
        row = self.one(
            "SELECT run.id FROM run JOIN project p ON p.id=run.project_id WHERE p.entity=? AND p.name=? AND run.name=?",
            (entity, project, run_id),
        )
        if row is None:
            raise StoreError(f"run {entity}/{project}/{run_id} does not exist")
        return int(row["id"])

    def log(self, entity: str, project: str, run_id: str, rows: Sequence[dict[str, Any]]) -> int:
        """Append history rows (as ``wandb.log`` does) and return the last step.

        A row without ``_step`` gets the next one; a row whose step is not after the run's last step
        is rejected, as W&B drops such rows. Summary, history keys and the heartbeat follow.
        """
        with self.transaction() as db:
            pk = self.run_pk(entity, project, run_id)
            run = db.execute("SELECT last_step, history_keys, summary FROM run WHERE id=?", (pk,)).fetchone()
            last = int(run["last_step"])
            keys: dict[str, Any] = json.loads(run["history_keys"]).get("keys", {})
            summary = json.loads(run["summary"])
            count = 0
            for given in rows:
                row = dict(given)
                step = row.setdefault("_step", last + 1)
                if not isinstance(step, int) or isinstance(step, bool) or step <= last:
                    raise StoreError(f"run {run_id}: _step {step!r} must be an integer after {last}")
                row.setdefault("_timestamp", time.time())
                db.execute(
                    "INSERT INTO history (run_id, step, row) VALUES (?, ?, ?)",
                    (pk, step, json.dumps(row, allow_nan=True)),
                )
                for key, value in row.items():
                    kind = "number" if _is_number(value) else type(value).__name__
                    counts = keys.setdefault(key, {"typeCounts": []})["typeCounts"]
                    for entry in counts:
                        if entry["type"] == kind:
                            entry["count"] += 1
                            break
                    else:
                        counts.append({"type": kind, "count": 1})
                summary.update({k: v for k, v in row.items()})
                last = step
                count += 1
            db.execute(
                "UPDATE run SET last_step=?, history_line_count=history_line_count+?, history_keys=?,"
                " summary=?, heartbeat_at=? WHERE id=?",
                (
                    last,
                    count,
                    json.dumps({"lastStep": last, "keys": keys}),
                    json.dumps(summary, allow_nan=True),
                    now_iso(),
                    pk,
                ),
            )
            return last

    def set_state(self, entity: str, project: str, run_id: str, state: str) -> None:
        self.upsert_run(entity, project, run_id, state=state)

    def stream(self, entity: str, project: str, run_id: str, body: dict[str, Any]) -> None:
        """One ``file_stream`` request of the ``wandb`` SDK: history lines appended in step order (lines
        re-sent after a retry are steps already stored, and are skipped), the summary replaced, the
        heartbeat moved, and ``complete`` with ``exitcode`` ending the run (0: finished, else failed).
        Console output and system metrics are accepted and not kept. A ``StoreError`` names what is wrong."""
        files = body.get("files")
        files = {} if files is None else files
        if not isinstance(files, dict) or not all(isinstance(f, dict) for f in files.values()):
            raise StoreError("files must be an object of {name: {offset, content}}")
        rows = [_stream_line(line, "wandb-history.jsonl") for line in _content(files, "wandb-history.jsonl")]
        summary = [_stream_line(line, "wandb-summary.json") for line in _content(files, "wandb-summary.json")]
        complete, exitcode = body.get("complete"), body.get("exitcode")
        if complete is not None and (not isinstance(complete, bool) or (complete and type(exitcode) is not int)):
            raise StoreError("complete must be a boolean, sent with an integer exitcode")
        with self.transaction() as db:
            pk = self.run_pk(entity, project, run_id)
            last = int(db.execute("SELECT last_step FROM run WHERE id=?", (pk,)).fetchone()["last_step"])
            new = [row for row in rows if not isinstance(row.get("_step"), int) or row["_step"] > last]
            if new:
                self.log(entity, project, run_id, new)
            sets: dict[str, Any] = {"heartbeat_at": now_iso(), "streamed": 1}
            if summary:
                sets["summary"] = json.dumps(summary[-1], allow_nan=True)
            if complete:
                sets["state"] = "finished" if exitcode == 0 else "failed"
            cols = ", ".join(f"{k}=?" for k in sets)
            db.execute(f"UPDATE run SET {cols} WHERE id=?", (*sets.values(), pk))

    def put_run_file(self, entity: str, project: str, run_id: str, name: str, body: bytes) -> None:
        """A run file the SDK uploaded (``config.yaml``, ``output.log``, ...), kept whole."""
        with self.transaction() as db:
            pk = self.run_pk(entity, project, run_id)
            db.execute("INSERT OR REPLACE INTO run_file (run_id, name, body) VALUES (?, ?, ?)", (pk, name, body))

    def crash_silent(self, silence: float) -> list[str]:
        """Mark ``crashed`` the streaming runs still ``running`` whose stream has been silent for
        ``silence`` seconds (the SDK sends at least a heartbeat every 30 s while its process lives, and
        nothing once it is killed), as W&B does; returns their ids."""
        cutoff = iso(datetime.fromtimestamp(time.time() - silence, UTC))
        with self.transaction() as db:
            rows = db.execute(
                "SELECT id, name FROM run WHERE streamed=1 AND state='running' AND heartbeat_at < ?", (cutoff,)
            ).fetchall()
            for row in rows:
                db.execute("UPDATE run SET state='crashed' WHERE id=?", (row["id"],))
        return [str(row["name"]) for row in rows]

    # -- artifacts -----------------------------------------------------------------------------

    def collection(self, entity: str, project: str, name: str, *, type: str = "model", kind: str = "SEQUENCE") -> int:
        with self.transaction() as db:
            pid = self.project(entity, project)
            row = db.execute("SELECT id, kind FROM collection WHERE project_id=? AND name=?", (pid, name)).fetchone()
            if row is not None:
                if row["kind"] != kind:
                    raise StoreError(f"collection {entity}/{project}/{name} is a {row['kind'].lower()}")
                return int(row["id"])
            cur = db.execute(
                "INSERT INTO collection (project_id, name, type, kind, created_at) VALUES (?, ?, ?, ?, ?)",
                (pid, name, type, kind, now_iso()),
            )
            return int(cur.lastrowid or 0)

    def create_version(
        self,
        entity: str,
        project: str,
        collection: str,
        *,
        type: str = "model",
        aliases: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        created_at: str | None = None,
        state: str = "COMMITTED",
        description: str | None = None,
        digest: str | None = None,
    ) -> int:
        """Log a new version of a source collection; ``latest`` moves to it, as W&B does."""
        if state not in ("PENDING", "COMMITTED", "DELETED"):
            raise StoreError(f"artifact state {state!r} is not one of PENDING, COMMITTED, DELETED")
        with self.transaction() as db:
            cid = self.collection(entity, project, collection, type=type)
            index = db.execute(
                "SELECT COALESCE(MAX(version_index), -1) + 1 AS n FROM artifact WHERE sequence_id=?", (cid,)
            ).fetchone()["n"]
            stamp = iso(created_at)
            cur = db.execute(
                "INSERT INTO artifact (sequence_id, version_index, state, digest, metadata, description,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cid,
                    index,
                    state,
                    digest or f"{cid:08x}{index:024x}",
                    json.dumps(metadata or {}),
                    description,
                    stamp,
                    stamp,
                ),
            )
            aid = int(cur.lastrowid or 0)
            db.execute(
                "INSERT INTO membership (collection_id, artifact_id, version_index, created_at) VALUES (?, ?, ?, ?)",
                (cid, aid, index, stamp),
            )
            wanted = list(dict.fromkeys([*aliases, "latest"])) if state == "COMMITTED" else list(aliases)
            self.add_aliases(aid, cid, wanted)
            return aid

    def log_version(
        self,
        entity: str,
        project: str,
        collection: str,
        *,
        type: str,
        digest: str,
        aliases: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        dedupe: bool = True,
    ) -> int:
        """``createArtifact``: a pending version whose aliases wait for its commit. With ``dedupe``, when
        the latest committed version has the same digest it is that version, given the aliases at once
        (the SDK then uploads nothing), as W&B does."""
        with self.transaction() as db:
            cid = self.collection(entity, project, collection, type=type)
            if dedupe:
                same = db.execute(
                    "SELECT a.id FROM alias l JOIN artifact a ON a.id=l.artifact_id WHERE l.collection_id=?"
                    " AND l.alias='latest' AND a.digest=? AND a.state='COMMITTED'",
                    (cid, digest),
                ).fetchone()
                if same is not None:
                    self.add_aliases(int(same["id"]), cid, list(aliases))
                    return int(same["id"])
            aid = self.create_version(
                entity, project, collection, type=type, state="PENDING", digest=digest, metadata=metadata,
                description=description,
            )  # fmt: skip
            db.execute("UPDATE artifact SET pending_aliases=? WHERE id=?", (json.dumps(list(aliases)), aid))
            return aid

    def commit_version(self, artifact_id: int) -> None:
        """A pending version committed: ``latest`` and the aliases it was logged with move to it."""
        with self.transaction() as db:
            row = db.execute("SELECT sequence_id, pending_aliases FROM artifact WHERE id=?", (artifact_id,)).fetchone()
            if row is None:
                raise StoreError(f"artifact {artifact_id} does not exist")
            db.execute(
                "UPDATE artifact SET state='COMMITTED', pending_aliases='[]', updated_at=? WHERE id=?",
                (now_iso(), artifact_id),
            )
            aliases = ["latest", *json.loads(row["pending_aliases"])]
            self.add_aliases(artifact_id, int(row["sequence_id"]), list(dict.fromkeys(aliases)))

    def version_id(self, entity: str, project: str, collection: str, version: str) -> int:
        """The artifact id behind ``collection:vN`` or ``collection:alias`` (sequence or portfolio)."""
        cid = self.collection_id(entity, project, collection)
        if re.fullmatch(r"v\d+", version):
            row = self.one(
                "SELECT artifact_id FROM membership WHERE collection_id=? AND version_index=?",
                (cid, int(version[1:])),
            )
        else:
            row = self.one("SELECT artifact_id FROM alias WHERE collection_id=? AND alias=?", (cid, version))
        if row is None:
            raise StoreError(f"no version {entity}/{project}/{collection}:{version}")
        return int(row["artifact_id"])

    def collection_id(self, entity: str, project: str, name: str) -> int:
        row = self.one(
            "SELECT c.id FROM collection c JOIN project p ON p.id=c.project_id"
            " WHERE p.entity=? AND p.name=? AND c.name=?",
            (entity, project, name),
        )
        if row is None:
            raise StoreError(f"collection {entity}/{project}/{name} does not exist")
        return int(row["id"])

    def add_aliases(self, artifact_id: int, collection_id: int, aliases: Sequence[str]) -> None:
        """Point each alias of the collection at this version, moving it from another version: in place,
        keeping its id, under ``WireOptions.alias_ids_move_in_place``; else as a new row with a new id."""
        in_place = self.wire.alias_ids_move_in_place
        with self.transaction() as db:
            member = db.execute(
                "SELECT 1 FROM membership WHERE collection_id=? AND artifact_id=?",
                (collection_id, artifact_id),
            ).fetchone()
            if member is None:
                raise StoreError(f"artifact {artifact_id} is not in collection {collection_id}")
            for alias in aliases:
                if not alias or re.fullmatch(r"v\d+", alias):
                    raise StoreError(f"invalid alias {alias!r}")
                held = db.execute(
                    "SELECT id, artifact_id FROM alias WHERE collection_id=? AND alias=?", (collection_id, alias)
                ).fetchone()
                if held is not None and int(held["artifact_id"]) == artifact_id:
                    continue
                if held is not None and in_place:
                    db.execute(
                        "UPDATE alias SET artifact_id=?, created_at=? WHERE id=?", (artifact_id, now_iso(), held["id"])
                    )
                    continue
                db.execute("DELETE FROM alias WHERE collection_id=? AND alias=?", (collection_id, alias))
                db.execute(
                    "INSERT INTO alias (collection_id, artifact_id, alias, created_at) VALUES (?, ?, ?, ?)",
                    (collection_id, artifact_id, alias, now_iso()),
                )

    def remove_aliases(self, artifact_id: int, collection_id: int, aliases: Sequence[str]) -> None:
        with self.transaction() as db:
            for alias in aliases:
                db.execute(
                    "DELETE FROM alias WHERE collection_id=? AND artifact_id=? AND alias=?",
                    (collection_id, artifact_id, alias),
                )

    def set_aliases(self, artifact_id: int, collection_id: int, aliases: Sequence[str]) -> None:
        """Make the version's aliases in this collection exactly ``aliases`` (fixture upsert)."""
        with self.transaction() as db:
            current = {
                r["alias"]
                for r in db.execute(
                    "SELECT alias FROM alias WHERE collection_id=? AND artifact_id=?",
                    (collection_id, artifact_id),
                )
            }
            self.remove_aliases(artifact_id, collection_id, sorted(current - set(aliases)))
            self.add_aliases(artifact_id, collection_id, list(aliases))

    def update_version(
        self,
        artifact_id: int,
        *,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """W&B's ``updateArtifact``: tags added and removed, and the description and metadata replaced if given."""
        with self.transaction() as db:
            row = db.execute("SELECT tags FROM artifact WHERE id=?", (artifact_id,)).fetchone()
            if row is None:
                raise StoreError(f"artifact {artifact_id} does not exist")
            sets = {
                "tags": json.dumps(_retagged(json.loads(row["tags"]), add_tags, remove_tags)),
                "updated_at": now_iso(),
            }
            if description is not None:
                sets["description"] = description
            if metadata is not None:
                sets["metadata"] = json.dumps(metadata)
            db.execute(
                f"UPDATE artifact SET {', '.join(f'{k}=?' for k in sets)} WHERE id=?", (*sets.values(), artifact_id)
            )

    def update_collection(self, collection_id: int, *, name: str | None = None, description: str | None = None) -> None:
        """W&B's ``updateArtifactSequence`` / ``updateArtifactPortfolio``: rename, or describe, a collection."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM collection WHERE id=?", (collection_id,)).fetchone() is None:
                raise StoreError(f"collection {collection_id} does not exist")
            if name is not None:
                if not name or len(name) > 128:
                    raise StoreError(f"collection name {name!r} must be 1 to 128 characters")
                try:
                    db.execute("UPDATE collection SET name=? WHERE id=?", (name, collection_id))
                except sqlite3.IntegrityError:
                    raise StoreError(f"a collection named {name!r} already exists in this project") from None
            if description is not None:
                db.execute("UPDATE collection SET description=? WHERE id=?", (description, collection_id))

    def update_collection_tags(
        self, collection_id: int, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> list[str]:
        """W&B's collection tag assignments: add and remove tags of a collection; returns its tags."""
        with self.transaction() as db:
            row = db.execute("SELECT tags FROM collection WHERE id=?", (collection_id,)).fetchone()
            if row is None:
                raise StoreError(f"collection {collection_id} does not exist")
            tags = _retagged(json.loads(row["tags"]), add, remove)
            db.execute("UPDATE collection SET tags=? WHERE id=?", (json.dumps(tags), collection_id))
            return tags

    def link(
        self,
        artifact_id: int,
        entity: str,
        project: str,
        portfolio: str,
        *,
        aliases: Sequence[str] = (),
        created_at: str | None = None,
    ) -> int:
        """Link a version into a portfolio (registry) collection; returns the membership's version index."""
        with self.transaction() as db:
            art = db.execute(
                "SELECT a.id, c.type FROM artifact a JOIN collection c ON c.id=a.sequence_id WHERE a.id=?",
                (artifact_id,),
            ).fetchone()
            if art is None:
                raise StoreError(f"artifact {artifact_id} does not exist")
            cid = self.collection(entity, project, portfolio, type=art["type"], kind="PORTFOLIO")
            row = db.execute(
                "SELECT version_index FROM membership WHERE collection_id=? AND artifact_id=?",
                (cid, artifact_id),
            ).fetchone()
            if row is None:
                index = db.execute(
                    "SELECT COALESCE(MAX(version_index), -1) + 1 AS n FROM membership WHERE collection_id=?",
                    (cid,),
                ).fetchone()["n"]
                db.execute(
                    "INSERT INTO membership (collection_id, artifact_id, version_index, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (cid, artifact_id, index, iso(created_at)),
                )
            else:
                index = row["version_index"]
            self.add_aliases(artifact_id, cid, list(dict.fromkeys([*aliases, "latest"])))
            return int(index)

    def unlink(self, artifact_id: int, portfolio_id: int) -> None:
        with self.transaction() as db:
            kind = db.execute("SELECT kind FROM collection WHERE id=?", (portfolio_id,)).fetchone()
            if kind is None or kind["kind"] != "PORTFOLIO":
                raise StoreError(f"collection {portfolio_id} is not a portfolio")
            db.execute("DELETE FROM alias WHERE collection_id=? AND artifact_id=?", (portfolio_id, artifact_id))
            cur = db.execute(
                "DELETE FROM membership WHERE collection_id=? AND artifact_id=?", (portfolio_id, artifact_id)
            )
            if cur.rowcount == 0:
                raise StoreError(f"artifact {artifact_id} is not linked to collection {portfolio_id}")
