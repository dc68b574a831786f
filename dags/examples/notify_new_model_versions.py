"""Notifications on new model versions: tell the team when a version is linked into the registry."""

import pendulum
from _settings import COMMON, ENTITY, REGISTRY, SINCE
from airflow.sdk import DAG

from airflow_provider_wbauto.operators import DoNothingOperator, SendNotificationOperator
from airflow_provider_wbauto.sensors import ArtifactLinkedSensor

with DAG(
    "wbauto_notify_new_model_versions", schedule="@continuous", start_date=pendulum.datetime(2026, 1, 1), **COMMON
) as dag:
    linked = ArtifactLinkedSensor(
        task_id="linked", scope=f"{ENTITY}/{REGISTRY}", since=SINCE, poke_interval=60, deferrable=True
    )
    DoNothingOperator(task_id="record", events=linked.output)  # what fired, in the task log and XCom
    SendNotificationOperator(
        task_id="notify", events=linked.output, batch=True, title="New model versions in the registry"
    )
