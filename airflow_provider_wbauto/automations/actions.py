"""Actions (what an automation does) and the integrations they send through, as in ``wandb.automations``.

An integration names an Airflow connection (secrets stay in Airflow's secrets backend) or, for a quick
start, a literal URL that is treated as a secret and never shown.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from . import _validators as v

DEFAULT_SLACK_CONN_ID = "slack_default"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Integration(_Frozen):
    """Where an action delivers: an Airflow connection, or a literal URL for a quick start."""

    conn_id: str | None = None

    @abstractmethod
    def _url(self) -> SecretStr | None:
        """The literal URL, if the integration has one instead of a connection."""

    @property
    def wire_id(self) -> str:
        return self.conn_id or "literal-webhook-url"

    def __str__(self) -> str:
        return self.conn_id or "a literal URL"  # the URL is a secret: never shown

    def target(self) -> tuple[str | None, str | None]:
        """``(connection id, literal URL)``: what the delivery hook is built from."""
        url = self._url()
        return self.conn_id, url.get_secret_value() if url else None


class SlackIntegration(Integration):
    """A Slack incoming webhook: an Airflow connection (ours or the Slack provider's ``slackwebhook``)."""

    webhook_url: SecretStr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SlackIntegration:
        if self.conn_id and self.webhook_url:
            raise ValueError("SlackIntegration takes conn_id or webhook_url, not both")
        if not self.conn_id and not self.webhook_url:
            object.__setattr__(self, "conn_id", DEFAULT_SLACK_CONN_ID)
        return self

    def _url(self) -> SecretStr | None:
        return self.webhook_url


class WebhookIntegration(Integration):
    """A webhook receiver: an Airflow connection (URL, access token, signing secret) or a literal URL."""

    url: SecretStr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WebhookIntegration:
        if bool(self.conn_id) == bool(self.url):
            raise ValueError("WebhookIntegration takes exactly one of conn_id or url")
        return self

    def _url(self) -> SecretStr | None:
        return self.url


Severity = Annotated[Literal["INFO", "WARN", "ERROR"], BeforeValidator(v.choice("severity", v.SEVERITY, case="upper"))]


class _Action(_Frozen):
    action_type: ClassVar[str]

    @abstractmethod
    def to_wire(self) -> dict[str, Any]:
        """The ``triggeredActionConfig`` W&B's SDK sends for this action."""

    def __str__(self) -> str:
        """``SendNotification to slack_default``, ``SendWebhook to my_hook``, ``DoNothing``."""
        integration = getattr(self, "integration", None)
        return type(self).__name__ + (f" to {integration}" if integration is not None else "")


class SendNotification(_Action):
    """A Slack message: title, message (alias ``text``), severity (alias ``level``: INFO, WARN, ERROR)."""

    action_type: ClassVar[str] = "NOTIFICATION"

    integration: SlackIntegration = Field(default_factory=SlackIntegration)
    title: str = ""
    message: str = Field("", validation_alias=AliasChoices("message", "text"))
    severity: Severity = Field("INFO", validation_alias=AliasChoices("severity", "level"))

    @classmethod
    def from_integration(
        cls, integration: SlackIntegration, *, title: str = "", text: str = "", level: str = "INFO"
    ) -> SendNotification:
        return cls.model_validate({"integration": integration, "title": title, "message": text, "severity": level})

    def to_wire(self) -> dict[str, Any]:
        return {
            "notificationActionInput": {
                "integrationID": self.integration.wire_id,
                "title": self.title,
                "message": self.message,
                "severity": self.severity,
            }
        }


def _json_object(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"payload is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"payload must be a JSON object (a dict), not {type(value).__name__}")
    return value


class SendWebhook(_Action):
    """A JSON POST; ``payload`` strings may hold W&B's ``${...}`` variables and Jinja."""

    action_type: ClassVar[str] = "GENERIC_WEBHOOK"

    integration: WebhookIntegration
    payload: Annotated[dict[str, Any] | None, BeforeValidator(_json_object)] = Field(
        None, validation_alias=AliasChoices("payload", "request_payload", "requestPayload")
    )

    @classmethod
    def from_integration(cls, integration: WebhookIntegration, *, payload: Any = None) -> SendWebhook:
        return cls(integration=integration, payload=payload)

    def to_wire(self) -> dict[str, Any]:
        return {
            "genericWebhookActionInput": {
                "integrationID": self.integration.wire_id,
                "requestPayload": None if self.payload is None else v.wire_json(self.payload),
            }
        }


class DoNothing(_Action):
    """The dry run: the automation fires and records its events, and nothing is sent."""

    action_type: ClassVar[str] = "NO_OP"
    no_op: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {"noOpActionInput": {"noOp": True}}


Action = SendNotification | SendWebhook | DoNothing
ACTIONS_BY_NAME: dict[str, type[_Action]] = {cls.__name__: cls for cls in (SendNotification, SendWebhook, DoNothing)}


def action_to_json(action: Action) -> dict[str, Any]:
    """Plain JSON with secrets masked (a literal URL shows as ``**********``); ``action_from_json`` reads it."""
    return {"do": type(action).__name__, **action.model_dump(mode="json")}


def action_from_json(data: dict[str, Any]) -> Action:
    action: Action = v.from_tagged(data, "do", ACTIONS_BY_NAME)  # type: ignore[assignment]
    return action
