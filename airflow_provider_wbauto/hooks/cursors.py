"""What a stored cursor may be, checked where it is read back from Airflow's state store.

A cursor is the whole memory of a watch: read wrongly, it either fires every old event again (a run
cursor without its newest heartbeat lists every run as new) or silently takes a new baseline (events
lost). So a value that is not exactly what a poll of its event family writes is a ``CursorError``,
and the caller fails the task (or the watcher) with the state-store key and how to reset it on
purpose; nothing replaces it. Cursors stored under the earlier short key names (``hw``, ``near``,
``pending``, ...) are read under today's names: the renaming loses nothing.

The shapes are those ``watch.poll`` writes (its module docstring says what each keeps).
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired, Required, TypeAlias, cast

from pydantic import AfterValidator, ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic reads only this one on Python 3.11

from ..automations.events import Event, OnUnlinkArtifact, TagEvent
from .families import stream_of
from .times import parse_time

Cursor = dict[str, Any]
ERRORS_SHOWN = 3  # a damaged cursor is usually damaged in many places alike: the first few say enough


class CursorError(ValueError):
    """A cursor that no poll of its event family writes (the message says where and why)."""


def _time(value: str) -> str:
    parse_time(value)  # a ValueError naming the text
    return value


Time = Annotated[str, AfterValidator(_time)]
_STRICT = ConfigDict(extra="forbid", strict=True)


@with_config(_STRICT)
class EngineState(TypedDict, total=False):
    """A metric filter's evaluator, where it stands (``MetricEvaluator.state()``)."""

    buf: Required[list[float]]
    count: Required[int]
    last_step: int  # not in states stored before it was kept
    prev: bool
    fired: bool


if TYPE_CHECKING:
    Engine: TypeAlias = dict[str, Any]  # what MetricEvaluator takes and gives, checked as EngineState
else:
    Engine = EngineState


@with_config(_STRICT)
class RunEntry(TypedDict, total=False):
    """What a run-family watch keeps of one run it tracks."""

    heartbeat: str  # when it was last listed: quiet runs are dropped (QUIET_AFTER, RUNS_KEPT)
    state: str | None  # its state at the last poll (``None``: first seen as news, so any state is a change)
    last_step: int  # metric: the last history step read
    lines: int  # metric: the run's history lines up to it (a listing's count tells what is new)
    engine: Engine  # metric: the filter's own state (the window's values), to continue exactly
    done: bool  # metric: fired once and not re-armed, so its history is not read again
    fired_states: list[str]  # state: the states it fired for


@with_config(_STRICT)
class RunCursor(TypedDict):
    newest_heartbeat: Time | None  # runs are listed from MARGIN before it
    runs: dict[str, RunEntry]
    absent: NotRequired[str]


@with_config(_STRICT)
class NewestCursor(TypedDict):
    newest_index: dict[str, int]  # collection -> the highest version index seen in it (a link's, in a portfolio)
    newest: Time | None  # the newest version or link seen: what is new in a collection not in newest_index
    uncommitted: dict[str, Pending]  # short hash -> [artifact id, version index]: re-read until committed
    absent: NotRequired[str]


@with_config(_STRICT)
class NewestByTimeCursor(TypedDict):
    """A created-versions or links cursor stored before version indices were kept: its next poll reads
    back to VERSION_MARGIN before ``newest`` and stores a ``NewestCursor``."""

    newest: Time | None
    near_newest: list[str]  # short hashes of those within that margin, which the listing shows again
    uncommitted: dict[str, Pending]
    absent: NotRequired[str]


@with_config(_STRICT)
class AliasCursor(TypedDict):
    pairs: dict[str, int]  # short hash of a (collection, alias, version) pair present -> its generation
    gone: dict[str, int]  # pairs gone: the generation their next appearance follows
    absent: NotRequired[str]


@with_config(_STRICT)
class AliasIdsCursor(TypedDict):
    """An alias cursor stored before pairs were kept: the alias ids present (its next poll stores pairs)."""

    aliases: list[str]  # short hashes of the alias ids present
    absent: NotRequired[str]


