"""The real `wandb` client reads back from the local server exactly what a fixture recorded."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import wandb

from airflow_provider_wbauto.local import LocalWandb, load
from tests.conftest import API_KEY, DATA


@pytest.fixture
def recorded(backend: LocalWandb, entity: str) -> dict[str, Any]:
    fixture = json.loads((DATA / "mnist.json").read_text())
    fixture["entity"] = entity
    project = fixture["projects"][0]
    project["runs"].append(
        {
            "id": "r2",
            "display_name": "sweep-7",
            "state": "failed",
            "tags": ["sweep"],
            "config": {"lr": 0.01},
            "history": [{"_step": s, "loss": 1.0 / (s + 1), **({"acc": s / 10} if s % 2 else {})} for s in range(25)],
        }
    )
    project["artifacts"][0]["versions"].append({"aliases": ["candidate"], "metadata": {"acc": 0.95}})
    project["links"].append(
        {
            "source": "mnist/mnist-model:v1",
            "target": "wandb-registry-model/mnist-prod",
            "aliases": ["staging"],
        }
    )
    load(backend.store, fixture)
    return fixture


@pytest.fixture
def api(backend: LocalWandb, entity: str) -> wandb.Api:
    # Registry paths resolve the org through the settings' entity, as for a real user.
    return wandb.Api(overrides={"base_url": backend.url, "entity": entity}, api_key=API_KEY, timeout=30)


def test_runs_with_filter_state_summary(api: wandb.Api, recorded: dict[str, Any], entity: str) -> None:
    runs = list(api.runs(f"{entity}/mnist", filters={"display_name": {"$regex": "^sweep-"}}))
    assert [r.id for r in runs] == ["r2"]
    run = runs[0]
    assert run.state == "failed"
    assert run.name == "sweep-7"
    assert run.tags == ["sweep"]
    assert run.config == {"lr": 0.01}
    assert run.summary["loss"] == pytest.approx(1.0 / 25)
    assert run.summary["_step"] == 24
    all_runs = {r.id: r.state for r in api.runs(f"{entity}/mnist")}
    assert all_runs == {"r1": "running", "r2": "failed"}
    assert [r.id for r in api.runs(f"{entity}/mnist", filters={"tags": {"$in": ["baseline"]}})] == ["r1"]


def test_projects_of_an_entity_listed_by_the_sdk(backend: LocalWandb, api: wandb.Api, entity: str) -> None:
    """What a team scope watches: ``Api().projects(entity)`` pages through every project, oldest first."""
    names = [f"p{i:02d}" for i in range(7)]
    for name in names:
        backend.store.project(entity, name)
    backend.store.project("someone-else", "theirs")
    listed = api.projects(entity, per_page=3)
    assert [p.name for p in listed] == names
    assert {p.entity for p in listed} == {entity}


def test_scan_history_reads_every_row_of_the_keys(api: wandb.Api, recorded: dict[str, Any], entity: str) -> None:
    run = api.run(f"{entity}/mnist/r2")
    rows = list(run.scan_history(keys=["acc"], page_size=4))
    expected = [{"_step": s, "acc": s / 10} for s in range(25) if s % 2]
    assert rows == expected
    full = list(run.scan_history(page_size=7))
    assert [r["_step"] for r in full] == list(range(25))
    assert full[3]["loss"] == pytest.approx(0.25)


def test_artifact_by_alias_versions_and_registry_links(api: wandb.Api, recorded: dict[str, Any], entity: str) -> None:
    latest = api.artifact(f"{entity}/mnist/mnist-model:latest")
    assert latest.version == "v1"
    assert latest.metadata == {"acc": 0.95}
    assert set(latest.aliases) == {"latest", "candidate"}
    v0 = api.artifact(f"{entity}/mnist/mnist-model:v0")
    assert v0.metadata == {"acc": 0.9}
    assert v0.aliases == []  # "latest" moved to v1
    versions = sorted(a.version for a in api.artifacts("model", f"{entity}/mnist/mnist-model"))
    assert versions == ["v0", "v1"]
    prod = api.artifact(f"{entity}/wandb-registry-model/mnist-prod:production")
    assert prod.id == v0.id
    assert "production" in prod.aliases
    staging = api.artifact(f"{entity}/wandb-registry-model/mnist-prod:staging")
    assert staging.id == latest.id
    linked = {a.id for a in v0.linked_artifacts}
    assert linked == {v0.id}


def test_tags_of_versions_and_collections_read_and_written_by_the_sdk(
    backend: LocalWandb, api: wandb.Api, entity: str
) -> None:
    fixture = json.loads((DATA / "mnist.json").read_text())
    fixture["entity"] = entity
    collection = fixture["projects"][0]["artifacts"][0]
    collection["tags"] = ["vision"]
    collection["versions"][0]["tags"] = ["reviewed"]
    load(backend.store, fixture)
    v0 = api.artifact(f"{entity}/mnist/mnist-model:v0")
    assert v0.tags == ["reviewed"]
    assert api.artifact_collection("model", f"{entity}/mnist/mnist-model").tags == ["vision"]

    v0.tags = ["prod ready"]  # UpdateArtifact: tagsToAdd ["prod ready"], tagsToDelete ["reviewed"]
    v0.save()
    assert api.artifact(f"{entity}/mnist/mnist-model:v0").tags == ["prod ready"]
    coll = api.artifact_collection("model", f"{entity}/mnist/mnist-model")
    coll.tags = ["vision", "mnist"]  # UpdateArtifactSequence, then AddArtifactCollectionTags
    coll.description = "the digit classifier"
    coll.save()
    again = api.artifact_collection("model", f"{entity}/mnist/mnist-model")
    assert sorted(again.tags) == ["mnist", "vision"] and again.description == "the digit classifier"
    again.tags = ["mnist"]  # DeleteArtifactCollectionTags
    again.save()
    assert api.artifact_collection("model", f"{entity}/mnist/mnist-model").tags == ["mnist"]
    # the provider's own reads see what the SDK wrote
    (member,) = [m for m in backend.store.query("SELECT tags FROM artifact") if "prod ready" in m["tags"]]
    assert json.loads(member["tags"]) == ["prod ready"]


def test_a_bad_tag_is_refused_and_changes_nothing(backend: LocalWandb, api: wandb.Api, entity: str) -> None:
    """The SDK checks tag names itself; a client that does not gets a GraphQL error naming the tag."""
    from wandb.sdk.artifacts._generated.operations import UPDATE_ARTIFACT_GQL

    fixture = json.loads((DATA / "mnist.json").read_text())
    fixture["entity"] = entity
    load(backend.store, fixture)
    v0 = api.artifact(f"{entity}/mnist/mnist-model:v0")
    tags = [{"tagName": "fine"}, {"tagName": "not/ok"}]
    variables = {"input": {"artifactID": v0.id, "tagsToAdd": tags}}
    answer = httpx.post(f"{backend.url}/graphql", json={"query": UPDATE_ARTIFACT_GQL, "variables": variables},
                        auth=("api", API_KEY), timeout=30).json()  # fmt: skip
    assert "tag 'not/ok' is not a valid tag" in answer["errors"][0]["message"]
    assert api.artifact(f"{entity}/mnist/mnist-model:v0").tags == []  # nothing of it was applied


def test_registry_versions_listed_by_the_sdk(api: wandb.Api, recorded: dict[str, Any], entity: str) -> None:
    """What a "linked" watch reads, as the SDK reads it: the organization's registry links."""
    versions = list(api.registries(organization=entity).versions())
    assert sorted((v.collection.name, v.version) for v in versions) == [("mnist-prod", "v0"), ("mnist-prod", "v1")]
    assert {v.source_name for v in versions} == {"mnist-model:v0", "mnist-model:v1"}
