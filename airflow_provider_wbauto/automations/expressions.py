"""Fluent filter expressions, as in ``wandb._filters``: ``RunEvent.name.matches_regex("^sweep-") & ...``.

An expression is a thin wrapper over its Mongo-style dict; ``&``, ``|`` and ``~`` combine them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .words import describe_mongo

Scalar = str | int | float | bool


@dataclass(frozen=True)
class FilterExpr:
    expr: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.expr

    def __and__(self, other: FilterExpr) -> FilterExpr:
        if isinstance(other, FilterExpr):
            return FilterExpr({"$and": [*_flat(self.expr, "$and"), *_flat(other.expr, "$and")]})
        return NotImplemented  # lets a metric or state filter handle `expr & metric_filter`

    def __or__(self, other: FilterExpr) -> FilterExpr:
        return FilterExpr({"$or": [*_flat(self.expr, "$or"), *_flat(other.expr, "$or")]})

    def __invert__(self) -> FilterExpr:
        if set(self.expr) == {"$not"}:
            return FilterExpr(self.expr["$not"])
        if set(self.expr) == {"$or"}:
            return FilterExpr({"$nor": self.expr["$or"]})
        return FilterExpr({"$not": self.expr})

    def __str__(self) -> str:
        return describe_mongo(self.expr)


def _flat(expr: dict[str, Any], op: str) -> list[dict[str, Any]]:
    return list(expr[op]) if set(expr) == {op} else [expr]


@dataclass(frozen=True)
class FilterableField:
    """A field of a run or an artifact event; methods build ``{field: {op: value}}``."""

    name: str

    def _op(self, op: str, value: Any) -> FilterExpr:
        return FilterExpr({self.name: {op: value}})

    def eq(self, value: Scalar) -> FilterExpr:
        return self._op("$eq", value)

    def ne(self, value: Scalar) -> FilterExpr:
        return self._op("$ne", value)

    def gt(self, value: Scalar) -> FilterExpr:
        return self._op("$gt", value)

    def gte(self, value: Scalar) -> FilterExpr:
        return self._op("$gte", value)

    def lt(self, value: Scalar) -> FilterExpr:
        return self._op("$lt", value)

    def lte(self, value: Scalar) -> FilterExpr:
        return self._op("$lte", value)

    def in_(self, values: Iterable[Scalar]) -> FilterExpr:
        return self._op("$in", list(values))

    def not_in(self, values: Iterable[Scalar]) -> FilterExpr:
        return self._op("$nin", list(values))

    def exists(self, flag: bool = True) -> FilterExpr:
        return self._op("$exists", flag)

    def matches_regex(self, pattern: str) -> FilterExpr:
        return self._op("$regex", pattern)

    def contains(self, text: str) -> FilterExpr:
        return self._op("$contains", text)

    __gt__ = gt
    __ge__ = gte
    __lt__ = lt
    __le__ = lte

    def __eq__(self, value: object) -> FilterExpr:  # type: ignore[override]
        return self.eq(value)  # type: ignore[arg-type]

    def __ne__(self, value: object) -> FilterExpr:  # type: ignore[override]
        return self.ne(value)  # type: ignore[arg-type]

    def __hash__(self) -> int:
        return hash(self.name)
