"""Shared fixtures: a temporary AIRFLOW_HOME (set before anything imports airflow) and the local W&B server."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HOME = tempfile.mkdtemp(prefix="wbauto-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("WANDB_API_KEY", None)
os.environ.pop("WANDB_BASE_URL", None)

import pytest  # noqa: E402

from airflow_provider_wbauto.local import LocalWandb  # noqa: E402
from tests.secrets_scan import secret  # noqa: E402

pytest_plugins = ["tests.secrets_scan"]

DATA = Path(__file__).parent / "data"
API_KEY = secret("local-test-key-" + "x" * 31)


def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWandb]:
    with LocalWandb(tmp_path_factory.mktemp("wandb") / "local.db", api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def local_wandb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWandb]:
    """One server process for the session; tests isolate themselves by entity name."""
    yield from serve(tmp_path_factory)


@pytest.fixture
def backend(local_wandb: LocalWandb) -> Iterator[LocalWandb]:
    """The session server, with faults and request counts cleared around the test."""
    local_wandb.clear_faults()
    local_wandb.admin("DELETE", "/_local/stats")
    yield local_wandb
    local_wandb.clear_faults()


@pytest.fixture
def entity() -> str:
    return "e" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated metadata DB on SQLite in the temporary AIRFLOW_HOME (``dag.test()`` needs one)."""
    from airflow.utils.db import resetdb

    resetdb()


@pytest.fixture
def wandb_conn(backend: LocalWandb, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> LocalWandb:
    """``wandb_default`` points at the local server (an env connection: no secret in the DB)."""
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_WANDB_DEFAULT", json.dumps({"conn_type": "wandb", "host": backend.url, "password": API_KEY})
    )
    return backend


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP receiver on 127.0.0.1 (Slack / webhooks), stopped after the test."""
    from airflow_provider_wbauto.local.receiver import Receiver

    with Receiver() as server:
        yield server
