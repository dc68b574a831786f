"""The streaming window engine: when does a metric filter fire, row by row, O(1) amortised per row.

Semantics are docs/semantics.md. Numbers are exact where floats would drift: window sums are kept as
integers in units of the finest binary place any value of the window has needed (every finite double
is a whole number of 2**-1074; most series need far fewer places, so the integers stay small), so the
running sum never accumulates rounding error and ``mean``/``sum``/z-score statistics are the correctly
rounded values of the exact ones, the same whether a series is fed whole or in chunks. State is a small JSON
dict (the last few values and the edge flags); the exact sums are rebuilt from it when a chunk starts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Agg = Literal["min", "max", "mean", "sum"]
Cmp = Literal[">", ">=", "<", "<=", "==", "!="]
Kind = Literal["threshold", "change", "zscore"]

_COMPARE = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class MetricSpec:
    """What to evaluate; built by the automation model (``filter.spec()``), plain data only."""

    kind: Kind
    name: str
    threshold: float
    window: int = 1
    prior_window: int = 1
    agg: Agg | None = None
    cmp: Cmp = ">="
    change_type: Literal["absolute", "relative"] = "absolute"
    change_dir: Literal["increase", "decrease", "any"] = "any"


@dataclass(frozen=True)
class Firing:
    step: int
    value: float  # the aggregated value (threshold, change: current window) or the value itself (z-score)
    window_values: list[float]
    detail: dict[str, float | str]  # prior / delta for change, mean / std / z; ±inf as "inf" / "-inf" (JSON)


def history_step(value: Any) -> int:
    """A history row's ``_step`` as an int. W&B may send it as a float (wandb-core's history reader:
    "in some cases the backend returns the step as a float64"), so ``5.0`` is step 5; anything that is
    not a whole number is a ValueError (never a row silently skipped)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a history row's _step must be a whole number; got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"a history row's _step must be a whole number; got {value!r}")
    return int(value)


def metric_value(row: Mapping[str, Any], name: str) -> float | None:
    """The row's value of ``name`` if it is a finite int or float (bools, strings, None, NaN, inf skip)."""
    value = row.get(name)
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        return float(value)
    return None


class Window:
    """The last ``size`` values with O(1) amortised min, max and exact sum / sum of squares."""

    def __init__(self, size: int, agg: Agg | None, squares: bool = False) -> None:
        self.size = size
        self.agg = agg
        self.squares = squares
        self.values: deque[float] = deque()
        self._mono: deque[float] = deque()  # increasing for min, decreasing for max
        self._exact: deque[int] = deque()  # the values as exact ints, kept so eviction costs no conversion
        self._scale = 0  # those ints are value * 2**scale: the finest binary place a value has needed
        self._sum = 0
        self._sum2 = 0
        self._ordered = agg in ("min", "max")  # what each value feeds, decided once: push runs per row
        self._summed = agg in ("mean", "sum") or squares

    def _refine(self, places: int) -> None:
        """Count in units of 2**-places from now on (a value needed finer places than the window had)."""
        up = places - self._scale
        self._exact = deque(e << up for e in self._exact)
        self._sum <<= up
        self._sum2 <<= 2 * up
        self._scale = places

    def push(self, value: float) -> float | None:
        """Add a value; return the one that fell out of the window, if any."""
        values = self.values
        values.append(value)
        if self._ordered:
            mono = self._mono
            if self.agg == "min":
                while mono and mono[-1] > value:
                    mono.pop()
            else:
                while mono and mono[-1] < value:
                    mono.pop()
            mono.append(value)
        elif self._summed:
            num, den = value.as_integer_ratio()  # den is a power of two
            places = den.bit_length() - 1
            if places > self._scale:
                self._refine(places)
            e = num << (self._scale - places)
            self._exact.append(e)
            self._sum += e
            if self.squares:
                self._sum2 += e * e
        if len(values) <= self.size:
            return None
        old = values.popleft()
        if self._ordered:
            if self._mono[0] == old:
                self._mono.popleft()
        elif self._summed:
            e = self._exact.popleft()
            self._sum -= e
            if self.squares:
                self._sum2 -= e * e
        return old

    @property
    def full(self) -> bool:
        return len(self.values) == self.size

    def aggregate(self) -> float:
        if self.agg is None:
            return self.values[-1]
        if self.agg in ("min", "max"):
            return self._mono[0]
        if self.agg == "sum":
            return _ratio(self._sum, 1 << self._scale)
        return _ratio(self._sum, len(self.values) << self._scale)

    def mean_and_variance(self) -> tuple[float, float]:
        """Correctly rounded mean and population variance of the window's exact values."""
        n = len(self.values)
        scale = self._scale
        return _ratio(self._sum, n << scale), _ratio(n * self._sum2 - self._sum * self._sum, (n * n) << (2 * scale))


def _ratio(num: int, den: int) -> float:
    try:
        return num / den  # int / int is correctly rounded in Python
    except OverflowError:
        return math.inf if num > 0 else -math.inf


