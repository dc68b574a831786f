"""Event sensors: wait until a W&B automation's event is due and return the events as XCom.

Exactly-once, and why the asset state store: the cursor must outlive a DAG run (the next run goes
on from where this one stopped), and the task state store is scoped to one DAG run and cannot be
reached from a trigger. So the cursor lives in Airflow 3.3's asset state store, on an asset the
sensor lists in its ``inlets`` (``wandb://<scope>`` unless ``cursor_asset`` says otherwise), under
one key per sensor. That one key holds the cursor, a version counter and the claims: the events
each recent DAG run took (the last 16 runs, fewer if they would pass the store's 64 KiB soft
limit). Advancing the cursor and recording a claim is one ``set()``, so a worker killed mid-poke
has either done both or neither; a retry, a reschedule or a Clear of the same DAG run finds its
claim and returns the same events, and a poll that was not stored is simply redone (polls are
pure functions of the cursor and event ids are stable).

In deferrable mode the trigger only proposes events and the cursor after them; ``execute_complete``
stores them only if the version it started from is still current, and polls again otherwise.
The state store has no compare-and-set, so two writers of one key must not interleave: give the DAG
``max_active_runs=1`` (or put the sensors of one automation in a one-slot pool). With that, two
DAG runs can never claim the same event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, ClassVar

from airflow.sdk import Asset, BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowSensorTimeout
from pydantic import TypeAdapter, ValidationError

from ..automations.events import (
    Event,
    OnAddArtifactAlias,
    OnAddArtifactTag,
    OnAddCollectionTag,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRemoveArtifactTag,
    OnRemoveCollectionTag,
    OnRunMetric,
    OnRunState,
    OnUnlinkArtifact,
    event_to_json,
)
from ..hooks import state_store
from ..hooks.cursors import stored_record
from ..hooks.transport import WandbError, WandbUnavailableError
from ..hooks.wandb import WandbHook
from ..hooks.watch import Watch, newly_absent, normalise_since, poll, spec_digest, wire_time
from ..triggers.wandb import WandbEventTrigger

CLAIMS_KEPT = 16  # DAG runs whose claims are remembered (a retry or Clear of an older run polls anew)
CLAIMS_BYTES = 48 * 1024  # and no more of them than fit under the state store's 64 KiB soft limit
KWARGS_CURSOR_BYTES = 16 * 1024  # a bigger cursor stays in the store: the trigger reads it from there
Record = dict[str, Any]


def recent_claims(claims: list[Any]) -> list[Any]:
    """The last ``CLAIMS_KEPT`` claims, fewer when they would pass ``CLAIMS_BYTES``; the newest stays."""
    kept = claims[-CLAIMS_KEPT:]
    while len(kept) > 1 and len(json.dumps(kept)) > CLAIMS_BYTES:
        kept = kept[1:]
    return kept


def _templated(value: Any) -> bool:
    return "{{" in json.dumps(value, default=str)


class WandbEventSensor(BaseSensorOperator):
    """Base of the event sensors: waits for its event, returns the events fired as XCom.

    A subclass names its event class; each poke polls W&B from the stored cursor and succeeds with
    the new events. Give the DAG ``max_active_runs=1`` (the module docs say why).

    :param scope: where to watch, a W&B scope string (``entity/project``, ``entity/project/collection``,
        ``entity/wandb-registry-<name>[/collection]``, ``team:<entity>``, ``org:<organization>``);
        which ones an event takes is on its sensor. Templated.
    :param filter: the event's filter: a model (``RunEvent.metric("loss") < 0.2``), its JSON, or ``None``
        where the event allows none. Templated (names inside it are rendered); a filter without
        templates is validated when the DAG is parsed.
    :param wandb_conn_id: the ``wandb`` connection (base URL and API key); without one,
        ``WANDB_API_KEY`` / ``WANDB_BASE_URL``.
    :param since: where the watch starts: ``None`` (whatever happens after its first poll),
        ``"beginning"`` (all history) or an ISO time (backfill from then).
    :param rearm: fire again at every later rising edge of a metric condition, not once per run.
    :param cursor_key: the state-store key of this sensor's cursor (default: from the DAG, the task and
        the event, so a changed spec starts a new watch). Templated.
    :param cursor_asset: the asset whose state store holds the cursor, added to ``inlets`` (default
        ``Asset("wandb://<scope>")``, ``wandb://cursors`` for a templated scope).
    :param automation_name: the name in every event id and payload (default ``<dag id>.<task id>``).
    :param deferrable: poke once, then wait in the triggerer (default: ``[operators] default_deferrable``).
    """

    event_class: ClassVar[type[Event]]
    template_fields: Sequence[str] = ("scope", "filter", "automation_name", "cursor_key")
    template_fields_renderers: ClassVar[dict[str, str]] = {"filter": "json"}
    ui_color = "#ffcc33"

    def __init__(
        self,
        *,
        scope: str,
        filter: Any = None,
        wandb_conn_id: str = WandbHook.default_conn_name,
        since: str | None = None,
        rearm: bool = False,
        cursor_key: str | None = None,
        cursor_asset: Asset | None = None,
        automation_name: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        self.scope = str(scope)
        self.filter = self._filter_json(scope, filter)
        self.since = normalise_since(since)
        self.cursor_asset = cursor_asset or Asset(
            "wandb://cursors" if _templated(self.scope) else f"wandb://{self.scope}"
        )
        kwargs["inlets"] = [*(kwargs.get("inlets") or []), self.cursor_asset]
        super().__init__(**kwargs)
        self.wandb_conn_id = wandb_conn_id
        self.rearm = rearm
        self.cursor_key = cursor_key
        self.automation_name = automation_name
        self.deferrable = deferrable
        self._outage: str | None = None  # the last poke's W&B outage, named if the sensor times out

    @classmethod
    def from_event(cls, *, task_id: str, event: Event, **kwargs: Any) -> WandbEventSensor:
        """``RunMetricSensor.from_event(task_id=..., event=OnRunMetric(...))``."""
        if not isinstance(event, cls.event_class):
            raise TypeError(f"{cls.__name__} takes an {cls.event_class.__name__}, got {type(event).__name__}")
        return cls(task_id=task_id, scope=str(event.scope), filter=event.filter, **kwargs)

    def _filter_json(self, scope: str, filter: Any) -> Any:
        """The filter as plain JSON, so Jinja can render names in it. Validated now (DAG-parse time),
        unless templates are still to render; then only the filter's own shape is checked."""
        if not _templated([scope, filter]):
            body = {"scope": scope, **({} if filter is None else {"filter": filter})}
            return event_to_json(self.event_class.model_validate(body))["filter"]
        if filter is None:
            return None
        field = self.event_class.model_fields["filter"]
        try:
            shape: Any = Annotated[field.annotation, *field.metadata]
            model: Any = TypeAdapter(shape).validate_python(filter)
        except ValidationError:
            return filter  # a template stands where a number goes: checked after rendering
        return TypeAdapter(Any).dump_python(model, mode="json")

    # -- the event, after rendering -------------------------------------------------------------

    def event(self) -> Event:
        body = {"scope": self.scope, **({} if self.filter is None else {"filter": self.filter})}
        return self.event_class.model_validate(body)

    def _names(self, context: Context) -> tuple[str, str]:
        """The automation's name (in every event id) and the state-store key of this sensor's cursor."""
        ti = context["ti"]
        name = self.automation_name or f"{ti.dag_id}.{ti.task_id}"
        digest = spec_digest(event_to_json(self.event()), self.since, self.rearm)
        key = self.cursor_key or f"wbauto:{ti.dag_id}.{ti.task_id}:{digest}"
        return name, key

    @cached_property
    def hook(self) -> WandbHook:
        return WandbHook(self.wandb_conn_id)

    def _store(self, context: Context) -> Any:
        return context["asset_state_store"][self.cursor_asset]

    # -- one poll, stored with its claim --------------------------------------------------------

    def _load(self, context: Context) -> tuple[Record, list[dict[str, Any]] | None]:
        """The stored record and this DAG run's claim, if it already claimed events."""
        _, key = self._names(context)
        stored = state_store.load(self._store(context), key)
        record = stored_record(self.event(), stored, asset=self.cursor_asset.name, key=key) or {
            "version": 0,
            "cursor": None,
            "claims": [],
        }
        claim = next((events for run_id, events in record["claims"] if run_id == context["run_id"]), None)
        return record, claim

    def _commit(self, context: Context, record: Record, cursor: Any, events: list[dict[str, Any]]) -> Record:
        """Cursor, version and claim in one ``set()`` (of the head, when the record is stored in parts):
        a crash leaves all of them or none."""
        _, key = self._names(context)
        claims = record["claims"] + ([[context["run_id"], events]] if events else [])
        new = {"version": record["version"] + 1, "cursor": cursor, "claims": recent_claims(claims)}
        state_store.save(self._store(context), key, new)
        if events:
            self.log.info("Claimed %d event(s): %s", len(events), ", ".join(e["event_id"] for e in events))
        return new

    def _poll_once(self, context: Context) -> tuple[list[dict[str, Any]], Record]:
        record, claim = self._load(context)
        if claim is not None:
            self.log.info("This DAG run already claimed %d event(s); returning them again", len(claim))
            return claim, record
        name, _ = self._names(context)
        watch = Watch(self.event(), name, since=self.since, rearm=self.rearm).polled_by(self.hook, self.hook.endpoint)
        events, cursor = self.hook.run(poll(watch, record["cursor"]))
        if news := newly_absent(record["cursor"], cursor):
            self.log.info(news)
        if events or cursor != record["cursor"]:
            record = self._commit(context, record, cursor, events)
        return events, record

    def poke(self, context: Context) -> PokeReturnValue:
        try:
            events, _ = self._poll_once(context)
        except WandbUnavailableError as exc:  # an outage is waited out, within the sensor's timeout
            self._outage = str(exc)
            self.log.warning("W&B is unreachable; waiting on (the sensor's timeout bounds it): %s", exc)
            return PokeReturnValue(is_done=False)
        self._outage = None
        return PokeReturnValue(is_done=bool(events), xcom_value=events or None)

    def _warn_if_runs_may_interleave(self, context: Context) -> None:
        """The cursor has no compare-and-set (see the module docstring): say so where it matters."""
        dag = context["dag"]
        if dag.max_active_runs != 1 and self.pool == "default_pool":
            self.log.warning(
                "DAG %s allows %s concurrent DAG runs, so two of them may claim the same W&B event: "
                "give it max_active_runs=1, or put this sensor in a one-slot pool",
                dag.dag_id,
                dag.max_active_runs,
            )

    # -- deferrable ---------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        self._warn_if_runs_may_interleave(context)
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout as exc:
                if self._outage is None:
                    raise
                raise AirflowSensorTimeout(f"{exc} W&B was unreachable at the last poke: {self._outage}") from exc
        try:
            events, record = self._poll_once(context)
        except WandbUnavailableError as exc:  # the trigger waits the outage out
            self.log.warning("W&B is unreachable; deferring to wait it out: %s", exc)
            events, record = [], self._load(context)[0]
        if events:
            return events
        name, key = self._names(context)
        inline = len(json.dumps(record["cursor"])) <= KWARGS_CURSOR_BYTES
        self.defer(
            trigger=WandbEventTrigger(
                event=event_to_json(self.event()),
                automation=name,
                cursor=record["cursor"] if inline else None,
                stored=None if inline else {"asset": self.cursor_asset.name, "key": key},
                version=record["version"],
                since=self.since,
                rearm=self.rearm,
                wandb_conn_id=self.wandb_conn_id,
                poll_interval=self.poke_interval,
                end_at=wire_time(datetime.now(UTC) + timedelta(seconds=self.timeout)) if self.timeout else None,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if event and event.get("status") == "timeout":
            raise AirflowSensorTimeout(f"{self.task_id}: {event['message']}")
        if not event or event.get("status") != "success":
            raise WandbError(f"watching W&B failed: {(event or {}).get('message', 'no event from the trigger')}")
        record, claim = self._load(context)
        if claim is not None:
            return claim
        if record["version"] != event["version"]:
            self.log.info("The cursor moved while this sensor was deferred; polling again from it")
            return self.execute(context)
        self._commit(context, record, event["cursor"], event["events"])
        return event["events"]


class RunMetricSensor(WandbEventSensor):
    """A run metric crosses a threshold, changes by an amount, or jumps by a z-score (``OnRunMetric``).

    :param scope: a project (``entity/project``) or a team (``team:<entity>``: every project of it).
    :param filter: a ``MetricThresholdFilter``, ``MetricChangeFilter`` or ``MetricZScoreFilter`` (or the fluent
        ``RunEvent.metric(...)`` forms), optionally ``&`` a run filter (``RunEvent.name.matches_regex(...)``).

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnRunMetric


class RunStateSensor(WandbEventSensor):
    """A run reaches a state: FAILED, FINISHED, ... (``OnRunState``).

    :param scope: a project (``entity/project``) or a team (``team:<entity>``: every project of it).
    :param filter: ``RunEvent.state == "FAILED"`` or ``RunEvent.state.in_([...])``, optionally ``&`` a run filter.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnRunState


class ArtifactCreatedSensor(WandbEventSensor):
    """A new version of an artifact collection is committed (``OnCreateArtifact``).

    :param scope: an artifact collection (``entity/project/collection``) or a registry collection.
    :param filter: a Mongo-style filter on the version (``ArtifactEvent.metadata("key") == ...``), or ``None``.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnCreateArtifact


class ArtifactLinkedSensor(WandbEventSensor):
    """A version is linked into a registry collection (``OnLinkArtifact``).

    :param scope: any: a registry or registry collection, a project or artifact collection (links made
        from it), a team (``team:<entity>``) or an organization (``org:<organization>``).
    :param filter: a Mongo-style filter on the version, or ``None``.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnLinkArtifact


class ArtifactUnlinkedSensor(WandbEventSensor):
    """A version is unlinked from a registry collection (``OnUnlinkArtifact``); linked again is a new link.

    :param scope: any, as for ``ArtifactLinkedSensor``.
    :param filter: a Mongo-style filter on the version as it was linked, or ``None``.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnUnlinkArtifact


class ArtifactAliasSensor(WandbEventSensor):
    """An alias such as ``production`` is added to a version (``OnAddArtifactAlias``).

    :param scope: any: a collection, a project, a registry, a team (``team:<entity>``) or an organization
        (``org:<organization>``).
    :param filter: the alias to watch (``ArtifactEvent.alias == "production"``, ``.matches_regex("^prod")``), or
        ``None`` for any alias.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnAddArtifactAlias


class ArtifactTagAddedSensor(WandbEventSensor):
    """A tag is assigned to a version (``OnAddArtifactTag``); removed and assigned again is a new event.

    :param scope: any: a collection, a project, a registry, a team (``team:<entity>``) or an organization
        (``org:<organization>``).
    :param filter: the tag to watch (``ArtifactEvent.tag == "prod"``, ``.matches_regex(...)``), or ``None``
        for any tag.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnAddArtifactTag


class ArtifactTagRemovedSensor(WandbEventSensor):
    """A tag is removed from a version (``OnRemoveArtifactTag``); removed and assigned again is a new event.

    :param scope: any: a collection, a project, a registry, a team (``team:<entity>``) or an organization
        (``org:<organization>``).
    :param filter: the tag to watch (``ArtifactEvent.tag == "prod"``, ``.matches_regex(...)``), or ``None``
        for any tag.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnRemoveArtifactTag


class CollectionTagAddedSensor(WandbEventSensor):
    """A tag is assigned to an artifact collection (``OnAddCollectionTag``); removed and assigned again is a new event.

    :param scope: any: a collection, a project, a registry, a team (``team:<entity>``) or an organization
        (``org:<organization>``).
    :param filter: the tag to watch (``ArtifactEvent.tag == "prod"``, ``.matches_regex(...)``), or ``None``
        for any tag.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnAddCollectionTag


class CollectionTagRemovedSensor(WandbEventSensor):
    """A tag is removed from an artifact collection (``OnRemoveCollectionTag``); re-adding it is a new event.

    :param scope: any: a collection, a project, a registry, a team (``team:<entity>``) or an organization
        (``org:<organization>``).
    :param filter: the tag to watch (``ArtifactEvent.tag == "prod"``, ``.matches_regex(...)``), or ``None``
        for any tag.

    The other parameters are ``WandbEventSensor``'s.
    """

    event_class = OnRemoveCollectionTag


SENSORS_BY_EVENT: dict[type[Event], type[WandbEventSensor]] = {
    cls.event_class: cls
    for cls in (
        RunMetricSensor,
        RunStateSensor,
        ArtifactCreatedSensor,
        ArtifactLinkedSensor,
        ArtifactUnlinkedSensor,
        ArtifactAliasSensor,
        ArtifactTagAddedSensor,
        ArtifactTagRemovedSensor,
        CollectionTagAddedSensor,
        CollectionTagRemovedSensor,
    )
}
