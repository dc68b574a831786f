"""Run metric filters (threshold, change, z-score) and the fluent builders that make them.

Mirrors ``wandb.automations._run_metric_filters``; adds ``sum``, ``==``/``!=`` thresholds and ``<``/``<=``
changes (plateaus). ``firing_steps`` evaluates a history with the streaming engine.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ..evaluation.engine import MetricEvaluator, MetricSpec
from . import _validators as v

if TYPE_CHECKING:  # the events module imports this one
    from .events import RunMetricFilter
    from .expressions import FilterExpr

AggName = Annotated[Literal["min", "max", "mean", "sum"] | None, BeforeValidator(v.choice("agg", v.AGG, none_ok=True))]
CmpName = Annotated[Literal[">", ">=", "<", "<=", "==", "!="], BeforeValidator(v.choice("cmp", v.CMP))]
ChangeType = Annotated[Literal["absolute", "relative"], BeforeValidator(v.choice("change_type", v.CHANGE_TYPE))]
ChangeDir = Annotated[Literal["increase", "decrease", "any"], BeforeValidator(v.choice("change_dir", v.CHANGE_DIR))]
ChangeCmp = Annotated[
    Literal[">", ">=", "<", "<="],
    BeforeValidator(v.choice("cmp", {k: c for k, c in v.CMP.items() if c in (">", ">=", "<", "<=")})),
]
Name = Annotated[str, Field(strict=True, min_length=1)]


class _MetricFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    event_type: ClassVar[str]
    wire_key: ClassVar[str]

    name: Name

    @abstractmethod
    def spec(self) -> MetricSpec:
        """What the evaluation engine runs."""

    def evaluator(self, state: Mapping[str, Any] | None = None, *, rearm: bool = False) -> MetricEvaluator:
        return MetricEvaluator(self.spec(), state, rearm=rearm)

    def firing_steps(self, rows: Iterable[Mapping[str, Any]], rearm: bool = False) -> list[int]:
        """Steps at which this filter fires over ``rows`` (history rows in step order)."""
        return [f.step for f in self.evaluator(rearm=rearm).feed(rows)]

    @abstractmethod
    def to_wire(self) -> dict[str, Any]:
        """The ``run_metric_filter`` body W&B's SDK sends."""

    def __and__(self, other: FilterExpr | Mapping[str, Any]) -> RunMetricFilter:
        from .events import RunMetricFilter

        return RunMetricFilter.model_validate({"metric": self}) & other

    __rand__ = __and__

    def __str__(self) -> str:
        from .words import describe_metric

        return describe_metric(self)  # type: ignore[arg-type]


def _latest_needs_window_1(agg: str | None, **windows: int) -> None:
    if agg is None:
        for field, size in windows.items():
            if size != 1:
                raise ValueError(
                    f"{field} must be 1 when agg is None (the latest value); got {size}. "
                    "Set agg to one of min, max, mean, sum to aggregate a window"
                )


class MetricThresholdFilter(_MetricFilter):
    """``agg(last window values) cmp threshold`` (``agg=None``: the latest value)."""

    event_type: ClassVar[str] = "RUN_METRIC"
    wire_key: ClassVar[str] = "threshold_filter"

    cmp: CmpName = Field(validation_alias=AliasChoices("cmp", "cmp_op"))
    threshold: v.Threshold
    window: v.Window = Field(1, validation_alias=AliasChoices("window", "window_size"))
    agg: AggName = Field(None, validation_alias=AliasChoices("agg", "agg_op"))

    @model_validator(mode="after")
    def _windows(self) -> MetricThresholdFilter:
        _latest_needs_window_1(self.agg, window=self.window)
        return self

    def spec(self) -> MetricSpec:
        return MetricSpec("threshold", self.name, self.threshold, self.window, 1, self.agg, self.cmp)

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "agg_op": _wire_agg(self.agg),
            "window_size": self.window,
            "cmp_op": _wire_cmp(self.cmp),
            "threshold": self.threshold,
        }

    def __repr__(self) -> str:
        value = f"{self.agg.upper()}({self.name})" if self.agg else self.name
        return f"{value} {self.cmp} {self.threshold}"


