"""Why a metric automation fired, drawn server-side as SVG (no script, no CDN: the page works offline):
the run's metric around the firing step, the threshold (or the change's prior level and the level it
crossed, or the z-score band) as lines, the window(s) the filter aggregated shaded, the firing step
marked. Every label is escaped; numbers are formatted, never interpolated raw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ..automations.metric_filters import MetricChangeFilter, MetricThresholdFilter, MetricZScoreFilter

WIDTH, HEIGHT, PAD = 640, 260, 44


@dataclass(frozen=True)
class Picture:
    """What to draw: ``points`` (step, value), the firing ``step``, horizontal ``lines`` (label, value),
    a shaded ``band`` (low, high) of values, and the step ranges of the ``windows`` (label, first, last)."""

    metric: str
    points: list[tuple[int, float]]
    step: int
    lines: list[tuple[str, float]] = field(default_factory=list)
    band: tuple[float, float] | None = None
    windows: list[tuple[str, int, int]] = field(default_factory=list)


def picture(metric: Any, event: dict[str, Any], history: Sequence[tuple[int, float]]) -> Picture:
    """The picture of one metric event under its filter (a threshold, change or z-score filter) from the
    run's ``history`` around the step; without history, the event's own window values are drawn."""
    step = int(event["step"])
    name = str(event.get("metric_name") or getattr(metric, "name", "metric"))
    window_values = [float(v) for v in event.get("window_values") or []]
    points = sorted({s: v for s, v in history}.items()) or [
        (step - len(window_values) + 1 + i, v) for i, v in enumerate(window_values)
    ]
    upto = [s for s, _ in points if s <= step]
    detail = event.get("metric_detail") or {}

    def span(count: int, skip: int = 0) -> tuple[int, int]:
        chosen = upto[len(upto) - skip - count : len(upto) - skip] or [step]
        return chosen[0], chosen[-1]

    if isinstance(metric, MetricThresholdFilter):
        first, last = span(metric.window or 1)
        return Picture(name, points, step, [(f"threshold {metric.cmp} {_num(metric.threshold)}", metric.threshold)],
                       windows=[("window", first, last)])  # fmt: skip
    if isinstance(metric, MetricChangeFilter):
        prior = float(detail.get("prior", window_values[0] if window_values else 0.0))
        levels = _change_levels(metric, prior)
        current, before = span(metric.window), span(metric.prior_window or metric.window, metric.window)
        return Picture(name, points, step, [("prior", prior), *levels],
                       windows=[("prior window", *before), ("window", *current)])  # fmt: skip
    if isinstance(metric, MetricZScoreFilter):
        mean, std = float(detail.get("mean", 0.0)), float(detail.get("std", 0.0))
        t = metric.threshold
        first, last = span(metric.window, 1)
        return Picture(name, points, step, [("mean", mean)], band=(mean - t * std, mean + t * std),
                       windows=[("window", first, last)])  # fmt: skip
    return Picture(name, points, step)


def _change_levels(metric: MetricChangeFilter, prior: float) -> list[tuple[str, float]]:
    amount = metric.threshold * abs(prior) if metric.change_type == "relative" else metric.threshold
    shown = f"{metric.threshold:.2%}" if metric.change_type == "relative" else _num(metric.threshold)
    up, down = ("increase", "any"), ("decrease", "any")
    return [(f"{label} {shown}", prior + sign * amount) for label, sign, ways in
            (("+", 1, up), ("-", -1, down)) if metric.change_dir in ways]  # fmt: skip


def svg(p: Picture, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The picture as a standalone SVG document."""
    values = [v for _, v in p.points] + [v for _, v in p.lines] + (list(p.band) if p.band else [])
    values = [v for v in values if math.isfinite(v)] or [0.0]
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 1, high + 1
    margin = (high - low) * 0.08
    low, high = low - margin, high + margin
    steps = [s for s, _ in p.points] + [p.step] + [s for _, a, b in p.windows for s in (a, b)]
    first, last = min(steps), max(steps)
    if last == first:
        first, last = first - 1, last + 1

    def x(step: float) -> float:
        return PAD + (step - first) / (last - first) * (width - 2 * PAD)

    def y(value: float) -> float:
        return height - PAD - (value - low) / (high - low) * (height - 2 * PAD)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' class="wbauto-chart" role="img" aria-label={quoteattr(f"{p.metric} around step {p.step}")}>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for label, a, b in p.windows:
        shade = "#dbeafe" if label == "window" else "#f1f5f9"
        out.append(
            f'<rect class="window" data-label={quoteattr(label)} x="{x(a) - 3:.1f}" y="{PAD}" '
            f'width="{max(6.0, x(b) - x(a) + 6):.1f}" height="{height - 2 * PAD}" fill="{shade}"/>'
        )
    if p.band is not None:
        top, bottom = y(p.band[1]), y(p.band[0])
        out.append(
            f'<rect class="band" x="{PAD}" y="{top:.1f}" width="{width - 2 * PAD}" height="{bottom - top:.1f}"'
            ' fill="#fef3c7" fill-opacity="0.7"/>'
        )
    out.append(
        f'<line x1="{PAD}" y1="{height - PAD}" x2="{width - PAD}" y2="{height - PAD}" stroke="#94a3b8"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{height - PAD}" stroke="#94a3b8"/>'
        f'<text x="{PAD}" y="{height - 12}" font-size="11" fill="#475569">step {first}</text>'
        f'<text x="{width - PAD}" y="{height - 12}" font-size="11" fill="#475569" text-anchor="end">step {last}</text>'
        f'<text x="{PAD - 4}" y="{PAD + 4}" font-size="11" fill="#475569" text-anchor="end">{_num(high)}</text>'
        f'<text x="{PAD - 4}" y="{height - PAD}" font-size="11" fill="#475569" text-anchor="end">{_num(low)}</text>'
    )
    for label, value in p.lines:
        if math.isfinite(value):
            out.append(
                f'<line class="threshold" data-value="{value!r}" x1="{PAD}" y1="{y(value):.1f}" x2="{width - PAD}"'
                f' y2="{y(value):.1f}" stroke="#dc2626" stroke-dasharray="6 4"/>'
                f'<text x="{width - PAD - 4}" y="{y(value) - 4:.1f}" font-size="11" fill="#dc2626"'
                f' text-anchor="end">{escape(label)}</text>'
            )
    if p.points:
        path = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in p.points if math.isfinite(v))
        out.append(f'<polyline class="metric" points="{path}" fill="none" stroke="#2563eb" stroke-width="2"/>')
    fired = dict(p.points).get(p.step)
    out.append(
        f'<line class="fired" x1="{x(p.step):.1f}" y1="{PAD}" x2="{x(p.step):.1f}" y2="{height - PAD}"'
        ' stroke="#16a34a" stroke-width="1.5"/>'
        f'<text x="{x(p.step) + 4:.1f}" y="{PAD - 6}" font-size="11" fill="#16a34a">fired at step {p.step}</text>'
    )
    if fired is not None and math.isfinite(fired):
        out.append(f'<circle cx="{x(p.step):.1f}" cy="{y(fired):.1f}" r="4" fill="#16a34a"/>')
    out.append(f'<text x="{width / 2:.0f}" y="18" font-size="13" text-anchor="middle">{escape(p.metric)}</text>')
    out.append("</svg>")
    return "".join(out)


def _num(value: float) -> str:
    return f"{value:.4g}"
