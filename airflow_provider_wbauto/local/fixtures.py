"""JSON fixtures for the local W&B stand-in: validated first, then loaded in one transaction.

Loading is an upsert: a run seen again gets the history rows after its last step appended and its
state replaced; a version's aliases are set to exactly the list given; links are made once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .store import RUN_STATES, Store, StoreError


class FixtureError(ValueError):
    """The fixture is not valid; nothing of it was loaded."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunFixture(_Strict):
    id: str = Field(min_length=1)
    display_name: str | None = None
    state: Literal[RUN_STATES] = "running"  # type: ignore[valid-type]
    created_at: str | None = None
    tags: list[str] = []
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    group: str | None = None
    job_type: str | None = None
    notes: str | None = None
    history: list[dict[str, Any]] = []


class VersionFixture(_Strict):
    aliases: list[str] = []
    metadata: dict[str, Any] = {}
    created_at: str | None = None
    state: Literal["PENDING", "COMMITTED", "DELETED"] = "COMMITTED"
    description: str | None = None
    tags: list[str] = []


class ArtifactFixture(_Strict):
    collection: str = Field(min_length=1)
    type: str = "model"
    tags: list[str] = []  # the collection's
    versions: list[VersionFixture] = []


class LinkFixture(_Strict):
    source: str
    target: str
    aliases: list[str] = []
    created_at: str | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not re.fullmatch(r"[^/:]+/[^/:]+:[^/:]+", value):
            raise ValueError("must look like 'project/collection:vN' or 'project/collection:alias'")
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        if not re.fullmatch(r"[^/:]+/[^/:]+", value):
            raise ValueError("must look like 'wandb-registry-<name>/collection' or 'project/collection'")
        return value


class ProjectFixture(_Strict):
    name: str = Field(min_length=1)
    runs: list[RunFixture] = []
    artifacts: list[ArtifactFixture] = []
    links: list[LinkFixture] = []


class Fixture(_Strict):
    entity: str = Field(min_length=1)
    # The entity is its own organization here: whether it has W&B's advanced registry search (registry
    # versions may then be ordered). None leaves it as it is (off for a new one).
    advanced_search: bool | None = None
    projects: list[ProjectFixture] = []


def parse(data: str | bytes | dict[str, Any]) -> Fixture:
    try:
        raw = json.loads(data) if isinstance(data, str | bytes) else data
    except json.JSONDecodeError as exc:
        raise FixtureError(f"fixture is not valid JSON: {exc}") from None
    try:
        return Fixture.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())
        raise FixtureError(f"invalid fixture: {problems}") from None


def load(store: Store, data: str | bytes | dict[str, Any] | Fixture) -> dict[str, int]:
    """Load a fixture atomically; returns counts of what was written."""
    fixture = data if isinstance(data, Fixture) else parse(data)
    counts = {"runs": 0, "history_rows": 0, "versions": 0, "links": 0}
    entity = fixture.entity
    try:
        with store.transaction():
            if fixture.advanced_search is not None:
                store.set_advanced_search(entity, fixture.advanced_search)
            for project in fixture.projects:
                store.project(entity, project.name)
                for run in project.runs:
                    _load_run(store, entity, project.name, run, counts)
                for art in project.artifacts:
                    _load_artifact(store, entity, project.name, art, counts)
            for project in fixture.projects:  # links may point at projects listed later
                for link in project.links:
                    _load_link(store, entity, project.name, link, counts)
    except StoreError as exc:
        raise FixtureError(f"fixture rejected, nothing loaded: {exc}") from None
    return counts


def load_file(store: Store, path: str | Path) -> dict[str, int]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise FixtureError(f"cannot read fixture {path}: {exc.strerror}") from None
    return load(store, text)


def _load_run(store: Store, entity: str, project: str, run: RunFixture, counts: dict[str, int]) -> None:
    store.upsert_run(
        entity,
        project,
        run.id,
        display_name=run.display_name,
        state=run.state,
        created_at=run.created_at,
        tags=run.tags,
        config=run.config,
        summary=run.summary or None,
        group=run.group,
        job_type=run.job_type,
        notes=run.notes,
    )
    last = store.one(
        "SELECT last_step FROM run JOIN project p ON p.id=run.project_id WHERE p.entity=? AND p.name=? AND run.name=?",
        (entity, project, run.id),
    )
    last_step = int(last["last_step"]) if last else -1
    new = [row for row in run.history if not isinstance(row.get("_step"), int) or row["_step"] > last_step]
    if new:
        store.log(entity, project, run.id, new)
    counts["runs"] += 1
    counts["history_rows"] += len(new)


def _load_artifact(store: Store, entity: str, project: str, art: ArtifactFixture, counts: dict[str, int]) -> None:
    cid = store.collection(entity, project, art.collection, type=art.type)
    current = json.loads(store.one("SELECT tags FROM collection WHERE id=?", (cid,))["tags"])  # type: ignore[index]
    store.update_collection_tags(cid, add=art.tags, remove=[t for t in current if t not in art.tags])
    for index, version in enumerate(art.versions):
        existing = store.one("SELECT id, tags FROM artifact WHERE sequence_id=? AND version_index=?", (cid, index))
        if existing is None:
            artifact_id = store.create_version(
                entity,
                project,
                art.collection,
                type=art.type,
                aliases=version.aliases,
                metadata=version.metadata,
                created_at=version.created_at,
                state=version.state,
                description=version.description,
            )
            store.update_version(artifact_id, add_tags=version.tags)
            counts["versions"] += 1
        else:
            store.set_aliases(int(existing["id"]), cid, version.aliases)
            gone = [t for t in json.loads(existing["tags"]) if t not in version.tags]
            store.update_version(int(existing["id"]), add_tags=version.tags, remove_tags=gone)


def _load_link(store: Store, entity: str, project: str, link: LinkFixture, counts: dict[str, int]) -> None:
    source, _, version = link.source.partition(":")
    source_project, _, collection = source.partition("/")
    target_project, _, portfolio = link.target.partition("/")
    try:
        artifact_id = store.version_id(entity, source_project, collection, version)
    except StoreError:
        raise StoreError(f"project {project}: link source {link.source!r} names no existing version") from None
    store.link(artifact_id, entity, target_project, portfolio, aliases=link.aliases, created_at=link.created_at)
    counts["links"] += 1
