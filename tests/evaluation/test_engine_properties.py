"""The engine against a brute-force reference written straight from docs/semantics.md, and chunk invariance."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_wbauto.evaluation.engine import MetricEvaluator, MetricSpec

NAME = "m"
CMP = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
       "==": lambda a, b: a == b, "!=": lambda a, b: a != b}  # fmt: skip


# -- the reference: O(n * window), exact rationals, no state ----------------------------------------------


def series(rows: list[dict[str, Any]]) -> list[tuple[int, float]]:
    out = []
    for row in rows:
        v = row.get(NAME)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            continue
        out.append((row["_step"], float(v)))
    return out


def aggregate(values: list[float], agg: str | None) -> float:
    if agg is None:
        return values[-1]
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    total = sum(map(Fraction, values), Fraction(0))
    return float(total) if agg == "sum" else float(total / len(values))


def limit(numerator: Fraction) -> float:
    """``numerator / d`` as ``d`` falls to 0 (docs/semantics.md): 0 if nothing moved, else ±inf by sign."""
    return 0.0 if numerator == 0 else (math.inf if numerator > 0 else -math.inf)


def reference(spec: MetricSpec, rows: list[dict[str, Any]], rearm: bool) -> list[int]:
    points = series(rows)
    values = [v for _, v in points]
    prev: bool | None = None
    fired = False
    out = []
    for i, (step, x) in enumerate(points):
        cond: bool
        if spec.kind == "threshold":
            if i + 1 < spec.window:
                continue
            cond = CMP[spec.cmp](aggregate(values[i - spec.window + 1 : i + 1], spec.agg), spec.threshold)
        elif spec.kind == "change":
            w, p = spec.window, spec.prior_window
            if i + 1 < w + p:
                continue
            cur = aggregate(values[i - w + 1 : i + 1], spec.agg)
            prior = aggregate(values[i - w - p + 1 : i - w + 1], spec.agg)
            delta = cur - prior
            if spec.change_type == "relative":  # from a prior of 0: the limit, 0 or ±inf by the sign of cur
                delta = delta / abs(prior) if prior != 0 else limit(Fraction(cur))
            directed = {"increase": delta, "decrease": -delta, "any": abs(delta)}[spec.change_dir]
            cond = CMP[spec.cmp](directed, spec.threshold)
        else:
            w = spec.window
            if i < w:
                continue
            window = [Fraction(v) for v in values[i - w : i]]
            mean = sum(window, Fraction(0)) / w
            var = float(sum(((v - mean) ** 2 for v in window), Fraction(0)) / w)
            # sigma 0 (a flat window, or a spread below the smallest double): the limit, by the sign of x - mean
            z = limit(Fraction(x) - mean) if var == 0 else (x - float(mean)) / math.sqrt(var)
            t = spec.threshold
            cond = {"increase": z >= t, "decrease": z <= -t, "any": abs(z) >= t}[spec.change_dir]
        rising = cond and prev is not True
        prev = cond
        if rising and (rearm or not fired):
            fired = True
            out.append(step)
    return out


# -- generators -----------------------------------------------------------------------------------------------

finite = st.one_of(
    st.integers(-50, 50),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 0.2, 0.3, 1e-9, -0.5, 2.5]),
)
junk = st.sampled_from([math.nan, math.inf, -math.inf, None, True, False, "0.5", "loss", [1], {"a": 1}])


# few distinct values: flat windows, priors of 0 and metrics stuck at 0 are common
sticky = st.sampled_from([0, 0, 0, 0.0, 1, -1, 2.5])


@st.composite
def histories(draw: st.DrawFn, values: st.SearchStrategy[Any] = finite) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 60))
    rows, step = [], draw(st.integers(0, 3))
    for _ in range(n):
        row: dict[str, Any] = {"_step": step}
        kind = draw(st.integers(0, 9))
        if kind < 7:
            row[NAME] = draw(values)
        elif kind < 9:
            row[NAME] = draw(junk)
        if draw(st.booleans()):
            row["other"] = draw(finite)
        rows.append(row)
        step += draw(st.sampled_from([1, 1, 1, 2, 5]))
    return rows


@st.composite
def specs(draw: st.DrawFn, rows: list[dict[str, Any]]) -> MetricSpec:
    values = [v for _, v in series(rows)] or [0.0]
    kind = draw(st.sampled_from(["threshold", "change", "zscore"]))
    agg = draw(st.sampled_from([None, "min", "max", "mean", "sum"]))
    window = 1 if agg is None else draw(st.integers(1, 6))
    if kind == "threshold":
        threshold = draw(st.one_of(st.sampled_from(values), finite))
        return MetricSpec("threshold", NAME, threshold, window, 1, agg, draw(st.sampled_from(list(CMP))))
    if kind == "change":
        prior = 1 if agg is None else draw(st.integers(1, 6))
        threshold = draw(st.one_of(st.sampled_from([0.01, 0.1, 0.5, 1.0, 3.0]), st.floats(1e-6, 100)))
        return MetricSpec("change", NAME, threshold, window, prior, agg, draw(st.sampled_from([">", ">=", "<", "<="])),
                          draw(st.sampled_from(["absolute", "relative"])),
                          draw(st.sampled_from(["increase", "decrease", "any"])))  # fmt: skip
    threshold = draw(st.one_of(st.sampled_from([0.5, 1.0, 2.0, 3.0]), st.floats(0.01, 5)))
    return MetricSpec("zscore", NAME, threshold, draw(st.integers(2, 8)),
                      change_dir=draw(st.sampled_from(["increase", "decrease", "any"])))  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_engine_equals_reference(data: st.DataObject) -> None:
    rows = data.draw(histories())
    spec = data.draw(specs(rows))
    rearm = data.draw(st.booleans())
    assert [f.step for f in MetricEvaluator(spec, rearm=rearm).feed(rows)] == reference(spec, rows, rearm)


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_engine_equals_reference_on_flat_and_zero_series(data: st.DataObject) -> None:
    rows = data.draw(histories(sticky))
    spec = data.draw(specs(rows))
    rearm = data.draw(st.booleans())
    assert [f.step for f in MetricEvaluator(spec, rearm=rearm).feed(rows)] == reference(spec, rows, rearm)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_chunks_with_state_round_trips_equal_whole(data: st.DataObject) -> None:
    rows = data.draw(histories())
    spec = data.draw(specs(rows))
    rearm = data.draw(st.booleans())
    whole = MetricEvaluator(spec, rearm=rearm).feed(rows)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=6)))
    fired, state, start = [], None, 0
    for end in [*cuts, len(rows)]:
        evaluator = MetricEvaluator(spec, state, rearm=rearm)
        overlap = data.draw(st.integers(0, 2))  # re-reading rows already seen must be harmless
        fired += evaluator.feed(rows[max(0, start - overlap) : end])
        state = json.loads(json.dumps(evaluator.state()))
        start = end
    assert fired == whole


def test_a_known_series() -> None:
    rows = [{"_step": s, NAME: v} for s, v in enumerate([0.1, 0.6, 0.7, 0.2, 0.9, 0.95, 0.99])]
    spec = MetricSpec("threshold", NAME, 0.5, 1, 1, None, ">")
    assert [f.step for f in MetricEvaluator(spec).feed(rows)] == [1]
    assert [f.step for f in MetricEvaluator(spec, rearm=True).feed(rows)] == [1, 4]
    mean2 = MetricSpec("threshold", NAME, 0.5, 2, 1, "mean", ">")
    firing = MetricEvaluator(mean2, rearm=True).feed(rows)
    assert [(f.step, f.window_values) for f in firing] == [(2, [0.6, 0.7]), (4, [0.2, 0.9])]
    assert firing[0].value == float((Fraction(0.6) + Fraction(0.7)) / 2)  # the exact mean, correctly rounded


def test_the_limits_a_flat_metric_that_jumps_and_a_metric_stuck_at_zero() -> None:
    flat_then_jump = [{"_step": s, NAME: v} for s, v in enumerate([5.0] * 10 + [5.0, 6.0])]
    zscore = MetricSpec("zscore", NAME, 3.0, 5, change_dir="increase")
    (firing,) = MetricEvaluator(zscore).feed(flat_then_jump)
    assert firing.step == 11 and firing.detail["z"] == "inf" and json.dumps(firing.detail)  # JSON-safe
    stuck = [{"_step": s, NAME: 0} for s in range(8)] + [{"_step": 8, NAME: 0.5}]
    plateau = MetricSpec("change", NAME, 0.01, 2, 2, "mean", "<", "relative", "any")
    assert [f.step for f in MetricEvaluator(plateau).feed(stuck)] == [3]  # 0 -> 0 changed by 0 %: a plateau
    moved = MetricSpec("change", NAME, 10.0, 1, 1, None, ">=", "relative", "increase")
    (off_zero,) = MetricEvaluator(moved).feed(stuck)
    assert off_zero.step == 8 and off_zero.detail["delta"] == "inf"  # any move off 0 is a change of at least 10x


def test_a_float_step_is_that_step_and_a_fractional_one_is_an_error() -> None:
    """W&B may answer ``_step`` as ``5.0`` (wandb-core's history reader says so): the same firings as
    with ints, never a row silently skipped; a step that is not a whole number says so."""
    values = [0.1, 0.6, 0.7, 0.2, 0.9]
    spec = MetricSpec("threshold", NAME, 0.5, 1, 1, None, ">")
    as_ints = MetricEvaluator(spec, rearm=True).feed([{"_step": s, NAME: v} for s, v in enumerate(values)])
    floats = [{"_step": float(s) if s % 2 else s, NAME: v} for s, v in enumerate(values)]
    as_floats = MetricEvaluator(spec, rearm=True).feed(floats)
    assert [f.step for f in as_floats] == [f.step for f in as_ints] == [1, 4]
    assert all(type(f.step) is int for f in as_floats)
    with pytest.raises(ValueError, match=r"_step must be a whole number; got 2\.5"):
        MetricEvaluator(spec).feed([{"_step": 2.5, NAME: 1.0}])
