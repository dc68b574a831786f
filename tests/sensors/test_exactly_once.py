"""Exactly-once under interruption: 200 scripted events, a sensor that crashes at random points
(after reading its record, between polling and storing the cursor, right after storing it) and
is retried, in reschedule and deferrable mode; the union of what fired is the expected set."""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

import pytest

from airflow_provider_wbauto.automations import OnCreateArtifact
from airflow_provider_wbauto.automations.events import event_from_json, event_to_json
from airflow_provider_wbauto.local import LocalWandb
from airflow_provider_wbauto.triggers import WandbEventTrigger
from tests.airflow_env import SENSOR_MODES, play_during, ti_state, ti_try_number, write_dag, xcom

CRASHING_SENSOR = """
import itertools, random
from datetime import timedelta
import pendulum
from airflow.sdk import DAG
from airflow_provider_wbauto.sensors import ArtifactCreatedSensor

CALLS = itertools.count()


class CrashingSensor(ArtifactCreatedSensor):
    \"\"\"Dies at random points of a poll once a cursor exists (the watch begins when it is stored).\"\"\"

    def _crash(self, context, record, point):
        ti = context["ti"]
        seed = f"{ti.run_id}/{ti.try_number}/{point}/{next(CALLS)}"
        if record["cursor"] is not None and random.Random(seed).random() < 0.25:
            raise RuntimeError(f"simulated crash {point}")

    def _load(self, context):
        record, claim = super()._load(context)
        self._crash(context, record, "after reading the record")
        return record, claim

    def _commit(self, context, record, cursor, events):
        self._crash(context, record, "between polling and storing")
        new = super()._commit(context, record, cursor, events)
        self._crash(context, record, "right after storing")
        return new


with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False, max_active_runs=1) as dag:
    CrashingSensor(task_id="watch", scope="SCOPE", poke_interval=0.2, timeout=120, retries=200,
                   retry_delay=timedelta(0), MODE)
"""


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_200_events_survive_random_crashes(wandb_conn: LocalWandb, entity: str, mode: str) -> None:
    store = wandb_conn.store
    store.create_version(entity, "p", "model")  # v0 predates the watch
    dag = write_dag(CRASHING_SENSOR.replace("SCOPE", f"{entity}/p/model").replace("MODE", SENSOR_MODES[mode]))
    rng = random.Random(f"restart-{mode}")
    created = 0
    fired: list[int] = []
    crashes = 0

    def create(n: int) -> Any:
        def step(s: Any) -> None:
            for _ in range(n):
                s.create_version(entity, "p", "model")

        return step

    def run_once(steps: list[Any]) -> None:
        nonlocal fired, crashes
        run = play_during(wandb_conn, dag, steps)
        assert ti_state(run, "watch") == "success"
        fired += [e["artifact_version_index"] for e in xcom(run, "watch")]
        crashes += ti_try_number(run, "watch") - 1
        # the events of a DAG run are a prefix-closed batch: nothing created later, nothing skipped
        assert sorted(fired) == list(range(1, len(fired) + 1))

    while created < 200 or len(fired) < created:
        if len(fired) < created:
            # a poll landed in the middle of a batch being created: the rest is due at the next
            # DAG run's first poll (a player waiting for that run's later polls would wait in vain)
            run_once([])
            continue
        # a batch is created before the DAG run starts (due at its first poll) or while its sensor
        # waits; the first DAG run stores the baseline first, then sees its events arrive
        size = min(200 - created, rng.randint(1, 24))
        before = created > 0 and rng.random() < 0.5
        if before:
            create(size)(store)
        run_once([] if before else [create(size)])
        created += size

    assert len(fired) == 200 and sorted(fired) == list(range(1, 201))  # none lost, none twice
    assert crashes >= 5, f"only {crashes} simulated crashes: the test did not interrupt the sensor"


def test_trigger_restarted_mid_watch_proposes_the_same_events(wandb_conn: LocalWandb, entity: str) -> None:
    """A triggerer restart re-runs the trigger from its serialised kwargs: same cursor in, same events out."""
    store = wandb_conn.store
    store.create_version(entity, "p", "model")
    event = event_to_json(OnCreateArtifact(scope=f"{entity}/p/model"))
    trigger = WandbEventTrigger(event=event, automation="a", cursor=None, version=0, poll_interval=0.05)
    trigger.cursor = asyncio.run(_first_cursor(trigger))

    async def interrupted_then_restarted() -> tuple[list[Any], list[Any]]:
        task = asyncio.ensure_future(_next_event(trigger))
        await _wait(lambda: wandb_conn.requests() >= 3)
        task.cancel()  # the triggerer dies between two polls
        with pytest.raises(asyncio.CancelledError):
            await task
        store.create_version(entity, "p", "model")
        classpath, kwargs = trigger.serialize()
        assert classpath == "airflow_provider_wbauto.triggers.wandb.WandbEventTrigger"
        first = await _next_event(WandbEventTrigger(**kwargs))
        again = await _next_event(WandbEventTrigger(**kwargs))
        return first["events"], again["events"]

    first, again = asyncio.run(interrupted_then_restarted())
    assert [e["artifact_version_index"] for e in first] == [1]
    assert first == again


async def _first_cursor(trigger: WandbEventTrigger) -> Any:
    """The baseline a sensor would have stored: everything present now."""
    from airflow_provider_wbauto.hooks.wandb import WandbHook
    from airflow_provider_wbauto.hooks.watch import Watch, poll

    watch = Watch(event_from_json(trigger.event), "a")
    _, cursor = await WandbHook().arun(poll(watch, None))
    return cursor


async def _next_event(trigger: WandbEventTrigger) -> Any:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


async def _wait(condition: Any, limit: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


RACING_SENSOR = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_wbauto.sensors import ArtifactCreatedSensor

RACED = []


class RacingSensor(ArtifactCreatedSensor):
    \"\"\"Another DAG run of this sensor stores the trigger's proposal first (a missed max_active_runs=1).\"\"\"

    def execute_complete(self, context, event=None):
        if event and event.get("status") == "success" and not RACED:
            RACED.append(event["events"])
            record, _ = self._load(context)
            self._commit({**context, "run_id": "another-dag-run"}, record, event["cursor"], event["events"])
        return super().execute_complete(context, event)


with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    RacingSensor(task_id="watch", scope="SCOPE", poke_interval=0.2, timeout=120, deferrable=True)
"""


def test_a_proposal_overtaken_by_another_writer_is_not_fired_twice(wandb_conn: LocalWandb, entity: str) -> None:
    store = wandb_conn.store
    store.create_version(entity, "p", "model")
    dag = write_dag(RACING_SENSOR.replace("SCOPE", f"{entity}/p/model"))
    racing = sys.modules[dag.dag_id]

    def create(s: Any) -> None:
        s.create_version(entity, "p", "model")

    run = play_during(wandb_conn, dag, [create, create])
    assert ti_state(run, "watch") == "success"
    (raced,) = racing.RACED
    assert [e["artifact_version_index"] for e in raced] == [1]  # claimed by the other DAG run
    assert [e["artifact_version_index"] for e in xcom(run, "watch")] == [2]  # this run polled on from there
