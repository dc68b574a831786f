"""Our ``to_wandb_input`` against the JSON the real W&B SDK (0.31) builds for the same automation."""

from __future__ import annotations

import json
from typing import Any

import pytest
import wandb.automations as sdk
from wandb.automations._inputs import prepare_to_create
from wandb.automations.scopes import _ArtifactSequenceScope

from airflow_provider_wbauto import automations as ours
from airflow_provider_wbauto.automations.events import EVENTS_BY_NAME

PROJECT_ID, COLLECTION_ID, ENTITY_ID = "UHJvamVjdDox", "QXJ0aWZhY3RTZXF1ZW5jZTox", "RW50aXR5OjE="
SDK_PROJECT = sdk.ProjectScope(id=PROJECT_ID, name="mnist")
SDK_COLLECTION = _ArtifactSequenceScope(id=COLLECTION_ID, name="model")
SDK_TEAM = sdk.TeamScope(id=ENTITY_ID, name="acme")
SDK_ORG = sdk.OrgScope(id=ENTITY_ID, name="acme")

CASES: list[tuple[str, Any, Any, str]] = [
    (
        "threshold with run filter",
        sdk.OnRunMetric(
            scope=SDK_PROJECT, filter=sdk.RunEvent.metric("loss").mean(5).gt(0.5) & sdk.RunEvent.name.contains("abc")
        ),
        ours.OnRunMetric(
            scope="acme/mnist", filter=ours.RunEvent.metric("loss").mean(5).gt(0.5) & ours.RunEvent.name.contains("abc")
        ),
        PROJECT_ID,
    ),
    (
        "latest value, <=",
        sdk.OnRunMetric(scope=SDK_PROJECT, filter=sdk.RunEvent.metric("acc") <= 0.1),
        ours.OnRunMetric(scope="acme/mnist", filter=ours.MetricThresholdFilter(name="acc", cmp="$lte", threshold=0.1)),
        PROJECT_ID,
    ),
    (
        "relative change",
        sdk.OnRunMetric(scope=SDK_PROJECT, filter=sdk.RunEvent.metric("acc").max(3).changes_by(frac=0.1)),
        ours.OnRunMetric(scope="acme/mnist", filter=ours.RunEvent.metric("acc").max(3).changes_by(frac=0.1)),
        PROJECT_ID,
    ),
    (
        "absolute decrease with prior window",
        sdk.OnRunMetric(
            scope=SDK_PROJECT,
            filter=sdk.MetricChangeFilter(
                name="loss",
                agg="AVERAGE",
                window=4,
                prior_window=8,
                change_type="ABSOLUTE",
                change_dir="DECREASE",
                threshold=2,
            ),
        ),
        ours.OnRunMetric(
            scope="acme/mnist",
            filter=ours.MetricChangeFilter(
                name="loss",
                agg="mean",
                window=4,
                prior_window=8,
                change_type="absolute",
                change_dir="decrease",
                threshold=2,
            ),
        ),
        PROJECT_ID,
    ),
    (
        "z-score",
        sdk.OnRunMetric(scope=SDK_PROJECT, filter=abs(sdk.RunEvent.metric("acc").zscore(10)) > 2),
        ours.OnRunMetric(scope="acme/mnist", filter=abs(ours.RunEvent.metric("acc").zscore(10)) > 2),
        PROJECT_ID,
    ),
    (
        "run state",
        sdk.OnRunState(
            scope=SDK_PROJECT,
            filter=sdk.RunEvent.state.in_(["FAILED", "FINISHED"]) & sdk.RunEvent.name.matches_regex("^x"),
        ),
        ours.OnRunState(
            scope="acme/mnist",
            filter=ours.RunEvent.state.in_(["CRASHED", "FINISHED"]) & ours.RunEvent.name.matches_regex("^x"),
        ),
        PROJECT_ID,
    ),
    (
        "alias regex",
        sdk.OnAddArtifactAlias(
            scope=SDK_COLLECTION,
            filter=sdk.ArtifactEvent.alias.matches_regex("^prod-.*") | sdk.ArtifactEvent.alias.eq("x"),
        ),
        ours.OnAddArtifactAlias(
            scope="acme/mnist/model",
            filter=ours.ArtifactEvent.alias.matches_regex("^prod-.*") | ours.ArtifactEvent.alias.eq("x"),
        ),
        COLLECTION_ID,
    ),
    (
        "created, no filter",
        sdk.OnCreateArtifact(scope=SDK_COLLECTION),
        ours.OnCreateArtifact(scope="acme/mnist/model"),
        COLLECTION_ID,
    ),
    (
        "linked, alias eq",
        sdk.OnLinkArtifact(scope=SDK_COLLECTION, filter=sdk.ArtifactEvent.alias.eq("prod")),
        ours.OnLinkArtifact(scope="acme/mnist/model", filter=ours.ArtifactEvent.alias.eq("prod")),
        COLLECTION_ID,
    ),
    (
        "unlinked, no filter",
        sdk.OnUnlinkArtifact(scope=SDK_COLLECTION),
        ours.OnUnlinkArtifact(scope="acme/mnist/model"),
        COLLECTION_ID,
    ),
    (
        "unlinked, alias regex",
        sdk.OnUnlinkArtifact(scope=SDK_COLLECTION, filter=sdk.ArtifactEvent.alias.matches_regex("^prod")),
        ours.OnUnlinkArtifact(scope="acme/mnist/model", filter=ours.ArtifactEvent.alias.matches_regex("^prod")),
        COLLECTION_ID,
    ),
    *(
        (
            f"{name}, tag filter",
            getattr(sdk, name)(scope=SDK_COLLECTION, filter=sdk.ArtifactEvent.tag.eq("prod")),
            getattr(ours, name)(scope="acme/mnist/model", filter=ours.ArtifactEvent.tag.eq("prod")),
            COLLECTION_ID,
        )
        for name in ("OnAddArtifactTag", "OnRemoveArtifactTag", "OnAddCollectionTag", "OnRemoveCollectionTag")
    ),
    (
        "collection tag added, any tag",
        sdk.OnAddCollectionTag(scope=SDK_COLLECTION),
        ours.OnAddCollectionTag(scope="acme/mnist/model"),
        COLLECTION_ID,
    ),
    (
        "alias added in an organization",
        sdk.OnAddArtifactAlias(scope=SDK_ORG, filter=sdk.ArtifactEvent.alias.eq("production")),
        ours.OnAddArtifactAlias(scope=ours.OrgScope("acme"), filter=ours.ArtifactEvent.alias.eq("production")),
        ENTITY_ID,
    ),
    (
        "version linked in a team",
        sdk.OnLinkArtifact(scope=SDK_TEAM),
        ours.OnLinkArtifact(scope="team:acme"),
        ENTITY_ID,
    ),
    (
        "collection tag removed in a team",
        sdk.OnRemoveCollectionTag(scope=SDK_TEAM, filter=sdk.ArtifactEvent.tag.eq("frozen")),
        ours.OnRemoveCollectionTag(scope=ours.TeamScope("acme"), filter=ours.ArtifactEvent.tag.eq("frozen")),
        ENTITY_ID,
    ),
    (
        "run failed in a team (the SDK takes it; W&B's app does not offer it)",
        sdk.OnRunState(scope=SDK_TEAM, filter=sdk.RunEvent.state.eq("FAILED")),
        ours.OnRunState(scope="team:acme", filter=ours.RunEvent.state == "FAILED"),
        ENTITY_ID,
    ),
]