class MetricChangeFilter(_MetricFilter):
    """``agg(last window) - agg(prior_window before it)``, absolute or relative, in a direction."""

    event_type: ClassVar[str] = "RUN_METRIC_CHANGE"
    wire_key: ClassVar[str] = "change_filter"

    threshold: v.PositiveThreshold = Field(validation_alias=AliasChoices("threshold", "change_amount"))
    change_type: ChangeType = "absolute"
    change_dir: ChangeDir = "any"
    window: v.Window = Field(1, validation_alias=AliasChoices("window", "current_window_size"))
    prior_window: v.Window | None = Field(None, validation_alias=AliasChoices("prior_window", "prior_window_size"))
    agg: AggName = Field(None, validation_alias=AliasChoices("agg", "agg_op"))
    cmp: ChangeCmp = ">="

    @model_validator(mode="after")
    def _windows(self) -> MetricChangeFilter:
        if self.prior_window is None:
            object.__setattr__(self, "prior_window", self.window)
        _latest_needs_window_1(self.agg, window=self.window, prior_window=self.prior_window or 1)
        return self

    def spec(self) -> MetricSpec:
        return MetricSpec(
            "change", self.name, self.threshold, self.window, self.prior_window or self.window, self.agg, self.cmp,
            self.change_type, self.change_dir,
        )  # fmt: skip

    def to_wire(self) -> dict[str, Any]:
        if self.cmp != ">=":
            raise ValueError(f"cmp {self.cmp!r} has no W&B equivalent: W&B changes are always 'at least' (>=)")
        return {
            "name": self.name,
            "agg_op": _wire_agg(self.agg),
            "current_window_size": self.window,
            "change_amount": self.threshold,
            "prior_window_size": self.prior_window,
            "change_type": self.change_type.upper(),
            "change_dir": self.change_dir.upper(),
        }

    def __repr__(self) -> str:
        value = f"{self.agg.upper()}({self.name})" if self.agg else self.name
        verb = {"increase": "increases", "decrease": "decreases", "any": "changes"}[self.change_dir]
        amount = f"{self.threshold:.2%}" if self.change_type == "relative" else f"{self.threshold}"
        return f"{value} {verb} {self.cmp} {amount}"


class MetricZScoreFilter(_MetricFilter):
    """``z = (x - mean) / std`` of the ``window`` values before ``x``; fires when ``|z|`` reaches ``threshold``."""

    event_type: ClassVar[str] = "RUN_METRIC_ZSCORE"
    wire_key: ClassVar[str] = "zscore_filter"

    threshold: v.PositiveThreshold = 3.0
    window: Annotated[int, Field(strict=True, ge=2)] = Field(30, validation_alias=AliasChoices("window", "window_size"))
    change_dir: ChangeDir = "any"

    def spec(self) -> MetricSpec:
        return MetricSpec("zscore", self.name, self.threshold, self.window, change_dir=self.change_dir)

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "window_size": self.window,
            "threshold": self.threshold,
            "change_dir": self.change_dir.upper(),
        }

    def __repr__(self) -> str:
        t = self.threshold
        return {"any": f"abs(zscore({self.name!r})) > {t}", "increase": f"zscore({self.name!r}) > +{t}"}.get(
            self.change_dir, f"zscore({self.name!r}) < -{t}"
        )


MetricFilter = MetricThresholdFilter | MetricChangeFilter | MetricZScoreFilter
METRIC_FILTERS: dict[str, type[_MetricFilter]] = {
    f.wire_key: f for f in (MetricThresholdFilter, MetricChangeFilter, MetricZScoreFilter)
}


def _wire_agg(agg: str | None) -> str | None:
    if agg is None:
        return None
    if agg not in v.WIRE_AGG:
        raise ValueError(f"agg {agg!r} has no W&B equivalent (W&B has min, max, mean)")
    return v.WIRE_AGG[agg]


