"""The Automations page says each filter in the words of ``str(event)``: windows included, artifact
filters never as raw JSON, and a hostile run name or regex escaped as text in the page."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wbauto.automations import (
    ArtifactEvent,
    Automation,
    DoNothing,
    OnAddArtifactAlias,
    OnCreateArtifact,
    OnRunMetric,
    OnRunState,
    RunEvent,
)
from airflow_provider_wbauto.ui.pages import automations_page, history_page
from airflow_provider_wbauto.ui.records import AutomationRecord, describe_filter

HOSTILE = "<b>sweep</b> & co"


@pytest.mark.parametrize(
    ("event", "said"),
    [
        (OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("val_loss").mean(3) > 0.5), "mean(val_loss, 3) > 0.5"),
        (
            OnRunMetric(scope="acme/mnist", filter=RunEvent.metric("loss").mean(5).decreases_by(frac=0.1)),
            "mean(loss, 5) decreases by 10% vs the 5 before",
        ),
        (
            OnRunMetric(scope="acme/mnist", filter=abs(RunEvent.metric("loss").zscore(20)) > 3),
            "abs(zscore(loss, 20)) > 3",
        ),
        (
            OnRunState(scope="acme/p", filter=(RunEvent.state == "FAILED") & RunEvent.name.matches_regex("^sweep-")),
            "state in [FAILED] and display_name matches ^sweep-",
        ),
        (
            OnAddArtifactAlias(
                scope="acme/p",
                filter=ArtifactEvent.alias.matches_regex("^prod") & (ArtifactEvent.metadata("ok") == True),  # noqa: E712
            ),
            "alias matches ^prod and metadata.ok == true",
        ),
        (OnCreateArtifact(scope="acme/p/model"), "any"),
    ],
)
def test_the_listing_says_the_filter_as_str_of_the_event_does(event: Any, said: str) -> None:
    record = AutomationRecord("a", Automation(name="a", event=event, action=DoNothing()), paused=False)
    assert describe_filter(event.filter) == record.filter == record.as_json()["filter"] == said
    assert said == "any" or str(event).endswith(f": {said}")
    assert "{" not in record.filter  # never raw JSON


def test_a_hostile_name_is_text_in_both_pages() -> None:
    event = OnRunState(scope="acme/p", filter=(RunEvent.state == "FAILED") & (RunEvent.name == HOSTILE))
    record = AutomationRecord("a", Automation(name="a", event=event, action=DoNothing()), paused=False)
    assert record.filter == 'state in [FAILED] and display_name == "<b>sweep</b> & co"'
    for page in (
        automations_page(automations=[record], projects=[], project="", base="/wbauto", wandb=None),
        history_page([], a=record, base="/wbauto", total=0, offset=0, limit=25),
    ):
        assert "state in [FAILED] and display_name == &#34;&lt;b&gt;sweep&lt;/b&gt; &amp; co&#34;" in page
        assert "<b>sweep</b>" not in page
