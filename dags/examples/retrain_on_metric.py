"""Retraining triggered by metrics: when a run does not learn, ask the training service to retrain it.

Runs continuously (``@continuous`` starts the next DAG run when one ends); the sensor defers to the
triggerer while it waits, and the webhook carries the run and the metric to the receiver, signed.
"""

import pendulum
from _settings import COMMON, ENTITY, PROJECT, SINCE
from airflow.sdk import DAG

from airflow_provider_wbauto.automations import RunEvent
from airflow_provider_wbauto.operators import SendWebhookOperator
from airflow_provider_wbauto.sensors import RunMetricSensor

with DAG("wbauto_retrain_on_metric", schedule="@continuous", start_date=pendulum.datetime(2026, 1, 1), **COMMON) as dag:
    stuck = RunMetricSensor(
        task_id="not_learning",
        scope=f"{ENTITY}/{PROJECT}",
        # the mean loss of 5 steps stays high; a plateau would be .mean(5).changes_by(frac=0.01, cmp="<")
        filter=RunEvent.metric("loss").mean(5) > 2.1,
        since=SINCE,
        poke_interval=30,
        deferrable=True,
    )
    SendWebhookOperator(
        task_id="request_retraining",
        events=stuck.output,
        webhook_conn_id="retrain_hook",
        payload={"run": "${run_name}", "loss": "${metric_value}", "at_step": "${step}", "link": "${url}"},
    )
