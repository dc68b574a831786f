"""How the local W&B stand-in answers where real W&B is known, or allowed, to answer otherwise than a
naive imitation would (issue 25). Strict (every field ``True``) is the default: the backend then takes
the form that breaks a client written only against a friendly backend. ``WireOptions.lenient()`` is
the behaviour the backend had before, for whoever needs it (``serve --lenient``).

The options travel two ways, so that a server and a test process recording a scenario into the same
database file agree: ``Store.set_wire(options)`` writes them into the database (the server does this
once at start); resolvers read ``info.context["wire"]`` when the server puts a ``WireOptions`` there,
else the database's, else the strict default.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

CONTEXT_KEY = "wire"


@dataclass(frozen=True)
class WireOptions:
    float_steps: bool = True
    """History rows whose step is odd carry ``_step`` as a float (``5.0``), in ``history``,
    ``sampledHistory`` and ``historyKeys.lastStep``. wandb-core's history reader: "In some cases the
    backend returns the step as a float64" (core/internal/runhistoryreader/livedata.go)."""

    alias_ids_move_in_place: bool = True
    """An alias moved to another version keeps its id (its row is updated in place). W&B does not
    document which it does; keeping the id is the form that defeats diffing alias ids."""

    version_index_orders: bool = True
    """``ArtifactCollection.artifacts(order:)`` takes only the orders W&B's clients send
    (``+version_index``, ``-version_index``, ``version_index``; anything else is a GraphQL error), and
    without ``order`` answers in ascending version index, never newest first."""

    registry_orders_need_advanced_search: bool = True
    """``orgEntity.artifactMemberships(order:)`` is refused unless the organization has advanced search,
    and then takes only the SDK's order names (``±artifact_created_at``, ``±artifact_size``,
    ``±acm_created_at``); without ``order`` it answers in ascending membership id."""

    pending_versions_unindexed: bool = True
    """A version not yet committed answers ``versionIndex: null`` (the SDK's ``ArtifactFragment`` and
    ``ArtifactMembershipFragment`` declare ``version_index: int | None``)."""

    run_orders_known_only: bool = True
    """``project.runs(order:)`` refuses an order field it does not know, instead of quietly ordering by
    ``created_at``."""

    @classmethod
    def strict(cls) -> WireOptions:
        return cls()

    @classmethod
    def lenient(cls) -> WireOptions:
        """The backend's behaviour before issue 25: every divergence off."""
        return cls(**{f.name: False for f in dataclasses.fields(cls)})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> WireOptions:
        """Options saved by ``to_json``; a field missing (saved by an older version) takes its strict default."""
        if not text:
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        raw: dict[str, Any] = json.loads(text)
        return cls(**{k: bool(v) for k, v in raw.items() if k in known})
