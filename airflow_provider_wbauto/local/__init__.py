"""An embedded W&B-compatible backend: W&B's GraphQL names on SQLite, for tests, demos and offline work.

It imports nothing of the provider: it stands in for W&B, it is not part of the provider's logic.
``LocalWandb`` runs the server as a child process on a free loopback port, and gives the ``Store``
on the same database file for recording a scenario while the server serves it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from .fixtures import FixtureError, load, load_file
from .store import Store, StoreError

__all__ = ["FixtureError", "LocalWandb", "Store", "StoreError", "load", "load_file"]

# The evidence check is on by default: a request no real W&B client sends is refused, as W&B refuses
# an invalid query, so no test can pass on a request W&B would not take.
# WBAUTO_LOCAL_EVIDENCE_CHECK=0 turns it off, to run a suite either way.
EVIDENCE_CHECK_BY_DEFAULT = os.environ.get("WBAUTO_LOCAL_EVIDENCE_CHECK", "1") == "1"


class LocalWandb:
    """Start ``python -m airflow_provider_wbauto.local serve`` on 127.0.0.1 and stop it on exit.

    :param db: the SQLite file the server serves (and ``store`` records into).
    :param api_key: the API key the server accepts.
    :param entity: the viewer's default entity.
    :param startup_timeout: seconds to wait for the server to listen.
    :param query_cache: parsed and validated query texts the server keeps (0: none).
    :param crash_after: seconds of file-stream silence after which a running run becomes ``crashed``.
    :param log: a file the server's log is appended to (its warnings, such as an operation it does
        not serve); by default the log goes where this process's stderr goes.
    :param lenient: answer as before issue 25 (``serve --lenient``): whatever the schema answers, and
        none of the ways W&B may answer otherwise (``WireOptions.lenient()``).
    :param evidence_check: when strict, refuse a request using anything no real W&B client sends, as
        W&B refuses an invalid query (``local/evidence.py``); ``None``: ``EVIDENCE_CHECK_BY_DEFAULT``.
    """

    def __init__(
        self,
        db: str | Path,
        *,
        api_key: str = "local-key",
        entity: str | None = None,
        startup_timeout: float = 60.0,
        query_cache: int = 512,
        crash_after: float = 300.0,
        log: str | Path | None = None,
        lenient: bool = False,
        evidence_check: bool | None = None,
    ) -> None:
        self.lenient = lenient
        self.evidence_check = EVIDENCE_CHECK_BY_DEFAULT if evidence_check is None else evidence_check
        self.db = str(db)
        self.log = log
        self.crash_after = crash_after
        self.api_key = api_key
        self.entity = entity
        self.query_cache = query_cache
        self.startup_timeout = startup_timeout
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._store: Store | None = None

    def start(self) -> LocalWandb:
        cmd = [
            sys.executable,
            "-m",
            "airflow_provider_wbauto.local",
            "serve",
            "--port",
            "0",
            "--db",
            self.db,
            "--api-key",
            self.api_key,
            "--query-cache",
            str(self.query_cache),
            "--crash-after",
            str(self.crash_after),
        ]
        if self.entity:
            cmd += ["--entity", self.entity]
        if self.lenient:
            cmd.append("--lenient")
        elif not self.evidence_check:
            cmd.append("--no-evidence-check")
        # a session of its own: a Ctrl-C meant for the parent does not kill it mid-request; stop() does
        with contextlib.ExitStack() as files:
            stderr = files.enter_context(open(self.log, "a")) if self.log else None
            self._proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ}, start_new_session=True
            )
        assert self._proc.stdout is not None
        line = _readline(self._proc.stdout, self.startup_timeout)
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"local W&B server did not start: {line!r}")
        self.url = line.removeprefix("listening on ").strip()
        return self

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db)
        return self._store

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        """Call an admin endpoint (``/_local/faults``, ``/_local/stats``)."""
        response = httpx.request(method, self.url + path, json=json, auth=("api", self.api_key), timeout=30)
        response.raise_for_status()
        return response.json()

    def inject(self, **fault: Any) -> None:
        self.admin("POST", "/_local/faults", fault)

    def clear_faults(self) -> None:
        self.admin("DELETE", "/_local/faults")

    def requests(self, path: str = "/graphql") -> int:
        return int(self.admin("GET", "/_local/stats")["requests"].get(path, 0))

    def refused(self) -> dict[str, int]:
        """The wire items the strict server refused so far (outside the evidence), with their counts."""
        return {str(k): int(v) for k, v in self.admin("GET", "/_local/stats").get("refused", {}).items()}

    def bytes_sent(self, path: str = "/graphql") -> int:
        """Response body bytes served on ``path`` so far (what a benchmark's reads cost on the wire)."""
        return int(self.admin("GET", "/_local/stats")["bytes"].get(path, 0))

    def stop(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=15)
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None

    def __enter__(self) -> LocalWandb:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def _readline(stream: IO[str], timeout: float) -> str:
    """The first line the child prints, or '' if it prints nothing within ``timeout``."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""
