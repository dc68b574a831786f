"""Scopes from strings: ``entity/project``, ``entity/project/collection``, ``entity/wandb-registry-x[/collection]``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

REGISTRY_PREFIX = "wandb-registry-"
_NAME = re.compile(r"^[\w.\-]+$")
ScopeKind = Literal["project", "registry", "collection", "registry_collection"]


class Scope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    entity: str
    project: str
    collection: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, Scope):
            return value.model_dump()
        if not isinstance(value, str):
            return value
        parts = value.strip().split("/")
        if len(parts) not in (2, 3) or not all(_NAME.match(p) for p in parts):
            raise ValueError(
                f"scope {value!r} must be 'entity/project', 'entity/project/collection' or "
                "'entity/wandb-registry-<name>[/collection]' (names of letters, digits, '_', '-', '.')"
            )
        return dict(zip(("entity", "project", "collection"), parts, strict=False))

    @property
    def is_registry(self) -> bool:
        return self.project.startswith(REGISTRY_PREFIX)

    @property
    def kind(self) -> ScopeKind:
        if self.collection is None:
            return "registry" if self.is_registry else "project"
        return "registry_collection" if self.is_registry else "collection"

    @property
    def wire_type(self) -> str:
        """W&B's ``TriggerScopeType``."""
        return "ARTIFACT_COLLECTION" if self.collection else "PROJECT"

    def __str__(self) -> str:
        return "/".join(p for p in (self.entity, self.project, self.collection) if p)
