"""Events (what an automation watches), with W&B's names, scopes and wire encodings."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self, get_args

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from . import _validators as v
from .actions import Action, DoNothing, SendNotification, SendWebhook
from .expressions import FilterableField, FilterExpr
from .metric_filters import METRIC_FILTERS, MetricChangeFilter, MetricThresholdFilter, MetricVal, MetricZScoreFilter
from .scopes import Scope, ScopeKind
from .words import conjoin, describe_metric, describe_mongo

if TYPE_CHECKING:  # the automation module imports this one
    from .automation import NewAutomation

COARSE_STATES = ("RUNNING", "FINISHED", "FAILED")
FINE_STATES = ("running", "finished", "failed", "crashed", "killed", "preempting", "preempted", "pending")
TERMINAL_STATES = frozenset({"finished", "failed", "crashed", "killed", "preempted"})  # a run that ended
_COARSE_OF = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED", "crashed": "FAILED"}

MongoFilter = Annotated[dict[str, Any], BeforeValidator(v.mongo_filter("filter"))]
RunFilter = Annotated[dict[str, Any], BeforeValidator(v.mongo_filter("run_filter"))]


def _state(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text.upper() == "CRASHED" and text.isupper():
            return "FAILED"  # W&B's coarse CRASHED is FAILED
        if text.isupper() and text in COARSE_STATES:
            return text
        if text.lower() in FINE_STATES:
            return text.lower()
    raise ValueError(
        f"state must be one of {', '.join(COARSE_STATES)} (CRASHED = FAILED) or the API's "
        f"{', '.join(FINE_STATES)}; got {value!r}"
    )


def state_matches(states: Iterable[str], run_state: str) -> bool:
    """A fine run state (what the API reports) against coarse or fine filter states."""
    fine = run_state.lower()
    return any(s == fine or s == _COARSE_OF.get(fine) for s in states)


class StateFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    states: list[str] = Field(min_length=1)

    @field_validator("states", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> list[str]:
        items = [value] if isinstance(value, str) else list(value or [])
        return sorted({_state(s) for s in items})

    def matches(self, run_state: str) -> bool:
        return state_matches(self.states, run_state)

    def __str__(self) -> str:
        return f"state in [{', '.join(self.states)}]"

    def __and__(self, other: FilterExpr | Mapping[str, Any]) -> RunStateFilter:
        return RunStateFilter(state=self) & other

    __rand__ = __and__


class StateOperand:
    """``RunEvent.state``: ``== "FAILED"``, ``.eq(...)`` or ``.in_([...])``."""

    def eq(self, state: str) -> StateFilter:
        return StateFilter(states=[state])

    def in_(self, states: Iterable[str]) -> StateFilter:
        return StateFilter(states=list(states))

    def __eq__(self, state: object) -> StateFilter:  # type: ignore[override]
        return self.eq(state)  # type: ignore[arg-type]

    __hash__ = object.__hash__


def _and(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    parts = [x for x in (a, b) if x]
    return {"$and": parts} if len(parts) > 1 else (parts[0] if parts else {})


def _run_filter_wire(run: dict[str, Any]) -> str:
    """W&B wraps run filters as ``{"$and": [...]}`` and sends them as a JSON string."""
    inner = run["$and"] if set(run) == {"$and"} else ([run] if run else [])
    return v.wire_json({"$and": inner})


class _RunScopedFilter(BaseModel):
    """A filter on runs' events plus an optional Mongo filter on the run (name, tags, config, summary)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    run: RunFilter = Field(default_factory=dict, validation_alias=AliasChoices("run", "run_filter"))

    def __and__(self, other: FilterExpr | Mapping[str, Any]) -> Self:
        if isinstance(other, FilterExpr | Mapping):
            extra = v.mongo_filter("run_filter")(other)
            return self.model_copy(update={"run": _and(self.run, extra)})
        return NotImplemented

    __rand__ = __and__


class RunMetricFilter(_RunScopedFilter):
    metric: MetricThresholdFilter | MetricChangeFilter | MetricZScoreFilter

    def to_wire(self) -> dict[str, Any]:
        return {
            "run_filter": _run_filter_wire(self.run),
            "run_metric_filter": {self.metric.wire_key: self.metric.to_wire()},
            "metric_filter": None,
        }

    def __str__(self) -> str:
        return conjoin(describe_metric(self.metric), self.run)


class RunStateFilter(_RunScopedFilter):
    state: StateFilter

    def to_wire(self) -> dict[str, Any]:
        return {"run_filter": _run_filter_wire(self.run), "run_state_filter": {"states": self.state.states}}

    def __str__(self) -> str:
        return conjoin(str(self.state), self.run)