def _comparable(wire: dict[str, Any]) -> dict[str, Any]:
    out = dict(wire)
    out["eventFilter"] = json.loads(out["eventFilter"])
    if isinstance(out["eventFilter"].get("run_filter"), str):
        out["eventFilter"]["run_filter"] = json.loads(out["eventFilter"]["run_filter"])
    return out


@pytest.mark.parametrize(("label", "sdk_event", "our_event", "scope_id"), CASES, ids=[c[0] for c in CASES])
def test_event_wire_matches_the_sdk(label: str, sdk_event: Any, our_event: Any, scope_id: str) -> None:
    theirs = prepare_to_create(sdk_event >> sdk.DoNothing(), name="auto", description="d").model_dump()
    mine = (our_event >> ours.DoNothing()).model_copy(update={"name": "auto", "description": "d"})
    assert _comparable(mine.to_wandb_input(scope_id=scope_id)) == _comparable(theirs)
    assert mine.to_wandb_input(scope_id=scope_id)["eventFilter"] == theirs["eventFilter"]  # byte for byte
    # and back: the parsed automation is the one we started from
    again = ours.NewAutomation.from_wandb_input(theirs, scope=str(our_event.scope))
    assert again.event == our_event


SDK_SCOPES = {
    "project": SDK_PROJECT,
    "registry": sdk.RegistryScope(id=PROJECT_ID, full_name="wandb-registry-model"),
    "collection": SDK_COLLECTION,
    "team": SDK_TEAM,
    "org": SDK_ORG,
}
OUR_SCOPES = {
    "project": "acme/mnist",
    "registry": "acme/wandb-registry-model",
    "collection": "acme/mnist/model",
    "team": "team:acme",
    "org": "org:acme",
}
FILTERS = {
    "OnRunMetric": (sdk.RunEvent.metric("loss").gt(1), ours.RunEvent.metric("loss").gt(1)),
    "OnRunState": (sdk.RunEvent.state.eq("FAILED"), ours.RunEvent.state == "FAILED"),
}
# Where we part from the SDK's validation, and why: an organization's own projects are its registries,
# which hold no runs (W&B's app offers no run events at organization scope either).
OURS_REFUSE = {("OnRunMetric", "org"), ("OnRunState", "org")}


