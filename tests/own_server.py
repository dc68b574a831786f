"""For the modules that inject faults: a server of the module's own, so that a late request of
another module (the wandb client's background reader retrying, a request a loaded machine
dispatched after its client gave up) cannot take a fault meant for one of their tests.
A module takes it with ``from tests.own_server import local_wandb``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wbauto.local import LocalWandb
from tests.conftest import serve


@pytest.fixture(scope="module")
def local_wandb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWandb]:
    yield from serve(tmp_path_factory)
