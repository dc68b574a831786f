"""The action side: thin operators over the delivery hooks, acting on the events a sensor returned.

``events`` is the sensor's output (``events=sensor.output``), a literal list, or, when the DAG is
scheduled by an asset watcher, left out: the payloads of ``triggering_asset_events`` are used. One
delivery per event, or one for all with ``batch=True``. Each delivery carries the event id as its
idempotency key, and the keys already delivered are kept in the task state store (scoped to this
task instance, shared by its retries), so a retry after a failed delivery does not send again what
this task already sent. With ``dedupe_asset`` (the saved automations' watched asset) the ids acted
on are also kept in that asset's state store, across DAG runs: an asset watcher delivers at least
once, and an event it delivers again is skipped. The events acted on go into the extra of every
outlet asset event (``{"events": [...]}``), so DAGs scheduled on an outlet see what fired.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar, cast

from airflow.sdk import NEVER_EXPIRE, Asset, BaseOperator, Context  # type: ignore[attr-defined]
from airflow.sdk.exceptions import AirflowSkipException

from ..automations.actions import (
    Action,
    DoNothing,
    SendNotification,
    SendWebhook,
    SlackIntegration,
    WebhookIntegration,
)
from ..hooks.actions import (
    PROCESSED_KEY,
    Event,
    collect_events,
    delivery_key,
    delivery_target,
    notification_fields,
)
from ..hooks.cursors import stored_ids
from ..hooks.slack import SlackNotificationHook, slack_message
from ..hooks.transport import RetryPolicy
from ..hooks.webhook import FencedPayload, WebhookHook

DELIVERED_KEY = "wbauto_delivered"
PROCESSED_KEPT = 2000


class EventActionOperator(BaseOperator):
    """Base of the actions: collects the events and delivers each (or the batch) once.

    :param events: the events to act on (a sensor's output, a list); ``None``: the triggering asset events.
    :param batch: one delivery for all the events instead of one per event.
    :param delivery_retry: retry bounds for a receiver that is down (``RetryPolicy``).
    :param dedupe_asset: an asset (added to ``inlets``) whose state store remembers the event ids acted
        on across DAG runs, so an event delivered to this DAG twice is acted on once.
    :param skip_without_events: with no (new) events, end the task as skipped: no outlet asset event.
    """

    action_class: ClassVar[type[Action]]
    template_fields: Sequence[str] = ("events",)
    ui_color = "#fcd34d"

    def __init__(
        self,
        *,
        events: Any = None,
        batch: bool = False,
        delivery_retry: RetryPolicy | None = None,
        dedupe_asset: Asset | None = None,
        skip_without_events: bool = False,
        **kwargs: Any,
    ) -> None:
        if dedupe_asset is not None:
            kwargs["inlets"] = [*(kwargs.get("inlets") or []), dedupe_asset]
        super().__init__(**kwargs)
        self.events = events
        self.batch = batch
        self.delivery_retry = delivery_retry
        self.dedupe_asset = dedupe_asset
        self.skip_without_events = skip_without_events

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

    @abstractmethod
    def deliver(self, events: list[Event], key: str) -> None:
        """Send one unit (an event, or the batch) under its idempotency key."""

    def result(self, events: list[Event]) -> Any:
        """The XCom value: the ids of the events acted on."""
        return [str(e.get("event_id")) for e in events]

    def execute(self, context: Context) -> Any:
        processed = self._processed(context)
        events = [e for e in collect_events(context, self.events) if str(e.get("event_id")) not in processed]
        if not events:
            if self.skip_without_events:
                raise AirflowSkipException("No new events to act on: nothing was sent")
            self.log.info("No events to act on: nothing was sent")
            return self.result([])
        store: Any = context.get("task_state_store")
        delivered: list[str] = list(store.get(DELIVERED_KEY, default=[])) if store is not None else []
        for unit in [events] if self.batch else [[e] for e in events]:
            key = delivery_key(unit)
            if key in delivered:
                self.log.info("Already delivered by an earlier try of this task: %s", key)
            else:
                self.deliver(unit, key)
                delivered.append(key)
                if store is not None:
                    store.set(DELIVERED_KEY, delivered, retention=NEVER_EXPIRE)
                self.log.info("Delivered %d event(s) (key %s)", len(unit), key)
            self._remember(context, processed, unit)
        for asset in self.outlets:
            context["outlet_events"][asset].extra = {"events": cast(Any, events)}
        return self.result(events)

    def _processed(self, context: Context) -> list[str]:
        if self.dedupe_asset is None:
            return []
        stored = context["asset_state_store"][self.dedupe_asset].get(PROCESSED_KEY, default=[])
        return stored_ids(stored, asset=self.dedupe_asset.name, key=PROCESSED_KEY)

    def _remember(self, context: Context, processed: list[str], unit: list[Event]) -> None:
        """Add the unit's ids to the processed ids (the newest ``PROCESSED_KEPT``); one writer: the DAG
        has ``max_active_runs=1``."""
        if self.dedupe_asset is None:
            return
        processed[:] = [*processed, *(str(e.get("event_id")) for e in unit)][-PROCESSED_KEPT:]
        context["asset_state_store"][self.dedupe_asset].set(PROCESSED_KEY, cast(Any, processed))


class SendNotificationOperator(EventActionOperator):
    """A Slack message per event (or one per batch), with the event's link, value and sparkline.

    :param title: the message's title. Templated.
    :param message: its text (W&B's ``text`` is accepted too). Templated.
    :param severity: ``INFO``, ``WARN`` or ``ERROR`` (W&B's ``level``), shown by colour and emoji.
    :param slack_conn_id: a ``wandb_slack`` connection, or the Slack provider's ``slackwebhook`` one.
    :param webhook_url: a literal incoming-webhook URL for a quick start (masked in logs), instead of a
        connection.
    :param integration: ``SlackIntegration(conn_id=...)`` or ``SlackIntegration(webhook_url=...)``,
        as in ``wandb.automations``; not together with ``webhook_url``.
    :param text: W&B's name for ``message``.
    :param level: W&B's name for ``severity``.

    The other parameters are ``EventActionOperator``'s.
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


class SendWebhookOperator(FencedPayload, EventActionOperator):
    """A signed JSON POST per event (or ``{"events": [...]}`` per batch), with an ``Idempotency-Key``.

    :param payload: the JSON body: an object whose strings may hold W&B's ``${...}`` variables, or
        JSON text; ``None`` sends the event itself. Templated (Jinja).
    :param webhook_conn_id: a ``wandb_webhook`` connection: host = URL, password = access token
        (``${ACCESS_TOKEN}``, ``Authorization: Bearer``), extras ``signing_secret``, ``secrets``,
        ``timeout``, ``rate_limit_per_minute``.
    :param url: a literal receiver URL (masked in logs), instead of a connection.
    :param integration: ``WebhookIntegration(conn_id=...)`` or ``WebhookIntegration(url=...)``; not
        together with ``url``.

    The other parameters are ``EventActionOperator``'s.
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
        self.hook.send(self.payload_to_send, events, key, batch=self.batch)


class DoNothingOperator(EventActionOperator):
    """The dry run: logs the events it would have acted on and returns them (``DoNothing``).

    It takes ``EventActionOperator``'s parameters.
    """

    action_class = DoNothing

    def deliver(self, events: list[Event], key: str) -> None:
        for event in events:
            self.log.info("Would act on %s %s: %s", event.get("event_type"), event.get("event_id"), event.get("url"))

    def result(self, events: list[Event]) -> Any:
        return events
