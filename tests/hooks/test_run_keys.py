"""What a run filter reads of a run's config and summary: the listing asks for those keys only."""

from __future__ import annotations

from airflow_provider_wbauto.automations import RunEvent
from airflow_provider_wbauto.hooks.run_keys import NO_KEYS, RunKeys


def test_the_keys_of_a_filter_at_any_depth_and_under_any_operator() -> None:
    expr = ~((RunEvent.config("model.layers") > 2) | (RunEvent.summary("acc") > 0.5)) & (RunEvent.config("lr") < 1)
    assert RunKeys.of(expr.to_dict()) == RunKeys(frozenset({"model", "lr"}), frozenset({"acc"}))
    assert RunKeys.of({"display_name": "x", "tags": {"$in": ["a"]}}) == NO_KEYS and NO_KEYS.none
    assert RunKeys.of({"config": {"$exists": True}}) == RunKeys(None, frozenset())  # the whole config


def test_a_listing_covers_the_filters_whose_keys_it_holds() -> None:
    lr, acc = RunKeys(frozenset({"lr"})), RunKeys(summary=frozenset({"acc"}))
    both = lr | acc
    assert both.covers(lr) and both.covers(acc) and both.covers(NO_KEYS)
    assert not lr.covers(acc) and not NO_KEYS.covers(lr)
    whole = RunKeys(None, None)
    assert whole.covers(both) and not both.covers(whole) and (whole | lr) == whole
