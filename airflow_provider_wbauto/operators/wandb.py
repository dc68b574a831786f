"""The action side: thin operators over the delivery hooks, acting on the events a sensor returned.

``events`` is the sensor's output (``events=sensor.output``), a literal list, or, when the DAG is
scheduled by an asset watcher, left out: the payloads of ``triggering_asset_events`` are used. One
delivery per event, or one for all with ``batch=True``. Each delivery carries the event id as its
idempotency key, and the keys already delivered are kept in the task state store (scoped to this
task instance, shared by its retries), so a retry after a failed delivery does not send again what
this task already sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk import NEVER_EXPIRE, BaseOperator, Context  # type: ignore[attr-defined]

from ..automations.actions import (
    Action,
    DoNothing,
    Integration,
    SendNotification,
    SendWebhook,
    SlackIntegration,
    WebhookIntegration,
)
from ..hooks.slack import SlackNotificationHook, slack_message
from ..hooks.transport import RetryPolicy
from ..hooks.webhook import WebhookHook

DELIVERED_KEY = "wbauto_delivered"
Event = dict[str, Any]


def _payloads(value: Any) -> Iterable[Event]:
    if isinstance(value, Mapping):
        if "events" in value and "event_id" not in value:
            yield from _payloads(value["events"])
        else:
            yield dict(value)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _payloads(item)


def collect_events(context: Context, events: Any) -> list[Event]:
    """The events to act on, once each, in order: the ``events`` argument, else the triggering asset
    events' payloads (``extra["payload"]``, an event, a list, or ``{"events": [...]}``)."""
    if events is None:
        triggering = context.get("triggering_asset_events") or {}
        events = [getattr(e, "extra", {}).get("payload") for evs in triggering.values() for e in evs]
    seen: set[str] = set()
    out: list[Event] = []
    for event in _payloads(events):
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


class EventActionOperator(BaseOperator):
    """Base of the actions: collects the events and delivers each (or the batch) once per task instance."""

    action_class: ClassVar[type[Action]]
    template_fields: Sequence[str] = ("events",)
    ui_color = "#fcd34d"

    def __init__(
        self, *, events: Any = None, batch: bool = False, delivery_retry: RetryPolicy | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.events = events
        self.batch = batch
        self.delivery_retry = delivery_retry

    @classmethod
    def from_action(cls, *, task_id: str, action: Action, **kwargs: Any) -> EventActionOperator:
        """``SendNotificationOperator.from_action(task_id=..., action=SendNotification(...))``."""
        if not isinstance(action, cls.action_class):
            raise TypeError(f"{cls.__name__} takes a {cls.action_class.__name__}, got {type(action).__name__}")
        return cls(task_id=task_id, **cls.arguments_of(action), **kwargs)

    @staticmethod
    def arguments_of(action: Any) -> dict[str, Any]:
        """The operator arguments an action model stands for."""
        return {}

    def deliver(self, events: list[Event], key: str) -> None:
        raise NotImplementedError

    def execute(self, context: Context) -> list[str]:
        events = collect_events(context, self.events)
        if not events:
            self.log.info("No events to act on: nothing was sent")
            return []
        store: Any = context.get("task_state_store")
        delivered: list[str] = list(store.get(DELIVERED_KEY, default=[])) if store is not None else []
        units = [events] if self.batch else [[e] for e in events]
        for unit in units:
            key = delivery_key(unit)
            if key in delivered:
                self.log.info("Already delivered by an earlier try of this task: %s", key)
                continue
            self.deliver(unit, key)
            delivered.append(key)
            if store is not None:
                store.set(DELIVERED_KEY, delivered, retention=NEVER_EXPIRE)
            self.log.info("Delivered %d event(s) (key %s)", len(unit), key)
        return [str(e.get("event_id")) for e in events]


class SendNotificationOperator(EventActionOperator):
    """A Slack message per event (or one per batch): title, message (``text``), severity (``level``).

    The Slack webhook is ``slack_conn_id``, a literal ``webhook_url``, or ``integration=SlackIntegration(...)``.
    """

    action_class = SendNotification
    template_fields: Sequence[str] = ("events", "title", "message")

    def __init__(
        self,
        *,
        title: str = "",
        message: str = "",
        severity: str = "INFO",
        slack_conn_id: str | None = SlackNotificationHook.default_conn_name,
        webhook_url: str | None = None,
        integration: SlackIntegration | None = None,
        text: str | None = None,
        level: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.title, self.message, self.severity = notification_fields(title, message, severity, text, level)
        self.slack_conn_id, self.webhook_url = delivery_target(integration, slack_conn_id, webhook_url)

    @staticmethod
    def arguments_of(action: SendNotification) -> dict[str, Any]:
        return {"integration": action.integration} | action.model_dump(include={"title", "message", "severity"})

    @cached_property
    def hook(self) -> SlackNotificationHook:
        return SlackNotificationHook(self.slack_conn_id, webhook_url=self.webhook_url, retry=self.delivery_retry)

    def deliver(self, events: list[Event], key: str) -> None:
        self.hook.send(slack_message(self.title, self.message, self.severity, events))


class SendWebhookOperator(EventActionOperator):
    """A signed JSON POST per event (or ``{"events": [...]}`` per batch) to a webhook connection's URL.

    ``payload`` is a Jinja template field and its strings may hold W&B's ``${...}`` variables
    (``${run_name}``, ``${artifact_metadata.KEY}``, ``${ACCESS_TOKEN}`` ...); without a payload
    the event itself is sent.
    """

    action_class = SendWebhook
    template_fields: Sequence[str] = ("events", "payload")
    template_fields_renderers: ClassVar[dict[str, str]] = {"payload": "json"}

    def __init__(
        self,
        *,
        payload: Any = None,
        webhook_conn_id: str | None = WebhookHook.default_conn_name,
        url: str | None = None,
        integration: WebhookIntegration | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.payload = payload
        self.webhook_conn_id, self.url = delivery_target(integration, webhook_conn_id, url)

    @staticmethod
    def arguments_of(action: SendWebhook) -> dict[str, Any]:
        return {"integration": action.integration, "payload": action.payload}

    @cached_property
    def hook(self) -> WebhookHook:
        return WebhookHook(self.webhook_conn_id, url=self.url, retry=self.delivery_retry)

    def deliver(self, events: list[Event], key: str) -> None:
        self.hook.send(self.payload, events, key, batch=self.batch)


class DoNothingOperator(EventActionOperator):
    """The dry run: logs the events it would have acted on and returns them."""

    action_class = DoNothing

    def execute(self, context: Context) -> list[Event]:  # type: ignore[override]
        events = collect_events(context, self.events)
        if not events:
            self.log.info("No events to act on")
        for event in events:
            self.log.info("Would act on %s %s: %s", event.get("event_type"), event.get("event_id"), event.get("url"))
        return events
