"""One read per interval for the deferred sensors that watch one scope in one triggerer.

Airflow's shared streams serve only asset watchers; a deferred sensor's trigger is a plain trigger.
So the sensors' triggers share here, in the triggerer's event loop: the first to join a
(connection, scope, event stream, interval) starts a reader that takes one ``read_snapshot`` per
interval, and every trigger on it polls its own filter and cursor against that snapshot, as the
watchers do. The reader keeps nothing a restart needs: a trigger's cursor is in its kwargs, and a
trigger that did not poll the previous snapshot (it joined late, or its poll failed) polls the next
one without its run listing, reading what it lacks on its own. The last trigger to leave stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections.abc import AsyncIterator, Hashable, Iterable
from dataclasses import dataclass, field
from functools import reduce

from ..automations.events import Event, OnRunMetric
from ..hooks.run_keys import NO_KEYS, RunKeys
from ..hooks.wandb import WandbHook
from ..hooks.watch import Snapshot, SnapshotState, read_snapshot, stream_of

log = logging.getLogger(__name__)


Need = tuple[
    str | None, RunKeys
]  # the metric whose rows a watch reads, and the config/summary keys its run filter reads


def pause(interval: float, started: float) -> float:
    """Seconds to wait before the next read of a loop that began its last one at ``started``
    (``time.monotonic()``): reads begin every ``interval``, however long one takes, and at least a
    tenth of it apart."""
    return max(interval - (time.monotonic() - started), interval / 10)


def needs(event: Event) -> Need:
    """What a watch needs a shared read to hold: its metric's rows, and the config and summary keys its
    run filter compares."""
    metric = event.filter.metric.name if isinstance(event, OnRunMetric) else None
    return metric, RunKeys.of(getattr(event.filter, "run", None))


def wants(needs: Iterable[Need]) -> tuple[frozenset[str], RunKeys]:
    """What a shared read holds for the watches on it: the metric keys to read rows of, and the config
    and summary keys of their run filters."""
    listed = list(needs)
    return frozenset(m for m, _ in listed if m), reduce(operator.or_, (k for _, k in listed), NO_KEYS)


@dataclass(frozen=True)
class SharedRead:
    """One interval's read: its number, and the snapshot, or the error that read ended with."""

    seq: int
    snapshot: Snapshot | None
    error: Exception | None = None


@dataclass
class _Reader:
    conn_id: str
    event: Event  # any of the events on this stream: its scope and family
    interval: float
    needs: dict[int, Need] = field(default_factory=dict)  # per trigger
    latest: SharedRead = field(default_factory=lambda: SharedRead(0, None))
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None

    async def loop(self) -> None:
        hook, state = WandbHook(self.conn_id), SnapshotState()
        stream, scope = stream_of(self.event), self.event.scope
        while True:
            started = time.monotonic()
            keys, run_keys = wants(self.needs.values())
            try:
                snapshot, state = await hook.arun(
                    read_snapshot(stream, scope, state, keys=keys, run_keys=run_keys, tuning=hook.tuning)
                )
                read = SharedRead(self.latest.seq + 1, snapshot)
            except Exception as exc:  # each trigger decides: an outage is waited out, anything else fails it
                log.warning("Shared W&B read of %s failed: %s", scope, exc)
                read = SharedRead(self.latest.seq + 1, None, exc)
            async with self.changed:
                self.latest = read
                self.changed.notify_all()
            await asyncio.sleep(pause(self.interval, started))


_READERS: dict[Hashable, _Reader] = {}


@contextlib.asynccontextmanager
async def shared_reads(conn_id: str, event: Event, interval: float) -> AsyncIterator[_Subscription]:
    """Join the reader of ``event``'s scope and family (starting it if none runs), and leave it after."""
    key = (id(asyncio.get_running_loop()), conn_id, str(event.scope), stream_of(event), interval)
    reader = _READERS.get(key)
    if reader is None:
        reader = _READERS[key] = _Reader(conn_id, event, interval)
    subscription = _Subscription(reader)
    reader.needs[id(subscription)] = needs(event)
    if reader.task is None:
        reader.task = asyncio.create_task(reader.loop(), name=f"wbauto shared read {event.scope}")
    try:
        yield subscription
    finally:
        reader.needs.pop(id(subscription), None)
        if not reader.needs:
            _READERS.pop(key, None)
            reader.task.cancel()


@dataclass
class _Subscription:
    reader: _Reader
    seen: int = 0  # the newest read taken
    polled: int = 0  # the newest read this trigger polled to the end

    async def next(self, timeout: float | None) -> tuple[SharedRead, bool] | None:
        """The next read (``None``: none within ``timeout``), and whether its run listing is whole for
        this trigger (it polled the read before; every trigger is in step with the first)."""
        changed = self.reader.changed
        async with changed:
            try:
                await asyncio.wait_for(changed.wait_for(lambda: self.reader.latest.seq > self.seen), timeout)
            except TimeoutError:
                return None
            read = self.reader.latest
        self.seen = read.seq
        return read, read.seq == 1 or self.polled == read.seq - 1

    def done(self, read: SharedRead) -> None:
        """This trigger's cursor now stands after ``read``."""
        self.polled = read.seq
