"""The evidence rule: what a GraphQL request uses of W&B's API must occur in a real W&B client.

A request is taken apart into *wire items* (``walk``):

- its operation kind: ``operation:query``;
- every field as ``Parent.field``, ``Parent`` the nearest enclosing field that is not connection
  plumbing (``edges``, ``node``, ``pageInfo``), or ``Query`` / ``Mutation`` / ``Subscription`` at
  the root; aliases are resolved to the field's name, fragments and inline fragments to their
  fields (``__typename`` is GraphQL's own and always allowed);
- every argument as ``Parent.field(arg)``, and every directive as ``@name``;
- the *value forms* of the arguments whose values W&B reads as a little language of its own:
  ``order`` (the exact string), the JSON filters (``filters``, ``projectFilters``,
  ``collectionFilters``, ``artifactFilters``: their keys, ``$operators`` and timestamp forms) and
  ``sampledHistory(specs)`` (each spec's fields, and a metric key beside the x-axis key).

The evidence set is one committed file, ``wire_evidence.json``, read by both sides: the provider's
test (every request its reads send is in it) and the strict local backend (``server.py``: a request
outside it is a GraphQL error, as W&B answers one). Its sections:

- ``sdk``: the items of every GraphQL document in the installed ``wandb`` package's sources, each
  with the file and line it came from (``python -m airflow_provider_wbauto.local.evidence
  --regenerate`` rewrites it; a test re-reads the SDK, so the section cannot drift);
- ``wandb_core``: the items of wandb-core's Go client queries, ``wire_evidence/wandb-core/*.graphql``
  (copies of the public ``wandb/wandb`` repository's ``core/api/graphql/``);
- ``captured``: the items of the wandb SDK's requests as sent (``wire_evidence/captured/*.graphql``,
  captured between the wandb 0.31.0 SDK and a server);
- ``cited_items``: items of other W&B-maintained clients, written by hand, each with its citation;
- ``value_forms``: written by hand, each value with its citation (file:line). See ``ValueForms``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_interface_type,
    is_object_type,
    parse,
    value_from_ast_untyped,
)

HERE = Path(__file__).parent
EVIDENCE_FILE = HERE / "wire_evidence.json"
CORE_DIR = HERE / "wire_evidence" / "wandb-core"
CAPTURED_DIR = HERE / "wire_evidence" / "captured"

PLUMBING = frozenset({"edges", "node", "pageInfo"})
ROOTS = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}
FILTER_ARGS = frozenset({"filters", "projectFilters", "collectionFilters", "artifactFilters"})
ORDER_ARG = "order"
SPEC_ARG = "specs"  # of sampledHistory
HOLE = "__wbauto_hole__"  # stands for a part of an SDK query text built at run time


# -- taking a request apart -------------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """One wire item a request uses.

    :param item: its name in the evidence set (``project.runs(order)``).
    :param kind: ``operation``, ``field``, ``argument`` or ``directive``.
    :param name: the field, argument, directive or operation kind's own name.
    :param field: the field (for an argument: the field it is given to).
    :param parent_type: the GraphQL type holding ``field``, when walked with a schema.
    :param value: an argument's value, resolved from its variable or literal (``None`` when absent).
    :param node: an argument's value as written (a variable, a literal), to resolve with other variables.
    :param defaults: the default values of the operation's variables.
    """

    item: str
    kind: str
    name: str
    field: str = ""
    parent_type: str | None = None
    value: Any = None
    node: ValueNode | None = dataclasses.field(default=None, compare=False, repr=False)
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def resolved(self, variables: Mapping[str, Any]) -> Use:
        """The argument with its value resolved from ``variables`` (its operation's defaults beneath)."""
        if self.node is None:
            return self
        values = {**self.defaults, **variables}
        if isinstance(self.node, VariableNode):
            value = values.get(self.node.name.value)
        else:
            value = value_from_ast_untyped(self.node, values)
        return dataclasses.replace(self, value=value)

    @property
    def on(self) -> str:
        """The field as graphql-js names it in its messages: ``Type.field`` (a field name for a type
        when walked without a schema)."""
        parent = self.parent_type or self.item.split(".", 1)[0]
        return f"{parent}.{self.field}"


class _Walk:
    def __init__(
        self,
        fragments: Mapping[str, list[FragmentDefinitionNode]],
        variables: Mapping[str, Any],
        defaults: Mapping[str, Any],
        schema: GraphQLSchema | None,
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.defaults = defaults
        self.schema = schema
        self.uses: list[Use] = []
        self.unknown_fragments: set[str] = set()

    def directives(self, directives: Iterable[DirectiveNode] | None) -> None:
        for d in directives or ():
            self.uses.append(Use(f"@{d.name.value}", "directive", d.name.value))

    def selections(
        self, selection_set: SelectionSetNode | None, parent: str, type_: GraphQLNamedType | None, seen: frozenset[str]
    ) -> None:
        if selection_set is None:
            return
        for sel in selection_set.selections:
            self.directives(sel.directives)
            if isinstance(sel, FieldNode):
                self.field(sel, parent, type_, seen)
            elif isinstance(sel, InlineFragmentNode):
                inner = type_
                if sel.type_condition is not None and self.schema is not None:
                    inner = self.schema.get_type(sel.type_condition.name.value) or type_
                self.selections(sel.selection_set, parent, inner, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                definitions = self.fragments.get(name)
                if not definitions:
                    self.unknown_fragments.add(name)
                    continue
                if name in seen:  # a cycle: invalid GraphQL, reported by validation
                    continue
                for fragment in definitions:
                    inner = type_
                    if self.schema is not None:
                        inner = self.schema.get_type(fragment.type_condition.name.value) or type_
                    self.selections(fragment.selection_set, parent, inner, seen | {name})

    def field(self, node: FieldNode, parent: str, type_: GraphQLNamedType | None, seen: frozenset[str]) -> None:
        name = node.name.value
        if name == "__typename":
            return
        type_name = type_.name if type_ is not None else None
        child_type: GraphQLNamedType | None = None
        if type_ is not None and (is_object_type(type_) or is_interface_type(type_)):
            definition = type_.fields.get(name)  # type: ignore[attr-defined]
            if definition is not None:
                child_type = get_named_type(definition.type)
        if name in PLUMBING:
            self.selections(node.selection_set, parent, child_type, seen)
            return
        self.uses.append(Use(f"{parent}.{name}", "field", name, name, type_name))
        for arg in node.arguments or ():
            use = Use(
                f"{parent}.{name}({arg.name.value})",
                "argument",
                arg.name.value,
                name,
                type_name,
                node=arg.value,
                defaults=self.defaults,
            )
            self.uses.append(use.resolved(self.variables))
        self.selections(node.selection_set, name, child_type, seen)


def walk(
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    schema: GraphQLSchema | None = None,
    fragments: Mapping[str, list[FragmentDefinitionNode]] | None = None,
    *,
    operation_name: str | None = None,
) -> tuple[list[Use], set[str]]:
    """The wire items a document's operations use (every operation, or ``operation_name``'s), and
    the fragments it spreads that neither it nor ``fragments`` define."""
    own: dict[str, list[FragmentDefinitionNode]] = {k: list(v) for k, v in (fragments or {}).items()}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            own[definition.name.value] = [definition]  # the document's own definition wins
    out: list[Use] = []
    unknown: set[str] = set()
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if operation_name is not None and (definition.name is None or definition.name.value != operation_name):
            continue
        kind = definition.operation.value
        defaults = {
            var.variable.name.value: value_from_ast_untyped(var.default_value)
            for var in definition.variable_definitions or ()
            if var.default_value is not None
        }
        walker = _Walk(own, variables or {}, defaults, schema)
        walker.uses.append(Use(f"operation:{kind}", "operation", kind))
        walker.directives(definition.directives)
        root = schema.get_root_type(definition.operation) if schema is not None else None
        walker.selections(definition.selection_set, ROOTS[kind], root, frozenset())
        out += walker.uses
        unknown |= walker.unknown_fragments
    return out, unknown


def items_of(uses: Iterable[Use]) -> set[str]:
    return {u.item for u in uses if HOLE not in u.item}


# -- the evidence set and the value forms ---------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """A wire item outside the evidence: ``item`` as the evidence names it, ``message`` as W&B's
    GraphQL (graphql-js) would word its refusal."""

    item: str
    message: str

    def __str__(self) -> str:
        return f"{self.item}: {self.message}"


def _parse_json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value


class ValueForms:
    """The hand-written forms of ``order``, filter and spec values, by argument item
    (``"project.runs(order)"``). Each entry holds one of:

    - ``"order": {value: citation}``: the exact strings a real client sends;
    - ``"filter": {"keys": {key: citation}, "key_patterns": {regex: citation}, "operators": {op:
      citation}, "timestamps": {"keys": {key: citation}, "formats": {regex: citation}}}``: the keys
      and ``$operators`` appearing at any depth of the JSON; a string under a timestamp key must
      match a format;
    - ``"spec": {"forms": {"keys,maxStep,minStep,samples": citation}, "x_axis": ["_step"],
      "metric_keys_at_least": 1, "cite": citation}``: each spec's set of fields, and how many
      keys beside the x-axis key it names;
    - ``"same_as": "<another item>"``: that item's forms.
    """

    def __init__(self, forms: Mapping[str, Any]) -> None:
        self.forms = {k: v for k, v in forms.items() if not k.startswith("_")}

    def form(self, item: str) -> Mapping[str, Any] | None:
        form = self.forms.get(item)
        for _ in range(5):
            if form is None or "same_as" not in form:
                break
            form = self.forms.get(form["same_as"])
        return form

    def check(self, use: Use) -> list[Violation]:
        if use.kind != "argument" or use.value is None:
            return []
        if use.name == ORDER_ARG:
            return self._order(use)
        if use.name in FILTER_ARGS:
            return self._filter(use)
        if use.name == SPEC_ARG and use.field == "sampledHistory":
            return self._specs(use)
        return []

    def _order(self, use: Use) -> list[Violation]:
        allowed = (self.form(use.item) or {}).get("order") or {}
        if use.value in allowed:
            return []
        listed = ", ".join(json.dumps(v) for v in allowed) or "none"
        return [
            Violation(
                f"{use.item}={json.dumps(use.value)}",
                f'Unknown order {json.dumps(use.value)} for argument "order" on field "{use.on}". '
                f"Orders W&B's clients send there: {listed}.",
            )
        ]

    def _filter(self, use: Use) -> list[Violation]:
        where = f'argument "{use.name}" on field "{use.on}"'
        try:
            value = _parse_json(use.value)
        except ValueError:
            return [Violation(f"{use.item}=<not JSON>", f"Invalid JSONString for {where}: not JSON.")]
        form = (self.form(use.item) or {}).get("filter")
        if form is None:
            if value in ({}, None):
                return []
            return [Violation(f"{use.item}=<any>", f"W&B's clients send no filters in {where}.")]
        keys, operators = form.get("keys") or {}, form.get("operators") or {}
        patterns = [re.compile(p) for p in form.get("key_patterns") or {}]
        stamps = form.get("timestamps") or {}
        stamp_keys, formats = stamps.get("keys") or {}, [re.compile(p) for p in stamps.get("formats") or {}]
        out: list[Violation] = []

        def visit(node: Any, key: str | None) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    if k.startswith("$"):
                        if k not in operators:
                            out.append(Violation(f"{use.item}:{k}", f'Unknown filter operator "{k}" in {where}.'))
                        visit(v, key)
                    else:
                        if k not in keys and not any(p.fullmatch(k) for p in patterns):
                            out.append(Violation(f"{use.item}:{k}", f'Unknown filter key "{k}" in {where}.'))
                        visit(v, k)
            elif isinstance(node, list):
                for v in node:
                    visit(v, key)
            elif isinstance(node, str) and key in stamp_keys and not any(p.fullmatch(node) for p in formats):
                out.append(
                    Violation(
                        f"{use.item}:{key}=<timestamp form>",
                        f'Invalid timestamp {json.dumps(node)} for filter key "{key}" in {where}: not a form '
                        "W&B's clients send.",
                    )
                )

        visit(value, None)
        return out

    def _specs(self, use: Use) -> list[Violation]:
        where = f'argument "specs" on field "{use.on}"'
        form = (self.form(use.item) or {}).get("spec")
        specs = use.value if isinstance(use.value, list) else [use.value]
        out: list[Violation] = []
        for raw in specs:
            try:
                spec = _parse_json(raw)
            except ValueError:
                out.append(Violation(f"{use.item}=<not JSON>", f"Invalid JSONString in {where}: not JSON."))
                continue
            if form is None:
                out.append(Violation(f"{use.item}=<any>", f"W&B's clients send no history specs in {where}."))
                continue
            if not isinstance(spec, dict):
                out.append(Violation(f"{use.item}=<not an object>", f"A history spec in {where} is not an object."))
                continue
            fields = ",".join(sorted(spec))
            if fields not in (form.get("forms") or {}):
                out.append(
                    Violation(
                        f"{use.item}={{{fields}}}",
                        f"A history spec with the fields {{{fields}}} in {where} is not a form W&B's clients send.",
                    )
                )
            keys = spec.get("keys")
            metric = [k for k in keys if k not in (form.get("x_axis") or [])] if isinstance(keys, list) else []
            if len(metric) < int(form.get("metric_keys_at_least", 1)):
                out.append(
                    Violation(
                        f"{use.item}:keys=<x-axis only>",
                        f"A history spec in {where} names no metric key beside the x-axis key "
                        f"({json.dumps(keys)}); every spec W&B's clients send does.",
                    )
                )
        return out


class Evidence:
    """The evidence set (``wire_evidence.json``) and the check of a request against it."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.items: frozenset[str] = frozenset(
            itertools.chain.from_iterable(data.get(section) or {} for section in ITEM_SECTIONS)
        )
        self.values = ValueForms(data.get("value_forms") or {})

    @classmethod
    def load(cls, path: Path = EVIDENCE_FILE) -> Evidence:
        return cls(json.loads(path.read_text()))

    def plan(self, document: DocumentNode, schema: GraphQLSchema | None = None) -> Plan:
        """What a query text needs checked: its items now, its value forms with each request's
        variables (``Plan.check``). A server keeps one per query text."""
        uses, unknown = walk(document, None, schema)
        found = [Violation(f"...{name}", f'Unknown fragment "{name}".') for name in sorted(unknown)]
        found += {u.item: self._unknown(u) for u in uses if u.item not in self.items}.values()
        valued = [u for u in uses if u.kind == "argument" and u.name in VALUE_ARGS and u.item in self.items]
        return Plan(self.values, found, valued)

    def check_document(
        self,
        document: DocumentNode,
        variables: Mapping[str, Any] | None = None,
        schema: GraphQLSchema | None = None,
    ) -> list[Violation]:
        return self.plan(document, schema).check(variables or {})

    @staticmethod
    def _unknown(use: Use) -> Violation:
        if use.kind == "operation":
            return Violation(use.item, f"W&B's clients send no {use.name} operations.")
        if use.kind == "directive":
            return Violation(use.item, f'Unknown directive "@{use.name}".')
        if use.kind == "argument":
            return Violation(use.item, f'Unknown argument "{use.name}" on field "{use.on}".')
        parent = use.parent_type or use.item.split(".", 1)[0]
        return Violation(use.item, f'Cannot query field "{use.name}" on type "{parent}".')


ITEM_SECTIONS = ("sdk", "wandb_core", "captured", "cited_items")
VALUE_ARGS = FILTER_ARGS | {ORDER_ARG, SPEC_ARG}


@dataclass(frozen=True)
class Plan:
    """The check of one query text: the items outside the evidence (``found``), and the arguments
    whose values are checked with each request's variables (``valued``)."""

    values: ValueForms
    found: list[Violation]
    valued: list[Use]

    def check(self, variables: Mapping[str, Any]) -> list[Violation]:
        """Every violation of the query sent with ``variables``, each once."""
        out = list(self.found)
        seen = {v.item for v in out}
        for use in self.valued:
            for problem in self.values.check(use.resolved(variables)):
                if problem.item not in seen:
                    seen.add(problem.item)
                    out.append(problem)
        return out


@functools.cache
def default() -> Evidence:
    """The committed evidence set, read once."""
    return Evidence.load()


def violations(query: str, variables: Mapping[str, Any] | None = None) -> list[str]:
    """A readable line per wire item of ``query`` (with ``variables``) outside the evidence set:
    ``"<item>: <W&B's refusal>"``; a query that does not parse is one line saying so."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return [f"<syntax>: {exc.message}"]
    return [str(v) for v in default().check_document(document, variables)]


# -- reading real clients' documents --------------------------------------------------------------


def fragment_pool(documents: Iterable[DocumentNode]) -> dict[str, list[FragmentDefinitionNode]]:
    """Every fragment the documents define, by name (several definitions of one name are all kept)."""
    pool: dict[str, dict[str, FragmentDefinitionNode]] = {}
    for doc in documents:
        for d in doc.definitions:
            if isinstance(d, FragmentDefinitionNode) and d.loc is not None:
                pool.setdefault(d.name.value, {})[d.loc.source.body[d.loc.start : d.loc.end]] = d
    return {name: list(defs.values()) for name, defs in pool.items()}


def items_of_documents(sources: Iterable[tuple[str, DocumentNode]]) -> dict[str, list[str]]:
    """``item -> [source, ...]`` of every operation in the documents, spreads resolved from any of
    them (the SDK defines a fragment in one string and spreads it in another)."""
    docs = list(sources)
    pool = fragment_pool(doc for _, doc in docs)
    out: dict[str, set[str]] = {}
    for source, doc in docs:
        uses, _ = walk(doc, None, None, pool)
        for item in items_of(uses):
            out.setdefault(item, set()).add(source)
    return {item: sorted(where) for item, where in sorted(out.items())}


def graphql_files(directory: Path) -> Iterator[tuple[str, DocumentNode]]:
    for path in sorted(directory.glob("*.graphql")):
        yield path.name, parse(path.read_text())


GRAPHQL_WORDS = re.compile(r"\b(query|mutation|subscription|fragment)\b[^{]*\{", re.S)


class _Strings:
    """The texts a Python module's string expressions can take, followed through module constants,
    imports of other wandb modules, f-strings, ``.format``, ``%`` and ``+`` (a part that cannot be
    followed is ``HOLE``). Enough to read the SDK's GraphQL: its queries are constants, or templates
    filled with fragment constants and a few field names."""

    LIMIT = 24  # variants of one expression

    def __init__(self, package: Path, path: Path, modules: dict[Path, _Strings | None]) -> None:
        self.package, self.path, self.modules = package, path, modules
        self.tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        self.assigned: dict[str, list[ast.expr]] = {}
        self.imported: dict[str, tuple[str, str]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self.assigned.setdefault(node.target.id, []).append(node.value)
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module if node.level == 0 else self._relative(node.module, node.level)
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = (base, alias.name)

    def _relative(self, module: str, level: int) -> str:
        parts = list(self.path.relative_to(self.package.parent).with_suffix("").parts)
        return ".".join([*parts[: len(parts) - level], *([module] if module else [])])

    def _module(self, dotted: str) -> _Strings | None:
        if not dotted.startswith("wandb"):
            return None
        base = self.package.parent.joinpath(*dotted.split("."))
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                if path not in self.modules:
                    self.modules[path] = None  # being read: a cycle ends here
                    self.modules[path] = _Strings(self.package, path, self.modules)
                return self.modules[path]
        return None

    def texts(self, node: ast.expr, depth: int = 0) -> list[str]:
        if depth > 8:
            return [HOLE]
        out = self._texts(node, depth + 1)
        return list(dict.fromkeys(out))[: self.LIMIT] or [HOLE]

    def name(self, name: str, depth: int) -> list[str]:
        if name in self.assigned:
            return [t for value in self.assigned[name] for t in self.texts(value, depth)]
        if name in self.imported:
            module, attr = self.imported[name]
            other = self._module(module)
            if other is not None:
                return other.name(attr, depth + 1)
        return [HOLE]

    def _texts(self, node: ast.expr, depth: int) -> list[str]:
        if isinstance(node, ast.Constant):
            return [node.value] if isinstance(node.value, str) else [HOLE]
        if isinstance(node, ast.JoinedStr):
            parts = [
                self.texts(v.value, depth) if isinstance(v, ast.FormattedValue) else self.texts(v, depth)
                for v in node.values
            ]
            return ["".join(p) for p in itertools.islice(itertools.product(*parts), self.LIMIT)]
        if isinstance(node, ast.Name):
            return self.name(node.id, depth)
        if isinstance(node, ast.IfExp):
            return self.texts(node.body, depth) + self.texts(node.orelse, depth)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            pairs = itertools.product(self.texts(node.left, depth), self.texts(node.right, depth))
            return [a + b for a, b in itertools.islice(pairs, self.LIMIT)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            items = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            out = []
            for left in self.texts(node.left, depth):
                for args in itertools.islice(itertools.product(*(self.texts(i, depth) for i in items)), self.LIMIT):
                    try:
                        out.append(left % args)
                    except (TypeError, ValueError):
                        out.append(HOLE)
            return out
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "format":
                out = []
                kw = [(k.arg, k.value) for k in node.keywords if k.arg]
                arg_texts = [self.texts(a, depth) for a in node.args] + [self.texts(v, depth) for _, v in kw]
                for left in self.texts(func.value, depth):
                    for combo in itertools.islice(itertools.product(*arg_texts), self.LIMIT):
                        positional, named = combo[: len(node.args)], combo[len(node.args) :]
                        try:
                            named_args = {k: v for (k, _), v in zip(kw, named, strict=True)}
                            out.append(left.format(*positional, **named_args))
                        except (IndexError, KeyError, ValueError):
                            out.append(HOLE)
                return out
            if len(node.args) == 1 and not node.keywords:  # gql(...), dedent(...), str(...): the text
                return self.texts(node.args[0], depth)
        return [HOLE]

    def documents(self) -> Iterator[tuple[int, str]]:
        """``(line, text)`` of every string expression whose text reads as a GraphQL document."""
        for node in ast.walk(self.tree):
            if not isinstance(node, (ast.Constant, ast.JoinedStr, ast.BinOp, ast.Call)):
                continue
            if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Attribute) and node.func.attr == "format"):
                continue
            for text in self.texts(node):
                if GRAPHQL_WORDS.search(text):
                    yield node.lineno, text


def _parse_with_holes(text: str) -> DocumentNode | None:
    for filled in (text, text.replace(HOLE, "")):
        try:
            return parse(filled.removeprefix("#graphql"))
        except GraphQLError:
            continue
    return None


def sdk_documents(package: Path | None = None) -> Iterator[tuple[str, DocumentNode]]:
    """``("wandb/<path>:<line>", document)`` of every GraphQL document in the wandb package's sources."""
    if package is None:
        import wandb  # the SDK is a test dependency, not the provider's

        package = Path(wandb.__file__).parent
    modules: dict[Path, _Strings | None] = {}
    for path in sorted(package.rglob("*.py")):
        if (
            "vendor" in path.parts
            or "GRAPHQL" not in (text := path.read_text(encoding="utf-8", errors="replace")).upper()
        ):
            continue
        if not GRAPHQL_WORDS.search(text):
            continue
        module = modules.get(path)
        if module is None:
            try:
                module = modules[path] = _Strings(package, path, modules)
            except (SyntaxError, UnicodeDecodeError):
                continue
        where = path.relative_to(package.parent).as_posix()
        for line, doc_text in module.documents():
            document = _parse_with_holes(doc_text)
            if document is not None:
                yield f"{where}:{line}", document


def sdk_items(package: Path | None = None) -> dict[str, list[str]]:
    return items_of_documents(sdk_documents(package))


def _first(items: Mapping[str, list[str]], sources: int = 3) -> dict[str, list[str]]:
    """Each item with its first few sources: where to read it, not every place it occurs."""
    return {item: where[:sources] for item, where in items.items()}


def regenerate(path: Path = EVIDENCE_FILE) -> dict[str, Any]:
    """Rewrite the generated sections of the evidence file (``sdk``, ``wandb_core``, ``captured``),
    keeping the hand-written ones (``cited_items``, ``value_forms``)."""
    import wandb

    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    data["about"] = __doc__.split("\n\n")[0] if __doc__ else ""
    data["sdk_version"] = wandb.__version__
    data["sdk"] = _first(sdk_items())
    data["wandb_core"] = _first(items_of_documents(graphql_files(CORE_DIR)))
    data["captured"] = _first(items_of_documents(graphql_files(CAPTURED_DIR)))
    data.setdefault("cited_items", {})
    data.setdefault("value_forms", {})
    order = ["about", "sdk_version", "value_forms", "cited_items", "sdk", "wandb_core", "captured"]
    data = {k: data[k] for k in order if k in data} | {k: v for k, v in data.items() if k not in order}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_wbauto.local.evidence")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the generated sections of the evidence")
    parser.add_argument("--check", metavar="FILE", help="check a GraphQL document (variables: FILE.variables.json)")
    args = parser.parse_args(argv)
    if args.regenerate:
        data = regenerate()
        counts = ", ".join(f"{len(data[s])} {s}" for s in ITEM_SECTIONS)
        print(f"wrote {EVIDENCE_FILE}: {counts} items, {len(data['value_forms'])} value forms")
    if args.check:
        query = Path(args.check).read_text()
        var_path = Path(args.check).with_suffix(".variables.json")
        variables = _parse_json(json.loads(var_path.read_text())) if var_path.exists() else {}
        found = violations(query, variables)
        print("\n".join(found) or "every item is on evidence")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
