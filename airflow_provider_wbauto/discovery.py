"""Which files the DAG processor opens in safe mode: Airflow's heuristic, plus automation files.

With ``[core] dag_discovery_safe_mode`` on (the default), Airflow opens only files whose text holds
"airflow" and "dag" (or "asset"); a file of automations written as in W&B's docs holds no "dag".
Set ``[core] might_contain_dag_callable = airflow_provider_wbauto.discovery.might_contain_dag`` and
files that import this provider and call ``.save(`` are opened too.
"""

from __future__ import annotations

import zipfile

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
