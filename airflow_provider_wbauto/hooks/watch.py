"""What happened since a cursor: one poll of one event spec, written once as a read (GraphQL calls).

``poll(watch, cursor)`` returns ``(events, new_cursor)`` and has no other effect: the same cursor and
the same backend state give the same events with the same ``event_id``, so a caller that crashes
before storing the new cursor simply polls again. The cursor is a small JSON dict:

- run families (``RunCursor``): the newest heartbeat seen and, per run tracked, what the next poll
  needs (``RunEntry``: its state, the last step read and the history lines up to it, the metric
  filter's window values). A poll lists only runs whose heartbeat is at or after the newest one less
  ``MARGIN`` (one small request when nothing changed), and a run whose line count grew has its new
  rows of the metric in use read from the step after the last one read. Only the first listing asks
  where each run stands (``historyKeys``, which carries every key a run logged). Finished runs not
  listed are dropped, and so are running ones quiet for ``QUIET_AFTER`` (past ``RUNS_KEPT``, the least
  recently heard of); one that shows up again is picked up from the step it is at.
- created versions and registry links (``NewestCursor``): the highest version index seen in each
  collection (a link's index in its portfolio), the newest time seen (what is new in a collection not
  seen yet), and the versions seen uncommitted; a poll lists newest first (by version index; links by
  link time where the organization has advanced search, else all of them) down to the first one
  seen: one small request when nothing changed, whatever the collection's length.
- added aliases: ``{"pairs": {short hash of (collection, alias, version): generation}, "gone": ...}``,
  the pairs present and the generations of recently gone ones: an alias that moves is a new pair
  whether or not W&B keeps its id.
- other artifact families: ``{"present": sorted short hashes of the subjects present}``; an event is a
  subject present now and not before (a membership of a plain project's portfolio). Unlinks:
  ``{"linked": {short hash: [membership id, collection, version index, artifact id, type]}}``, the
  links present (matching the filter) with what their unlink will report; a link present before and
  gone now is an unlink. Tags: the (version or collection, tag) pairs present, with a generation.

A team or organization scope is its projects, each watched as a project scope is (``"projects":
{name: that project's cursor}``), with the project in its event ids. A project that appears after
the watch began is watched from its beginning: everything in it is new.

A scope that does not exist yet is empty, not an error: W&B creates a project with its first run
and a collection with its first version, and those are events. Its cursor says so (``"absent"``:
what is missing), so a caller can tell the user once, and everything that appears later fires.

Many automations on one scope share one read (``Snapshot``, taken by ``read_snapshot``): the
triggerer's shared stream takes it once per interval and every automation polls against it, reading
on its own only what the snapshot does not cover (its first poll, a metric the snapshot lacks).

Where the watch starts (``since``): ``None`` takes what exists at the first poll as the baseline;
``"beginning"`` fires for everything; an ISO time fires for runs created, states reached (heartbeat),
versions created and memberships made at or after it. W&B does not expose when an alias was added,
so with an ISO ``since`` the alias family uses the time the version joined its collection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, cast

from ..automations.events import (
    TERMINAL_STATES,
    Event,
    OnAddArtifactAlias,
    OnAddArtifactTag,
    OnAddCollectionTag,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRemoveArtifactTag,
    OnRunMetric,
    OnRunState,
    OnUnlinkArtifact,
    TagEvent,
)
from ..automations.scopes import Scope
from ..evaluation.mongo import matches
from .cursors import Cursor, NewestCursor, RunCursor, RunEntry, Tagged
from .families import Stream, stream_of
from .run_keys import NO_KEYS, RunKeys
from .times import parse_time, wire_time
from .transport import Endpoint, Read, T, WandbNotFoundError
from .wandb import (
    AliasRef,
    HistoryMark,
    MembershipInfo,
    RowsRead,
    RunInfo,
    Stop,
    Tuning,
    WandbHook,
    links_ordered,
    read_aliases,
    read_members_by_alias,
    read_memberships,
    read_new_rows,
    read_newest_links,
    read_newest_versions,
    read_projects,
    read_runs,
    read_versions_by_id,
)

MARGIN = timedelta(minutes=2)  # heartbeats written out of order by this much are still seen
BEGINNING = "beginning"
EPOCH = "1970-01-01T00:00:00Z"
DEFAULT_TUNING = Tuning()

Payload = dict[str, Any]


@dataclass(frozen=True)
class Watch:
    """One automation's event side: what to watch and how its events are named."""

    event: Event
    automation: str
    since: str | None = None
    rearm: bool = False
    app_url: str = "https://wandb.ai"
    tuning: Tuning = DEFAULT_TUNING  # the hook's: how history reads are cut into requests
    part: bool = False  # one project of a team or organization watch: its event ids name the project

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", normalise_since(self.since))

    def polled_by(self, hook: WandbHook, endpoint: Endpoint) -> Watch:
        """This watch as polled through ``hook`` (at ``endpoint``): its UI address and tuning are the hook's."""
        return replace(self, app_url=WandbHook.app_url(endpoint), tuning=hook.tuning)


def normalise_since(since: str | None) -> str | None:
    """``None``, ``"beginning"`` or an ISO timestamp (normalised); anything else is a ValueError."""
    if since is None or since == BEGINNING:
        return since
    try:
        return wire_time(parse_time(since))
    except (ValueError, AttributeError):
        raise ValueError(f"since must be None, 'beginning' or an ISO timestamp; got {since!r}") from None


def _at_or_after(stamp: str, bound: str | None) -> bool:
    """Is ``stamp`` at or after ``bound`` (``None``: nothing is; ``"beginning"``: everything is)."""
    if bound is None:
        return False
    return bound == BEGINNING or (bool(stamp) and parse_time(stamp) >= parse_time(bound))


