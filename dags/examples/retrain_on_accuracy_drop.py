"""Retrain when validation accuracy drops: a W&B automation that starts an Airflow DAG (retrain_model).

The mean of the last 3 ``val_accuracy`` values falls by at least 5 % against the 3 before them; the
team hears about it on Slack, and ``retrain_model``, scheduled on the automation's asset, starts.
"""

import pendulum
from _events import ACCURACY_DROP
from _settings import WATCH
from airflow.sdk import DAG, task

from airflow_provider_wbauto.automations import SendNotification

retrain = ACCURACY_DROP.then(
    SendNotification(title="Validation accuracy dropped", message="Retraining has started.", severity="WARN")
).save(name="retrain-on-accuracy-drop", description="Retrain when val_accuracy drops by 5 %", **WATCH)

with DAG("retrain_model", schedule=[retrain.asset], start_date=pendulum.datetime(2026, 1, 1), catchup=False):

    @task
    def retrain_model(triggering_asset_events=None) -> list[str]:
        """Stands in for the training job: one retraining per run whose accuracy dropped."""
        runs = [
            e["run_name"]
            for events in (triggering_asset_events or {}).values()
            for ev in events
            for e in ev.extra["events"]
        ]
        print(f"retraining for {', '.join(runs)}")
        return runs

    retrain_model()
