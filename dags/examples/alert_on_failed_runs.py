"""Alerts on failed runs: a Slack message, in red, for every run that fails or crashes."""

import pendulum
from _settings import COMMON, ENTITY, PROJECT, SINCE
from airflow.sdk import DAG

from airflow_provider_wbauto.automations import RunEvent
from airflow_provider_wbauto.operators import SendNotificationOperator
from airflow_provider_wbauto.sensors import RunStateSensor

with DAG(
    "wbauto_alert_on_failed_runs", schedule="@continuous", start_date=pendulum.datetime(2026, 1, 1), **COMMON
) as dag:
    failed = RunStateSensor(
        task_id="failed",
        scope=f"{ENTITY}/{PROJECT}",
        filter=RunEvent.state == "FAILED",
        since=SINCE,
        poke_interval=60,
        mode="reschedule",  # works without a triggerer too
    )
    SendNotificationOperator(
        task_id="alert", events=failed.output, title="W&B run failed", level="ERROR", text="Check the logs."
    )
