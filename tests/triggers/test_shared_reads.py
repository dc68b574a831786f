"""Deferred sensors on one project in one triggerer share one read per interval: ten triggers with
ten filters cost the server what one does, and each proposes exactly its own events."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
from typing import Any

import pytest

from airflow_provider_wbauto.automations import OnRunMetric, OnRunState, RunEvent
from airflow_provider_wbauto.automations.events import event_to_json
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.hooks.watch import Watch, poll
from airflow_provider_wbauto.local import LocalWandb, Store
from airflow_provider_wbauto.triggers import WandbEventTrigger
from airflow_provider_wbauto.triggers.shared_reads import _READERS, shared_reads

RUNS = 5


def _triggers(entity: str, n: int) -> list[WandbEventTrigger]:
    hook, out = WandbHook(), []
    for i in range(n):
        metric = RunEvent.metric("loss" if i % 2 else "acc") > 10 + i  # each its own filter and threshold
        event = OnRunMetric(scope=f"{entity}/p", filter=metric)
        _, cursor = hook.run(poll(Watch(event, f"a{i}"), None))  # where each sensor's stored watch stands
        out.append(
            WandbEventTrigger(
                event=event_to_json(event), automation=f"a{i}", cursor=cursor, version=1, poll_interval=0.3
            )
        )
    return out


def _run_all(wandb_conn: LocalWandb, entity: str, triggers: list[WandbEventTrigger]) -> tuple[list[Any], int]:
    """The triggers' proposals, and the requests the server saw, while a row that fires every filter is
    logged once three reads have passed."""

    def play() -> None:
        store = Store(wandb_conn.db)
        deadline = time.monotonic() + 60
        while wandb_conn.requests() < start + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        store.log(entity, "p", "r0", [{"loss": 100.0, "acc": 100.0}])
        store.close()

    async def first(trigger: WandbEventTrigger) -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    async def everything() -> list[Any]:
        return await asyncio.wait_for(asyncio.gather(*(first(t) for t in triggers)), timeout=60)

    start = wandb_conn.requests()
    player = threading.Thread(target=play)
    player.start()
    try:
        proposals = asyncio.run(everything())
    finally:
        player.join(timeout=60)
    return proposals, wandb_conn.requests() - start


@pytest.mark.parametrize("n", [1, 10])
def test_ten_deferred_sensors_on_one_project_read_it_once_per_interval(
    wandb_conn: LocalWandb, entity: str, n: int
) -> None:
    store = wandb_conn.store
    for r in range(RUNS):
        store.upsert_run(entity, "p", f"r{r}")
        store.log(entity, "p", f"r{r}", [{"loss": 1.0, "acc": 0.5}] * 3)
    proposals, requests = _run_all(wandb_conn, entity, _triggers(entity, n))
    for i, proposal in enumerate(proposals):
        assert proposal["status"] == "success", proposal
        (event,) = proposal["events"]
        assert (event["automation_name"], event["run_id"], event["step"]) == (f"a{i}", "r0", 3)
    # three quiet reads (a listing each), then the listing and the new rows of both metrics in one
    # request, and at most one more quiet read if the row landed while a listing was under way
    assert requests <= 6, requests
    assert not _READERS  # the last trigger to leave stopped the reader


def test_reads_begin_every_interval_however_long_one_takes(wandb_conn: LocalWandb, entity: str) -> None:
    """A slow backend does not stretch the interval: an event waits at most one interval (plus the read)
    for the read that sees it, not an interval plus every read before."""
    wandb_conn.store.upsert_run(entity, "p", "r")
    event = OnRunState(scope=f"{entity}/p", filter=RunEvent.state == "FAILED")

    async def arrivals() -> list[float]:
        async with shared_reads(WandbHook.default_conn_name, event, 1.0) as subscription:
            out: list[float] = []
            while len(out) < 5:
                assert await subscription.next(timeout=30) is not None
                out.append(time.monotonic())
            return out

    wandb_conn.inject(mode="latency", seconds=0.6, count=None, path="/graphql")
    try:
        times = asyncio.run(arrivals())
    finally:
        wandb_conn.clear_faults()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.median(gaps) < 1.3, gaps  # 1.6 s apart if the interval began after each read
