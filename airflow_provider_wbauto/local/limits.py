"""What one request to the local server may cost, checked before it runs.

The server is for tests and offline development, but it is a server: a query of 1,000 aliased
history fields would build an 87 MB answer, and ``samples: -1`` is SQLite's "no limit". So a request
is refused (400, a GraphQL error naming the limit) past any of these; W&B's own server has limits of
the same kind. The defaults leave room for everything the provider and the real ``wandb`` SDK send:
the SDK's deepest query nests 11 levels, and the hook's batched history reads ask for 20 runs x 2
specs x 1,000 rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast_untyped,
)

DEFAULT_PAGE, MAX_PAGE = 50, 1000  # a connection's page when ``first`` is not given, and its cap
DEFAULT_SAMPLES = 500  # history rows when ``samples`` is not given


@dataclass(frozen=True)
class Limits:
    """:param body_bytes: the largest request body.
    :param depth: the deepest nesting of fields.
    :param aliases: the most aliased fields in one operation.
    :param samples: the most history rows one ``history`` or ``sampledHistory`` spec asks for.
    :param rows: the most history rows one request may ask for, each field's ``samples`` times the
        pages of the connections around it.
    """

    body_bytes: int = 1 << 20
    depth: int = 20
    aliases: int = 100
    samples: int = 10_000
    rows: int = 200_000


class LimitError(ValueError):
    """A request past one of the server's limits (the message names it)."""


def check(limits: Limits, document: DocumentNode, variables: Mapping[str, Any], operation: str | None) -> None:
    """A ``LimitError`` if running ``operation`` of ``document`` with ``variables`` would pass a limit."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [d for d in operations if operation is None or (d.name and d.name.value == operation)]
    for op in chosen[:1]:
        fields = list(_fields(op.selection_set, fragments, variables, (1, 1, frozenset())))
        deepest = max((depth for _, depth, _ in fields), default=0)
        if deepest > limits.depth:
            raise LimitError(f"the query nests {deepest} levels deep; at most {limits.depth} are served")
        aliased = sum(1 for field, _, _ in fields if field.alias is not None)
        if aliased > limits.aliases:
            raise LimitError(f"the query has {aliased} aliased fields; at most {limits.aliases} are served")
        rows = sum(pages * _samples(limits, field, variables) for field, _, pages in fields)
        if rows > limits.rows:
            raise LimitError(
                f"the query asks for up to {rows} history rows (samples x the pages around them); "
                f"at most {limits.rows} are served in one request"
            )


def _fields(
    selections: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    at: tuple[int, int, frozenset[str]],
) -> Iterator[tuple[FieldNode, int, int]]:
    """Every field with its depth and the product of the pages of the connections around it."""
    depth, pages, spreading = at
    for node in selections.selections if selections else ():
        if isinstance(node, FieldNode):
            yield node, depth, pages
            inner = (depth + 1, pages * _page(node, variables), spreading)
            yield from _fields(node.selection_set, fragments, variables, inner)
        elif isinstance(node, InlineFragmentNode):
            yield from _fields(node.selection_set, fragments, variables, at)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in spreading:  # validation refuses cycles
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                inner = (depth, pages, spreading | {node.name.value})
                yield from _fields(fragment.selection_set, fragments, variables, inner)


def _argument(field: FieldNode, name: str, variables: Mapping[str, Any]) -> Any:
    for argument in field.arguments or ():
        if argument.name.value == name:
            return value_from_ast_untyped(argument.value, dict(variables))
    return None


def _page(field: FieldNode, variables: Mapping[str, Any]) -> int:
    """How many items a field lists: a connection's page (``first``, capped as the resolvers cap it),
    else one."""
    first = _argument(field, "first", variables)
    if type(first) is int:
        return max(1, min(first, MAX_PAGE))
    lists = field.selection_set is not None and any(
        isinstance(s, FieldNode) and s.name.value == "edges" for s in field.selection_set.selections
    )
    return DEFAULT_PAGE if lists else 1


def _samples(limits: Limits, field: FieldNode, variables: Mapping[str, Any]) -> int:
    """The rows a history field asks for (0 for any other field); a bad ``samples`` is a LimitError."""
    name = field.name.value
    if name == "history":
        return _one(limits, _argument(field, "samples", variables), "history(samples:)")
    if name != "sampledHistory":
        return 0
    specs = _argument(field, "specs", variables) or []
    total = 0
    for spec in specs if isinstance(specs, list) else [specs]:
        try:
            value = json.loads(spec) if isinstance(spec, str) else spec
        except ValueError:
            raise LimitError("sampledHistory(specs:) holds a spec that is not JSON") from None
        if not isinstance(value, dict):
            raise LimitError("sampledHistory(specs:) holds a spec that is not a JSON object")
        total += _one(limits, value.get("samples"), "sampledHistory spec's samples")
    return total


def _one(limits: Limits, samples: Any, where: str) -> int:
    if samples is None:
        return DEFAULT_SAMPLES
    if type(samples) is not int or not 1 <= samples <= limits.samples:
        raise LimitError(f"{where} must be an integer from 1 to {limits.samples}; got {samples!r}")
    return samples
