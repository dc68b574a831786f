"""Which files the DAG processor opens in safe mode: Airflow's heuristic, plus automation files.

With ``[core] dag_discovery_safe_mode`` on (the default), Airflow opens only files whose text holds
"airflow" and "dag" (or "asset"); a file of automations written as in W&B's docs holds no "dag".
Set ``[core] might_contain_dag_callable = airflow_provider_wbauto.discovery.might_contain_dag`` and
files that import this provider and call ``.save(`` are opened too.

``parse_dags`` parses a DAGs folder as the DAG processor does, for ``wbauto automations list`` /
``dry-run`` and ``Api()`` without an Airflow URL.
"""

from __future__ import annotations

import contextlib
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.utils.file import might_contain_dag_via_default_heuristic


def might_contain_dag(file_path: str, zip_file: zipfile.ZipFile | None = None) -> bool:
    if might_contain_dag_via_default_heuristic(file_path, zip_file):
        return True
    if zip_file is not None:
        with zip_file.open(file_path) as handle:
            content = handle.read().lower()
    else:
        with open(file_path, "rb") as handle:
            content = handle.read().lower()
    return b"airflow_provider_wbauto" in content and b".save(" in content


@dataclass
class Parsed:
    """The DAGs of a folder (or one file) as Airflow's DAG processor parses them, and the files that failed."""

    dags: list[Any] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # file -> its error, on one line


def parse_dags(path: str | None = None) -> Parsed:
    """Parse ``path`` (a folder or one DAG file; default Airflow's DAGs folder) with Airflow's ``DagBag``.

    As the DAG processor does: the DAGs folder (the bundle's root: Airflow's DAGs folder when ``path``
    is in it, else ``path`` itself, or a file's own folder) and Airflow's plugins folder are on
    ``sys.path`` while the files are parsed, so a DAG file can import its sibling modules;
    ``.airflowignore`` (``[core] dag_ignore_file_syntax``) and the safe-mode heuristic
    (``[core] dag_discovery_safe_mode``, ``might_contain_dag_callable``) are Airflow's own. ``sys.path``
    is restored after, and the sibling modules imported are forgotten (the next parse reads them afresh,
    as each of Airflow's parsing processes does).
    """
    from airflow import settings
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    target = Path(path or settings.DAGS_FOLDER).resolve()
    root = _bundle_root(target, Path(settings.DAGS_FOLDER).resolve())
    plugins = conf.get("core", "plugins_folder", fallback=None)
    with _on_sys_path([str(root), *([str(Path(plugins).resolve())] if plugins else [])]):
        bag = DagBag(dag_folder=str(target), bundle_path=root)
    errors = {str(root / file): one_line(error) for file, error in sorted(bag.import_errors.items())}
    return Parsed(list(bag.dags.values()), errors)


def one_line(error: str) -> str:
    """An import error as one line: the exception (``Type: message``) without its traceback."""
    lines = [line for line in error.splitlines() if line.strip()]
    if lines and lines[0].startswith("Traceback"):
        # the exception follows the traceback's last indented (frame / source) line
        last = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=0)
        lines = lines[last + 1 :] or lines[-1:]
    return lines[0].strip() if lines else "failed to import"


def _bundle_root(target: Path, dags_folder: Path) -> Path:
    if target == dags_folder or dags_folder in target.parents:
        return dags_folder
    return target if target.is_dir() else target.parent


@contextlib.contextmanager
def _on_sys_path(folders: list[str]) -> Iterator[None]:
    added = [f for f in dict.fromkeys(folders) if f not in sys.path]
    before = set(sys.modules)
    sys.path.extend(added)
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(f) for f in added):
                del sys.modules[name]
