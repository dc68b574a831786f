"""Filters in W&B's words, for ``str()`` of events and automations and for the UI.

``describe_mongo`` puts a Mongo-style filter into words (``display_name matches ^sweep- and config.lr
< 0.1``); ``describe_metric`` a metric filter (``mean(val_loss, 3) > 0.5``, ``mean(loss, 5) decreases by
10% vs the 5 before``, ``abs(zscore(loss, 30)) > 3``). The words are text, never markup: a run name or
a regex stays as written (quoted as JSON when it has spaces, quotes, commas or brackets, or reads as a
number), and whoever shows them escapes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .metric_filters import MetricFilter

_OPS = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_BARE = re.compile(r'[^\s"\[\],]+')
_FIELD = re.compile(r"[\w.\-]+")
_CHANGE_BY = {">=": "by", ">": "by more than", "<": "by less than", "<=": "by at most"}
_VERB = {"increase": "increases", "decrease": "decreases", "any": "changes"}


def value_words(value: Any) -> str:
    """A filter's value as text: numbers and booleans as JSON writes them, a string bare unless it
    could be misread (then JSON-quoted), a list as ``[a, b]``."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        bare = _BARE.fullmatch(value) and not _reads_as_literal(value)
        return value if bare else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_words(x) for x in value) + "]"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _reads_as_literal(text: str) -> bool:
    if text in ("true", "false", "null"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _field(name: str) -> str:
    return name if _FIELD.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def describe_mongo(expr: Mapping[str, Any] | None) -> str:
    """A Mongo-style filter (``$and $or $nor $not $eq $ne $gt $gte $lt $lte $in $nin $exists $regex
    $contains``) in words; an empty filter is ``any``."""
    return _words(expr)[0] if expr else "any"


def conjoin(head: str, expr: Mapping[str, Any] | None) -> str:
    """``head and <expr in words>``, the expression in parentheses if it is an ``or``."""
    if not expr:
        return head
    text, kind = _words(expr)
    return f"{head} and {_grouped(text, kind, 'or')}"


def _grouped(text: str, kind: str, *loose: str) -> str:
    return f"({text})" if kind in loose else text


def _words(expr: Mapping[str, Any]) -> tuple[str, str]:
    """The expression's words and its kind: ``atom``, ``and``, ``or`` (how loosely it binds)."""
    parts = [_clause(key, value) for key, value in expr.items()]
    if not parts:
        return "any", "atom"
    return _join(parts, "and")


def _join(parts: list[tuple[str, str]], how: str) -> tuple[str, str]:
    if len(parts) == 1:
        return parts[0]
    loose = ("and",) if how == "or" else ("or",)  # (a and b) or c: clearer than relying on precedence
    return f" {how} ".join(_grouped(text, kind, *loose) for text, kind in parts), how


def _clause(key: str, value: Any) -> tuple[str, str]:
    if key in ("$and", "$or", "$nor"):
        subs = [_words(x) if isinstance(x, Mapping) else (value_words(x), "atom") for x in value or []]
        if key == "$and":
            return _join(subs, "and") if subs else ("any", "atom")
        if not subs:
            return ("none", "atom") if key == "$or" else ("any", "atom")
        text, kind = _join(subs, "or")
        return (f"not ({text})", "atom") if key == "$nor" else (text, kind)
    if key == "$not":
        text, _ = _words(value) if isinstance(value, Mapping) and value else ("any", "atom")
        return f"not ({text})", "atom"
    name = _field(key)
    if isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value):
        return _join([(_op(name, op, arg), "atom") for op, arg in value.items()], "and")
    return f"{name} == {value_words(value)}", "atom"


def _op(name: str, op: str, arg: Any) -> str:
    if op in _OPS:
        return f"{name} {_OPS[op]} {value_words(arg)}"
    if op == "$in":
        return f"{name} in {value_words(list(arg))}"
    if op == "$nin":
        return f"{name} not in {value_words(list(arg))}"
    if op == "$exists":
        return f"{name} exists" if arg else f"{name} does not exist"
    if op == "$regex":
        return f"{name} matches {value_words(arg)}"
    if op == "$contains":
        return f"{name} contains {value_words(arg)}"
    return f"{name} {op} {value_words(arg)}"  # not W&B's language (validation refuses it): said as given


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.12g}%"


def describe_metric(metric: MetricFilter) -> str:
    """A run metric filter as W&B's filter says it: the aggregate over its window (``mean(val_loss, 3)``;
    the latest value is the metric's name), the comparison, and for a change filter its direction,
    amount (``10%`` relative, a number absolute) and the prior window it is compared with."""
    from .metric_filters import MetricChangeFilter, MetricThresholdFilter

    name = _field(metric.name)
    if isinstance(metric, MetricThresholdFilter):
        value = f"{metric.agg}({name}, {metric.window})" if metric.agg else name
        return f"{value} {metric.cmp} {value_words(metric.threshold)}"
    if isinstance(metric, MetricChangeFilter):
        value = f"{metric.agg}({name}, {metric.window})" if metric.agg else name
        amount = _percent(metric.threshold) if metric.change_type == "relative" else value_words(metric.threshold)
        prior = f"the {metric.prior_window or metric.window} before" if metric.agg else "the value before"
        return f"{value} {_VERB[metric.change_dir]} {_CHANGE_BY[metric.cmp]} {amount} vs {prior}"
    z, t = f"zscore({name}, {metric.window})", value_words(metric.threshold)
    return {"any": f"abs({z}) > {t}", "increase": f"{z} > +{t}"}.get(metric.change_dir, f"{z} < -{t}")
