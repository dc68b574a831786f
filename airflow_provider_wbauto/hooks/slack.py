"""Slack incoming webhooks: the message layout (Block Kit) and its delivery.

The connection is ours (type ``wandb_slack``) or the Slack provider's ``slackwebhook``, read the same
way without importing that package: ``password`` is the webhook token (``T000/B000/XXX``) or the
whole URL, ``host`` the base (default ``https://hooks.slack.com/services``). The URL's path is the
credential, so it is masked and never logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException

from .delivery import DeliveryHook, Target, credential, masked
from .transport import base_url

SLACK_BASE = "https://hooks.slack.com/services"
SEVERITY_STYLE = {"INFO": ("#2eb67d", ":information_source:"), "WARN": ("#ecb22e", ":warning:"),
                  "ERROR": ("#e01e5a", ":rotating_light:")}  # fmt: skip
SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """``[1, 5, 3]`` -> ``▁█▄``: a window's values at a glance."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    return "".join(SPARK[0 if span == 0 else round((v - low) / span * (len(SPARK) - 1))] for v in values)


def escape(text: Any) -> str:
    """Text from an event (a run name, an alias) as Slack mrkdwn shows it literally: ``&``, ``<`` and
    ``>`` escaped as Slack asks, so no name can mention ``<!channel>`` or make a link of its own."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    """A mrkdwn link; ``|`` in the URL (it ends the address in Slack's syntax) is percent-encoded."""
    return f"<{escape(url).replace('|', '%7C')}|{escape(label)}>"


def _event_lines(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    subject = event.get("run_name") or event.get("artifact_version_string") or event.get("event_type", "")
    link = _link(str(event["url"]), str(subject)) if event.get("url") else escape(subject)
    facts = [f"*{escape(event.get('event_type', 'EVENT'))}* {link}"]
    if event.get("metric_name") is not None:
        value, step = escape(event.get("metric_value")), escape(event.get("step"))
        facts.append(f"`{escape(event['metric_name'])}` = {value} at step {step}")
    if event.get("run_state") and event.get("event_type") == "RUN_STATE":
        facts.append(f"state: {escape(event['run_state'])}")
    if event.get("alias"):
        facts.append(f"alias: `{escape(event['alias'])}`")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)}}]
    window = event.get("window_values") or []
    if window:
        text = f"window {sparkline(window)} {escape(window)}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
    return blocks


def slack_message(title: str, message: str, severity: str, events: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """An incoming-webhook body: severity as colour and emoji, the text, then one section per event."""
    colour, emoji = SEVERITY_STYLE.get(severity.upper(), SEVERITY_STYLE["INFO"])
    headline = f"{emoji} {title}".strip() if title else emoji
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": headline[:150]}}]
    if message:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": message[:3000]}})
    for event in events:
        blocks.extend(_event_lines(event))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"severity: *{severity.upper()}*"}]})
    fallback = " ".join(p for p in (title, message) if p) or severity
    return {"text": fallback, "attachments": [{"color": colour, "blocks": blocks[:50]}]}


class SlackNotificationHook(DeliveryHook):
    """Posts messages to a Slack incoming webhook, from a connection or a literal ``webhook_url``.

    :param slack_conn_id: a ``wandb_slack`` (or the Slack provider's ``slackwebhook``) connection:
        password = the webhook token ``T/B/X`` or the whole URL, host = the base.
    :param webhook_url: a literal webhook URL instead (masked in logs).

    ``timeout``, ``retry`` and ``rate_per_minute`` are ``DeliveryHook``'s.
    """

    conn_name_attr = "slack_conn_id"
    default_conn_name = "slack_default"
    conn_type = "wandb_slack"
    hook_name = "W&B automations: Slack incoming webhook"

    def __init__(self, slack_conn_id: str | None = default_conn_name, webhook_url: str | None = None, **kw: Any):
        super().__init__(None if webhook_url else slack_conn_id, **kw)
        self.webhook_url = webhook_url
        masked(webhook_url)

    def make_target(self, conn: Any, extra: Mapping[str, Any]) -> Target:
        if conn is None:
            url = self.webhook_url or ""
        else:
            masked(conn.password)  # as stored, before anything can fail
            token = credential(conn.password, conn_id=self.conn_id, field="webhook token or URL (password)")
            base = base_url(conn.host, SLACK_BASE)
            url = token if token.startswith("http") else f"{base}/{token.lstrip('/')}" if token else base
        if not url.startswith("http"):
            raise AirflowNotFoundException(f"Slack connection {self.conn_id!r} has no webhook URL or token")
        masked(url, url.split("/services/", 1)[-1])
        timeout, per_minute = self.tuning(extra)
        name = f"Slack ({self.conn_id or 'literal webhook URL'})"
        return Target(url=url, name=name, timeout=timeout, per_minute=per_minute)

    def send(self, message: Mapping[str, Any]) -> int:
        return self.post(self.target(), json.dumps(message).encode(), {})

    async def async_send(self, message: Mapping[str, Any]) -> int:
        return await self.apost(await self.atarget(), json.dumps(message).encode(), {})