def filter_words(value: RunMetricFilter | RunStateFilter | Mapping[str, Any] | None) -> str:
    """An event's filter in W&B's words (``mean(val_loss, 3) > 0.5``, ``state in [FAILED] and
    display_name matches ^sweep-``, ``alias matches ^prod``); no filter is ``any``."""
    if isinstance(value, RunMetricFilter | RunStateFilter):
        return str(value)
    return describe_mongo(value)


class RunEvent:
    """Fields of a run to filter on, as in ``wandb.automations.RunEvent``."""

    name = FilterableField("display_name")  # W&B filters run names on display_name
    display_name = FilterableField("display_name")
    id = FilterableField("name")
    tags = FilterableField("tags")
    group = FilterableField("group")
    job_type = FilterableField("job_type")
    state = StateOperand()

    @staticmethod
    def metric(name: str) -> MetricVal:
        return MetricVal(name)

    @staticmethod
    def config(key: str) -> FilterableField:
        return FilterableField(f"config.{key}")

    @staticmethod
    def summary(key: str) -> FilterableField:
        return FilterableField(f"summary_metrics.{key}")


class ArtifactEvent:
    """Fields of an artifact event to filter on: its alias, its tags, its version's metadata."""

    alias = FilterableField("alias")
    tag = FilterableField("tag")

    @staticmethod
    def metadata(key: str) -> FilterableField:
        return FilterableField(f"metadata.{key}")


# -- the events -------------------------------------------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    allowed_scopes: ClassVar[tuple[ScopeKind, ...]]
    scope_hint: ClassVar[str]

    scope: Scope

    @field_validator("scope", mode="after")
    @classmethod
    def _scope_kind(cls, scope: Scope) -> Scope:
        if scope.kind not in cls.allowed_scopes:
            raise ValueError(f"{cls.__name__} takes {cls.scope_hint}; got the {scope.kind} scope {str(scope)!r}")
        return scope

    @property
    @abstractmethod
    def event_type(self) -> str:
        """W&B's wire name of the event (``RUN_METRIC``, ``CREATE_ARTIFACT``, ...)."""

    @abstractmethod
    def filter_wire(self) -> dict[str, Any]:
        """The ``eventFilter`` W&B's SDK sends for this event (before JSON encoding)."""

    def __str__(self) -> str:
        """``OnRunMetric at acme/mnist: mean(val_loss, 3) > 0.5``; an event with no filter is its name and scope."""
        said = filter_words(getattr(self, "filter", None))
        return f"{type(self).__name__} at {self.scope}" + ("" if said == "any" else f": {said}")

    def then(self, action: Action) -> NewAutomation:
        from .automation import NewAutomation

        if not isinstance(action, SendNotification | SendWebhook | DoNothing):
            raise TypeError(f"Expected a valid action, got: {type(action).__name__}")
        return NewAutomation.model_validate({"event": self, "action": action})

    def __rshift__(self, action: Action) -> NewAutomation:
        return self.then(action)


def _metric_filter(value: Any) -> Any:
    if isinstance(value, MetricThresholdFilter | MetricChangeFilter | MetricZScoreFilter):
        return RunMetricFilter.model_validate({"metric": value})
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, Mapping) and "run_metric_filter" in value:  # W&B's wire form
        (key, body), *_ = value["run_metric_filter"].items()
        if key not in METRIC_FILTERS:
            raise ValueError(f"run_metric_filter key must be one of {', '.join(METRIC_FILTERS)}; got {key!r}")
        run = json.loads(value.get("run_filter") or "{}")
        return RunMetricFilter.model_validate(
            {"metric": METRIC_FILTERS[key].model_validate(body), "run": _unwrap_and(run)}
        )
    return value


def _unwrap_and(run: dict[str, Any]) -> dict[str, Any]:
    if set(run) == {"$and"}:
        parts = run["$and"]
        return {} if not parts else parts[0] if len(parts) == 1 else run
    return run


class _RunEventBase(_Event):
    # W&B takes a project or an entity; registries hold no runs, nor do an organization's own projects.
    allowed_scopes = ("project", "team")
    scope_hint = "a project scope 'entity/project' or a team scope 'team:<entity>'"

    filter: RunMetricFilter | RunStateFilter

    def filter_wire(self) -> dict[str, Any]:
        return self.filter.to_wire()


class OnRunMetric(_RunEventBase):
    """A run metric crosses a threshold, changes by an amount, or jumps by a z-score."""

    filter: Annotated[RunMetricFilter, BeforeValidator(_metric_filter)]

    @property
    def event_type(self) -> str:
        return self.filter.metric.event_type


def _state_filter(value: Any) -> Any:
    if isinstance(value, StateFilter):
        return RunStateFilter(state=value)
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, Mapping) and "run_state_filter" in value:
        run = json.loads(value.get("run_filter") or "{}")
        return RunStateFilter(state=StateFilter.model_validate(value["run_state_filter"]), run=_unwrap_and(run))
    return value


