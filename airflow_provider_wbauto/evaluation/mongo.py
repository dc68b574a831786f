"""W&B's Mongo-style filter language, matched locally against a record (a run, a version, an alias).

Operators: ``$and $or $nor $not $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $contains``.
Fields are dotted paths into the record; ``{"field": scalar}`` means ``$eq``; a list-valued field
matches an operator when any element does (Mongo's rule), and ``$contains`` is W&B's substring or
element test. Comparisons never cross types: ``1 > "a"`` is simply false, as in Mongo.

A filter comes from a DAG file or a DAG run's conf, so nothing in it may hang a process: ``$regex``
is RE2 (linear in the text matched, as in W&B's own server, which is Go), and filters nest at most
``MAX_DEPTH`` deep.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import re2

_MISSING = object()
MAX_DEPTH = 32  # $and / $or / $nor / $not levels: far past any real filter, far short of the stack
LOGICAL = ("$and", "$or", "$nor", "$not")
FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$contains")


class FilterSyntaxError(ValueError):
    """A filter that is not W&B's Mongo-style language."""


def matches(expr: Mapping[str, Any] | None, record: Mapping[str, Any]) -> bool:
    """True when ``record`` satisfies ``expr`` (an empty or missing filter matches everything)."""
    if not expr:
        return True
    return all(_clause(key, value, record) for key, value in expr.items())


def validate(expr: Any, where: str = "filter", depth: int = 0) -> None:
    """Raise ``FilterSyntaxError`` naming the first problem, so bad filters fail at DAG-parse time."""
    if not isinstance(expr, Mapping):
        raise FilterSyntaxError(f"{where} must be an object, got {_short(expr)}")
    if depth > MAX_DEPTH:
        raise FilterSyntaxError(f"{where}: filters nest at most {MAX_DEPTH} levels deep")
    for key, value in expr.items():
        if not isinstance(key, str):
            raise FilterSyntaxError(f"{where}: keys are field names or operators, got {_short(key)}")
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list):
                raise FilterSyntaxError(f"{where}.{key} must be a list of filters")
            for i, sub in enumerate(value):
                validate(sub, f"{where}.{key}[{i}]", depth + 1)
        elif key == "$not":
            validate(value, f"{where}.$not", depth + 1)
        elif key.startswith("$"):
            raise FilterSyntaxError(f"{where}: unknown operator {key!r}; allowed: {', '.join(LOGICAL + FIELD_OPS)}")
        elif is_operators(value):
            for op, arg in value.items():
                _check_op(op, arg, f"{where}.{key}")


def is_operators(value: Any) -> bool:
    """Is ``value`` an object of operators (``{"$gt": 1}``) rather than a literal to compare with?"""
    return isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value)


def _check_op(op: str, arg: Any, where: str) -> None:
    if op not in FIELD_OPS:
        raise FilterSyntaxError(f"{where}: unknown operator {_short(op)}; allowed: {', '.join(FIELD_OPS)}")
    if op in ("$in", "$nin") and not isinstance(arg, list):
        raise FilterSyntaxError(f"{where}.{op} must be a list")
    if op in ("$regex", "$contains") and not isinstance(arg, str):
        raise FilterSyntaxError(f"{where}.{op} must be a string")
    if op == "$regex":
        regex(arg, f"{where}.$regex")
    if op == "$exists" and not isinstance(arg, bool):
        raise FilterSyntaxError(f"{where}.$exists must be true or false")


def _clause(key: str, value: Any, record: Mapping[str, Any]) -> bool:
    if key == "$and":
        return all(matches(sub, record) for sub in value)
    if key == "$or":
        return any(matches(sub, record) for sub in value)
    if key == "$nor":
        return not any(matches(sub, record) for sub in value)
    if key == "$not":
        return not matches(value, record)
    if key.startswith("$"):
        raise FilterSyntaxError(f"unknown operator {key!r}")
    actual = lookup(record, key)
    if is_operators(value):
        return all(_op(op, arg, actual) for op, arg in value.items())
    return _op("$eq", value, actual)


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """A dotted path into nested dicts; W&B config values ``{"value": v}`` are unwrapped on the way."""
    node: Any = record
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and isinstance(node.get("value"), Mapping) and part in node["value"]:
            node = node["value"][part]
        else:
            return _MISSING
    if isinstance(node, Mapping) and set(node) == {"value"}:
        return node["value"]
    return node


def _op(op: str, arg: Any, actual: Any) -> bool:
    if op == "$exists":
        return (actual is not _MISSING and actual is not None) == bool(arg)
    if op in ("$ne", "$nin"):
        return not _op("$eq" if op == "$ne" else "$in", arg, actual)
    if actual is _MISSING:
        return op == "$eq" and arg is None
    if isinstance(actual, list):
        if op == "$contains" and arg in actual:
            return True
        return any(_scalar_op(op, arg, item) for item in actual) or (op == "$eq" and actual == arg)
    return _scalar_op(op, arg, actual)


def _scalar_op(op: str, arg: Any, actual: Any) -> bool:
    if op == "$eq":
        return _same_kind(actual, arg) and actual == arg
    if op == "$in":
        return any(_scalar_op("$eq", item, actual) for item in arg)
    if op == "$regex":
        return isinstance(actual, str) and regex(arg).search(actual) is not None
    if op == "$contains":
        return isinstance(actual, str) and isinstance(arg, str) and arg in actual
    if not _same_kind(actual, arg) or actual is None:
        return False
    try:
        if op == "$gt":
            return bool(actual > arg)
        if op == "$gte":
            return bool(actual >= arg)
        if op == "$lt":
            return bool(actual < arg)
        if op == "$lte":
            return bool(actual <= arg)
    except TypeError:
        return False
    raise FilterSyntaxError(f"unknown operator {op!r}")


def _same_kind(a: Any, b: Any) -> bool:
    def kind(x: Any) -> str:
        if isinstance(x, bool):
            return "bool"
        if isinstance(x, int | float):
            return "number"
        return type(x).__name__

    return kind(a) == kind(b)


_RE2 = re2.Options()
_RE2.log_errors = False  # the error is raised, with the field it came from; nothing on stderr


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, options=_RE2)


def regex(pattern: str, where: str = "$regex") -> Any:
    """``pattern`` compiled by RE2 (matches in linear time); a ``FilterSyntaxError`` naming ``where``
    when RE2 cannot take it (backreferences and lookaround are not RE2, nor W&B's server)."""
    try:
        return _compiled(pattern)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise FilterSyntaxError(
            f"{where} {_short(pattern)} is not a regular expression W&B runs (RE2 syntax): {why}"
        ) from None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
