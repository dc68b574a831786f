"""The server tests inject faults into a server that every request of theirs may meet: each module
here gets a server of its own, so a late request of another module (a retry of the wandb client's
background reader, a request a loaded machine dispatched after its client gave up) cannot take a
fault meant for this one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wbauto.local import LocalWandb
from tests.conftest import API_KEY


@pytest.fixture(scope="module")
def local_wandb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWandb]:
    with LocalWandb(tmp_path_factory.mktemp("wandb") / "local.db", api_key=API_KEY) as server:
        yield server
