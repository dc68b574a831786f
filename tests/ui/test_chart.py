"""The picture of why a metric automation fired: the lines and windows each filter kind draws, the
fallback to the event's own window values when W&B's history cannot be read, and escaped labels."""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_provider_wbauto.automations import RunEvent
from airflow_provider_wbauto.ui.chart import picture, svg


def lines(drawn: str) -> list[float]:
    return [float(v) for v in re.findall(r'class="threshold" data-value="([^"]+)"', drawn)]


def test_a_threshold_is_one_line_and_its_window_the_steps_it_averaged() -> None:
    spec = RunEvent.metric("loss").mean(3) < 0.5
    history = [(s, v) for s, v in enumerate([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.2])]
    p = picture(spec, {"step": 6, "metric_name": "loss", "window_values": [0.4, 0.3, 0.2]}, history)
    assert p.lines == [("threshold < 0.5", 0.5)] and p.windows == [("window", 4, 6)]
    drawn = svg(p)
    assert lines(drawn) == [0.5] and "fired at step 6" in drawn and drawn.count("<circle") == 1


@pytest.mark.parametrize(
    ("spec", "levels"),
    [
        (RunEvent.metric("acc").mean(2).decreases_by(frac=0.1), [0.8, 0.72]),
        (RunEvent.metric("acc").mean(2).increases_by(diff=0.05), [0.8, 0.85]),
        (RunEvent.metric("acc").mean(2).changes_by(diff=0.05), [0.8, 0.85, 0.75]),
    ],
)
def test_a_change_draws_the_prior_level_and_the_levels_it_must_cross(spec: Any, levels: list[float]) -> None:
    event = {"step": 5, "metric_name": "acc", "window_values": [0.8, 0.8, 0.6, 0.6], "metric_detail": {"prior": 0.8}}
    p = picture(spec, event, [(s, 0.8 if s < 4 else 0.6) for s in range(8)])
    assert [v for _, v in p.lines] == pytest.approx(levels)
    assert p.windows == [("prior window", 2, 3), ("window", 4, 5)]


def test_a_zscore_draws_its_band() -> None:
    spec = RunEvent.metric("loss").zscore(window=4) > 2
    event = {"step": 4, "metric_name": "loss", "window_values": [], "metric_detail": {"mean": 1.0, "std": 0.1}}
    p = picture(spec, event, [(s, 1.0) for s in range(4)] + [(4, 5.0)])
    assert p.band == pytest.approx((0.8, 1.2)) and p.windows == [("window", 0, 3)]
    assert 'class="band"' in svg(p)


def test_without_history_the_events_own_window_values_are_drawn() -> None:
    spec = RunEvent.metric("loss") < 0.5
    p = picture(spec, {"step": 10, "metric_name": "loss", "window_values": [0.4]}, [])
    assert p.points == [(10, 0.4)]
    assert "fired at step 10" in svg(p)


def test_labels_are_escaped() -> None:
    spec = RunEvent.metric("<script>x</script>") < 1
    drawn = svg(picture(spec, {"step": 0, "window_values": [0.5]}, [(0, 0.5)]))
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
