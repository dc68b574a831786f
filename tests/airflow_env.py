"""Whole DAGs under ``dag.test()``: DAG files written to the temporary DAGs folder, XComs read back,
and a scenario player that changes the W&B backend while a sensor waits."""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_wbauto.local import LocalWandb, Store

DAGS = Path(os.environ["AIRFLOW_HOME"]) / "dags"


def write_dag(source: str, *, dag_id: str | None = None) -> Any:
    """Write a DAG file (``dag.test()`` only runs DAGs it can parse from the DAGs folder) and import it."""
    dag_id = dag_id or "t_" + uuid.uuid4().hex[:10]
    DAGS.mkdir(parents=True, exist_ok=True)
    path = DAGS / f"{dag_id}.py"
    path.write_text(textwrap.dedent(source).replace("DAG_ID", dag_id))
    spec = importlib.util.spec_from_file_location(dag_id, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[dag_id] = module  # tests reach the DAG file's globals as sys.modules[dag.dag_id]
    spec.loader.exec_module(module)
    return module.dag


def xcom(run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def _task_instance(run: Any, task_id: str) -> tuple[str | None, int]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id).one()
        return (None if ti.state is None else str(ti.state)), int(ti.try_number)


def ti_state(run: Any, task_id: str) -> str | None:
    return _task_instance(run, task_id)[0]


def ti_try_number(run: Any, task_id: str) -> int:
    return _task_instance(run, task_id)[1]


# how the sensor tests run each sensor under dag.test()
SENSOR_MODES = {"deferrable": "deferrable=True", "reschedule": "deferrable=False, mode='reschedule'"}


class Player(threading.Thread):
    """Plays scenario steps on the backend while a DAG runs: each step waits until the sensor has sent
    ``polls`` more requests since the previous one (a condition, not a sleep), so history arrives in
    several pieces across polls. Errors are re-raised by ``finish()``."""

    def __init__(self, server: LocalWandb, steps: Sequence[Callable[[Store], Any]], polls: int = 3) -> None:
        super().__init__(daemon=True)
        self.server, self.steps, self.polls = server, steps, polls
        self.error: BaseException | None = None

    def run(self) -> None:
        store = Store(self.server.db)  # its own SQLite connection: this is another thread
        try:
            for step in self.steps:
                self._wait_for(self.server.requests() + self.polls)
                step(store)
        except BaseException as exc:  # handed to the test thread
            self.error = exc
        finally:
            store.close()

    def _wait_for(self, count: int, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while self.server.requests() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sensor sent fewer than {count} requests in {limit:.0f} s")
            time.sleep(0.02)

    def finish(self) -> None:
        self.join(timeout=120)
        assert not self.is_alive(), "scenario player did not finish"
        if self.error is not None:
            raise self.error


def play_during(
    server: LocalWandb, dag: Any, steps: Sequence[Callable[[Store], Any]], *, polls: int = 3, **conf: Any
) -> Any:
    """Run the DAG once while ``steps`` are played, each after ``polls`` more requests; returns the
    finished DAG run."""
    player = Player(server, steps, polls)
    player.start()
    try:
        return dag.test(run_conf=conf or None)
    finally:
        player.finish()
