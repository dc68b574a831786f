"""The event-driven side of saved automations: an asset watcher per automation, one shared poll per scope.

Every automation on one (connection, scope, event stream, interval) returns the same
``shared_stream_key``, so Airflow 3.3's triggerer runs one producer for all of them: it reads the
scope once per interval (``read_snapshot``) and broadcasts the ``Snapshot``; each automation's
``filter_shared_stream`` polls its own filter against it (``poll(watch, cursor, snapshot)``, reading
on its own only what the snapshot lacks) and yields its events. 100 automations on a project cost
the requests of about one.

Exactly-once (with the consuming DAG's dedupe): the stream runs in ack mode. An automation hands
the cursor it reached after snapshot *k* to the producer (``deposit``) before yielding *k*'s events;
the producer stores it in ``advance()``, which Airflow calls only after every event derived from *k*
was persisted as an asset event. A crash before that leaves the stored cursor where it was, so the
restarted watcher polls again from it and yields the same events with the same ids (at-least-once);
the automation's action skips ids it already acted on. Nothing is kept only in memory but what a
restart can rebuild: the snapshot position (a restart lists the scope once) and deposits not yet
stored (redone from the stored cursor).

An automation yields one trigger event per snapshot, ``{"automation": name, "events": [...]}``:
events found together become one asset event and one DAG run. Two asset events persisted within
milliseconds of each other can leave the second without a DAG run until the next asset event arrives
(measured on Airflow 3.3.2 with SQLite: the scheduler takes the events up to the creation of the
asset's queue row, then deletes the row, so an event persisted in between queues nothing). The
next DAG run takes every event since the previous run's, so a stranded event needs only a nudge: the
watcher keeps the ids of the events it yielded until the action records them as processed
(``PROCESSED_KEY``, in the same asset store), and when one is still waiting after
``nudge_after`` seconds it yields ``{"automation": name, "events": [], "waiting": [ids]}``,
a new asset event whose DAG run takes the stranded one with it (then after twice as long, at most
``NUDGES`` times). The ids waiting are stored with the cursor, so a restart keeps watching them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import Asset
from airflow.sdk.execution_time.context import AssetStateStoreAccessor
from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from ..automations.events import Event, event_from_json
from ..hooks import state_store
from ..hooks.actions import PROCESSED_KEY
from ..hooks.cursors import stored_cursor, stored_ids
from ..hooks.run_keys import RunKeys
from ..hooks.wandb import WandbHook
from ..hooks.watch import (
    Snapshot,
    SnapshotState,
    Watch,
    newly_absent,
    poll,
    read_snapshot,
    spec_digest,
    stream_of,
)
from .shared_reads import Need, needs, pause, wants
from .wandb import serialized

log = logging.getLogger(__name__)

NUDGES = 5
WAITING_KEPT = 500  # ids of events yielded and not yet acted on, per automation (~20 KiB stored)


class Waiting:
    """The ids of events an automation yielded that its action has not recorded as processed, each
    with when to nudge for it next (``grace`` seconds after the yield, then doubling)."""

    def __init__(self, grace: float, ids: Sequence[str] = (), now: float = 0.0) -> None:
        self.grace = grace
        self.due: dict[str, tuple[float, int]] = {}  # event id: (when to nudge, nudges so far)
        self.add(ids, now)

    def add(self, ids: Iterable[str], now: float) -> None:
        for event_id in ids:
            self.due.setdefault(event_id, (now + self.grace, 0))
        for event_id in list(self.due)[:-WAITING_KEPT]:
            del self.due[event_id]

    def any_due(self, now: float) -> bool:
        return any(at <= now for at, _ in self.due.values())

    def take_due(self, processed: Iterable[str], now: float) -> list[str]:
        """Forget the processed ids; return those due for a nudge and schedule their next one."""
        for event_id in self.due.keys() & set(processed):
            del self.due[event_id]
        taken: list[str] = []
        for event_id, (at, nudges) in list(self.due.items()):
            if at > now:
                continue
            if nudges >= NUDGES:
                log.warning("Event %s was never acted on after %d nudges; no more", event_id, nudges)
                del self.due[event_id]
                continue
            taken.append(event_id)
            self.due[event_id] = (now + self.grace * 2 ** (nudges + 1), nudges + 1)
        return taken

    def ids(self) -> list[str]:
        return list(self.due)


@dataclass(frozen=True)
class Broadcast:
    """What the producer sends: the snapshot, and where it stands in this producer's sequence."""

    producer: str
    seq: int
    snapshot: Snapshot


