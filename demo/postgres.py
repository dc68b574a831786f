"""A throwaway PostgreSQL server for a distributed Airflow's metadata DB: Debian's ``postgresql``
package, a data directory in a temporary folder of its own, listening on 127.0.0.1 (and a socket in
that folder) on a port the OS gave; ``stop()`` stops it and removes the folder."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .cluster import free_port, wait_for
from .debian import installed


def binaries() -> Path:
    """The folder of ``initdb`` and ``pg_ctl`` of the newest PostgreSQL installed (Debian's package is
    installed first when there is none)."""

    def newest() -> Path | None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
        return found[-1].parent if found else None

    return installed("postgresql", newest)


class Postgres:
    """One server; its data directory, socket and log in a temporary folder of its own (under the
    system's, which PostgreSQL's own user can reach when this runs as root)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wbauto-postgres-"))
        self.data, self.port = self.folder / "data", free_port()
        self.bin = binaries()
        self.user = "postgres" if os.geteuid() == 0 else getpass.getuser()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/airflow"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as its own user, in its own folder
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=300)

    def start(self) -> Postgres:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c max_connections=300"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-o", options, "-w", "start")
        wait_for(self._ready, "PostgreSQL accepting connections", timeout=60)
        self._psql("CREATE DATABASE airflow")
        return self

    def _ready(self) -> bool:
        try:
            self._psql("SELECT 1")
        except subprocess.CalledProcessError:
            return False
        return True

    def _psql(self, statement: str) -> None:
        command = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres"]
        subprocess.run([*command, "-v", "ON_ERROR_STOP=1", "-c", statement], check=True, capture_output=True)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
