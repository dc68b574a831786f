"""What the action operators and notifiers share: the events to act on, their delivery keys, and the
delivery target and message fields from the action models (below both, so neither imports the other)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow.sdk import Context

from ..automations.actions import Integration, SendNotification

Event = dict[str, Any]

PROCESSED_KEY = "wbauto_processed"
"""In a saved automation's watched asset store: the event ids its action acted on (newest last).
Written by the action; read by the watcher, which nudges for events no DAG run picked up."""


def event_payloads(value: Any) -> Iterable[Event]:
    if isinstance(value, Mapping):
        if "events" in value and "event_id" not in value:
            yield from event_payloads(value["events"])
        else:
            yield dict(value)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from event_payloads(item)


def collect_events(context: Context, events: Any) -> list[Event]:
    """The events to act on, once each, in order: the ``events`` argument, else the triggering asset
    events' payloads (``extra["payload"]``, an event, a list, or ``{"events": [...]}``)."""
    if events is None:
        triggering = context.get("triggering_asset_events") or {}
        events = [getattr(e, "extra", {}).get("payload") for evs in triggering.values() for e in evs]
    seen: set[str] = set()
    out: list[Event] = []
    for event in event_payloads(events):
        key = str(event.get("event_id", len(out)))
        if key not in seen:
            seen.add(key)
            out.append(event)
    return out


def delivery_key(events: Sequence[Event]) -> str:
    """One event's id, or a stable digest of a batch's ids."""
    if len(events) == 1 and events[0].get("event_id"):
        return str(events[0]["event_id"])
    joined = "\x1f".join(str(e.get("event_id", "")) for e in events)
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def notification_fields(
    title: str, message: str, severity: str, text: str | None, level: str | None
) -> tuple[str, str, str]:
    """Validated at DAG-parse time by the model, with the SDK's aliases ``text`` and ``level``."""
    action = SendNotification.model_validate(
        {"title": title, "message": message if text is None else text, "severity": severity if level is None else level}
    )
    return action.title, action.message, action.severity


def delivery_target(
    integration: Integration | None, conn_id: str | None, url: str | None
) -> tuple[str | None, str | None]:
    """``(connection id, literal URL)`` from an integration model or from the plain arguments."""
    if integration is None:
        return conn_id, url
    if url:
        raise ValueError(f"give integration={type(integration).__name__}(...) or a literal URL, not both")
    return integration.target()
