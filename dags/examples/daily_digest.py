"""A daily digest of the project's runs and their key metrics: a scheduled DAG using the W&B hook,
one Slack message with a table (W&B automations have no schedule; Airflow does)."""

import pendulum
from _settings import ENTITY, PROJECT
from airflow.sdk import DAG, task

from airflow_provider_wbauto.hooks.slack import SlackNotificationHook, slack_message
from airflow_provider_wbauto.hooks.wandb import RunKeys, WandbHook
from airflow_provider_wbauto.tables import aligned

KEY_METRICS = ("loss", "val_accuracy")


def digest_table(runs: list[dict]) -> str:
    """Runs as a fixed-width table: name, state, last step and the key metrics of their summary."""
    header = ("RUN", "STATE", "STEPS", *KEY_METRICS)
    return aligned(
        [header]
        + [
            (
                run["display_name"] or run["id"],
                run["state"],
                str(run["last_step"] + 1),
                *(
                    f"{run['summary'][k]:.4g}" if isinstance(run["summary"].get(k), int | float) else "-"
                    for k in KEY_METRICS
                ),
            )
            for run in sorted(runs, key=lambda r: r["created_at"])
        ]
    )


with DAG("wandb_daily_digest", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1), catchup=False):

    @task
    def send_digest() -> int:
        runs = WandbHook().runs(ENTITY, PROJECT, keys=RunKeys(summary=frozenset(KEY_METRICS)))  # those keys only
        table = digest_table(runs)
        message = f"{len(runs)} run(s) in {ENTITY}/{PROJECT}:\n```{table}```"
        SlackNotificationHook().send(slack_message(f"W&B daily digest: {ENTITY}/{PROJECT}", message, "INFO", []))
        return len(runs)

    send_digest()
