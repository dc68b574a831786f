"""Local Mongo-style matching, with W&B's operators and Mongo's rules for arrays and types."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wbauto.automations import ArtifactEvent, RunEvent
from airflow_provider_wbauto.evaluation.mongo import matches

RUN = {
    "name": "r1",
    "display_name": "sweep-lr-7",
    "state": "failed",
    "tags": ["sweep", "gpu"],
    "config": {"lr": {"value": 0.1}, "model": {"value": {"layers": 4}}},
    "summary_metrics": {"acc": 0.93, "loss": None},
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (RunEvent.name.matches_regex("^sweep-").to_dict(), True),
        (RunEvent.name.contains("lr-7").to_dict(), True),
        (RunEvent.name.contains("lr-8").to_dict(), False),
        ({"tags": "gpu"}, True),
        ({"tags": {"$in": ["cpu", "tpu"]}}, False),
        ({"tags": {"$nin": ["cpu"]}}, True),
        ({"tags": {"$contains": "sweep"}}, True),
        ((RunEvent.config("lr") > 0.05).to_dict(), True),
        ({"config.model.layers": {"$gte": 4}}, True),
        ({"config.lr": {"$gt": "0.05"}}, False),  # a number never compares with a string
        ((RunEvent.summary("acc") >= 0.95).to_dict(), False),
        ({"summary_metrics.loss": {"$exists": True}}, False),
        ({"summary_metrics.missing": {"$exists": False}}, True),
        ({"summary_metrics.missing": {"$ne": 1}}, True),
        ({"$or": [{"state": "finished"}, {"state": "failed"}]}, True),
        ({"$nor": [{"state": "failed"}]}, False),
        ((~RunEvent.name.matches_regex("^sweep-")).to_dict(), False),
        ((RunEvent.name.contains("sweep") & (RunEvent.tags == "gpu")).to_dict(), True),
        ((RunEvent.name.contains("nope") | (RunEvent.tags == "gpu")).to_dict(), True),
        ({"state": {"$in": ["failed", "crashed"]}, "name": "r1"}, True),
        ({}, True),
    ],
)
def test_run_filters(expr: dict[str, Any], expected: bool) -> None:
    assert matches(expr, RUN) is expected


def test_alias_filters() -> None:
    prod = (ArtifactEvent.alias.matches_regex("^prod") | ArtifactEvent.alias.eq("live")).to_dict()
    assert matches(prod, {"alias": "production"}) and matches(prod, {"alias": "live"})
    assert not matches(prod, {"alias": "staging"})
    assert matches((ArtifactEvent.metadata("acc") > 0.9).to_dict(), {"alias": "x", "metadata": {"acc": 0.95}})