@with_config(_STRICT)
class PresentCursor(TypedDict):
    present: list[str]  # short hashes of the subjects present
    absent: NotRequired[str]


# Fixed-length records, stored as JSON arrays: lists to the code, checked as tuples of their fields.
# Linked: [membership id, collection, version index, artifact id, artifact type] (what an unlink reports);
# Tagged: [generation, collection, version index, artifact id, type, tag] (no version: a collection's tag);
# Pending: [artifact id, version index].
if TYPE_CHECKING:
    Linked: TypeAlias = list[Any]
    Tagged: TypeAlias = list[Any]
    Pending: TypeAlias = list[Any]
else:
    Linked = tuple[str, str, int, str, str]
    Tagged = tuple[int, str, int | None, str | None, str, str]
    Pending = tuple[str, int]


@with_config(_STRICT)
class LinkedCursor(TypedDict):
    linked: dict[str, Linked]
    absent: NotRequired[str]


@with_config(_STRICT)
class TagCursor(TypedDict):
    tagged: dict[str, Tagged]
    untagged: dict[str, int]  # removed pairs: the generation their next appearance follows
    absent: NotRequired[str]


Family = Literal["runs", "newest", "aliases", "present", "linked", "tags"]


def family(event: Event) -> Family:
    """Which cursor shape a poll of ``event`` writes (for one project; a team or organization scope
    keeps one per project)."""
    stream = stream_of(event)
    if stream in ("runs", "aliases"):
        return "runs" if stream == "runs" else "aliases"
    if stream in ("versions", "links"):
        return "newest"
    if isinstance(event, TagEvent):
        return "tags"
    return "linked" if isinstance(event, OnUnlinkArtifact) else "present"


@cache
def _adapter(name: Family | Literal["projects", "record"], legacy: bool = False) -> TypeAdapter[Any]:
    if legacy:
        return TypeAdapter(_LEGACY[cast(Family, name)][1])
    return TypeAdapter({"projects": ProjectsCursor, "record": SensorRecord}.get(name) or _SHAPES[cast(Family, name)])


@with_config(_STRICT)
class ProjectsCursor(TypedDict):
    projects: dict[str, dict[str, Any]]  # a project's name -> its cursor, of the event's family
    absent: NotRequired[str]


_SHAPES: dict[Family, Any] = {
    "runs": RunCursor,
    "newest": NewestCursor,
    "aliases": AliasCursor,
    "present": PresentCursor,
    "linked": LinkedCursor,
    "tags": TagCursor,
}


# Shapes stored before today's, told by a key only they have; a poll reads them and stores today's
_LEGACY: dict[Family, tuple[str, Any]] = {
    "newest": ("near_newest", NewestByTimeCursor),
    "aliases": ("aliases", AliasIdsCursor),
}

_RUN_KEYS = {"s": "last_step", "e": "engine", "d": "done", "st": "state", "f": "fired_states"}
_NEWEST_KEYS = {"hw": "newest", "newest_created": "newest", "near": "near_newest", "pending": "uncommitted"}


def _renamed(name: Family, cursor: Any) -> Any:
    """A cursor stored under the earlier short key names, under today's (nothing else changes)."""
    if not isinstance(cursor, dict):
        return cursor
    if name == "runs" and "hw" in cursor and isinstance(cursor.get("runs"), dict):
        runs = {
            rid: {_RUN_KEYS.get(k, k): v for k, v in e.items()} if isinstance(e, dict) else e
            for rid, e in cursor["runs"].items()
        }
        return {"newest_heartbeat": cursor["hw"], "runs": runs} | {k: v for k, v in cursor.items() if k == "absent"}
    if name == "newest" and ("near" in cursor or "newest_created" in cursor):
        return {_NEWEST_KEYS.get(k, k): v for k, v in cursor.items()}
    return cursor


