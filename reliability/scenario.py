"""One reliability scenario on a real Airflow: saved automations (asset watchers) acting on W&B events
while the backend, the receiver and the processes fail, and an account of what reached the receiver.

Each automation watches one project for failed runs of its own (a run-name filter), and sends a
signed webhook per event to one receiver. The scenario plays ``events`` failed runs at a steady pace
while the local W&B server fails ``backend_faults`` of its requests (5xx, 429 with ``Retry-After``,
429 with only ``RateLimit-Reset``, answers slower than the hook's timeout, dropped connections,
bodies that are not JSON), the receiver fails ``receiver_faults`` of its requests (500, 429, answers
slower than the delivery timeout, reset connections, redirects), and ``kills`` processes are
SIGKILLed at random moments: a triggerer (restarted at once, or with ``ha=True`` the one running the
watchers, for good, so that a standby triggerer takes them over) or a running task's process
(Airflow retries the task).

What counts (``Outcome``): an event is *lost* if the receiver never accepted (2xx) a delivery of it,
and *duplicated* if it accepted deliveries of it under two different ``Idempotency-Key`` values (a
receiver that dedupes by the key would act twice). Deliveries accepted again under the same key
(a timed-out answer that had landed) are *redeliveries*, which the key exists for.
"""

from __future__ import annotations

import json
import random
import signal
import tempfile
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from airflow_provider_wbauto.local import LocalWandb
from airflow_provider_wbauto.local.receiver import Answer, Chaos, Receiver
from demo.cluster import AirflowCluster, wait_for
from demo.postgres import Postgres

API_KEY = "reliability-key-" + "r" * 24
HOOK_TIMEOUT, DELIVERY_TIMEOUT = 3.0, 2.0  # seconds: the "timeout" faults answer later than these
WATCHERS = "FROM trigger WHERE classpath LIKE '%WandbAutomationTrigger'"
WATCHER_OWNERS = f"SELECT triggerer_id {WATCHERS} AND triggerer_id IS NOT NULL"  # one row per running watcher


@dataclass(frozen=True)
class Scenario:
    """:param name: what the report calls it.
    :param events: failed runs played, spread over the automations.
    :param automations: saved automations (asset watchers), one shared read of the project.
    :param backend_faults: the share of W&B requests that fail.
    :param receiver_faults: the share of deliveries the receiver fails.
    :param kills: processes SIGKILLed while the events play.
    :param postgres: PostgreSQL as the metadata DB (else SQLite).
    :param triggerers: triggerer processes: the first runs the watchers, the others start after it as
        standbys (Airflow gives them the watchers of a triggerer that stops heartbeating).
    :param ha: the first kill is the watchers' triggerer, for good (a standby must take them over);
        the others are tasks' processes.
    :param pace: events played per second.
    """

    name: str
    events: int
    automations: int
    backend_faults: float = 0.0
    receiver_faults: float = 0.0
    kills: int = 0
    postgres: bool = False
    triggerers: int = 1
    ha: bool = False
    pace: float = 2.0
    seed: int = 7


@dataclass
class Outcome:
    scenario: Scenario
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    redelivered: int = 0
    deliveries: int = 0  # requests the receiver got
    backend_requests: int = 0
    backend_faulted: int = 0
    receiver_faulted: int = 0
    killed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    moved: bool | None = None  # ha: every watcher ended on a triggerer that was not killed

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated and self.moved is not False

    def row(self) -> dict[str, Any]:
        s = self.scenario
        kills = " + ".join(f"{n} {what}" for what, n in sorted(self.killed.items()))
        injected = [
            (
                s.backend_faults,
                f"W&B {s.backend_faults:.0%}: {self.backend_faulted} of {self.backend_requests} requests",
            ),
            (s.receiver_faults, f"receiver {s.receiver_faults:.0%}: {self.receiver_faulted} of {self.deliveries}"),
            (self.killed, f"{sum(self.killed.values())} kills ({kills})"),
        ]
        airflow = "PostgreSQL" if s.postgres else "SQLite"
        return {
            "scenario": s.name,
            "Airflow": f"{airflow}, {s.triggerers} triggerer(s), {s.automations} watchers",
            "fault": FAULT_KINDS if s.backend_faults or s.receiver_faults else "SIGKILL of the watchers' triggerer",
            "rate (injected)": "; ".join(text for there, text in injected if there),
            "events": s.events,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "attempts": f"{self.deliveries / max(1, s.events):.2f} deliveries an event, {self.redelivered} again",
            "result": ("pass" if self.ok else "FAIL") + f" in {self.seconds:.0f} s",
        }


FAULT_KINDS = (
    "W&B: 5xx, 429 (Retry-After / RateLimit-Reset), past the timeout, dropped, not JSON; "
    "receiver: 500, 429, past the timeout, reset, 302; SIGKILL of tasks and triggerers"
)