class OnRunState(_RunEventBase):
    """A run reaches a state (FAILED, FINISHED, ... or the API's fine states)."""

    filter: Annotated[RunStateFilter, BeforeValidator(_state_filter)]

    @property
    def event_type(self) -> str:
        return "RUN_STATE"


def _artifact_filter(value: Any) -> Any:
    """Accept the wire's ``{"$or":[{"$and":[f]}]}`` wrapping (and the read path's ``{"filter": ...}``)."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    if isinstance(value, Mapping) and set(value) == {"filter"}:
        value = value["filter"]
    if isinstance(value, Mapping) and set(value) == {"$or"} and len(value["$or"]) == 1:
        inner = value["$or"][0]
        if isinstance(inner, Mapping) and set(inner) == {"$and"}:
            return _unwrap_and(dict(inner))
    return value


class _ArtifactEventBase(_Event):
    wire_type: ClassVar[str]
    allowed_scopes = get_args(ScopeKind)  # W&B takes every scope but for OnCreateArtifact
    scope_hint = "any scope"

    filter: Annotated[MongoFilter, BeforeValidator(_artifact_filter)] = Field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return self.wire_type

    def filter_wire(self) -> dict[str, Any]:
        return {"$or": [{"$and": [self.filter] if self.filter else []}]}


class OnCreateArtifact(_ArtifactEventBase):
    """A new version of an artifact collection is committed."""

    wire_type = "CREATE_ARTIFACT"
    allowed_scopes = ("collection", "registry_collection")
    scope_hint = "an artifact collection scope 'entity/project/collection'"


class OnLinkArtifact(_ArtifactEventBase):
    """A version is linked into a registry (or a portfolio collection)."""

    wire_type = "LINK_MODEL"


class OnUnlinkArtifact(_ArtifactEventBase):
    """A version's link into a registry (portfolio) collection ends: it is unlinked."""

    wire_type = "UNLINK_ARTIFACT"


class OnAddArtifactAlias(_ArtifactEventBase):
    """An alias (``production``, ...) is added to a version."""

    wire_type = "ADD_ARTIFACT_ALIAS"


class OnAddArtifactTag(_ArtifactEventBase):
    """A tag is assigned to a version (``ArtifactEvent.tag == "prod"`` filters it)."""

    wire_type = "ADD_ARTIFACT_TAG"


class OnRemoveArtifactTag(_ArtifactEventBase):
    """A tag is removed from a version."""

    wire_type = "REMOVE_ARTIFACT_TAG"


class OnAddCollectionTag(_ArtifactEventBase):
    """A tag is assigned to an artifact collection."""

    wire_type = "ADD_COLLECTION_TAG"


class OnRemoveCollectionTag(_ArtifactEventBase):
    """A tag is removed from an artifact collection."""

    wire_type = "REMOVE_COLLECTION_TAG"


TagEvent = OnAddArtifactTag | OnRemoveArtifactTag | OnAddCollectionTag | OnRemoveCollectionTag
Event = OnRunMetric | OnRunState | OnCreateArtifact | OnLinkArtifact | OnUnlinkArtifact | OnAddArtifactAlias | TagEvent
EVENTS_BY_WIRE: dict[str, type[_Event]] = {
    "RUN_METRIC": OnRunMetric,
    "RUN_METRIC_CHANGE": OnRunMetric,
    "RUN_METRIC_ZSCORE": OnRunMetric,
    "RUN_STATE": OnRunState,
    "CREATE_ARTIFACT": OnCreateArtifact,
    "LINK_MODEL": OnLinkArtifact,
    "LINK_ARTIFACT": OnLinkArtifact,
    "UNLINK_ARTIFACT": OnUnlinkArtifact,
    "ADD_ARTIFACT_TAG": OnAddArtifactTag,
    "REMOVE_ARTIFACT_TAG": OnRemoveArtifactTag,
    "ADD_COLLECTION_TAG": OnAddCollectionTag,
    "REMOVE_COLLECTION_TAG": OnRemoveCollectionTag,
    "ADD_ARTIFACT_ALIAS": OnAddArtifactAlias,
}
EVENTS_BY_NAME: dict[str, type[_Event]] = {
    cls.__name__: cls
    for cls in (
        OnRunMetric,
        OnRunState,
        OnCreateArtifact,
        OnLinkArtifact,
        OnUnlinkArtifact,
        OnAddArtifactAlias,
        OnAddArtifactTag,
        OnRemoveArtifactTag,
        OnAddCollectionTag,
        OnRemoveCollectionTag,
    )
}


def event_to_json(event: Event) -> dict[str, Any]:
    """Plain JSON (for trigger kwargs and cursor keys); ``event_from_json`` gives back an equal event."""
    return {"on": type(event).__name__, **event.model_dump(mode="json")}


def event_from_json(data: Mapping[str, Any]) -> Event:
    event: Event = v.from_tagged(data, "on", EVENTS_BY_NAME)  # type: ignore[assignment]
    return event