class MetricEvaluator:
    """Feeds history rows of one run to one metric filter and reports where it fires."""

    def __init__(self, spec: MetricSpec, state: Mapping[str, Any] | None = None, *, rearm: bool = False) -> None:
        self.spec = spec
        self.rearm = rearm
        agg = spec.agg
        if spec.kind == "zscore":
            self._cur = Window(spec.window, None, squares=True)
            self._prior: Window | None = None
        else:
            self._cur = Window(spec.window, agg)
            self._prior = Window(spec.prior_window, agg) if spec.kind == "change" else None
        self._cmp = _COMPARE[spec.cmp]
        # the values the next row is judged with: a z-score the whole window before it; threshold and
        # change the window(s) it completes (the oldest value falls out as it comes in)
        self._kept = (
            spec.window if spec.kind == "zscore" else spec.window + (spec.prior_window if self._prior else 0) - 1
        )
        state = state or {}
        self.count = 0
        self.prev: bool | None = state.get("prev")
        self.fired: bool = bool(state.get("fired", False))
        self.last_step: int = int(state.get("last_step", -1))
        for value in state.get("buf", []):
            self._push(float(value))
        self.count = int(state.get("count", 0))

    def state(self) -> dict[str, Any]:
        """JSON-able and small (only the values the next row needs, no defaults); the evaluator built
        from it continues exactly where this one stands."""
        buf = [*(self._prior.values if self._prior is not None else ()), *self._cur.values]
        state: dict[str, Any] = {"buf": buf[len(buf) - self._kept :] if len(buf) > self._kept else buf}
        state |= {"count": self.count, "last_step": self.last_step}
        if self.prev is not None:
            state["prev"] = self.prev
        if self.fired:
            state["fired"] = True
        return state

    def _push(self, value: float) -> None:
        dropped = self._cur.push(value)
        if dropped is not None and self._prior is not None:
            self._prior.push(dropped)

    def feed(self, rows: Iterable[Mapping[str, Any]]) -> list[Firing]:
        """Rows in step order; rows at or before the last step seen are ignored (re-reads are harmless)."""
        out: list[Firing] = []
        name = self.spec.name
        for row in rows:
            step = history_step(row.get("_step"))
            if step <= self.last_step:
                continue
            self.last_step = step
            value = metric_value(row, name)
            if value is None:
                continue
            firing = self._evaluate(step, value)
            if firing is not None:
                out.append(firing)
        return out

    def _evaluate(self, step: int, value: float) -> Firing | None:
        spec = self.spec
        self.count += 1
        result: tuple[bool, Callable[[], Firing]] | None
        if spec.kind == "zscore":
            result = self._zscore(step, value) if self._cur.full else None
            self._push(value)
        else:
            self._push(value)
            if spec.kind == "threshold":
                result = self._threshold(step) if self.count >= spec.window else None
            else:
                result = self._change(step) if self.count >= spec.window + spec.prior_window else None
        if result is None:
            return None
        holds, firing = result
        rising = holds and self.prev is not True
        self.prev = holds
        if rising and (self.rearm or not self.fired):
            self.fired = True
            return firing()  # built only when it fires: copying the window is O(window)
        return None

    def _threshold(self, step: int) -> tuple[bool, Callable[[], Firing]]:
        agg = self._cur.aggregate()
        return self._cmp(agg, self.spec.threshold), lambda: Firing(step, agg, list(self._cur.values), {})

    def _change(self, step: int) -> tuple[bool, Callable[[], Firing]]:
        assert self._prior is not None
        cur, prior = self._cur.aggregate(), self._prior.aggregate()
        delta = cur - prior
        if self.spec.change_type == "relative":  # from a prior of 0, the limit: 0 or ±inf (a move off 0)
            delta = delta / abs(prior) if prior != 0 else _limit(delta)
        way = self.spec.change_dir
        directed = delta if way == "increase" else -delta if way == "decrease" else abs(delta)
        prior_window = self._prior

        def firing() -> Firing:
            detail = {"prior": prior, "delta": _json_number(delta)}
            return Firing(step, cur, [*prior_window.values, *self._cur.values], detail)

        return self._cmp(directed, self.spec.threshold), firing

    def _zscore(self, step: int, value: float) -> tuple[bool, Callable[[], Firing]]:
        mean, variance = self._cur.mean_and_variance()
        std = math.sqrt(variance)
        z = (value - mean) / std if variance > 0 else _limit(value - mean)  # a flat window: 0 or ±inf
        t = self.spec.threshold
        way = self.spec.change_dir
        holds = z >= t if way == "increase" else z <= -t if way == "decrease" else abs(z) >= t
        window = list(self._cur.values) if holds else []
        return holds, lambda: Firing(step, value, [*window, value], {"mean": mean, "std": std, "z": _json_number(z)})


def _limit(numerator: float) -> float:
    """``numerator / d`` as ``d`` goes to 0 from above: 0 when nothing moved, else ±inf by its sign."""
    return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)


def _json_number(x: float) -> float | str:
    """A number JSON can carry: ±inf become ``"inf"`` / ``"-inf"``."""
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")