def _changed_since(hw: str | None) -> str | None:
    """Where a run listing starts: ``MARGIN`` before the newest heartbeat seen (``None``: list them all)."""
    return wire_time(parse_time(hw) - MARGIN) if hw else None


def _newest(hw: str | None, runs: list[RunInfo]) -> str | None:
    """The newest heartbeat among ``hw`` and the runs listed."""
    return max([s for s in (hw, *(r["heartbeat_at"] for r in runs)) if s], key=parse_time, default=None)


def project_of(scope: Scope) -> tuple[str, str]:
    """``(entity, project)`` of a project-level scope (team and organization watches poll their projects)."""
    assert scope.project is not None, f"{scope} is watched project by project"
    return scope.entity, scope.project


def _read_members(scope: Scope, stream: Stream) -> Read[list[MembershipInfo]]:
    return read_memberships(*project_of(scope), scope.collection, portfolios_only=stream == "portfolios")


def _read_projects(scope: Scope) -> Read[tuple[tuple[str, list[str]], str | None]]:
    """The entity (an organization's own) and project names of a team or organization scope."""
    read = read_projects(scope.entity, organization=scope.entity_type == "organization")
    return (yield from _or_nothing(read, (scope.entity, [])))


def _or_nothing(read: Read[T], nothing: T) -> Read[tuple[T, str | None]]:
    """What a read lists, or ``nothing`` and why when its project, collection or entity does not exist yet."""
    try:
        return (yield from read), None
    except WandbNotFoundError as exc:
        return nothing, str(exc)


def absent(cursor: Cursor | None) -> str | None:
    """Why a watch found nothing to watch yet (its project or collection does not exist), if so."""
    return cursor.get("absent") if cursor else None


def newly_absent(before: Cursor | None, after: Cursor | None) -> str | None:
    """What to log, once, when a watch finds its scope missing (not again at every poll)."""
    missing = absent(after)
    if missing and missing != absent(before):
        return (
            f"{missing}; nothing to watch yet, waiting for it "
            "(W&B creates a project with its first run, a collection with its first version)"
        )
    return None


def _with_absent(cursor: Cursor, missing: str | None) -> Cursor:
    return {**cursor, "absent": missing} if missing else cursor


