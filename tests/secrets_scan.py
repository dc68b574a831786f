"""The whole test run, scanned for the secrets it used: every secret a test hands to the provider is
made with ``secret()``, and when the run ends this plugin looks for each of them (and its base64 and
URL-quoted forms) in everything the run left: each test's captured output and log records, each
failure's text, the files under ``AIRFLOW_HOME`` and pytest's temporary directories (task logs,
the real Airflow's component logs, the metadata DBs: XComs, trigger rows, rendered fields, asset
events and state stores). A secret found fails the run, naming where it was.

DAG files a test wrote and the DAG source Airflow keeps of them (``dags/``, the ``dag_code`` and
``serialized_dag`` rows) are the test's own words, not something the provider wrote, so they are
not scanned.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_MADE: set[str] = set()
_TEXTS: list[tuple[str, str]] = []  # (where, text) collected while the run goes
SKIPPED_TABLES = {"dag_code", "serialized_dag", "dag_version"}
REPORT = "secrets-scan.json"  # written into the pytest cache dir: what was scanned, for RELIABILITY.md


def secret(value: str) -> str:
    """A secret a test uses: the scan at the end of the run looks for it everywhere."""
    _MADE.add(value)
    return value


def _forms(value: str) -> set[str]:
    return {value, urllib.parse.quote(value, safe=""), base64.b64encode(value.encode()).decode()}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, text in report.sections:
        _TEXTS.append((f"{report.nodeid} [{name}]", text))
    if report.longrepr is not None:
        _TEXTS.append((f"{report.nodeid} [failure]", report.longreprtext))


def _files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and "dags" not in path.relative_to(root).parts[:-1] and path.suffix != ".py":
            yield path


def _database_rows(path: Path) -> Iterator[tuple[str, str]]:
    """Every row of every table of a SQLite file, as text (``dag_code`` and ``serialized_dag`` aside)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    except sqlite3.DatabaseError:
        return
    with db:
        for table in tables:
            if table in SKIPPED_TABLES:
                continue
            for row in db.execute(f'SELECT * FROM "{table}"'):
                yield f"{path.name}:{table}", json.dumps(row, default=lambda v: bytes(v).decode("latin-1"))


def _places(session: pytest.Session) -> Iterator[tuple[str, str]]:
    yield from _TEXTS
    roots = [Path(os.environ["AIRFLOW_HOME"])]
    factory: Any = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        roots.append(factory.getbasetemp())
    for root in roots:
        for path in _files(root):
            if path.read_bytes()[:16].startswith(b"SQLite format 3"):
                yield from _database_rows(path)
            else:
                yield str(path), path.read_text(errors="replace")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _MADE or session.config.option.collectonly:
        return
    forms = {form: value for value in _MADE for form in _forms(value)}
    found: dict[str, set[str]] = {}
    places = scanned = 0
    for where, text in _places(session):
        places, scanned = places + 1, scanned + len(text)
        for form, value in forms.items():
            if form in text:
                found.setdefault(where, set()).add(value[:6] + "...")
    cache = getattr(session.config, "cache", None)  # none with -p no:cacheprovider
    if cache is not None:
        cache.set("wbauto/" + REPORT, {"secrets": len(_MADE), "places": places, "bytes": scanned, "found": len(found)})
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = f"secrets scan: {len(_MADE)} secrets looked for in {places} places ({scanned / 1e6:.1f} MB)"
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(line + (f": FOUND in {len(found)}" if found else ": none found"))
        for where, which in sorted(found.items())[:20]:
            reporter.write_line(f"  {where}: {', '.join(sorted(which))}", red=True)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
