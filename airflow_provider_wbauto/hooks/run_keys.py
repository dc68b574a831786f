"""The config and summary keys a run listing carries: only those run filters name, never the whole blobs.

W&B warns that a run's ``summaryMetrics`` reach 771 KB, and W&B's own clients (wandb/skills' run
listing, weave's run ops) ask for the keys they use with ``summaryMetrics(keys:)`` / ``config(keys:)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

LOGICAL = ("$and", "$or", "$nor", "$not")


@dataclass(frozen=True)
class RunKeys:
    """The top-level config and summary keys a listing reads (a key ``x.y`` is read as ``x``).

    :param config: config keys; ``None``: the whole config (a filter on ``config`` itself).
    :param summary: summary keys; ``None``: the whole summary.
    """

    config: frozenset[str] | None = frozenset()
    summary: frozenset[str] | None = frozenset()

    @classmethod
    def of(cls, run_filter: Mapping[str, Any] | None) -> RunKeys:
        """What a run filter reads of the config and the summary."""
        config: set[str] | None = set()
        summary: set[str] | None = set()
        for path in _fields(run_filter or {}):
            head, _, rest = path.partition(".")
            top = rest.split(".")[0]
            if head == "config":
                config = None if config is None or not top else config | {top}
            elif head == "summary_metrics":
                summary = None if summary is None or not top else summary | {top}
        return cls(_frozen(config), _frozen(summary))

    def __or__(self, other: RunKeys) -> RunKeys:
        return RunKeys(_union(self.config, other.config), _union(self.summary, other.summary))

    def covers(self, other: RunKeys) -> bool:
        """Does a listing with these keys hold everything ``other`` reads?"""
        return _holds(self.config, other.config) and _holds(self.summary, other.summary)

    @property
    def none(self) -> bool:
        return self.config == frozenset() and self.summary == frozenset()


def _fields(expr: Any) -> Iterator[str]:
    """The field names (dotted paths) a Mongo-style filter compares."""
    if isinstance(expr, list):
        for sub in expr:
            yield from _fields(sub)
    elif isinstance(expr, Mapping):
        for key, value in expr.items():
            if key in LOGICAL:
                yield from _fields(value)
            elif isinstance(key, str) and not key.startswith("$"):
                yield key


def _frozen(keys: set[str] | None) -> frozenset[str] | None:
    return None if keys is None else frozenset(keys)


def _union(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    return None if a is None or b is None else a | b


def _holds(have: frozenset[str] | None, need: frozenset[str] | None) -> bool:
    return have is None or (need is not None and need <= have)


NO_KEYS = RunKeys()  # a listing without config or summary
