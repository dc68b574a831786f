"""Notifier versions of the actions, for ``on_failure_callback`` and friends (thin, over the hooks)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseNotifier, Context

from ..automations.actions import SlackIntegration, WebhookIntegration
from ..hooks.actions import collect_events, delivery_key, delivery_target, notification_fields
from ..hooks.slack import SlackNotificationHook, slack_message
from ..hooks.webhook import FencedPayload, WebhookHook


def _task_event(context: Context) -> dict[str, Any]:
    """What a callback is about when no W&B event is: the task instance, as payload variables."""
    ti = context.get("ti")
    return {
        "event_id": f"{getattr(ti, 'dag_id', '')}/{getattr(ti, 'run_id', '')}/{getattr(ti, 'task_id', '')}",
        "event_type": "AIRFLOW_TASK",
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None),
    }


class SendNotificationNotifier(BaseNotifier):
    """A Slack message from a callback: ``on_failure_callback=send_wandb_notification(title=..., ...)``.

    :param events: W&B events to show (a list, or an XCom of a sensor's); ``None``: none.

    The other parameters (``title``, ``message``, ``severity``, ``slack_conn_id``, ``webhook_url``,
    ``integration``, ``text``, ``level``) are ``SendNotificationOperator``'s.
    """

    template_fields: Sequence[str] = ("title", "message")

    def __init__(
        self,
        *,
        title: str = "",
        message: str = "",
        severity: str = "INFO",
        text: str | None = None,
        level: str | None = None,
        slack_conn_id: str | None = SlackNotificationHook.default_conn_name,
        webhook_url: str | None = None,
        integration: SlackIntegration | None = None,
        events: Any = None,
    ) -> None:
        super().__init__()
        self.title, self.message, self.severity = notification_fields(title, message, severity, text, level)
        self.slack_conn_id, self.webhook_url = delivery_target(integration, slack_conn_id, webhook_url)
        self.events = events

    @cached_property
    def hook(self) -> SlackNotificationHook:
        return SlackNotificationHook(self.slack_conn_id, webhook_url=self.webhook_url)

    def _message(self, context: Context) -> dict[str, Any]:
        events = collect_events(context, self.events) if self.events is not None else []
        return slack_message(self.title, self.message, self.severity, events)

    def notify(self, context: Context) -> None:
        self.hook.send(self._message(context))

    async def async_notify(self, context: Context) -> None:
        await self.hook.async_send(self._message(context))


class SendWebhookNotifier(FencedPayload, BaseNotifier):
    """A signed webhook from a callback; without W&B events the task instance is the event.

    :param events: W&B events to send (a list, or a sensor's XCom); ``None``: the task instance.

    The other parameters (``payload``, ``webhook_conn_id``, ``url``, ``integration``) are
    ``SendWebhookOperator``'s.
    """

    template_fields: Sequence[str] = ("payload",)

    def __init__(
        self,
        *,
        payload: Any = None,
        webhook_conn_id: str | None = WebhookHook.default_conn_name,
        url: str | None = None,
        integration: WebhookIntegration | None = None,
        events: Any = None,
    ) -> None:
        super().__init__()
        self.webhook_conn_id, self.url = delivery_target(integration, webhook_conn_id, url)
        self.payload, self.events = payload, events

    @cached_property
    def hook(self) -> WebhookHook:
        return WebhookHook(self.webhook_conn_id, url=self.url)

    def _events(self, context: Context) -> list[dict[str, Any]]:
        return (collect_events(context, self.events) if self.events is not None else []) or [_task_event(context)]

    def notify(self, context: Context) -> None:
        events = self._events(context)
        self.hook.send(self.payload_to_send, events, delivery_key(events), batch=len(events) > 1)

    async def async_notify(self, context: Context) -> None:
        events = self._events(context)
        await self.hook.async_send(self.payload_to_send, events, delivery_key(events), batch=len(events) > 1)


send_wandb_notification = SendNotificationNotifier
send_wandb_webhook = SendWebhookNotifier