@pytest.mark.parametrize("kind", list(OUR_SCOPES))
@pytest.mark.parametrize("name", sorted(EVENTS_BY_NAME))
def test_each_event_takes_the_scopes_the_sdk_takes(name: str, kind: str) -> None:
    """W&B's scope checks, event by event and scope kind by kind, with the one difference named."""
    sdk_filter, our_filter = FILTERS.get(name, (None, None))
    their_kwargs = {"scope": SDK_SCOPES[kind]} | ({"filter": sdk_filter} if sdk_filter is not None else {})
    try:
        getattr(sdk, name)(**their_kwargs)
        sdk_takes = True
    except ValueError:
        sdk_takes = False
    our_kwargs = {"scope": OUR_SCOPES[kind]} | ({"filter": our_filter} if our_filter is not None else {})
    if sdk_takes and (name, kind) not in OURS_REFUSE:
        assert str(getattr(ours, name)(**our_kwargs).scope) == OUR_SCOPES[kind]
    else:
        with pytest.raises(ValueError, match=rf"{name} takes .*; got the {kind} scope"):
            getattr(ours, name)(**our_kwargs)


def test_action_wire_matches_the_sdk() -> None:
    slack = sdk.SlackIntegration(id="slack_alerts", teamName="t", channelName="c")
    hook = sdk.WebhookIntegration(id="deploy_hook", name="deploy", urlEndpoint="https://example.invalid")
    event = sdk.OnCreateArtifact(scope=SDK_COLLECTION)
    for their_action, my_action in [
        (
            sdk.SendNotification.from_integration(slack, title="T", text="body", level="warn"),
            ours.SendNotification.from_integration(
                ours.SlackIntegration(conn_id="slack_alerts"), title="T", text="body", level="warn"
            ),
        ),
        (
            sdk.SendWebhook.from_integration(hook, payload={"v": "${artifact_version_string}"}),
            ours.SendWebhook.from_integration(
                ours.WebhookIntegration(conn_id="deploy_hook"), payload='{"v": "${artifact_version_string}"}'
            ),
        ),
    ]:
        theirs = prepare_to_create(event >> their_action, name="n").model_dump()
        mine = (ours.OnCreateArtifact(scope="a/b/c") >> my_action).to_wandb_input()
        assert mine["triggeredActionType"] == theirs["triggeredActionType"]
        their_config = json.loads(json.dumps(theirs["triggeredActionConfig"]))
        assert mine["triggeredActionConfig"] == their_config
        parsed = ours.NewAutomation.from_wandb_input(theirs, scope="a/b/c")
        assert parsed.action == my_action


def test_our_extensions_refuse_the_wire_with_a_reason() -> None:
    summed = ours.OnRunMetric(scope="a/b", filter=ours.RunEvent.metric("x").sum(3) > 1) >> ours.DoNothing()
    with pytest.raises(ValueError, match="agg 'sum' has no W&B equivalent"):
        summed.to_wandb_input()
    plateau = ours.OnRunMetric(scope="a/b", filter=ours.MetricChangeFilter(name="x", threshold=0.01, cmp="<"))
    with pytest.raises(ValueError, match="cmp '<' has no W&B equivalent"):
        (plateau >> ours.DoNothing()).to_wandb_input()
