"""``NewAutomation`` (event + action, being built) and ``Automation`` (named, saved), with W&B's wire form."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ._validators import wire_json
from .actions import Action, DoNothing, SendNotification, SendWebhook, SlackIntegration, WebhookIntegration
from .events import EVENTS_BY_WIRE, Event
from .scopes import Scope

ACTIONS_BY_WIRE: dict[str, str] = {
    "notificationActionInput": "NOTIFICATION",
    "genericWebhookActionInput": "GENERIC_WEBHOOK",
    "noOpActionInput": "NO_OP",
}


def _action_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return type(value).__name__
    return "SendWebhook" if isinstance(value, dict) and "payload" in value else "SendNotification"


AnyAction = Annotated[
    Annotated[SendNotification, Tag("SendNotification")]
    | Annotated[SendWebhook, Tag("SendWebhook")]
    | Annotated[DoNothing, Tag("DoNothing")],
    Discriminator(_action_tag),
]


class NewAutomation(BaseModel):
    """``event.then(action)`` or ``event >> action``; ``save(name=...)`` makes it an ``Automation``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(None, max_length=255)
    description: str | None = None
    enabled: bool | None = None
    event: Event
    action: AnyAction

    @property
    def scope(self) -> Scope:
        return self.event.scope

    def save(self, name: str | None = None, *, description: str | None = None, enabled: bool = True) -> Automation:
        """Validate into a named automation (the DAG factory turns it into a DAG)."""
        return Automation(
            name=name or self.name or "",
            description=description if description is not None else self.description,
            enabled=enabled if self.enabled is None else self.enabled and enabled,
            event=self.event,
            action=self.action,
        )

    def to_wandb_input(self, *, scope_id: str | None = None) -> dict[str, Any]:
        """The ``CreateFilterTriggerInput`` fields the W&B SDK sends (``scopeID`` only if given)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "enabled": True if self.enabled is None else self.enabled,
            "scopeType": self.scope.wire_type,
            "scopeID": scope_id,
            "triggeringEventType": self.event.event_type,
            "eventFilter": wire_json(self.event.filter_wire()),
            "triggeredActionType": self.action.action_type,
            "triggeredActionConfig": self.action.to_wire(),
        }
        return {k: val for k, val in out.items() if val is not None}

    @classmethod
    def from_wandb_input(cls, data: dict[str, Any], *, scope: str | Scope) -> NewAutomation:
        """Parse the wire form back; the scope is given separately since W&B sends an opaque id."""
        event_type = data.get("triggeringEventType")
        if event_type not in EVENTS_BY_WIRE:
            raise ValueError(f"triggeringEventType must be one of {', '.join(EVENTS_BY_WIRE)}; got {event_type!r}")
        event = EVENTS_BY_WIRE[event_type].model_validate({"scope": scope, "filter": data.get("eventFilter") or {}})
        return cls(
            name=data.get("name"),
            description=data.get("description"),
            enabled=data.get("enabled"),
            event=event,  # type: ignore[arg-type]
            action=_parse_action(data.get("triggeredActionConfig") or {}),
        )


def _parse_action(config: dict[str, Any]) -> Action:
    if len(config) != 1 or next(iter(config)) not in ACTIONS_BY_WIRE:
        raise ValueError(f"triggeredActionConfig must hold exactly one of {', '.join(ACTIONS_BY_WIRE)}")
    (key, body), *_ = config.items()
    if key == "noOpActionInput":
        return DoNothing()
    conn_id = body.get("integrationID")
    if key == "notificationActionInput":
        return SendNotification(
            integration=SlackIntegration(conn_id=conn_id),
            title=body.get("title") or "",
            message=body.get("message") or "",
            severity=body.get("severity") or "INFO",
        )
    return SendWebhook(integration=WebhookIntegration(conn_id=conn_id), payload=body.get("requestPayload"))


class Automation(NewAutomation):
    """A named automation: what the DAG factory and the sensors run."""

    name: str = Field(min_length=1, max_length=255)
    enabled: bool = True
