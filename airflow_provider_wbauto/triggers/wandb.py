"""The async side of the event sensors: poll W&B from a cursor until events are due."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.execution_time.context import AssetStateStoreAccessor
from airflow.triggers.base import BaseTrigger, TriggerEvent

from ..automations.events import Event, event_from_json
from ..hooks import state_store
from ..hooks.cursors import stored_record
from ..hooks.transport import WandbUnavailableError
from ..hooks.wandb import WandbHook
from ..hooks.watch import Watch, newly_absent, parse_time, poll
from .shared_reads import shared_reads


def serialized(trigger: BaseTrigger) -> tuple[str, dict[str, Any]]:
    """A trigger's classpath and its constructor's arguments, read back from the attributes they set
    (every argument is kept under its own name), so the kwargs cannot drift from ``__init__``."""
    names = [n for n in inspect.signature(type(trigger).__init__).parameters if n != "self"]
    return f"{type(trigger).__module__}.{type(trigger).__qualname__}", {n: getattr(trigger, n) for n in names}


class WandbEventTrigger(BaseTrigger):
    """Polls with the async hook (one pooled HTTP client per triggerer loop) and proposes what it found.

    The deferred sensors on one scope and event family in one triggerer share one read per interval
    (``shared_reads``); each polls its own filter and cursor against it.

    The trigger writes nothing: it yields ``{"status": "success", "events", "cursor", "version"}``
    and the sensor's ``execute_complete`` decides and stores, so a triggerer restart that re-runs
    this trigger from its kwargs cannot lose or repeat an event. Kwargs are plain JSON and name the
    connection only, never its key. Errors are reported as an event (``status: error``), as the
    HTTP provider's triggers do, so the sensor fails with the message and Airflow retries it.
    ``end_at`` bounds the wait on its own (the scheduler also enforces the deferral timeout, but an
    inline trigger under ``dag.test()`` has nothing else to stop it).

    :param event: the event to watch, as ``event_to_json`` gives it.
    :param automation: the name in every event id.
    :param cursor: where the sensor's stored watch stands (``None``: not begun, or see ``stored``).
    :param version: the stored record's version the cursor was read at (the sensor checks it on return).
    :param stored: ``{"asset": name, "key": key}`` of the sensor's record in the asset state store, when
        its cursor is too big to travel in the kwargs: the trigger reads cursor and version from there.
    :param since: ``None`` (from the first poll on), ``"beginning"`` or an ISO time.
    :param rearm: fire again at every later rising edge of a metric condition.
    :param wandb_conn_id: the ``wandb`` connection (only its id travels in the kwargs).
    :param poll_interval: seconds between polls.
    :param end_at: an ISO time at which to report a timeout (the sensor's own timeout).
    """

    def __init__(
        self,
        *,
        event: dict[str, Any],
        automation: str,
        cursor: dict[str, Any] | None,
        version: int,
        stored: dict[str, str] | None = None,
        since: str | None = None,
        rearm: bool = False,
        wandb_conn_id: str = WandbHook.default_conn_name,
        poll_interval: float = 60.0,
        end_at: str | None = None,
    ) -> None:
        super().__init__()
        self.event = event
        self.automation = automation
        self.cursor = cursor
        self.version = version
        self.stored = stored
        self.since = since
        self.rearm = rearm
        self.wandb_conn_id = wandb_conn_id
        self.poll_interval = poll_interval
        self.end_at = end_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return serialized(self)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = WandbHook(self.wandb_conn_id)
        cursor, version = self.cursor, self.version
        try:
            event = event_from_json(self.event)
            if self.stored is not None:
                cursor, version = await asyncio.to_thread(_stored_cursor, event, self.stored)
            watch = Watch(event, self.automation, since=self.since, rearm=self.rearm)
            watch = watch.polled_by(hook, await hook.aendpoint())
            deadline = parse_time(self.end_at) if self.end_at else None
            outage: str | None = None
            async with shared_reads(self.wandb_conn_id, event, self.poll_interval) as reads:
                while True:
                    left = (deadline - datetime.now(UTC)).total_seconds() if deadline else None
                    got = await reads.next(timeout=max(left, 0.0) if left is not None else None)
                    if got is not None:
                        read, whole = got
                        try:
                            if read.error is not None:
                                raise read.error
                            assert read.snapshot is not None
                            snapshot = read.snapshot if whole else read.snapshot.unlisted()
                            events, new = await hook.arun(poll(watch, cursor, snapshot))
                        except WandbUnavailableError as exc:  # waited out until the deadline
                            self.log.warning("W&B is unreachable; waiting on: %s", exc)
                            outage = str(exc)
                        else:
                            reads.done(read)
                            outage = None
                            if news := newly_absent(cursor, new):
                                self.log.info(news)
                            cursor = new
                            if events:
                                break
                    if deadline and datetime.now(UTC) + timedelta(seconds=self.poll_interval) > deadline:
                        why = f"; W&B was unreachable at the last poll: {outage}" if outage else ""
                        yield TriggerEvent({"status": "timeout", "message": f"no event before {self.end_at}{why}"})
                        return
        except Exception as exc:  # reported to the sensor, which fails the try with this message
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
            return
        yield TriggerEvent({"status": "success", "events": events, "cursor": cursor, "version": version})


def _stored_cursor(event: Event, stored: dict[str, str]) -> tuple[dict[str, Any] | None, int]:
    """The cursor and version of a sensor's record, read with the store's sync calls (in a thread): they
    work both in the triggerer and in ``dag.test()``'s inline trigger, where the async ones do not."""
    asset, key = stored["asset"], stored["key"]
    value = state_store.load(AssetStateStoreAccessor(name=asset), key)
    record = stored_record(event, value, asset=asset, key=key) or {}
    return record.get("cursor"), int(record.get("version", 0))
