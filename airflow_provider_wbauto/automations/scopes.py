"""Scopes from strings, W&B's five kinds: a project ``entity/project``, a collection
``entity/project/collection``, a registry ``entity/wandb-registry-<name>[/collection]``, a team
``team:<entity>`` and an organization ``org:<organization>``.

A team scope covers every project of the team's entity (and its registries, where the entity holds
them), including projects created later; an organization scope covers the projects of the
organization's own entity, which are its registries (W&B's read API does not list an
organization's teams: watch a team with its own team scope).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

REGISTRY_PREFIX = "wandb-registry-"
_NAME = re.compile(r"^[\w.\-]+$")
ScopeKind = Literal["project", "registry", "collection", "registry_collection", "team", "org"]
EntityType = Literal["team", "organization"]
_PREFIXES: dict[str, EntityType] = {"team": "team", "org": "organization"}
FORMS = (
    "'entity/project', 'entity/project/collection', 'entity/wandb-registry-<name>[/collection]', "
    "'team:<entity>' or 'org:<organization>'"
)


class Scope(BaseModel):
    """Where an automation watches; build one from its string form (``Scope.model_validate("team:acme")``).

    :param entity: the entity (for ``org:`` scopes, the organization's name).
    :param project: the project or registry; ``None`` for a team or organization scope.
    :param collection: an artifact collection in the project, if the scope is one.
    :param entity_type: ``"team"`` or ``"organization"`` for W&B's entity scopes, else ``None``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity: str
    project: str | None = None
    collection: str | None = None
    entity_type: EntityType | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, Scope):
            return value.model_dump()
        if not isinstance(value, str):
            return value
        text = value.strip()
        prefix, colon, name = text.partition(":")
        if colon:
            if prefix not in _PREFIXES or not _NAME.match(name):
                raise ValueError(f"scope {value!r} must be {FORMS} (names of letters, digits, '_', '-', '.')")
            return {"entity": name, "entity_type": _PREFIXES[prefix]}
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(_NAME.match(p) for p in parts):
            raise ValueError(f"scope {value!r} must be {FORMS} (names of letters, digits, '_', '-', '.')")
        return dict(zip(("entity", "project", "collection"), parts, strict=False))

    @model_validator(mode="after")
    def _one_kind(self) -> Scope:
        if (self.entity_type is None) == (self.project is None):
            raise ValueError(
                f"a scope has a project or an entity_type (team, organization), not both or neither; {FORMS}"
            )
        if self.collection is not None and self.project is None:
            raise ValueError(f"a collection scope needs its project; {FORMS}")
        return self

    @property
    def is_registry(self) -> bool:
        return self.project is not None and self.project.startswith(REGISTRY_PREFIX)

    @property
    def kind(self) -> ScopeKind:
        if self.entity_type is not None:
            return "team" if self.entity_type == "team" else "org"
        if self.collection is None:
            return "registry" if self.is_registry else "project"
        return "registry_collection" if self.is_registry else "collection"

    @property
    def wire_type(self) -> str:
        """W&B's ``TriggerScopeType``."""
        if self.entity_type is not None:
            return "ENTITY"
        return "ARTIFACT_COLLECTION" if self.collection else "PROJECT"

    def __str__(self) -> str:
        if self.entity_type is not None:
            return f"{'team' if self.entity_type == 'team' else 'org'}:{self.entity}"
        return "/".join(p for p in (self.entity, self.project, self.collection) if p)


def TeamScope(name: str) -> Scope:
    """Every project of a team's entity, including projects created later (``"team:<name>"``).

    :param name: the team's entity name.
    """
    return Scope(entity=name, entity_type="team")


def OrgScope(name: str) -> Scope:
    """An organization's registries, including those created later (``"org:<name>"``).

    :param name: the organization's name.
    """
    return Scope(entity=name, entity_type="organization")
