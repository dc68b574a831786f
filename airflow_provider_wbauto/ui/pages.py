"""The Automations pages as HTML: Jinja templates (``templates/``) with autoescaping, so a run name,
an alias or a filter is data, never markup; charts arrive as SVG strings made by ``chart.svg`` and are
the only markup passed through. Plain CSS, no script: the pages work offline inside the Airflow UI."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

_ENV = Environment(
    loader=PackageLoader("airflow_provider_wbauto.ui", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def subject(event: dict[str, Any]) -> str:
    return str(event.get("run_name") or event.get("artifact_version_string") or event.get("run_id") or "")


def value(event: dict[str, Any]) -> str:
    if "metric_value" in event:
        return f"{event.get('metric_name')} = {event['metric_value']:.4g}"
    return str(event.get("run_state") or event.get("alias") or event.get("tag") or "")


def automations_page(**context: Any) -> str:
    return _ENV.get_template("automations.html").render(**context)


def history_page(rows: list[tuple[Any, dict[str, Any], str | None]], **context: Any) -> str:
    trusted = [(f, e, Markup(p) if p else None) for f, e, p in rows]  # SVG from chart.svg: escaped inside
    return _ENV.get_template("history.html").render(rows=trusted, subject=subject, value=value, **context)


def not_an_automation_page(**context: Any) -> str:
    return _ENV.get_template("not_an_automation.html").render(**context)
