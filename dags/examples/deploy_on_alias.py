"""Deployment on an artifact alias: when a registry version gets the ``production`` alias, deploy it."""

import pendulum
from _settings import COMMON, ENTITY, REGISTRY, SINCE
from airflow.sdk import DAG, task

from airflow_provider_wbauto.automations import ArtifactEvent
from airflow_provider_wbauto.operators import SendNotificationOperator
from airflow_provider_wbauto.sensors import ArtifactAliasSensor

with DAG("wbauto_deploy_on_alias", schedule="@continuous", start_date=pendulum.datetime(2026, 1, 1), **COMMON) as dag:
    promoted = ArtifactAliasSensor(
        task_id="promoted",
        scope=f"{ENTITY}/{REGISTRY}/mnist-classifier",
        filter=ArtifactEvent.alias == "production",
        since=SINCE,
        poke_interval=30,
        deferrable=True,
    )

    @task
    def deploy(events: list[dict]) -> list[str]:
        """Stands in for the real rollout (a Kubernetes job, a model server reload)."""
        return [f"deployed {e['artifact_version_string']}" for e in events]

    done = deploy(promoted.output)
    SendNotificationOperator(
        task_id="announce",
        events=promoted.output,
        title="Model promoted to production",
        message="{{ ti.xcom_pull(task_ids='deploy') | join(', ') }}",
    ).set_upstream(done)
