"""An auth manager for the UI tests: Airflow's simple auth manager, but the user ``outsider`` may not
read a DAG whose id starts with ``secret`` (as a FAB or Keycloak role limited to some DAGs would)."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class SomeDagsHiddenAuthManager(SimpleAuthManager):
    def _hidden(self, user: Any, dag_id: str | None) -> bool:
        return user.get_name() == "outsider" and (dag_id or "").startswith("secret")

    def get_authorized_dag_ids(self, *, user: Any, method: Any = "GET", **kwargs: Any) -> set[str]:
        ids = super().get_authorized_dag_ids(user=user, method=method, **kwargs)
        return {dag_id for dag_id in ids if not self._hidden(user, dag_id)}

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if self._hidden(user, getattr(details, "id", None)):
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
