"""Events, filters and automations in W&B's words: ``str()`` names the event, its scope as written and
its filter (windows, change and z-score filters, run filters, artifact filters) as text, never JSON."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wbauto.automations import (
    ArtifactEvent,
    Automation,
    DoNothing,
    NewAutomation,
    OnAddArtifactAlias,
    OnAddArtifactTag,
    OnAddCollectionTag,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRemoveArtifactTag,
    OnRunMetric,
    OnRunState,
    OnUnlinkArtifact,
    RunEvent,
    SendNotification,
    SendWebhook,
    SlackIntegration,
    WebhookIntegration,
)
from airflow_provider_wbauto.automations.events import filter_words
from airflow_provider_wbauto.automations.metric_filters import MetricChangeFilter
from airflow_provider_wbauto.automations.words import describe_mongo

HOSTILE = '<script>alert("x")</script> and 1'

EVENTS: list[tuple[Any, str]] = [
    (
        OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("val_loss").mean(3) > 0.5),
        "OnRunMetric at acme/mnist: mean(val_loss, 3) > 0.5",
    ),
    (OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("loss") < 0.5), "OnRunMetric at acme/mnist: loss < 0.5"),
    (
        OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("acc").max(10) >= 0.9),
        "OnRunMetric at acme/mnist: max(acc, 10) >= 0.9",
    ),
    (
        OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("loss").mean(5).decreases_by(frac=0.1)),
        "OnRunMetric at acme/mnist: mean(loss, 5) decreases by 10% vs the 5 before",
    ),
    (
        OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("loss").min(3).increases_by(diff=0.25, prior_window=20)),
        "OnRunMetric at acme/mnist: min(loss, 3) increases by 0.25 vs the 20 before",
    ),
    (
        OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("loss").changes_by(frac=0.015)),
        "OnRunMetric at acme/mnist: loss changes by 1.5% vs the value before",
    ),
    (
        OnRunMetric(
            scope="acme/mnist",
            filter=MetricChangeFilter(name="loss", agg="mean", window=4, threshold=0.01, change_type="rel", cmp="<"),
        ),
        "OnRunMetric at acme/mnist: mean(loss, 4) changes by less than 1% vs the 4 before",
    ),
    (
        OnRunMetric(scope="acme/mnist", filter=abs(RunEvent.metric("loss").zscore(20)) > 3),
        "OnRunMetric at acme/mnist: abs(zscore(loss, 20)) > 3",
    ),
    (
        OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("loss").zscore() > 2.5),
        "OnRunMetric at acme/mnist: zscore(loss, 30) > +2.5",
    ),
    (
        OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("acc").zscore(5) < -2),
        "OnRunMetric at acme/mnist: zscore(acc, 5) < -2",
    ),
    (
        OnRunMetric(
            scope="team:acme",
            filter=(RunEvent.metric("val_loss").mean(3) > 0.5) & (RunEvent.config("lr") < 0.1),
        ),
        "OnRunMetric at team:acme: mean(val_loss, 3) > 0.5 and config.lr < 0.1",
    ),
    (
        OnRunState(
            scope="acme/p", filter=RunEvent.state.in_(["FAILED", "CRASHED"]) & RunEvent.name.matches_regex("^sweep-")
        ),
        "OnRunState at acme/p: state in [FAILED] and display_name matches ^sweep-",
    ),
    (
        OnRunState(scope="acme/p", filter=RunEvent.state.in_(["crashed", "failed", "FINISHED"])),
        "OnRunState at acme/p: state in [FINISHED, crashed, failed]",
    ),
    (  # nested and negated: an or inside an and is grouped; ~ of an or is a nor
        OnRunState(
            scope="acme/p",
            filter=(RunEvent.state == "FAILED")
            & (RunEvent.name.matches_regex("^sweep-") | ~RunEvent.tags.contains("smoke test"))
            & ~(RunEvent.group.eq("a") | RunEvent.job_type.in_(["eval", "test"]))
            & RunEvent.summary("acc").exists(),
        ),
        "OnRunState at acme/p: state in [FAILED] and (display_name matches ^sweep- or not (tags contains "
        '"smoke test")) and not (group == a or job_type in [eval, test]) and summary_metrics.acc exists',
    ),
    (
        OnAddArtifactAlias(scope="acme/p", filter=ArtifactEvent.alias.matches_regex("^prod")),
        "OnAddArtifactAlias at acme/p: alias matches ^prod",
    ),
    (
        OnLinkArtifact(scope="org:acme", filter=ArtifactEvent.metadata("ok") == True),  # noqa: E712
        "OnLinkArtifact at org:acme: metadata.ok == true",
    ),
    (OnAddArtifactTag(scope="team:acme", filter=ArtifactEvent.tag == "x"), "OnAddArtifactTag at team:acme: tag == x"),
    (
        OnRemoveArtifactTag(scope="acme/p", filter=ArtifactEvent.tag.not_in(["a", "b c"])),
        'OnRemoveArtifactTag at acme/p: tag not in [a, "b c"]',
    ),
    (
        OnAddCollectionTag(
            scope="acme/wandb-registry-model",
            filter={"$or": [{"tag": "prod"}, {"$and": [{"tag": {"$ne": "dev"}}, {"metadata.n": {"$gte": 3}}]}]},
        ),
        "OnAddCollectionTag at acme/wandb-registry-model: tag == prod or (tag != dev and metadata.n >= 3)",
    ),
    (OnCreateArtifact(scope="acme/p/model"), "OnCreateArtifact at acme/p/model"),
    (
        OnUnlinkArtifact(scope="acme/wandb-registry-model/mnist", filter={"metadata.version": "1.0"}),
        'OnUnlinkArtifact at acme/wandb-registry-model/mnist: metadata.version == "1.0"',
    ),
    (  # a hostile run name stays text: quoted, not markup, not JSON of the filter
        OnRunState(scope="acme/p", filter=(RunEvent.state == "FAILED") & (RunEvent.name == HOSTILE)),
        'OnRunState at acme/p: state in [FAILED] and display_name == "<script>alert(\\"x\\")</script> and 1"',
    ),
    (  # a regex stays as written, backslashes and all
        OnAddArtifactAlias(scope="acme/p", filter=ArtifactEvent.alias.matches_regex(r"^v\d+(-rc)?$")),
        r"OnAddArtifactAlias at acme/p: alias matches ^v\d+(-rc)?$",
    ),
]


@pytest.mark.parametrize(("event", "said"), EVENTS, ids=[s for _, s in EVENTS])
def test_an_event_says_its_name_scope_and_filter(event: Any, said: str) -> None:
    assert str(event) == said
    assert repr(event).startswith(f"{type(event).__name__}(scope=Scope(")  # repr stays pydantic's


def test_the_wire_form_read_back_says_the_same_words() -> None:
    for event, said in EVENTS:
        if "less than" in said:
            continue  # a plateau has no W&B equivalent
        again = NewAutomation.from_wandb_input((event >> DoNothing()).to_wandb_input(), scope=event.scope)
        assert str(again.event) == said


@pytest.mark.parametrize(
    ("expr", "said"),
    [
        ({}, "any"),
        ({"a": 1}, "a == 1"),
        ({"a": "1"}, 'a == "1"'),
        ({"a": "true"}, 'a == "true"'),
        ({"a": None}, "a == null"),
        ({"a": {"$eq": 1.5, "$ne": 2}}, "a == 1.5 and a != 2"),
        ({"a": {"$gt": 1}, "b": {"$lte": -1}}, "a > 1 and b <= -1"),
        ({"a": {"$gte": 0, "$lt": 10}}, "a >= 0 and a < 10"),
        ({"a": {"$in": [1, "x"]}}, "a in [1, x]"),
        ({"a": {"$nin": []}}, "a not in []"),
        ({"a": {"$exists": False}}, "a does not exist"),
        ({"a": {"$regex": "^x y"}}, 'a matches "^x y"'),
        ({"tags": {"$contains": "prod"}}, "tags contains prod"),
        ({"$not": {"a": 1}}, "not (a == 1)"),
        ({"$nor": [{"a": 1}, {"b": 2}]}, "not (a == 1 or b == 2)"),
        ({"$or": [{"a": 1}, {"$or": [{"b": 2}, {"c": 3}]}]}, "a == 1 or b == 2 or c == 3"),
        ({"$or": [{"a": 1, "b": 2}, {"c": 3}]}, "(a == 1 and b == 2) or c == 3"),
        ({"$and": [{"$or": [{"a": 1}, {"b": 2}]}, {"$not": {"$or": [{"c": 3}, {"d": 4}]}}]},
         "(a == 1 or b == 2) and not (c == 3 or d == 4)"),
        ({"$and": []}, "any"),
        ({"weird key": 1}, '"weird key" == 1'),
    ],
)  # fmt: skip
def test_a_mongo_filter_in_words(expr: dict[str, Any], said: str) -> None:
    assert describe_mongo(expr) == said
    assert filter_words(expr) == said


def test_filters_and_expressions_say_their_words_too() -> None:
    assert str(RunEvent.metric("val_loss").mean(3) > 0.5) == "mean(val_loss, 3) > 0.5"
    assert str(RunEvent.name.matches_regex("^sweep-") & (RunEvent.config("lr") < 0.1)) == (
        "display_name matches ^sweep- and config.lr < 0.1"
    )
    assert str(RunEvent.state.in_(["FAILED", "FINISHED"])) == "state in [FAILED, FINISHED]"
    assert repr(RunEvent.metric("val_loss").mean(3) > 0.5) == "MEAN(val_loss) > 0.5"  # unchanged


def test_an_automation_says_name_event_and_action_and_hides_a_literal_url() -> None:
    on_fail = OnRunState(scope="acme/p", filter=RunEvent.state == "FAILED")
    new = on_fail >> SendNotification(integration=SlackIntegration(conn_id="slack_ops"), title="Failed")
    assert str(new) == "OnRunState at acme/p: state in [FAILED] -> SendNotification to slack_ops"
    secret = "https://hooks.example/T0/secret-token"
    hook = OnCreateArtifact(scope="acme/p/model") >> SendWebhook(integration=WebhookIntegration(url=secret))
    named = Automation(name="new model", event=hook.event, action=hook.action)
    assert str(named) == "new model: OnCreateArtifact at acme/p/model -> SendWebhook to a literal URL"
    assert secret not in str(named)
    dry = Automation(name="loss", event=EVENTS[0][0], action=DoNothing())
    assert str(dry) == "loss: OnRunMetric at acme/mnist: mean(val_loss, 3) > 0.5 -> DoNothing"
    assert repr(dry).startswith("Automation(name='loss'")
