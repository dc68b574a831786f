"""What each event family reads from W&B: one place that both the polls and their stored cursors'
checks go by."""

from __future__ import annotations

from typing import Literal

from ..automations.events import (
    Event,
    OnAddArtifactAlias,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRunMetric,
    OnRunState,
    OnUnlinkArtifact,
)

Stream = Literal["runs", "versions", "links", "aliases", "members", "portfolios"]


def stream_of(event: Event) -> Stream:
    """What an event family reads: a scope's runs, a collection's newest versions, a registry's newest
    links, a scope's aliases, or every version (or only the links) of the scope."""
    if isinstance(event, OnRunMetric | OnRunState):
        return "runs"
    if isinstance(event, OnCreateArtifact) and event.scope.kind == "collection":
        return "versions"  # a registry collection's members are links, made at any time: read them all
    if isinstance(event, OnLinkArtifact) and event.scope.is_registry:
        return "links"
    if isinstance(event, OnAddArtifactAlias):
        return "aliases"
    links = isinstance(event, OnLinkArtifact | OnUnlinkArtifact)
    return "portfolios" if links and event.scope.collection is None else "members"
