"""A real Airflow for the demo and for the tests ``dag.test()`` cannot show (asset watchers, triggerer
restarts, HA): scheduler, triggerer(s), dag-processor and api-server as processes on 127.0.0.1, a
SQLite metadata DB in a temporary ``AIRFLOW_HOME`` or a PostgreSQL one (``db_url``, as a
distributed Airflow has). Every process runs in a session of its own and is stopped by ``stop()``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy

BIN = Path(sys.executable).parent
COMPONENTS: dict[str, list[str]] = {
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 120.0, every: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy; a bounded wait on a condition, never a sleep."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


class AirflowCluster:
    """:param db_url: the metadata DB (default: SQLite in ``home``)."""

    def __init__(self, home: Path, dags: Path, env: Mapping[str, str], *, db_url: str | None = None) -> None:
        self.home, self.dags = home, dags
        self.db_url = db_url or f"sqlite:///{home / 'airflow.db'}"
        self.components = dict(COMPONENTS)
        self._engine: sqlalchemy.Engine | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE": "airflow_provider_wbauto.discovery.might_contain_dag",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **env,
        }
        self.env.pop("AIRFLOW__CORE__UNIT_TEST_MODE")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.triggerer_jobs: dict[str, int] = {}  # a triggerer's job id: a kill can aim at the one running a trigger
        self._token: str | None = None

    # -- processes -------------------------------------------------------------------------------

    def start(self) -> AirflowCluster:
        self.home.mkdir(parents=True, exist_ok=True)
        migrated = subprocess.run([BIN / "airflow", "db", "migrate"], env=self.env, capture_output=True, timeout=300)
        if migrated.returncode:
            raise RuntimeError(f"airflow db migrate failed: {migrated.stderr.decode(errors='replace')[-2000:]}")
        self.launch("api-server", ["api-server", "-H", "127.0.0.1", "-p", str(self.port)])
        for name, args in self.components.items():
            self.launch(name, args)
        wait_for(self._healthy, "Airflow healthy (scheduler, triggerer, dag-processor)", timeout=180)
        self.triggerer_jobs["triggerer"] = max(self._triggerer_job_ids())
        return self

    def launch(self, name: str, args: list[str]) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [str(BIN / "airflow"), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self._end([name], sig)

    def add_triggerer(self, name: str) -> None:
        """Start one more triggerer (a standby, when the first already runs every trigger) and wait until
        it has registered its job."""
        before = self._triggerer_job_ids()
        self.components[name] = COMPONENTS["triggerer"]
        self.launch(name, self.components[name])
        self.triggerer_jobs[name] = wait_for(
            lambda: max(self._triggerer_job_ids() - before, default=None), f"{name} registered", timeout=180
        )

    def triggerer_named(self, job_id: int) -> str:
        """The component whose triggerer job is ``job_id`` (a trigger row's ``triggerer_id``)."""
        names = [name for name, job in self.triggerer_jobs.items() if job == job_id and name in self.procs]
        if not names:
            raise LookupError(f"no running triggerer has job {job_id} (known: {self.triggerer_jobs})")
        return names[0]

    def restart(self, name: str) -> None:
        self.triggerer_jobs.pop(name, None)  # a restarted triggerer registers a new job
        self.launch(name, self.components[name])

    def _triggerer_job_ids(self) -> set[int]:
        return {int(r[0]) for r in self.sql("SELECT id FROM job WHERE job_type = 'TriggererJob'")}

    def stop(self) -> None:
        """SIGTERM to every component at once, then SIGKILL to those still running after 30 s."""
        self._end(list(self.procs), signal.SIGTERM)

    def _end(self, names: list[str], sig: int) -> None:
        procs = [self.procs.pop(name) for name in names]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        deadline = time.monotonic() + 30
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.home.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def sql(self, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        """A statement on the metadata DB (``:name`` parameters), for what the REST API does not show
        (or to inject a fault)."""
        if self._engine is None:
            args = {"timeout": 60} if self.db_url.startswith("sqlite") else {}
            self._engine = sqlalchemy.create_engine(self.db_url, connect_args=args, poolclass=sqlalchemy.NullPool)
        with self._engine.begin() as db:
            result = db.execute(sqlalchemy.text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []

    def watching(self, asset_uri: str) -> bool:
        """Whether a triggerer has taken the watcher of this asset."""
        return bool(
            self.sql(
                "SELECT 1 FROM asset a JOIN asset_watcher w ON w.asset_id = a.id JOIN trigger t"
                " ON t.id = w.trigger_id WHERE a.uri = :uri AND t.triggerer_id IS NOT NULL",
                uri=asset_uri,
            )
        )

    # -- the REST API ----------------------------------------------------------------------------

    def _healthy(self) -> bool:
        try:
            health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, json.JSONDecodeError):
            return False
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(p) or {}).get("status") == "healthy" for p in parts)

    def password(self) -> str:
        """The generated password of the user ``admin``."""
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        password: str = passwords["admin"]
        return password

    @property
    def all_admins(self) -> bool:
        """Whether the simple auth manager lets everyone in as admin (no password: a browser test)."""
        return self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true"

    def token(self) -> str:
        if self._token is None:
            if self.all_admins:
                answer = httpx.get(f"{self.url}/auth/token")
            else:
                answer = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password()})
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, attempts: int = 5, **kwargs: Any) -> Any:
        """A REST call; a 5xx or a dropped connection is retried (SQLite can be locked for a moment
        while the scheduler writes: seen as a 500 on a loaded machine), at most ``attempts`` times."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        for attempt in range(1, attempts + 1):
            try:
                answer = httpx.request(method, f"{self.url}/api/v2{path}", headers=headers, timeout=30, **kwargs)
            except httpx.TransportError:
                if attempt == attempts:
                    raise
            else:
                if answer.status_code < 500 or attempt == attempts:
                    answer.raise_for_status()
                    return answer.json()
            time.sleep(0.5 * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1000})["dag_runs"]
        return runs

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        (asset,) = self.api("GET", "/assets", params={"uri_pattern": uri})["assets"]
        params = {"asset_id": asset["id"], "limit": 1000}
        events: list[dict[str, Any]] = self.api("GET", "/assets/events", params=params)["asset_events"]
        return events

    def task_states(self, dag_id: str, task_id: str) -> list[str | None]:
        return [
            ti["state"]
            for run in self.dag_runs(dag_id)
            for ti in self.api("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
            if ti["task_id"] == task_id
        ]
