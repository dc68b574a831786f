"""``NewAutomation`` (event + action, being built) and ``Automation`` (named, saved), with W&B's wire form."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from ._validators import wire_json
from .actions import Action, DoNothing, SendNotification, SendWebhook, SlackIntegration, WebhookIntegration
from .events import EVENTS_BY_WIRE, Event
from .scopes import Scope

if TYPE_CHECKING:  # the model stays free of Airflow at run time
    from airflow.sdk import Asset

ACTIONS_BY_WIRE: dict[str, str] = {
    "notificationActionInput": "NOTIFICATION",
    "genericWebhookActionInput": "GENERIC_WEBHOOK",
    "noOpActionInput": "NO_OP",
}


def _action_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if isinstance(value, dict) and "no_op" in value:
        return "DoNothing"
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

    def __str__(self) -> str:
        """``name: <event> -> <action>`` in W&B's words (without the name while it has none)."""
        said = f"{self.event} -> {self.action}"
        return f"{self.name}: {said}" if self.name else said

    def save(
        self,
        name: str | None = None,
        *,
        description: str | None = None,
        enabled: bool = True,
        mode: Literal["event", "sensor"] = "event",
        wandb_conn_id: str = "wandb_default",
        poll_interval: float = 60.0,
        since: str | None = None,
        rearm: bool = False,
        **dag_kwargs: Any,
    ) -> Automation:
        """Name the automation and make it an Airflow DAG that the DAG processor finds in this module.

        Two automations of one name (or of one DAG id) in a module are an error naming it.

        :param name: the automation's name; the DAG id is the name with each run of spaces made ``_``
            (letters, digits, ``_ - .`` and spaces, starting with a letter or digit).
        :param description: shown on the DAG and in the listing.
        :param enabled: ``False`` keeps the DAG (tagged ``disabled``, paused) with no watcher and no schedule.
        :param mode: ``"event"`` (default): an asset watcher on ``wandb://<scope>?automation=<dag id>``
            starts a DAG run per batch of events; ``"sensor"``: a ``@continuous`` DAG whose sensor
            waits for events (for deployments without a triggerer).
        :param wandb_conn_id: the ``wandb`` connection to watch W&B with.
        :param poll_interval: seconds between reads of the scope (shared by the automations on it).
        :param since: ``None`` (from the first poll on), ``"beginning"`` or an ISO time to backfill from.
        :param rearm: fire again at every later rising edge of a metric condition, not once per run.
        :param dag_kwargs: passed to the DAG; task arguments among them (``owner``, ``pool``,
            ``retries``, ...) go to its ``default_args``.
        """
        automation = Automation(
            name=name or self.name or "",
            description=description if description is not None else self.description,
            enabled=enabled if self.enabled is None else self.enabled and enabled,
            mode=mode,
            event=self.event,
            action=self.action,
        )
        # The one step out of the pure model, taken lazily: building the DAG needs Airflow.
        from ..factory import register

        caller = sys._getframe(1).f_globals
        register(
            automation,
            module=caller,
            wandb_conn_id=wandb_conn_id,
            poll_interval=poll_interval,
            since=since,
            rearm=rearm,
            **dag_kwargs,
        )
        return automation

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
            event=event,
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


DAG_ID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")


def dag_id_of(name: str) -> str:
    """The DAG id of an automation: its name with each run of spaces made one ``_``.

    Names are letters, digits, ``_``, ``-``, ``.`` and spaces, starting with a letter or digit."""
    if not DAG_ID_NAME.match(name) or len(name) > 250:
        raise ValueError(
            f"automation name {name!r} cannot be a DAG id: use letters, digits, '_', '-', '.' and spaces, "
            "starting with a letter or digit, at most 250 characters"
        )
    return re.sub(r" +", "_", name.strip())


class Automation(NewAutomation):
    """A named automation: what the DAG factory and the sensors run.

    :param name: the automation's name; its DAG id is ``dag_id_of(name)``.
    :param description: shown on the DAG.
    :param enabled: a disabled automation keeps its DAG but never triggers.
    :param mode: how Airflow watches: an asset watcher (``event``) or a continuous sensor DAG (``sensor``).
    :param event: what the automation watches.
    :param action: what it does when the event fires.
    """

    name: str = Field(min_length=1, max_length=255)
    enabled: bool = True
    mode: Literal["event", "sensor"] = "event"

    @field_validator("name")
    @classmethod
    def _maps_to_a_dag_id(cls, name: str) -> str:
        dag_id_of(name)
        return name

    @property
    def dag_id(self) -> str:
        return dag_id_of(self.name)

    @property
    def asset(self) -> Asset:
        """The ``airflow.sdk.Asset`` this automation emits when it fires: schedule a DAG on it."""
        from ..factory import automation_asset  # Airflow's Asset, imported only when asked for

        return automation_asset(self.name)