@dataclass(frozen=True)
class _Deposit:
    store: Any  # an asset state store accessor
    key: str
    value: Any  # a cursor, or the ids of the events waiting for their action


@dataclass
class _Stream:
    """What the producer and the automations on one stream share inside one triggerer process."""

    needs: dict[int, Need] = field(default_factory=dict)  # per subscriber
    deposits: dict[tuple[str, int], dict[tuple[int, str], _Deposit]] = field(default_factory=dict)

    def wants(self) -> tuple[frozenset[str], RunKeys]:
        """The metric keys to read rows of, and the config and summary keys of the run filters."""
        return wants(self.needs.values())


_STREAMS: dict[Hashable, _Stream] = {}


class WandbAutomationTrigger(BaseEventTrigger):
    """The watcher trigger of one saved automation (``AssetWatcher(trigger=...)``).

    :param event: the automation's event, as ``event_to_json`` gives it.
    :param automation: the automation's name, part of every event id.
    :param watch_asset: the name of the watched asset; its state store holds the cursor.
    :param since: ``None`` (from the first poll on), ``"beginning"`` or an ISO time.
    :param rearm: fire again at every later rising edge of a metric condition.
    :param wandb_conn_id: the ``wandb`` connection (only its id travels in the kwargs).
    :param poll_interval: seconds between the shared reads of the scope.
    :param nudge_after: seconds after which an event yielded but not yet acted on is nudged for
        (default: three poll intervals, at least 30 s).
    """

    def __init__(
        self,
        *,
        event: dict[str, Any],
        automation: str,
        watch_asset: str,
        since: str | None = None,
        rearm: bool = False,
        wandb_conn_id: str = WandbHook.default_conn_name,
        poll_interval: float = 60.0,
        nudge_after: float | None = None,
    ) -> None:
        super().__init__()
        self.event = event
        self.automation = automation
        self.watch_asset = watch_asset
        self.since = since
        self.rearm = rearm
        self.wandb_conn_id = wandb_conn_id
        self.poll_interval = poll_interval
        self.nudge_after = nudge_after

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return serialized(self)

    @staticmethod
    def stream_key(kwargs: dict[str, Any]) -> tuple[str, str, str, str, float]:
        event = event_from_json(kwargs["event"])
        return ("wbauto", kwargs["wandb_conn_id"], str(event.scope), stream_of(event), float(kwargs["poll_interval"]))

    def shared_stream_key(self) -> Hashable:
        return self.stream_key(self.serialize()[1])

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        return WandbStreamProducer(cls.stream_key(kwargs), event_from_json(kwargs["event"]))

    def _store(self) -> Any:
        if self.asset_state_store is not None:
            return self.asset_state_store[Asset(self.watch_asset)]
        return AssetStateStoreAccessor(name=self.watch_asset)

    async def _processed(self, store: Any) -> list[str]:
        value = await store.aget(PROCESSED_KEY, default=[])
        return stored_ids(value, asset=self.watch_asset, key=PROCESSED_KEY)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        event = event_from_json(self.event)
        hook = WandbHook(self.wandb_conn_id)
        watch = Watch(event, self.automation, since=self.since, rearm=self.rearm)
        watch = watch.polled_by(hook, await hook.aendpoint())
        store, digest = self._store(), spec_digest(self.event, self.since, self.rearm)
        key, waiting_key = "cursor:" + digest, "waiting:" + digest
        cursor = stored_cursor(event, await state_store.aload(store, key), asset=self.watch_asset, key=key)
        grace = self.nudge_after if self.nudge_after is not None else max(30.0, 3 * self.poll_interval)
        ids = stored_ids(await store.aget(waiting_key, default=[]), asset=self.watch_asset, key=waiting_key)
        waiting = Waiting(grace, ids, time.monotonic())
        stream = _STREAMS.setdefault(self.shared_stream_key(), _Stream())
        me = id(self)
        stream.needs[me] = needs(event)
        previous: tuple[str, int] | None = None
        try:
            async for broadcast in shared_stream:
                # A listing covers this watch if it saw the previous one (or this is the first, whole one).
                in_sync = previous == (broadcast.producer, broadcast.seq - 1)
                snapshot = broadcast.snapshot if in_sync or broadcast.seq == 1 else broadcast.snapshot.unlisted()
                try:
                    events, new = await hook.arun(poll(watch, cursor, snapshot))
                    now = time.monotonic()
                    nudge = waiting.take_due(await self._processed(store), now) if waiting.any_due(now) else []
                except Exception as exc:  # the stored cursor stays; the next snapshot retries from it
                    self.log.warning("Automation %s: poll failed, retrying at the next one: %s", self.automation, exc)
                    previous = None
                    continue
                previous = (broadcast.producer, broadcast.seq)
                if news := newly_absent(cursor, new):
                    self.log.info("Automation %s: %s", self.automation, news)
                deposits = stream.deposits.setdefault(previous, {})
                if new != cursor:
                    deposits[(me, key)] = _Deposit(store, key, new)
                    cursor = new
                before = waiting.ids()
                waiting.add((str(e["event_id"]) for e in events), now)
                if nudge or waiting.ids() != before:
                    deposits[(me, waiting_key)] = _Deposit(store, waiting_key, waiting.ids())
                if nudge:
                    self.log.info("Automation %s: %d event(s) not acted on yet; nudging", self.automation, len(nudge))
                if events or nudge:  # one asset event per snapshot: a burst is one DAG run, not a race of many
                    yield TriggerEvent({"automation": self.automation, "events": events, "waiting": nudge})
        finally:
            stream.needs.pop(me, None)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Not used: the triggerer always runs this trigger through its shared stream."""
        raise RuntimeError("WandbAutomationTrigger runs as a shared stream (Airflow 3.3's triggerer)")
        yield  # pragma: no cover  (makes this an async generator)


class WandbStreamProducer(SharedStreamProducer):
    """One shared read loop per stream key; stores the automations' cursors once their events are persisted."""

    def __init__(self, key: tuple[str, str, str, str, float], event: Event) -> None:
        self.key = key
        self.conn_id, self.interval = key[1], key[4]
        self.scope, self.stream = event.scope, stream_of(event)
        self.id = uuid.uuid4().hex

    async def open_stream(self) -> AsyncIterator[tuple[Broadcast, tuple[str, int]]]:
        hook = WandbHook(self.conn_id)
        shared = _STREAMS.setdefault(self.key, _Stream())
        shared.deposits.clear()  # those of an earlier producer will never be advanced
        state, seq = SnapshotState(), 0
        while True:
            started = time.monotonic()
            keys, run_keys = shared.wants()
            try:
                snapshot, state = await hook.arun(
                    read_snapshot(self.stream, self.scope, state, keys=keys, run_keys=run_keys, tuning=hook.tuning)
                )
            except Exception as exc:  # an outage must not end the stream: every watcher would stop
                log.warning("Shared W&B read of %s failed, retrying in %.0f s: %s", self.scope, self.interval, exc)
            else:
                seq += 1
                yield Broadcast(self.id, seq, snapshot), (self.id, seq)
            await asyncio.sleep(pause(self.interval, started))

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Store each automation's newest cursor among the snapshots whose events were all persisted."""
        shared = _STREAMS.get(self.key) or _Stream()
        newest: dict[tuple[int, str], _Deposit] = {}
        for item in batch:
            deposits = shared.deposits.pop(item.broker_payload, {})
            if item.outcome.failed == 0 and item.outcome.rejected == 0:
                newest.update(deposits)
        for deposit in newest.values():
            try:
                await state_store.asave(deposit.store, deposit.key, deposit.value)
            except Exception:  # the stored cursor stays behind: a restart re-polls and the action dedupes
                log.exception("Could not store an automation cursor (%s); it will be re-polled", deposit.key)
