"""Listing saved automations, as W&B's ``Api().project("entity/project").automations()`` does.

The automations are the DAGs tagged ``wandb-automation``, each carrying its spec in its docs. They
are read from Airflow's REST API when one is configured (``airflow_url`` and a token, or the
environment's ``WBAUTO_AIRFLOW_URL`` with ``WBAUTO_AIRFLOW_TOKEN`` or ``WBAUTO_AIRFLOW_USERNAME`` /
``WBAUTO_AIRFLOW_PASSWORD``), else by parsing the DAGs folder as Airflow's DAG processor does (the
folder and the plugins folder on ``sys.path``, ``.airflowignore``, safe mode); the files that failed
to import are in ``Api.import_errors`` after each listing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx

from .automations.automation import Automation
from .discovery import parse_dags
from .factory import TAG, automation_of_spec, spec_from_docs

PAGE = 100


class Api:
    """The automations Airflow knows.

    :param airflow_url: base URL of Airflow's api-server (``http://127.0.0.1:8080``); default
        ``WBAUTO_AIRFLOW_URL``. Without one, the DAGs folder is parsed.
    :param token: a bearer token for the REST API; default ``WBAUTO_AIRFLOW_TOKEN``.
    :param username: with ``password``, get a token from ``/auth/token``; default ``WBAUTO_AIRFLOW_USERNAME``.
    :param password: default ``WBAUTO_AIRFLOW_PASSWORD``.
    :param dags_folder: a folder (or one DAG file) to parse instead of asking ``WBAUTO_AIRFLOW_URL``;
        without it and without a REST API, Airflow's DAGs folder is parsed.
    :param timeout: seconds per REST API request.
    """

    def __init__(
        self,
        *,
        airflow_url: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        dags_folder: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if dags_folder is None:
            airflow_url = airflow_url or os.environ.get("WBAUTO_AIRFLOW_URL")
        self.airflow_url = (airflow_url or "").rstrip("/") or None
        self._token = token or os.environ.get("WBAUTO_AIRFLOW_TOKEN")
        self._username = username or os.environ.get("WBAUTO_AIRFLOW_USERNAME")
        self._password = password or os.environ.get("WBAUTO_AIRFLOW_PASSWORD")
        self.dags_folder = dags_folder
        self.timeout = timeout
        self.import_errors: dict[str, str] = {}
        """The DAG files the last parse of the folder could not import: file -> its error, on one line."""

    def __repr__(self) -> str:
        return f"Api(airflow_url={self.airflow_url!r})"

    def project(self, path: str) -> ProjectAutomations:
        """``Api().project("entity/project").automations()``."""
        entity, _, project = path.partition("/")
        if not entity or not project or "/" in project:
            raise ValueError(f"project must be 'entity/project'; got {path!r}")
        return ProjectAutomations(self, entity, project)

    def automations(self, entity: str | None = None, project: str | None = None) -> list[Automation]:
        """Every automation, or those whose scope is in ``entity`` (and ``project``), by name; a project's
        include its entity's team-scope automations, which watch it too."""
        found = [
            a
            for a in self._all()
            if (entity is None or a.scope.entity == entity)
            and (project is None or a.scope.project == project or a.scope.kind == "team")
        ]
        return sorted(found, key=lambda a: a.name)

    def automation(self, name: str) -> Automation:
        """The automation of this name; ``KeyError`` naming the ones that exist when there is none."""
        everything = self.automations()
        for automation in everything:
            if automation.name == name:
                return automation
        failed = f" ({len(self.import_errors)} DAG file(s) failed to import)" if self.import_errors else ""
        there = ", ".join(a.name for a in everything) or "none"
        raise KeyError(f"no automation named {name!r}; there are: {there}{failed}")

    # -- sources ------------------------------------------------------------------------------

    def _all(self) -> Iterator[Automation]:
        docs = self._rest_docs() if self.airflow_url else self._folder_docs()
        for doc in docs:
            spec = spec_from_docs(doc)
            if spec is not None:
                yield automation_of_spec(spec)

    def _folder_docs(self) -> Iterator[str | None]:
        parsed = parse_dags(self.dags_folder)
        self.import_errors = parsed.errors
        for dag in parsed.dags:
            if TAG in (dag.tags or ()):
                yield dag.doc_md

    def _rest_docs(self) -> Iterator[str | None]:
        with httpx.Client(base_url=str(self.airflow_url), timeout=self.timeout) as client:
            client.headers["Authorization"] = f"Bearer {self._bearer(client)}"
            offset = 0
            while True:
                page = _ok(client.get("/api/v2/dags", params={"tags": TAG, "limit": PAGE, "offset": offset}))
                for dag in page["dags"]:
                    yield _ok(client.get(f"/api/v2/dags/{dag['dag_id']}/details")).get("doc_md")
                offset += len(page["dags"])
                if not page["dags"] or offset >= page.get("total_entries", 0):
                    return

    def _bearer(self, client: httpx.Client) -> str:
        if self._token:
            return self._token
        if not (self._username and self._password):
            raise ValueError(
                "Airflow's REST API needs a token (WBAUTO_AIRFLOW_TOKEN) or a username and password "
                "(WBAUTO_AIRFLOW_USERNAME / WBAUTO_AIRFLOW_PASSWORD)"
            )
        answer = _ok(client.post("/auth/token", json={"username": self._username, "password": self._password}))
        token: str = answer["access_token"]
        return token


class ProjectAutomations:
    """One project's automations: ``Api().project("entity/project").automations()``."""

    def __init__(self, api: Api, entity: str, project: str) -> None:
        self.api, self.entity, self.project = api, entity, project

    def automations(self) -> list[Automation]:
        return self.api.automations(entity=self.entity, project=self.project)


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"Airflow's REST API answered {response.request.url.path} with HTTP {response.status_code}")
    return response.json()
