"""Slack alert when a run fails or crashes (W&B's CRASHED is FAILED): one red message per run (a DAG file)."""

from _settings import ENTITY, PROJECT, WATCH

from airflow_provider_wbauto.automations import OnRunState, RunEvent, SendNotification

OnRunState(scope=f"{ENTITY}/{PROJECT}", filter=RunEvent.state == "FAILED").then(
    SendNotification(title="W&B run failed", message="Check its logs.", severity="ERROR")
).save(name="alert-on-failed-runs", **WATCH)
