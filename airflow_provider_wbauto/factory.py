"""The DAG factory: ``Automation.save()`` in a DAG file becomes one Airflow DAG.

- **event mode** (default): ``Asset("wandb://<scope>?automation=<dag id>")`` with an ``AssetWatcher``
  whose trigger (``WandbAutomationTrigger``) shares one poll with every automation on the scope; the
  DAG is scheduled on that asset, and its action reads ``triggering_asset_events``, skipping event
  ids it already acted on (ack-mode watchers deliver at least once).
- **sensor mode**: a ``@continuous`` DAG with ``max_active_runs=1``: the event's sensor, then the action.

Either way the action task emits ``Asset("wandb-automation://<dag id>")`` with the events in the
asset event's extra (``automation.asset``), so any DAG scheduled on it starts when the automation
fires. A disabled automation keeps its DAG, tagged ``disabled``, with no watcher and no schedule.
The DAG's docs hold the automation's spec, which the listing (``Api``) reads back.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher

from .automations.actions import action_from_json, action_to_json
from .automations.automation import Automation, dag_id_of
from .automations.events import event_from_json, event_to_json
from .operators.wandb import DoNothingOperator, EventActionOperator, SendNotificationOperator, SendWebhookOperator
from .sensors.wandb import SENSORS_BY_EVENT
from .triggers.watcher import WandbAutomationTrigger

TAG = "wandb-automation"
SPEC_MARK = "wbauto-spec"  # the fenced block of the DAG docs that holds the spec
REGISTRY = "__wbauto_automations__"  # a parsed module's automations, by name: duplicates are errors
START = pendulum.datetime(2026, 1, 1, tz="UTC")
_DAG_ARGS = frozenset(attrs.fields_dict(DAG)) - {"dag_id"}
_OPERATORS: dict[str, type[EventActionOperator]] = {
    "SendNotification": SendNotificationOperator,
    "SendWebhook": SendWebhookOperator,
    "DoNothing": DoNothingOperator,
}


def automation_asset(name: str) -> Asset:
    """What an automation emits when it fires: schedule a DAG on it to start a pipeline."""
    return Asset(f"wandb-automation://{dag_id_of(name)}")


def watch_asset(automation: Automation, watcher: WandbAutomationTrigger | None = None) -> Asset:
    """The asset an event-mode automation is scheduled on; its state store holds the watcher's cursor."""
    uri = f"wandb://{automation.scope}?automation={automation.dag_id}"
    if watcher is None:
        return Asset(uri)
    return Asset(uri, watchers=[AssetWatcher(name=f"wbauto_{automation.dag_id}", trigger=watcher)])


def spec_of(automation: Automation) -> dict[str, Any]:
    """The automation as plain JSON (secrets masked): what the DAG docs carry and the listing reads."""
    return {
        "name": automation.name,
        "description": automation.description,
        "enabled": automation.enabled,
        "mode": automation.mode,
        "event": event_to_json(automation.event),
        "action": action_to_json(automation.action),
    }


def automation_of_spec(spec: dict[str, Any]) -> Automation:
    return Automation(
        name=spec["name"],
        description=spec.get("description"),
        enabled=spec.get("enabled", True),
        mode=spec.get("mode", "event"),
        event=event_from_json(spec["event"]),
        action=action_from_json(spec["action"]),
    )


def _docs(automation: Automation) -> str:
    try:
        wire = json.dumps(automation.to_wandb_input(), indent=2)
        wire_part = f"W&B's wire form (`CreateFilterTriggerInput`):\n\n```json\n{wire}\n```"
    except ValueError as exc:  # our extensions: sum, ==/!= thresholds, plateaus
        wire_part = f"W&B cannot express this automation: {exc}"
    spec = json.dumps(spec_of(automation), indent=2, sort_keys=True)
    return (
        f"# W&B automation `{automation.name}`\n\n{automation.description or ''}\n\n"
        f"On `{automation.event.event_type}` at `{automation.scope}`, do `{automation.action.action_type}`"
        f" ({'enabled' if automation.enabled else 'disabled'}, {automation.mode} mode). "
        f"Emits `{automation_asset(automation.name).uri}` when it fires.\n\n{wire_part}\n\n"
        f"The automation (read back by `wbauto automations list`):\n\n```json {SPEC_MARK}\n{spec}\n```\n"
    )