def check(event: Event, cursor: Any) -> Cursor | None:
    """``cursor`` as a poll of ``event`` reads it (``None``: no poll yet), or a ``CursorError`` saying
    what is wrong with it."""
    if cursor is None:
        return None
    name, where = family(event), ""
    try:
        if event.scope.project is None:  # a team or organization: a cursor per project
            _valid("projects", cursor)
            projects = {}
            for project, part in cursor["projects"].items():
                where = f"projects.{project}."
                projects[project] = _valid(name, _renamed(name, part))
            return cursor | {"projects": projects}
        return _valid(name, _renamed(name, cursor))
    except ValidationError as exc:
        raise CursorError(f"not a cursor of {event.event_type} at {event.scope}: {describe(exc, where)}") from None


def _valid(name: Family | Literal["projects", "record"], cursor: Any) -> Cursor:
    earlier = _LEGACY.get(cast(Family, name))
    legacy = isinstance(cursor, dict) and earlier is not None and earlier[0] in cursor
    _adapter(name, legacy).validate_json(json.dumps(cursor))  # JSON's types, strictly: [a, b] is a pair, 1.0 no int
    return dict(cursor)


def describe(exc: ValidationError, where: str = "") -> str:
    """The first errors of a validation, each with where it is (``runs.r1.last_step``), without the
    values (a cursor is data, not a secret, but may be large)."""
    errors = exc.errors(include_url=False, include_input=False)
    said = [
        f"{(where + '.'.join(str(p) for p in e['loc'])).rstrip('.') or 'the value'}: {e['msg']}"
        for e in errors[:ERRORS_SHOWN]
    ]
    more = f" (and {len(errors) - ERRORS_SHOWN} more)" if len(errors) > ERRORS_SHOWN else ""
    return "; ".join(said) + more


def reset_hint(asset: str, key: str) -> str:
    """How to start a watch afresh on purpose: delete its key (a split value's parts are left unreferenced)."""
    return (
        f"It was left as it is. To start this watch afresh from a new baseline (events before it will "
        f"not fire), delete key {key!r} from the state store of asset {asset!r}: "
        f"DELETE /api/v2/assets/<that asset's id>/state-store/{key} on Airflow's REST API"
    )


@with_config(_STRICT)
class SensorRecord(TypedDict):
    """What a sensor stores under its key: the cursor, a version counter, and each recent DAG run's claim."""

    version: int
    cursor: dict[str, Any] | None
    claims: list[tuple[str, list[dict[str, Any]]]]  # [run id, the events it took]


class StoredCursorError(CursorError):
    """A stored value a watch cannot go on from; the message names its key and how to reset it."""

    def __init__(self, asset: str, key: str, why: str) -> None:
        super().__init__(f"State-store key {key!r} of asset {asset!r} holds {why}. {reset_hint(asset, key)}")


def stored_cursor(event: Event, value: Any, *, asset: str, key: str) -> Cursor | None:
    """A watcher's cursor as read from the store (``None``: none stored), checked."""
    try:
        return check(event, value)
    except CursorError as exc:
        raise StoredCursorError(asset, key, str(exc)) from None


def stored_record(event: Event, value: Any, *, asset: str, key: str) -> dict[str, Any] | None:
    """A sensor's record as read from the store (``None``: none stored), its cursor checked."""
    if value is None:
        return None
    try:
        record = _valid("record", value)
    except ValidationError as exc:
        raise StoredCursorError(asset, key, f"not a sensor's record: {describe(exc)}") from None
    return record | {"cursor": stored_cursor(event, record["cursor"], asset=asset, key=key)}


_IDS: TypeAdapter[list[str]] = TypeAdapter(list[str], config=ConfigDict(strict=True))


def stored_ids(value: Any, *, asset: str, key: str) -> list[str]:
    """Event ids as read from the store (the processed ones, the ones waiting for a nudge), checked."""
    try:
        return _IDS.validate_python([] if value is None else value)
    except ValidationError as exc:
        raise StoredCursorError(asset, key, f"not a list of event ids: {describe(exc)}") from None
