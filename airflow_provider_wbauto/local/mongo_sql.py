"""Translate W&B's Mongo-style ``filters`` argument into a SQLite WHERE clause, as a server would.

Fields map to columns (or JSON paths inside a column); comparisons are type-bracketed like Mongo's
(a number never compares with a string), and array columns (``tags``) match on any element.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..evaluation.mongo import MAX_DEPTH, FilterSyntaxError, is_operators, regex


class FilterError(ValueError):
    """The ``filters`` argument is not a filter this server understands."""


@dataclass(frozen=True)
class Column:
    sql: str
    array: bool = False


Resolver = Callable[[str], Column | None]

_CMP = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def run_field(field: str) -> Column | None:
    """Run fields as ``Api.runs`` documents them, in snake or camel case."""
    plain = {
        "name": "run.name",
        "id": "run.name",
        "display_name": "run.display_name",
        "displayName": "run.display_name",
        "state": "run.state",
        "created_at": "run.created_at",
        "createdAt": "run.created_at",
        "heartbeat_at": "run.heartbeat_at",
        "heartbeatAt": "run.heartbeat_at",
        "group": "run.group_name",
        "job_type": "run.job_type",
        "jobType": "run.job_type",
        "history_line_count": "run.history_line_count",
        "historyLineCount": "run.history_line_count",
    }
    if field in plain:
        return Column(plain[field])
    if field == "tags":
        return Column("run.tags", array=True)
    head, _, rest = field.partition(".")
    if head == "config" and rest:
        # Config values are stored as {"value": v}; accept both `config.lr` and `config.lr.value`.
        key = rest.removesuffix(".value")
        return Column(f"json_extract(run.config, {_json_path(key + '.value')})")
    if head in ("summary_metrics", "summaryMetrics", "summary") and rest:
        return Column(f"json_extract(run.summary, {_json_path(rest)})")
    return None


def artifact_field(field: str) -> Column | None:
    plain = {
        "state": "artifact.state",
        "versionIndex": "artifact.version_index",
        "version_index": "artifact.version_index",
        "created_at": "artifact.created_at",
        "createdAt": "artifact.created_at",
        "digest": "artifact.digest",
    }
    if field in plain:
        return Column(plain[field])
    if field.startswith("metadata.") and len(field) > 9:
        return Column(f"json_extract(artifact.metadata, {_json_path(field[9:])})")
    return None


def _json_path(dotted: str) -> str:
    parts = ".".join(json.dumps(p) for p in dotted.split("."))
    return "'$." + parts.replace("'", "''") + "'"


def compile_filter(raw: str | dict[str, Any] | None, resolve: Resolver) -> tuple[str, list[Any]]:
    """Return ``(sql, params)``; an empty or missing filter matches everything."""
    if raw is None or raw == "":
        return "1", []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FilterError(f"filters is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise FilterError("filters must be a JSON object")
    params: list[Any] = []
    return _expr(raw, resolve, params), params


def _expr(node: dict[str, Any], resolve: Resolver, params: list[Any], depth: int = 0) -> str:
    if depth > MAX_DEPTH:
        raise FilterError(f"filters nest at most {MAX_DEPTH} levels deep")
    if not node:
        return "1"
    parts: list[str] = []
    for key, value in node.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list):
                raise FilterError(f"{key} takes a list")
            subs = [_expr(_obj(v, key), resolve, params, depth + 1) for v in value]
            if key == "$and":
                parts.append("(" + " AND ".join(subs) + ")" if subs else "1")
            elif key == "$or":
                parts.append("(" + " OR ".join(subs) + ")" if subs else "0")
            else:
                parts.append("NOT (" + " OR ".join(subs) + ")" if subs else "1")
        elif key == "$not":
            parts.append(f"NOT ({_expr(_obj(value, key), resolve, params, depth + 1)})")
        elif key.startswith("$"):
            raise FilterError(f"unknown operator {key}")
        else:
            column = resolve(key)
            if column is None:
                raise FilterError(f"unknown field {key!r}")
            ops = value if is_operators(value) else {"$eq": value}
            parts.extend(_field(column, op, arg, params) for op, arg in ops.items())
    return "(" + " AND ".join(parts) + ")"


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FilterError(f"{where} takes objects, got {value!r}")
    return value


def _typed(sql: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"({sql} IS NOT NULL AND typeof({sql}) = 'integer')"
    if isinstance(value, int | float):
        return f"typeof({sql}) IN ('integer', 'real')"
    if isinstance(value, str):
        return f"typeof({sql}) = 'text'"
    raise FilterError(f"cannot compare with {value!r}")


def _field(column: Column, op: str, arg: Any, params: list[Any]) -> str:
    if column.array:
        return _array_field(column, op, arg, params)
    col = column.sql
    if op in _CMP:
        if arg is None:
            return f"{col} IS NULL" if op == "$eq" else f"{col} IS NOT NULL"
        params.append(arg)
        test = f"({_typed(col, arg)} AND {col} {_CMP[op]} ?)"
        return f"({col} IS NULL OR NOT {test})" if op == "$ne" else test
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise FilterError(f"{op} takes a list")
        tests = []
        for item in arg:
            params.append(item)
            tests.append(f"({_typed(col, item)} AND {col} = ?)")
        any_match = "(" + " OR ".join(tests) + ")" if tests else "0"
        return any_match if op == "$in" else f"NOT {any_match}"
    if op == "$exists":
        return f"{col} IS NOT NULL" if arg else f"{col} IS NULL"
    if op == "$regex":
        params.append(_str(arg, op))
        return f"regexp(?, {col})"
    if op == "$contains":
        params.append(_str(arg, op))
        return f"(typeof({col}) = 'text' AND instr({col}, ?) > 0)"
    raise FilterError(f"unknown operator {op}")


def _array_field(column: Column, op: str, arg: Any, params: list[Any]) -> str:
    each = f"json_each({column.sql})"
    if op in ("$eq", "$ne", "$contains"):
        params.append(_str(arg, op) if op == "$contains" else arg)
        test = "instr(value, ?) > 0" if op == "$contains" else "value = ?"
        found = f"EXISTS (SELECT 1 FROM {each} WHERE {test})"
        return f"NOT {found}" if op == "$ne" else found
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise FilterError(f"{op} takes a list")
        params.extend(arg)
        marks = ", ".join("?" for _ in arg) or "NULL"
        found = f"EXISTS (SELECT 1 FROM {each} WHERE value IN ({marks}))"
        return found if op == "$in" else f"NOT {found}"
    if op == "$regex":
        params.append(_str(arg, op))
        return f"EXISTS (SELECT 1 FROM {each} WHERE regexp(?, value))"
    if op == "$exists":
        return f"json_array_length({column.sql}) {'>' if arg else '='} 0"
    raise FilterError(f"operator {op} does not apply to an array field")


def _str(arg: Any, op: str) -> str:
    if not isinstance(arg, str):
        raise FilterError(f"{op} takes a string, got {arg!r}")
    if op == "$regex":
        try:
            regex(arg)  # RE2: linear-time matching, and an error here rather than inside SQLite
        except FilterSyntaxError as exc:
            raise FilterError(str(exc)) from None
    return arg