def spec_digest(event: dict[str, Any], since: str | None, rearm: bool) -> str:
    """A short digest of what a watch evaluates, part of its cursor's key: a changed filter starts anew."""
    spec = json.dumps([event, since, rearm], sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def event_id(automation: str, event_type: str, subject: str) -> str:
    return hashlib.sha256(f"{automation}\x1f{event_type}\x1f{subject}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Snapshot:
    """One read of a scope shared by every automation on it; never mutated (all of them get this object).

    ``runs`` is the listing of runs changed since the previous snapshot (``None``: list your own, as
    a watch that missed the previous snapshot must); ``history`` the new rows of those runs.
    """

    runs: list[RunInfo] | None = None
    fresh: frozenset[str] | None = None  # the runs listed that changed since the previous snapshot (None: all)
    run_keys: RunKeys = NO_KEYS  # the config and summary keys the listing carries
    history: Mapping[str, RowsRead] = field(default_factory=dict)
    members: list[MembershipInfo] | None = None
    newest: list[MembershipInfo] | None = None  # a collection's newest versions or a registry's newest links ...
    newest_whole: bool = False  # ... read to the last one
    aliases: list[AliasRef] | None = None
    absent: str | None = None  # the scope does not exist yet (why)
    entity: str = ""  # a team or organization scope: the entity whose projects ``parts`` are
    parts: Mapping[str, Snapshot] | None = None  # ... and each project's snapshot

    def unlisted(self) -> Snapshot:
        """This snapshot without its run listings, for a watch that missed the previous one."""
        parts = {name: part.unlisted() for name, part in self.parts.items()} if self.parts is not None else None
        return replace(self, runs=None, fresh=None, parts=parts)


@dataclass
class SnapshotState:
    """Where the shared read stands. In memory only: after a restart the first snapshot lists every run
    and reads no rows, and each watch reads what it lacks from its own (stored) cursor."""

    hw: str | None = None
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # per run: the last step read, and its lines
    started: bool = False
    parts: dict[str, SnapshotState] = field(default_factory=dict)  # a team or organization's projects
    listed: dict[str, RunInfo] = field(default_factory=dict)  # the previous run listing, to tell what changed
    newest: _Seen | None = None  # versions or links: what the previous listing saw


def read_snapshot(
    stream: Stream,
    scope: Scope,
    state: SnapshotState,
    *,
    keys: frozenset[str] = frozenset(),
    run_keys: RunKeys = NO_KEYS,
    tuning: Tuning = DEFAULT_TUNING,
) -> Read[tuple[Snapshot, SnapshotState]]:
    """The shared read: a run listing plus the new rows of ``keys``, or a scope's versions; for a team
    or organization scope, that of each of its projects."""
    if scope.project is None:
        (entity, names), missing = yield from _read_projects(scope)
        parts: dict[str, Snapshot] = {}
        states: dict[str, SnapshotState] = {}
        for name in names:
            parts[name], states[name] = yield from read_snapshot(
                stream,
                Scope(entity=entity, project=name),
                state.parts.get(name) or SnapshotState(),
                keys=keys,
                run_keys=run_keys,
                tuning=tuning,
            )
        return Snapshot(entity=entity, parts=parts, absent=missing), SnapshotState(parts=states, started=True)
    entity, project = project_of(scope)
    if stream in ("versions", "links"):
        kind = _NEWEST[stream]
        stop = state.newest.stop(kind) if state.newest is not None else (lambda page: True)
        (newest, more), missing = yield from _or_nothing(kind.read(scope, stop), ([], False))
        now = _Seen.of((state.newest or _Seen({}, None)).after(kind, newest))
        return Snapshot(newest=newest, newest_whole=not more, absent=missing), SnapshotState(newest=now, started=True)
    if stream == "aliases":
        aliases, missing = yield from _or_nothing(read_aliases(entity, project, scope.collection), [])
        return Snapshot(aliases=aliases, absent=missing), state
    if stream != "runs":
        members, missing = yield from _or_nothing(_read_members(scope, stream), [])
        return Snapshot(members=members, absent=missing), state
    since = _changed_since(state.hw)
    where = not state.started and bool(keys)  # where each run stands: only a baseline for rows needs it
    read = read_runs(entity, project, changed_since=since, keys=run_keys, with_last_step=where)
    runs, missing = yield from _or_nothing(read, [])
    seen = dict(state.seen) if keys else {}  # a run re-listed within MARGIN is not read again
    marks: dict[str, HistoryMark] = {}
    for run in runs if keys else ():  # unseen: from its first step if it may be new to a watch
        rid = run["id"]
        at = seen.get(rid) or _first_seen(run, (since or BEGINNING) if state.started else None)
        if at is None:
            marks[rid] = HistoryMark(None, None, run["history_line_count"])
        elif (mark := _moved(*at, run)) is not None:
            marks[rid] = mark
        else:  # a rewound run counts its lines from here
            seen[rid] = (at[0], min(at[1], run["history_line_count"]))
    history = (
        (yield from read_new_rows(entity, project, marks, sorted(keys), tuning.history_page, tuning.runs_per_request))
        if marks
        else {}
    )
    seen |= {rid: (got.last, got.lines) for rid, got in history.items()}
    hw = _newest(state.hw, runs)
    # Runs re-listed exactly as before (within MARGIN of the newest heartbeat, a quiet project lists its
    # last burst at every poll) are news to no watch that saw the previous snapshot
    listed = {r["id"]: r | {"last_step": None} for r in runs}  # only the first listing has last steps
    fresh = frozenset(rid for rid, r in listed.items() if state.listed.get(rid) != r) if state.started else None
    snapshot = Snapshot(runs=runs, fresh=fresh, run_keys=run_keys, history=history, absent=missing)
    return snapshot, SnapshotState(hw=hw, seen=seen, started=True, listed=listed)


def poll(watch: Watch, cursor: Cursor | None, shared: Snapshot | None = None) -> Read[tuple[list[Payload], Cursor]]:
    """One poll, against a shared snapshot when given; see the module docstring. Events come in the
    order they occurred; with or without a snapshot, the same cursor and backend give the same events."""
    if watch.event.scope.project is None:
        events, new = yield from _poll_projects(watch, cursor, shared)
    elif isinstance(watch.event, OnRunMetric | OnRunState):
        events, new = yield from _poll_runs(watch, cursor, shared)
    else:
        events, new = yield from _poll_artifacts(watch, cursor, shared)
    events.sort(key=lambda e: (parse_time(e["occurred_at"]), e.get("step", 0), e["event_id"]))
    return events, new


def _poll_projects(watch: Watch, cursor: Cursor | None, shared: Snapshot | None) -> Read[tuple[list[Payload], Cursor]]:
    """A team or organization watch: each of its projects polled as a project watch, from its own
    cursor; a project not in the cursor appeared after the watch began and is watched from its start."""
    if shared is not None and shared.parts is not None:
        entity, names, missing = shared.entity, sorted(shared.parts), shared.absent
    else:
        (entity, names), missing = yield from _read_projects(watch.event.scope)
    before: dict[str, Cursor] | None = cursor.get("projects", {}) if cursor else None
    events: list[Payload] = []
    parts: dict[str, Cursor] = {}
    for name in names:
        appeared = before is not None and name not in before
        one = in_project(watch, entity, name, since=BEGINNING if appeared else watch.since)
        part = shared.parts.get(name) if shared is not None and shared.parts is not None else None
        found, parts[name] = yield from poll(one, before.get(name) if before else None, part)
        events += found
    return events, _with_absent({"projects": parts}, missing)


def in_project(watch: Watch, entity: str, project: str, *, since: str | None) -> Watch:
    """One project's share of a team or organization watch."""
    event = watch.event.model_copy(update={"scope": Scope(entity=entity, project=project)})
    return replace(watch, event=event, part=True, since=since)


def project_watches(watch: Watch) -> Read[list[Watch]]:
    """A project-level watch itself, or a team or organization watch's share in each project it has now."""
    if watch.event.scope.project is not None:
        return [watch]
    (entity, names), _ = yield from _read_projects(watch.event.scope)
    return [in_project(watch, entity, name, since=watch.since) for name in names]


# -- runs ---------------------------------------------------------------------------------------------


def _run_record(run: RunInfo) -> dict[str, Any]:
    """A run as W&B's run filters see it (``display_name``, ``name``, ``config.x``, ``summary_metrics.x``)."""
    return {
        "name": run["id"],
        "display_name": run["display_name"],
        "state": run["state"],
        "tags": run["tags"],
        "group": run["group"],
        "job_type": run["job_type"],
        "config": run["config"],
        "summary_metrics": run["summary"],
    }


# Runs still running whose heartbeat stopped this long before the newest one (W&B marks them crashed
# long before) are dropped, and past RUNS_KEPT the least recently heard of: one that resumes is
# picked up again from the step it is at.
QUIET_AFTER = timedelta(days=1)
RUNS_KEPT = 5000


def _kept(
    old: dict[str, RunEntry], entries: dict[str, RunEntry], newest: str | None, unchanged: set[str]
) -> dict[str, RunEntry]:
    """The runs to track on: those polled now or listed unchanged, and those not listed that may still
    log (not finished, not quiet for QUIET_AFTER); at most RUNS_KEPT, the most recently heard of."""
    quiet_before = parse_time(newest) - QUIET_AFTER if newest else None
    kept = {
        rid: e
        for rid, e in old.items()
        if rid not in entries
        and (
            rid in unchanged
            or (
                e.get("state") not in TERMINAL_STATES
                and not (quiet_before and e.get("heartbeat") and parse_time(e["heartbeat"]) < quiet_before)
            )
        )
    }
    kept.update(entries)
    if len(kept) > RUNS_KEPT:
        recent = sorted(kept, key=lambda rid: parse_time(kept[rid].get("heartbeat") or EPOCH), reverse=True)
        kept = {rid: kept[rid] for rid in recent[:RUNS_KEPT]}
    return dict(sorted(kept.items()))


def _poll_runs(watch: Watch, stored: Cursor | None, shared: Snapshot | None) -> Read[tuple[list[Payload], Cursor]]:
    event = watch.event
    assert isinstance(event, OnRunMetric | OnRunState)
    scope, run_filter = event.scope, event.filter.run
    cursor = cast(RunCursor | None, stored)
    first = cursor is None
    old: dict[str, RunEntry] = dict(cursor["runs"]) if cursor else {}
    hw = cursor.get("newest_heartbeat") if cursor else None
    changed_since = _changed_since(hw)
    unchanged: set[str] = set()  # listed exactly as at the previous snapshot, which this watch has seen
    needed = RunKeys.of(run_filter)
    if shared is not None and shared.runs is not None and shared.run_keys.covers(needed):
        runs, missing, fresh = shared.runs, shared.absent, shared.fresh
        if fresh is not None:  # only what changed needs matching and reading: the rest is as this watch left it
            unchanged = {r["id"] for r in runs if r["id"] not in fresh}
            runs = [r for r in runs if r["id"] in fresh]
    else:
        runs, missing = yield from _or_nothing(
            read_runs(
                *project_of(scope),
                filters=run_filter or None,
                changed_since=changed_since,
                keys=needed,
                with_last_step=first and isinstance(event, OnRunMetric),  # where runs stand at the baseline
            ),
            [],
        )  # config and summary keys travel only when a run filter compares them
    runs = [r for r in runs if matches(run_filter, _run_record(r))]
    # An unseen run is new (read from its first step, or its state is news) when it appeared after
    # the last poll; at the first poll, when ``since`` says so.
    new_after = watch.since if first else (changed_since or BEGINNING)
    new_hw = _newest(hw, runs)
    if isinstance(event, OnRunMetric):
        events, entries = yield from _metric_events(watch, event, runs, old, new_after, shared)
    else:
        events, entries = _state_events(watch, event, runs, old, new_after)
    new_cursor: RunCursor = {"newest_heartbeat": new_hw, "runs": _kept(old, entries, new_hw, unchanged)}
    return events, _with_absent(cast(Cursor, new_cursor), missing)


def _metric_events(
    watch: Watch,
    event: OnRunMetric,
    runs: list[RunInfo],
    old: dict[str, RunEntry],
    new_after: str | None,
    shared: Snapshot | None,
) -> Read[tuple[list[Payload], dict[str, RunEntry]]]:
    metric = event.filter.metric
    entries: dict[str, RunEntry] = {}
    marks: dict[str, HistoryMark] = {}
    for run in runs:
        rid = run["id"]
        entry: RunEntry = {**old.get(rid, {}), "heartbeat": run["heartbeat_at"], "state": run["state"]}
        entries[rid] = entry
        if rid not in old:
            at = _first_seen(run, new_after)
            if at is None:
                marks[rid] = HistoryMark(None, None, run["history_line_count"])
                continue
            entry |= {"last_step": at[0], "lines": at[1]}
        if entry.get("done"):
            continue
        if (mark := _moved(entry["last_step"], entry.get("lines"), run)) is not None:
            marks[rid] = mark
        else:  # a rewound run counts its lines from here
            entry["lines"] = min(entry["lines"], run["history_line_count"])
    history = _covered(shared, marks, metric.name)
    unread = {rid: mark for rid, mark in marks.items() if rid not in history}
    if unread:
        history |= yield from read_new_rows(
            *project_of(event.scope), unread, [metric.name], watch.tuning.history_page, watch.tuning.runs_per_request
        )
    by_id = {r["id"]: r for r in runs}
    events: list[Payload] = []
    for rid, got in history.items():
        entry = entries[rid]
        entry |= {"last_step": got.last, "lines": got.lines}
        if not got.rows:
            continue
        evaluator = metric.evaluator(entry.get("engine"), rearm=watch.rearm)
        for firing in evaluator.feed(got.rows):
            subject = f"{rid}/{metric.name}/{firing.step}"
            events.append(
                _run_payload(watch, by_id[rid], event.event_type, subject)
                | {
                    "metric_name": metric.name,
                    "metric_value": firing.value,
                    "step": firing.step,
                    "window_values": firing.window_values,
                    "metric_detail": firing.detail,
                }
            )
        entry["engine"] = evaluator.state()
        if evaluator.fired and not watch.rearm:  # fires once per run: stop reading it
            entries[rid] = {
                "heartbeat": entry["heartbeat"],
                "state": entry["state"],
                "last_step": entry["last_step"],
                "done": True,
            }
    return events, entries


def _first_seen(run: RunInfo, new_after: str | None) -> tuple[int, int] | None:
    """(last step, lines) a run first seen starts from: before its first step when it is new (created
    at or after ``new_after``), else where it stands as listed; ``None`` when listed without its last step."""
    if _at_or_after(run["created_at"], new_after):
        return -1, 0
    return None if run["last_step"] is None else (run["last_step"], run["history_line_count"])


def _moved(step: int, lines: int | None, run: RunInfo) -> HistoryMark | None:
    """Where to read ``run``'s new rows from, if its listing says it logged after ``step`` (``lines``
    lines up to it; ``None``: not counted, as in cursors stored before lines were)."""
    now, last = run["history_line_count"], run["last_step"]
    if lines is None or now > lines or (last is not None and last > step):
        return HistoryMark(step, lines, now, last)
    return None


def _covered(shared: Snapshot | None, marks: Mapping[str, HistoryMark], key: str) -> dict[str, RowsRead]:
    """What a shared snapshot read of each run from its mark on (with ``key``); the rest are read."""
    out: dict[str, RowsRead] = {}
    for rid, mark in marks.items():
        got = shared.history.get(rid) if shared is not None else None
        if got is None:
            continue
        if mark.step is None:  # taken where it stands
            out[rid] = replace(got, first=got.last + 1, rows=[])
        elif key in got.keys and got.first <= mark.step + 1 and mark.step <= got.last:
            out[rid] = replace(got, first=mark.step + 1, rows=[row for row in got.rows if row["_step"] > mark.step])
    return out


def _state_events(
    watch: Watch,
    event: OnRunState,
    runs: list[RunInfo],
    old: dict[str, RunEntry],
    new_after: str | None,
) -> tuple[list[Payload], dict[str, RunEntry]]:
    events: list[Payload] = []
    entries: dict[str, RunEntry] = {}
    for run in runs:
        before = old.get(run["id"])
        state = run["state"]
        if before is None:
            news = _at_or_after(run["heartbeat_at"], new_after)
            before = {"state": None if news else state}
        fired = list(before.get("fired_states", []))
        if state != before.get("state") and event.filter.state.matches(state) and state not in fired:
            fired.append(state)
            events.append(_run_payload(watch, run, "RUN_STATE", f"{run['id']}/{state}"))
        entries[run["id"]] = {"heartbeat": run["heartbeat_at"], "state": state, "fired_states": fired}
    return events, entries


def _payload(watch: Watch, event_type: str, subject: str, occurred_at: str, url: str) -> Payload:
    """The fields every event has (docs/semantics.md); the families add their own."""
    entity, project = project_of(watch.event.scope)
    return {
        "event_id": event_id(watch.automation, event_type, f"{project}/{subject}" if watch.part else subject),
        "event_type": event_type,
        "automation_name": watch.automation,
        "entity_name": entity,
        "project_name": project,
        "occurred_at": occurred_at,
        "url": f"{watch.app_url}/{entity}/{project}/{url}",
    }


def _run_payload(watch: Watch, run: RunInfo, event_type: str, subject: str) -> Payload:
    return _payload(watch, event_type, subject, run["heartbeat_at"], f"runs/{run['id']}") | {
        "run_id": run["id"],
        "run_name": run["display_name"] or run["id"],
        "run_state": run["state"],
    }


# -- artifacts ----------------------------------------------------------------------------------------


def _short(subject: str) -> str:
    return hashlib.blake2b(subject.encode(), digest_size=8).hexdigest()


def _poll_artifacts(watch: Watch, cursor: Cursor | None, shared: Snapshot | None) -> Read[tuple[list[Payload], Cursor]]:
    event = watch.event
    scope = event.scope
    if stream_of(event) in ("versions", "links"):
        return (yield from _poll_newest(watch, cursor, shared))
    if stream_of(event) == "aliases":
        return (yield from _poll_aliases(watch, cursor, shared))
    if shared is not None and shared.members is not None:
        members, missing = shared.members, shared.absent
    else:
        members, missing = yield from _or_nothing(_read_members(scope, stream_of(event)), [])
    if isinstance(event, TagEvent):
        events, tags = _tag_changes(watch, cursor, members)
        return events, _with_absent(tags, missing)
    found = list(_subjects(watch, members))
    if isinstance(event, OnUnlinkArtifact):
        return _unlinked(watch, cursor, found), _with_absent({"linked": _linked(found)}, missing)
    before = set(cursor["present"]) if cursor else None
    events = [
        _artifact_payload(watch, m, subject, alias)  # built only for the subjects that are new
        for key, stamp, (m, subject, alias) in found
        if (key not in before if before is not None else _at_or_after(stamp, watch.since))
    ]
    return events, _with_absent({"present": sorted({key for key, _, _ in found})}, missing)


Subject = tuple[MembershipInfo, str, str | None]  # the membership, the subject, the alias
Linked = list[Any]  # [membership id, collection, version index, artifact id, artifact type]: what an unlink reports


def _linked(found: list[tuple[str, str, Subject]]) -> dict[str, Linked]:
    """The links present now (matching the filter), each with what its unlink event will say."""
    return {
        key: [m["id"], m["collection"], m["version_index"], m["artifact_id"], m["artifact_type"]]
        for key, _, (m, _, _) in sorted(found, key=lambda f: f[0])
    }


def _unlinked(watch: Watch, cursor: Cursor | None, found: list[tuple[str, str, Subject]]) -> list[Payload]:
    """A link present at the previous poll and gone now is an unlink (W&B does not say when: detected now)."""
    if cursor is None:
        return []  # the first poll takes the baseline: an unlink before the watch began is not seen
    now = {key for key, _, _ in found}
    events = []
    for key, (membership, collection, index, artifact, kind) in cursor.get("linked", {}).items():
        if key not in now:
            seen = wire_time(datetime.now(UTC))
            payload = _version_payload(watch, f"unlink/{membership}", seen, collection, index, artifact, kind)
            events.append(payload | {"artifact_metadata": {}, "alias": None, "aliases": []})  # gone with the link
    return events


UNTAGGED_KEPT = 500  # removed (version or collection, tag) pairs whose generation is remembered


def _tag_changes(watch: Watch, cursor: Cursor | None, members: list[MembershipInfo]) -> tuple[list[Payload], Cursor]:
    """Tags that appeared (add events) or disappeared (remove events) since the cursor.

    A pair removed and added again is a new pair: each appearance has a generation, in every event's
    id, so a re-added tag is not taken for the first one. The cursor holds the pairs present (with
    what their removal will report) and the generations of recently removed ones."""
    event = watch.event
    adding = isinstance(event, OnAddArtifactTag | OnAddCollectionTag)
    now = _tags_present(watch, members)
    before: dict[str, Tagged] | None = dict(cursor.get("tagged", {})) if cursor else None
    gone: dict[str, int] = dict(cursor.get("untagged", {})) if cursor else {}
    tagged: dict[str, Tagged] = {}
    events: list[Payload] = []
    for key, (stamp, info) in sorted(now.items()):
        if before is not None and key in before:
            tagged[key] = before[key]
            continue
        tagged[key] = [gone.pop(key, 0) + 1, *info]
        if adding and (before is not None or _at_or_after(stamp, watch.since)):
            events.append(_tag_payload(watch, tagged[key]))
    for key, record in sorted((before or {}).items()):
        if key not in now:
            gone[key] = record[0]
            if not adding:
                events.append(_tag_payload(watch, record))
    return events, {"tagged": tagged, "untagged": dict(list(gone.items())[-UNTAGGED_KEPT:])}


def _tags_present(watch: Watch, members: list[MembershipInfo]) -> dict[str, tuple[str, list[Any]]]:
    """``short hash -> (occurred_at for since, [collection, version index, artifact id, type, tag])`` of
    the (version, tag) or (collection, tag) pairs present now that match the filter."""
    event = watch.event
    assert isinstance(event, TagEvent)
    versions = isinstance(event, OnAddArtifactTag | OnRemoveArtifactTag)
    out: dict[str, tuple[str, list[Any]]] = {}
    for m in members:
        fields: dict[str, Any] = {"collection": m["collection"]}
        if versions:
            fields |= {"alias": [a["alias"] for a in m["aliases"]], "metadata": m["artifact_metadata"]}
        for tag in m["artifact_tags"] if versions else m["collection_tags"]:
            if matches(event.filter, {**fields, "tag": tag}):
                version = (m["version_index"], m["artifact_id"]) if versions else (None, None)
                info = [m["collection"], *version, m["artifact_type"], tag]
                out.setdefault(_short(_tag_subject([0, *info])), (m["created_at"], info))
    return out


def _tag_subject(record: Tagged) -> str:
    """What a tag event is about: the version's or the collection's pair (without its generation)."""
    _, collection, _, artifact, _, tag = record
    return f"artifact/{artifact}/{tag}" if artifact is not None else f"collection/{collection}/{tag}"


def _tag_payload(watch: Watch, record: Tagged) -> Payload:
    """A tag event: the version's fields (or only the collection's) and the tag; seen now (W&B has no time)."""
    generation, collection, index, artifact, kind, tag = record
    subject, seen = f"{_tag_subject(record)}/{generation}", wire_time(datetime.now(UTC))
    if index is None:
        url = f"artifacts/{kind}/{collection}"
        return _payload(watch, watch.event.event_type, subject, seen, url) | {
            "artifact_collection_name": collection,
            "tag": tag,
        }
    return _version_payload(watch, subject, seen, collection, index, artifact, kind) | {"tag": tag}


def _subjects(watch: Watch, members: list[MembershipInfo]) -> Iterator[tuple[str, str, Subject]]:
    """``(short hash, occurred_at, subject)`` for every subject of this event family present now."""
    event = watch.event
    assert isinstance(event, OnCreateArtifact | OnLinkArtifact | OnUnlinkArtifact)
    created = isinstance(event, OnCreateArtifact)
    for m in members:
        if _fires(event, m):
            subject = f"artifact/{m['artifact_id']}" if created else f"membership/{m['id']}"
            yield _short(subject), m["artifact_created_at" if created else "created_at"], (m, subject, None)


def _record(m: MembershipInfo) -> dict[str, Any]:
    """A version as W&B's artifact filters see it (``alias`` is its aliases in the collection)."""
    return {
        "alias": [a["alias"] for a in m["aliases"]],
        "metadata": m["artifact_metadata"],
        "collection": m["collection"],
    }


def _created(event: OnCreateArtifact, m: MembershipInfo) -> bool:
    """A version counts as created once committed, if it matches the filter."""
    return m["artifact_state"] == "COMMITTED" and matches(event.filter, _record(m))


# -- created versions, registry links and added aliases: reading only what changed ----------------------

PENDING_KEPT = 200  # versions seen uncommitted, re-read until they commit (the oldest forgotten past this)
# A version or link in a collection the cursor has no index for is new when made at or after the newest
# one seen less this margin (only concurrent ones land out of order: W&B stamps both itself)
VERSION_MARGIN = timedelta(seconds=30)


def _versions_since(hw: str | None) -> str | None:
    return wire_time(parse_time(hw) - VERSION_MARGIN) if hw else None


@dataclass(frozen=True)
class _Newest:
    """A family read newest first: a collection's versions (by version index, as W&B's clients order
    them) or a registry's links (by link time where the organization has advanced search, else all of
    them). What is new is told by version index in its collection, never by a time W&B may order by
    otherwise; only versions wait to be committed (a link is made of a committed version)."""

    stamp: Literal["artifact_created_at", "created_at"]
    subject: str  # the event's subject, from the version's fields
    waits_for_commit: bool

    def read(self, scope: Scope, stop: Stop) -> Read[tuple[list[MembershipInfo], bool]]:
        """What is listed newest first until ``stop`` says a page is the last one needed; and whether
        older ones were left unread."""
        entity, project = project_of(scope)
        if self.waits_for_commit:
            assert scope.collection is not None
            return (yield from read_newest_versions(entity, project, scope.collection, stop=stop))
        ordered = yield from links_ordered(entity)
        return (yield from read_newest_links(entity, project, scope.collection, stop=stop, ordered=ordered))

    def key(self, m: MembershipInfo) -> str:
        return _short(self.subject.format(**m))


_NEWEST = {
    "versions": _Newest("artifact_created_at", "artifact/{artifact_id}", waits_for_commit=True),
    "links": _Newest("created_at", "membership/{id}", waits_for_commit=False),
}


@dataclass(frozen=True)
class _Seen:
    """Where a newest-first watch stands (its cursor): the highest version index seen in each
    collection, and the newest time seen for a collection it has no index for (``None``: nothing seen,
    all is new). A cursor stored before indices were kept has only the time and the short hashes of
    the ones ``near`` it, which the listing shows again."""

    indices: Mapping[str, int]
    newest: str | None
    near: frozenset[str] = frozenset()

    @classmethod
    def of(cls, cursor: Cursor) -> _Seen:
        return cls(cursor.get("newest_index", {}), cursor.get("newest"), frozenset(cursor.get("near_newest", [])))

    def new(self, kind: _Newest, m: MembershipInfo) -> bool:
        seen = self.indices.get(m["collection"])
        if seen is not None:
            if m["version_index"] > seen:
                return True
            # a version linked again after an unlink may get its old index back: its link is newer
            relinked = not kind.waits_for_commit and self.newest is not None
            return relinked and parse_time(m[kind.stamp]) > parse_time(cast(str, self.newest))
        after = _versions_since(self.newest)
        return after is None or (kind.key(m) not in self.near and _at_or_after(m[kind.stamp], after))

    def stop(self, kind: _Newest) -> Stop:
        """A page is the last one needed once it holds one seen (an unknown index does not say)."""
        return lambda page: any(m["version_index"] >= 0 and not self.new(kind, m) for m in page)

    def after(self, kind: _Newest, found: list[MembershipInfo]) -> dict[str, Any]:
        """The cursor's fields once ``found`` is seen as well."""
        indices = dict(self.indices)
        for m in found:
            if m["version_index"] >= 0:
                indices[m["collection"]] = max(indices.get(m["collection"], -1), m["version_index"])
        stamps = [s for s in (self.newest, *(m[kind.stamp] for m in found)) if s]
        return {"newest_index": dict(sorted(indices.items())), "newest": max(stamps, key=parse_time, default=None)}


def _first_poll(kind: _Newest, since: str | None) -> tuple[Callable[[MembershipInfo], bool], Stop]:
    """At a watch's first poll: what is news (made since ``since``; ``None``: nothing, a baseline) and
    how far to read (the first page; everything; back past ``since``)."""
    if since is None:
        return (lambda m: False), (lambda page: True)
    if since == BEGINNING:
        return (lambda m: True), (lambda page: False)
    bound = _versions_since(since)
    return (lambda m: _at_or_after(m[kind.stamp], since)), (
        lambda page: any(not _at_or_after(m[kind.stamp], bound) for m in page)
    )


def _covers(shared: Snapshot | None, stop: Stop) -> bool:
    """Does a shared listing hold everything a watch would read itself (it read to the end, or it
    holds a page the watch would stop at)?"""
    if shared is None or shared.newest is None:
        return False
    return shared.newest_whole or stop(shared.newest)


def _poll_newest(watch: Watch, stored: Cursor | None, shared: Snapshot | None) -> Read[tuple[list[Payload], Cursor]]:
    """New committed versions of a collection, or new links into a registry: the listing goes newest
    first, only down to the first one seen; those seen uncommitted are re-read until they commit. A
    quiet poll is one small request whatever the collection's or registry's length; the cursor holds
    an index per collection."""
    event = watch.event
    assert isinstance(event, OnCreateArtifact | OnLinkArtifact)
    kind = _NEWEST[stream_of(event)]
    cursor = cast(NewestCursor | None, stored)
    seen = _Seen.of(cast(Cursor, cursor)) if cursor else _Seen({}, None)
    if cursor is None:
        is_new, stop = _first_poll(kind, watch.since)
    else:
        is_new, stop = partial(seen.new, kind), seen.stop(kind)
    if _covers(shared, stop):
        assert shared is not None and shared.newest is not None
        found, missing = shared.newest, shared.absent
    else:
        (found, _), missing = yield from _or_nothing(kind.read(event.scope, stop), ([], None))
    pending: dict[str, list[Any]] = dict(cursor.get("uncommitted", {})) if cursor else {}
    events: list[Payload] = []
    listed = set()
    for m in sorted(found, key=lambda m: (parse_time(m[kind.stamp]), m["version_index"])):
        key = kind.key(m)
        listed.add(key)
        waiting = kind.waits_for_commit and m["artifact_state"] != "COMMITTED"
        if key not in pending and not (is_new(m) or (cursor is None and waiting)):
            continue  # seen before, or older than the watch (a version committing later is news)
        pending.pop(key, None)
        if not waiting:
            if _fires(event, m):
                events.append(_artifact_payload(watch, m, kind.subject.format(**m), None))
        elif m["artifact_state"] != "DELETED":
            pending[key] = [m["artifact_id"], m["version_index"]]
    recheck = {k: p for k, p in pending.items() if k not in listed}
    if recheck:
        assert event.scope.collection is not None
        now = yield from read_versions_by_id(event.scope.collection, [(a, i) for a, i in recheck.values()])
        for key, (artifact, _) in recheck.items():
            got = now[artifact]
            if got is None or got["artifact_state"] == "COMMITTED":
                del pending[key]  # deleted, or committed at last
            if got is not None and got["artifact_state"] == "COMMITTED" and _fires(event, got):
                events.append(_artifact_payload(watch, got, f"artifact/{artifact}", None))
    new_cursor = seen.after(kind, found) | {"uncommitted": dict(list(pending.items())[-PENDING_KEPT:])}
    return events, _with_absent(new_cursor, missing)


def _fires(event: OnCreateArtifact | OnLinkArtifact | OnUnlinkArtifact, m: MembershipInfo) -> bool:
    """A version counts as created once committed; a link is a portfolio's member; if the filter matches."""
    if isinstance(event, OnCreateArtifact):
        return _created(event, m)
    return m["collection_type"] == "PORTFOLIO" and matches(event.filter, _record(m))


GONE_KEPT = 500  # (collection, alias, version) pairs gone whose generation is remembered


def _poll_aliases(watch: Watch, cursor: Cursor | None, shared: Snapshot | None) -> Read[tuple[list[Payload], Cursor]]:
    """Aliases added: the scope's aliases are listed with the version each names now, O(aliases)
    whatever the number of versions, and an (alias, version) pair not present before is an event,
    so an alias that moves fires for its new version whether W&B gives it a new id or keeps it. A pair
    that comes back (an alias moved away and back) is a new generation, in its event's id. Only the
    versions of new pairs are read whole."""
    event = watch.event
    assert isinstance(event, OnAddArtifactAlias)
    entity, project = project_of(event.scope)
    if shared is not None and shared.aliases is not None:
        refs, missing = shared.aliases, shared.absent
    else:
        refs, missing = yield from _or_nothing(read_aliases(entity, project, event.scope.collection), [])
    present = {_pair(r): r for r in refs if r["artifact_id"]}
    pairs: dict[str, int] = dict(cursor.get("pairs", {})) if cursor else {}
    gone: dict[str, int] = dict(cursor.get("gone", {})) if cursor else {}
    legacy = set(cursor["aliases"]) if cursor and "aliases" in cursor else None  # alias ids, before pairs were kept
    fresh: list[tuple[AliasRef, int]] = []
    for key, ref in sorted(present.items()):
        if key in pairs:
            continue
        pairs[key] = gone.pop(key, 0) + 1
        if legacy is not None and _short(f"alias/{ref['id']}") in legacy:
            continue  # seen under a cursor of alias ids
        if cursor is not None or watch.since:
            fresh.append((ref, pairs[key]))
    for key in [k for k in pairs if k not in present]:
        gone[key] = pairs.pop(key)
    refs_read = [(r["collection"], r["alias"]) for r, _ in fresh]
    members = (yield from read_members_by_alias(entity, project, refs_read)) if fresh else {}
    events: list[Payload] = []
    for ref, generation in fresh:
        m = members.get((ref["collection"], ref["alias"]))
        if m is None or m["artifact_id"] != ref["artifact_id"]:
            continue  # moved or gone since it was listed: the next poll sees where it is
        if cursor is None and not _at_or_after(m["created_at"], watch.since):
            continue  # backfilling: on a version that joined before ``since``
        if matches(event.filter, {**_record(m), "alias": ref["alias"]}):
            subject = f"alias/{m['collection']}/{m['artifact_id']}/{ref['id']}" + (
                f"/{generation}" if generation > 1 else ""
            )
            events.append(_artifact_payload(watch, m, subject, ref["alias"]))
    new_cursor = {"pairs": dict(sorted(pairs.items())), "gone": dict(list(gone.items())[-GONE_KEPT:])}
    return events, _with_absent(new_cursor, missing)


def _pair(ref: AliasRef) -> str:
    """An (alias, version) pair of a collection, as a cursor keeps it."""
    return _short(f"alias/{ref['collection']}/{ref['alias']}/{ref['artifact_id']}")


def _artifact_payload(watch: Watch, m: MembershipInfo, subject: str, alias: str | None) -> Payload:
    occurred = {
        "CREATE_ARTIFACT": m["artifact_created_at"],
        "LINK_MODEL": m["created_at"],
    }.get(watch.event.event_type) or wire_time(datetime.now(UTC))  # W&B does not say when an alias was added
    return _version_payload(
        watch, subject, occurred, m["collection"], m["version_index"], m["artifact_id"], m["artifact_type"]
    ) | {
        "artifact_metadata": m["artifact_metadata"],
        "alias": alias,
        "aliases": [a["alias"] for a in m["aliases"]],
    }


def _version_payload(
    watch: Watch, subject: str, occurred_at: str, collection: str, index: int, artifact: str, kind: str
) -> Payload:
    """The fields of every event about a version: the common ones, its collection and the version."""
    entity, project = project_of(watch.event.scope)
    return _payload(watch, watch.event.event_type, subject, occurred_at, f"artifacts/{kind}/{collection}/v{index}") | {
        "artifact_collection_name": collection,
        "artifact_version": f"wandb-artifact://_id/{artifact}",
        "artifact_version_string": f"{entity}/{project}/{collection}:v{index}",
        "artifact_version_index": index,
    }