AUTOMATIONS = '''
"""The reliability scenario's automations: each watches the project for its own failed runs."""
import os
from datetime import timedelta

from airflow_provider_wbauto.automations import OnRunState, RunEvent, SendWebhook, WebhookIntegration

E, SINCE, N = os.environ["REL_ENTITY"], os.environ["REL_SINCE"], int(os.environ["REL_AUTOMATIONS"])

for k in range(N):
    OnRunState(scope=f"{E}/proj", filter=(RunEvent.state == "FAILED") & RunEvent.name.matches_regex(f"^a{k}-")).then(
        SendWebhook(integration=WebhookIntegration(conn_id="rel_hook"),
                    payload={"id": "${event_id}", "run": "${run_name}", "automation": "${automation_name}"})
    ).save(name=f"a{k}", poll_interval=2, since=SINCE, retries=20, retry_delay=timedelta(seconds=1))
'''

BACKEND_FAULTS: list[dict[str, Any]] = [
    {"mode": "status", "status": 500},
    {"mode": "status", "status": 503},
    {"mode": "rate_limit", "retry_after": 1, "reset": None},
    {"mode": "rate_limit", "retry_after": None, "reset": 1},
    {"mode": "latency", "seconds": HOOK_TIMEOUT + 1},
    {"mode": "drop"},
    {"mode": "malformed"},
]
RECEIVER_FAULTS = [
    Answer(500),
    Answer(429, {"Retry-After": "1"}),
    Answer(delay=DELIVERY_TIMEOUT + 1),
    Answer(reset=True),
    Answer(302, {"Location": "http://127.0.0.1:9/elsewhere"}),
]


def backend_rules(share: float) -> list[dict[str, Any]]:
    """Rules that together take about ``share`` of the requests, each kind alike (tried in turn, each
    at rate r: 1 - (1 - r)^n = share)."""
    if share <= 0:
        return []
    rate = 1 - (1 - share) ** (1 / len(BACKEND_FAULTS))
    return [rule | {"path": "/graphql", "count": None, "rate": rate} for rule in BACKEND_FAULTS]


@contextmanager
def _airflow(scenario: Scenario, backend: LocalWandb, receiver: Receiver, entity: str) -> Iterator[AirflowCluster]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wbauto-reliability-")))
        db_url = None
        if scenario.postgres:
            postgres = Postgres().start()
            stack.callback(postgres.stop)
            db_url = postgres.url
        dags = tmp / "dags"
        dags.mkdir()
        (dags / "automations.py").write_text(textwrap.dedent(AUTOMATIONS))
        wandb = {"conn_type": "wandb", "host": backend.url, "password": API_KEY, "extra": {"timeout": HOOK_TIMEOUT}}
        hook = {"conn_type": "wandb_webhook", "host": receiver.url("/hook"), "extra": {"timeout": DELIVERY_TIMEOUT}}
        env = {
            "REL_ENTITY": entity,
            "REL_SINCE": datetime.now(UTC).isoformat(),
            "REL_AUTOMATIONS": str(scenario.automations),
            "AIRFLOW_CONN_WANDB_DEFAULT": json.dumps(wandb),
            "AIRFLOW_CONN_REL_HOOK": json.dumps(hook),
            "AIRFLOW__CORE__PARALLELISM": "8",
        }
        cluster = AirflowCluster(tmp / "home", dags, env, db_url=db_url)
        stack.callback(cluster.stop)
        try:
            yield cluster.start()
        except BaseException:
            print(cluster.log_tail(60))
            raise


def _task_processes(cluster: AirflowCluster) -> list[psutil.Process]:
    """The processes running tasks: the scheduler's executor workers fork one per task."""
    scheduler = cluster.procs.get("scheduler")
    if scheduler is None:
        return []
    try:
        workers = psutil.Process(scheduler.pid).children(recursive=True)
        return [p for w in workers for p in w.children() if p.is_running()]
    except psutil.Error:
        return []


