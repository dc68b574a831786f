"""Provider metadata read by Airflow's ProvidersManager through the `apache_airflow_provider` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-wbauto",
        "name": "Weights & Biases Automations",
        "description": "`Weights & Biases <https://wandb.ai/>`__ automations evaluated by Airflow.",
        "integrations": [
            {
                "integration-name": "Weights & Biases",
                "external-doc-url": "https://docs.wandb.ai/guides/core/automations/",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Weights & Biases",
                "python-modules": ["airflow_provider_wbauto.hooks.wandb"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Weights & Biases",
                "python-modules": ["airflow_provider_wbauto.sensors.wandb"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Weights & Biases",
                "python-modules": ["airflow_provider_wbauto.triggers.wandb"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_wbauto.hooks.wandb.WandbHook",
                "hook-name": "W&B",
                "connection-type": "wandb",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "Base URL", "password": "API key"},
                    "placeholders": {"host": "https://api.wandb.ai", "entity": "my-team", "timeout": "20"},
                },
                "conn-fields": {
                    "entity": {"label": "Default entity", "schema": {"type": ["string", "null"]}},
                    "timeout": {"label": "Timeout (s)", "schema": {"type": ["number", "null"]}},
                },
            }
        ],
    }
