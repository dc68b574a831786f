"""Invalid automations fail at construction (DAG-parse time) with a message naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_wbauto.automations import (
    ArtifactEvent,
    DoNothing,
    MetricChangeFilter,
    MetricThresholdFilter,
    MetricZScoreFilter,
    NewAutomation,
    OnAddArtifactAlias,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRunMetric,
    OnRunState,
    RunEvent,
    Scope,
    SendNotification,
    SendWebhook,
    SlackIntegration,
    StateFilter,
    WebhookIntegration,
)

T = MetricThresholdFilter
C = MetricChangeFilter
Z = MetricZScoreFilter
HOOK = WebhookIntegration(conn_id="hook")
OK_METRIC = T(name="acc", cmp=">", threshold=0.9)

BAD: list[tuple[str, Callable[[], Any], str]] = [
    ("window 0", lambda: T(name="a", cmp=">", threshold=1, window=0, agg="mean"), "window"),
    ("negative window", lambda: T(name="a", cmp=">", threshold=1, window=-3, agg="mean"), "window"),
    ("float window", lambda: T(name="a", cmp=">", threshold=1, window=2.5, agg="mean"), "window"),
    ("string window", lambda: T(name="a", cmp=">", threshold=1, window="5", agg="mean"), "window"),
    ("agg None with window 5", lambda: T(name="a", cmp=">", threshold=1, window=5), "window must be 1 when agg"),
    ("cmp =>", lambda: T(name="a", cmp="=>", threshold=1), "cmp must be one of"),
    ("cmp $gtx", lambda: T(name="a", cmp="$gtx", threshold=1), "cmp must be one of"),
    ("cmp missing", lambda: T(name="a", threshold=1), "cmp"),
    ("threshold string", lambda: T(name="a", cmp=">", threshold="0.5"), "threshold must be a number"),
    ("threshold bool", lambda: T(name="a", cmp=">", threshold=True), "threshold must be a number"),
    ("threshold NaN", lambda: T(name="a", cmp=">", threshold=float("nan")), "threshold must be finite"),
    ("threshold inf", lambda: T(name="a", cmp=">", threshold=float("inf")), "threshold must be finite"),
    ("threshold None", lambda: T(name="a", cmp=">", threshold=None), "threshold"),
    ("unknown agg", lambda: T(name="a", cmp=">", threshold=1, window=3, agg="median"), "agg must be one of"),
    ("agg avgg", lambda: T(name="a", cmp=">", threshold=1, window=3, agg="avgg"), "agg must be one of"),
    ("empty metric name", lambda: T(name="", cmp=">", threshold=1), "name"),
    ("metric name not str", lambda: T(name=5, cmp=">", threshold=1), "name"),
    ("unknown field", lambda: T(name="a", cmp=">", threshold=1, windw=3), "windw"),
    ("change amount 0", lambda: C(name="a", threshold=0), "threshold must be greater than 0"),
    ("change amount negative", lambda: C(name="a", threshold=-0.1), "threshold must be greater than 0"),
    ("change type unknown", lambda: C(name="a", threshold=1, change_type="percent"), "change_type must be one of"),
    ("change dir unknown", lambda: C(name="a", threshold=1, change_dir="up"), "change_dir must be one of"),
    ("change cmp ==", lambda: C(name="a", threshold=1, cmp="=="), "cmp must be one of"),
    ("change agg None prior 3", lambda: C(name="a", threshold=1, prior_window=3), "prior_window must be 1"),
    ("change prior 0", lambda: C(name="a", threshold=1, window=2, prior_window=0, agg="max"), "prior_window"),
    ("changes_by both", lambda: RunEvent.metric("a").changes_by(diff=1, frac=0.1), "exactly one of `frac` or `diff`"),
    ("changes_by none", lambda: RunEvent.metric("a").increases_by(), "exactly one of `frac` or `diff`"),
    ("zscore threshold 0", lambda: Z(name="a", threshold=0), "threshold must be greater than 0"),
    ("zscore window 1", lambda: Z(name="a", window=1), "window"),
    ("zscore < positive", lambda: RunEvent.metric("a").zscore(10) < 2, "Negative z-score threshold required"),
    ("abs zscore <", lambda: abs(RunEvent.metric("a").zscore(10)) < 2, "abs(zscore) can only be compared"),
    ("zscore dir", lambda: Z(name="a", change_dir="sideways"), "change_dir must be one of"),
    (
        "collection scope for OnRunMetric",
        lambda: OnRunMetric(scope="e/p/coll", filter=OK_METRIC),
        "OnRunMetric takes a project scope",
    ),
    ("bad scope string", lambda: OnRunMetric(scope="just-a-name", filter=OK_METRIC), "scope 'just-a-name' must be"),
    ("scope with spaces", lambda: OnRunMetric(scope="e/my project", filter=OK_METRIC), "scope"),
    ("scope too deep", lambda: OnCreateArtifact(scope="e/p/c/d"), "scope"),
    ("unknown entity scope", lambda: OnLinkArtifact(scope="user:alice"), "'team:<entity>' or 'org:<organization>'"),
    ("team scope with a path", lambda: OnLinkArtifact(scope="team:acme/mnist"), "scope 'team:acme/mnist' must be"),
    ("team scope without a name", lambda: OnLinkArtifact(scope="team:"), "scope 'team:' must be"),
    ("project and entity type", lambda: Scope(entity="e", project="p", entity_type="team"), "not both or neither"),
    ("collection without project", lambda: Scope(entity="e", collection="c", entity_type="team"), "needs its project"),
    (
        "run events at organization scope",
        lambda: OnRunState(scope="org:acme", filter=RunEvent.state == "FAILED"),
        "OnRunState takes a project scope 'entity/project' or a team scope 'team:<entity>'; got the org scope",
    ),
    (
        "run events at registry scope",
        lambda: OnRunMetric(scope="e/wandb-registry-model", filter=OK_METRIC),
        "got the registry scope 'e/wandb-registry-model'",
    ),
    (
        "project scope for OnCreateArtifact",
        lambda: OnCreateArtifact(scope="e/p"),
        "OnCreateArtifact takes an artifact collection scope",
    ),
    (
        "collection scope for OnRunState",
        lambda: OnRunState(scope="e/p/c", filter=RunEvent.state == "FAILED"),
        "OnRunState takes a project scope",
    ),
    ("unknown run state", lambda: RunEvent.state.in_(["EXPLODED"]), "state must be one of"),
    ("lowercase coarse misspelt", lambda: StateFilter(states=["fail"]), "state must be one of"),
    ("empty state list", lambda: StateFilter(states=[]), "states"),
    ("no metric filter", lambda: OnRunMetric(scope="e/p"), "filter"),
    (
        "unknown mongo operator",
        lambda: OnAddArtifactAlias(scope="e/p/c", filter={"alias": {"$like": "x"}}),
        "unknown operator '$like'",
    ),
    (
        "bad regex",
        lambda: OnLinkArtifact(scope="e/wandb-registry-model", filter=ArtifactEvent.alias.matches_regex("(")),
        "not a regular expression W&B runs (RE2 syntax)",
    ),
    (
        "$in not a list",
        lambda: OnAddArtifactAlias(scope="e/p/c", filter={"alias": {"$in": "prod"}}),
        "$in must be a list",
    ),
    ("run filter not an object", lambda: OK_METRIC & {"$and": "x"}, "$and must be a list"),
    ("webhook payload a list", lambda: SendWebhook(integration=HOOK, payload=[1, 2]), "payload must be a JSON object"),
    ("webhook payload bad json", lambda: SendWebhook(integration=HOOK, payload="{nope"), "payload is not valid JSON"),
    ("webhook without integration", lambda: SendWebhook(payload={}), "integration"),
    ("webhook integration both", lambda: WebhookIntegration(conn_id="a", url="https://x"), "exactly one of conn_id"),
    ("webhook integration none", lambda: WebhookIntegration(), "exactly one of conn_id"),
    ("slack both", lambda: SlackIntegration(conn_id="a", webhook_url="https://x"), "conn_id or webhook_url"),
    ("severity unknown", lambda: SendNotification(title="t", severity="CRITICAL"), "severity must be one of"),
    ("level unknown", lambda: SendNotification(title="t", level="debug"), "severity must be one of"),
    ("then with a non-action", lambda: OnCreateArtifact(scope="e/p/c").then("send it"), "Expected a valid action"),
    ("name too long", lambda: (OnCreateArtifact(scope="e/p/c") >> DoNothing()).save(name="x" * 256), "name"),
    ("name missing on save", lambda: (OnCreateArtifact(scope="e/p/c") >> DoNothing()).save(), "name"),
    (
        "unknown wire event",
        lambda: NewAutomation.from_wandb_input({"triggeringEventType": "RUN_EXPLODED"}, scope="e/p"),
        "triggeringEventType must be one of",
    ),
    (
        "unknown wire action",
        lambda: NewAutomation.from_wandb_input(
            {"triggeringEventType": "CREATE_ARTIFACT", "triggeredActionConfig": {"queueJobActionInput": {}}},
            scope="e/p/c",
        ),
        "triggeredActionConfig must hold exactly one of",
    ),
]


def test_the_table_is_large_enough() -> None:
    assert len(BAD) >= 40


@pytest.mark.hostile
@pytest.mark.parametrize(("label", "build", "message"), BAD, ids=[b[0] for b in BAD])
def test_invalid_spec_names_the_field(label: str, build: Callable[[], Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as err:
        build()
    assert message in str(err.value), str(err.value)


def test_spellings_normalise_to_one_form() -> None:
    sdk = T(name="a", cmp_op="$gte", threshold=1, window_size=3, agg_op="AVERAGE")
    seed = T(name="a", cmp=">=", threshold=1, window=3, agg="mean")
    assert sdk == seed == (RunEvent.metric("a").avg(3) >= 1)
    assert C(
        name="a", change_amount=0.1, change_type="RELATIVE", change_dir="INCREASE", current_window_size=2, agg_op="MAX"
    ) == RunEvent.metric("a").max(2).increases_by(frac=0.1)
    assert C(name="a", threshold=1, window=4, agg="min").prior_window == 4
    note = SendNotification(text="hi", level="warn")
    assert (note.message, note.severity) == ("hi", "WARN")
    assert StateFilter(states=["CRASHED", "failed", "FAILED"]).states == ["FAILED", "failed"]
    assert StateFilter(states="FAILED").matches("crashed") and not StateFilter(states=["FINISHED"]).matches("failed")
