"""The Airflow plugin the provider registers (the ``airflow.plugins`` entry point, and provider info
``plugins``): the pages' app mounted on the api-server, a "W&B Automations" entry in the navigation,
and a tab on each DAG (an automation's DAG shows its history).

Airflow loads plugins in every process (scheduler, triggerer, each task), so this module stays light:
the pages' FastAPI app (``app.py``: FastAPI, Airflow's API security, the DB models) is imported at the
first request the api-server routes to it, not when the plugin loads (measured: +1 s and +32 MB per
process otherwise).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

PREFIX = "/wbauto"


class LazyApp:
    """An ASGI app that imports the pages' FastAPI app on its first request."""

    _app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if LazyApp._app is None:
            from .app import app

            LazyApp._app = app
        await LazyApp._app(scope, receive, send)

    def __repr__(self) -> str:
        return "airflow_provider_wbauto.ui.app:app"


class WandbAutomationsPlugin(AirflowPlugin):
    name = "wbauto"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": PREFIX, "name": "W&B Automations"}]
    external_views = [
        {"name": "W&B Automations", "href": f"{PREFIX}/", "destination": "nav", "url_route": "wbauto"},
        {"name": "W&B Automation", "href": PREFIX + "/dags/{DAG_ID}", "destination": "dag", "url_route": "wbauto-dag"},
    ]