def _wire_cmp(cmp: str) -> str:
    if cmp not in v.WIRE_CMP:
        raise ValueError(f"cmp {cmp!r} has no W&B equivalent (W&B has >, >=, <, <=)")
    return v.WIRE_CMP[cmp]


# -- fluent builders ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricAgg:
    """``RunEvent.metric("loss").mean(5)``: compare it, or ask how it changes."""

    name: str
    agg: str | None = None
    window: int = 1

    def _threshold(self, cmp: str, value: float) -> MetricThresholdFilter:
        return MetricThresholdFilter.model_validate(
            {"name": self.name, "cmp": cmp, "threshold": value, "window": self.window, "agg": self.agg}
        )

    def gt(self, value: float) -> MetricThresholdFilter:
        return self._threshold(">", value)

    def gte(self, value: float) -> MetricThresholdFilter:
        return self._threshold(">=", value)

    def lt(self, value: float) -> MetricThresholdFilter:
        return self._threshold("<", value)

    def lte(self, value: float) -> MetricThresholdFilter:
        return self._threshold("<=", value)

    def eq(self, value: float) -> MetricThresholdFilter:
        return self._threshold("==", value)

    def ne(self, value: float) -> MetricThresholdFilter:
        return self._threshold("!=", value)

    __gt__ = gt
    __ge__ = gte
    __lt__ = lt
    __le__ = lte

    def _change(self, direction: str, diff: float | None, frac: float | None, **kw: Any) -> MetricChangeFilter:
        if (diff is None) == (frac is None):
            raise ValueError("Must provide exactly one of `frac` or `diff`")
        return MetricChangeFilter.model_validate(
            {
                "name": self.name,
                "agg": self.agg,
                "window": self.window,
                "change_dir": direction,
                "change_type": "absolute" if diff is not None else "relative",
                "threshold": diff if diff is not None else frac,
                **kw,
            }
        )

    def changes_by(self, *, diff: float | None = None, frac: float | None = None, **kw: Any) -> MetricChangeFilter:
        return self._change("any", diff, frac, **kw)

    def increases_by(self, *, diff: float | None = None, frac: float | None = None, **kw: Any) -> MetricChangeFilter:
        return self._change("increase", diff, frac, **kw)

    def decreases_by(self, *, diff: float | None = None, frac: float | None = None, **kw: Any) -> MetricChangeFilter:
        return self._change("decrease", diff, frac, **kw)


@dataclass(frozen=True)
class MetricVal(MetricAgg):
    """``RunEvent.metric("loss")``: the latest value; aggregate it over a window, or take its z-score."""

    def max(self, window: int) -> MetricAgg:
        return MetricAgg(self.name, "max", window)

    def min(self, window: int) -> MetricAgg:
        return MetricAgg(self.name, "min", window)

    def mean(self, window: int) -> MetricAgg:
        return MetricAgg(self.name, "mean", window)

    avg = mean
    average = mean

    def sum(self, window: int) -> MetricAgg:
        return MetricAgg(self.name, "sum", window)

    def zscore(self, window: int = 30) -> ZScoreOperand:
        return ZScoreOperand(self.name, window)


@dataclass(frozen=True)
class ZScoreOperand:
    name: str
    window: int
    absolute: bool = False

    def abs(self) -> ZScoreOperand:
        return ZScoreOperand(self.name, self.window, True)

    __abs__ = abs

    def _make(self, value: float, above: bool) -> MetricZScoreFilter:
        if self.absolute:
            if not above:
                raise ValueError("abs(zscore) can only be compared with > or >=")
            return MetricZScoreFilter(name=self.name, window=self.window, threshold=value, change_dir="any")
        if not above:
            if isinstance(value, int | float) and value >= 0:
                raise ValueError("Negative z-score threshold required")
            value = -value
        return MetricZScoreFilter(
            name=self.name, window=self.window, threshold=value, change_dir="increase" if above else "decrease"
        )

    def gt(self, value: float) -> MetricZScoreFilter:
        return self._make(value, True)

    def lt(self, value: float) -> MetricZScoreFilter:
        return self._make(value, False)

    __gt__ = __ge__ = gte = gt
    __lt__ = __le__ = lte = lt
