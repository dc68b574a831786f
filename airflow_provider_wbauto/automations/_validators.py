"""Lenient spellings in, one normal form out, and errors that name the allowed values.

W&B's SDK spells ``$gt``, ``AVERAGE``, ``RELATIVE``, ``INCREASE``; the seed spells ``>``, ``mean``,
``sum``. Both are accepted and normalised to the lower-case forms used by the engine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, Field

from ..evaluation.mongo import validate as validate_mongo

M = TypeVar("M", bound=BaseModel)


def from_tagged(data: Mapping[str, Any], tag: str, classes: Mapping[str, type[M]]) -> M:
    """A model from plain JSON whose ``tag`` key names its class (``{"on": "OnRunState", ...}``)."""
    body = dict(data)
    name = body.pop(tag, None)
    if name not in classes:
        raise ValueError(f"{tag} must be one of {', '.join(classes)}; got {name!r}")
    return classes[name].model_validate(body)


AGG = {"min": "min", "max": "max", "mean": "mean", "avg": "mean", "average": "mean", "sum": "sum"}
CMP = {
    ">": ">", "$gt": ">", "gt": ">",
    ">=": ">=", "$gte": ">=", "gte": ">=",
    "<": "<", "$lt": "<", "lt": "<",
    "<=": "<=", "$lte": "<=", "lte": "<=",
    "==": "==", "$eq": "==", "eq": "==",
    "!=": "!=", "$ne": "!=", "ne": "!=",
}  # fmt: skip
CHANGE_TYPE = {"absolute": "absolute", "abs": "absolute", "relative": "relative", "rel": "relative"}
CHANGE_DIR = {"increase": "increase", "inc": "increase", "decrease": "decrease", "dec": "decrease", "any": "any"}
SEVERITY = {"INFO": "INFO", "WARN": "WARN", "WARNING": "WARN", "ERROR": "ERROR"}

# W&B's wire spellings of the normal forms
WIRE_AGG = {"min": "MIN", "max": "MAX", "mean": "AVERAGE"}
WIRE_CMP = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}


def choice(field: str, table: dict[str, str], *, case: str = "lower", none_ok: bool = False) -> Callable[[Any], Any]:
    """A before-validator mapping every accepted spelling to its normal form."""
    shown = ", ".join(dict.fromkeys(table.values()))
    aliases = ", ".join(k for k in table if k not in table.values())

    def check(value: Any) -> Any:
        if value is None and none_ok:
            return None
        if hasattr(value, "value") and isinstance(value.value, str):  # an enum member
            value = value.value
        if isinstance(value, str):
            key = value.strip().lower() if case == "lower" else value.strip().upper()
            if key in table:
                return table[key]
        extra = f" (or {aliases})" if aliases else ""
        none = " or None" if none_ok else ""
        raise ValueError(f"{field} must be one of {shown}{extra}{none}; got {value!r}")

    return check


def number(field: str, *, positive: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{field} must be a number (int or float), not {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{field} must be finite; got {value!r}")
        if positive and value <= 0:
            raise ValueError(f"{field} must be greater than 0; got {value!r}")
        return value

    return check


def mongo_filter(field: str) -> Callable[[Any], Any]:
    """Accept a filter expression object, a dict or a JSON string; check it is W&B's language."""

    def check(value: Any) -> Any:
        if value is None:
            return {}
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"{field} is not valid JSON: {exc}") from None
        validate_mongo(value, field)
        return value

    return check


def wire_json(value: Any) -> str:
    """JSON as W&B's SDK writes it (compact), for strings nested in the wire form."""
    return json.dumps(value, separators=(",", ":"))


Window = Annotated[int, Field(strict=True, ge=1)]
Threshold = Annotated[int | float, BeforeValidator(number("threshold"))]
PositiveThreshold = Annotated[int | float, BeforeValidator(number("threshold", positive=True))]