def spec_from_docs(doc_md: str | None) -> dict[str, Any] | None:
    """The spec in a DAG's docs, or ``None`` if the DAG is not an automation's."""
    head = f"```json {SPEC_MARK}\n"
    if not doc_md or head not in doc_md:
        return None
    body = doc_md.split(head, 1)[1].split("\n```", 1)[0]
    spec: dict[str, Any] = json.loads(body)
    return spec


def build_dag(
    automation: Automation,
    *,
    wandb_conn_id: str = "wandb_default",
    poll_interval: float = 60.0,
    since: str | None = None,
    rearm: bool = False,
    **dag_kwargs: Any,
) -> DAG:
    """The automation's DAG (the module docs give its two shapes).

    :param automation: the named automation.
    :param wandb_conn_id: the ``wandb`` connection the watcher or the sensor reads W&B with.
    :param poll_interval: seconds between reads of the scope.
    :param since: where the watch starts: ``None``, ``"beginning"`` or an ISO time.
    :param rearm: fire again at every later rising edge of a metric condition.
    :param dag_kwargs: go to the DAG; task arguments among them go to its ``default_args``.
    """
    task_args = {k: dag_kwargs.pop(k) for k in list(dag_kwargs) if k not in _DAG_ARGS}
    default_args = {**task_args, **(dag_kwargs.pop("default_args", None) or {})}
    tags = [TAG, automation.event.event_type, automation.action.action_type]
    if not automation.enabled:
        tags.append("disabled")
    enabled = automation.enabled
    outlet = automation_asset(automation.name)
    operator = _OPERATORS[type(automation.action).__name__]
    dag_args: dict[str, Any] = {
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,  # one writer of the cursor and of the processed ids
        "is_paused_upon_creation": not enabled,
        "description": automation.description,
        "doc_md": _docs(automation),
        **dag_kwargs,
        "tags": sorted({*tags, *dag_kwargs.get("tags", ())}),
        "default_args": default_args,
    }
    if automation.mode == "sensor":
        with DAG(automation.dag_id, schedule="@continuous" if enabled else None, **dag_args) as dag:
            sensor = SENSORS_BY_EVENT[type(automation.event)].from_event(
                task_id="wait_for_event",
                event=automation.event,
                automation_name=automation.name,
                wandb_conn_id=wandb_conn_id,
                since=since,
                rearm=rearm,
                poke_interval=poll_interval,
                mode="reschedule",  # no triggerer needed: this mode is for deployments without one
                deferrable=False,
            )
            operator.from_action(task_id="act", action=automation.action, events=sensor.output, outlets=[outlet])
        return dag
    watcher = None
    if enabled:
        watcher = WandbAutomationTrigger(
            event=event_to_json(automation.event),
            automation=automation.name,
            watch_asset=watch_asset(automation).name,
            since=since,
            rearm=rearm,
            wandb_conn_id=wandb_conn_id,
            poll_interval=poll_interval,
        )
    watched = watch_asset(automation, watcher)
    with DAG(automation.dag_id, schedule=[watched] if enabled else None, **dag_args) as dag:
        operator.from_action(
            task_id="act", action=automation.action, dedupe_asset=watched, skip_without_events=True, outlets=[outlet]
        )
    return dag


def register(automation: Automation, *, module: dict[str, Any], **kwargs: Any) -> DAG:
    """Build the DAG of an automation saved in ``module`` (its globals); a second one of a name is an error."""
    saved: dict[str, DAG] = module.setdefault(REGISTRY, {})
    clash = next((n for n in saved if dag_id_of(n) == automation.dag_id), None)
    if clash is not None:
        same = "the same name" if clash == automation.name else f"the DAG id of {clash!r}"
        raise ValueError(f"automation {automation.name!r} is saved twice in this file ({same}); names must be unique")
    dag = build_dag(automation, **kwargs)
    saved[automation.name] = dag
    return dag