def run(scenario: Scenario, *, log: Any = print) -> Outcome:
    """Play ``scenario`` and account for every event; every process it started is stopped."""
    chance = random.Random(scenario.seed)
    entity = f"rel{chance.randrange(16**8):08x}"
    outcome = Outcome(scenario)
    started = time.monotonic()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wbauto-rel-")))
        backend = stack.enter_context(LocalWandb(folder / "wandb.db", api_key=API_KEY))
        receiver = stack.enter_context(Receiver())
        cluster = stack.enter_context(_airflow(scenario, backend, receiver, entity))
        names = [f"a{k}" for k in range(scenario.automations)]
        wait_for(lambda: len(cluster.sql(WATCHER_OWNERS)) >= len(names), "every watcher running", timeout=900, every=2)
        for i in range(2, scenario.triggerers + 1):  # standbys: Airflow gives them the watchers of a dead one
            cluster.add_triggerer(f"triggerer-{i}")
        log(f"{scenario.name}: {len(names)} watchers running after {time.monotonic() - started:.0f} s")

        backend.store.upsert_run(entity, "proj", "warm-up")  # the project exists before the faults
        for rule in backend_rules(scenario.backend_faults):
            backend.inject(**rule)
        receiver.chaos = Chaos(scenario.receiver_faults, RECEIVER_FAULTS, random.Random(scenario.seed))

        expected = [f"a{i % len(names)}-{i // len(names)}" for i in range(scenario.events)]
        if scenario.ha:  # the watchers' triggerer dies mid-scenario, then tasks' processes
            half = scenario.events // 2
            kill_at = [half, *sorted(chance.sample(range(half + 1, scenario.events), scenario.kills - 1))]
        else:
            kill_at = sorted(chance.sample(range(scenario.events), scenario.kills))
        killed_triggerers: set[int] = set()
        for i, run_name in enumerate(expected):
            backend.store.upsert_run(entity, "proj", f"r{i}", display_name=run_name)
            backend.store.set_state(entity, "proj", f"r{i}", "failed")
            for _ in range(kill_at.count(i)):
                outcome.killed[_kill(cluster, scenario, chance, killed_triggerers)] += 1
            time.sleep(1 / scenario.pace)  # the pace of the scenario, not a wait on a condition
        log(f"{scenario.name}: {len(expected)} events played, {sum(outcome.killed.values())} kills")

        def accepted() -> dict[str, set[str]]:
            keys: dict[str, set[str]] = defaultdict(set)
            for r in list(receiver.received):
                if r.answer.accepted:
                    keys[json.loads(r.body)["run"]].add(r.headers.get("Idempotency-Key", ""))
            return keys

        try:
            wait_for(lambda: set(accepted()) >= set(expected), "every event accepted", timeout=1200, every=2)
        except TimeoutError:
            log(cluster.log_tail(40))
        backend.clear_faults()
        receiver.chaos = None
        busy = "SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')"
        wait_for(lambda: cluster.sql(busy)[0][0] == 0, "automation DAG runs finished", timeout=600, every=2)

        keys = accepted()
        counts = Counter(json.loads(r.body)["run"] for r in list(receiver.received) if r.answer.accepted)
        outcome.lost = sorted(set(expected) - set(keys))
        outcome.duplicated = sorted(run for run, k in keys.items() if len(k) > 1)
        outcome.redelivered = sum(c - 1 for c in counts.values())
        outcome.deliveries = len(receiver.received)
        outcome.receiver_faulted = sum(1 for r in receiver.received if not r.answer.accepted)
        stats = backend.admin("GET", "/_local/stats")
        outcome.backend_requests = int(stats["requests"].get("/graphql", 0))
        outcome.backend_faulted = int(sum(n for k, n in stats["requests"].items() if k.startswith("fault:")))
        if scenario.ha:  # a condition waited on: Airflow may be reassigning a watcher at the moment we look

            def moved() -> bool:
                owners = [int(r[0]) for r in cluster.sql(WATCHER_OWNERS)]
                return len(owners) >= len(names) and not set(owners) & killed_triggerers

            try:
                outcome.moved = wait_for(moved, "every watcher on a living triggerer", timeout=180, every=2)
            except TimeoutError:
                outcome.moved = False
                log(cluster.sql(f"SELECT id, triggerer_id {WATCHERS}"))
                log(cluster.log_tail(40))
    outcome.seconds = time.monotonic() - started
    return outcome


def _kill(cluster: AirflowCluster, scenario: Scenario, chance: random.Random, killed: set[int]) -> str:
    """SIGKILL a task's process or a triggerer. With ``ha``, the first kill is the triggerer running the
    watchers, for good (the standby must take them over); otherwise a killed triggerer restarts at once."""
    if scenario.ha and not killed:  # the one running the watchers: a standby may have taken them already,
        # when the first missed its heartbeats on a loaded machine (Airflow's own handover)
        owners = wait_for(
            lambda: Counter(int(r[0]) for r in cluster.sql(WATCHER_OWNERS)), "a triggerer running watchers", timeout=60
        )
        owner = owners.most_common(1)[0][0]
        killed.add(owner)
        cluster.kill(cluster.triggerer_named(owner))
        return "triggerer for good"
    tasks: list[psutil.Process] = []
    if scenario.ha or chance.random() < 0.5:  # a task's process: wait (bounded) for one to be running
        try:
            tasks = wait_for(lambda: _task_processes(cluster), "a task running", timeout=20, every=0.1)
        except TimeoutError:
            tasks = []
    if tasks:
        try:
            chance.choice(tasks).send_signal(signal.SIGKILL)
            return "task"
        except psutil.Error:
            pass
    if scenario.ha:
        return "none: no task running"
    name = chance.choice(sorted(n for n in cluster.procs if n.startswith("triggerer")))
    cluster.kill(name)
    cluster.restart(name)
    return "triggerer restarted"
