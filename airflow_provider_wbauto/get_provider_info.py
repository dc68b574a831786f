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
                "python-modules": [
                    "airflow_provider_wbauto.hooks.wandb",
                    "airflow_provider_wbauto.hooks.slack",
                    "airflow_provider_wbauto.hooks.webhook",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Weights & Biases",
                "python-modules": ["airflow_provider_wbauto.operators.wandb"],
            }
        ],
        "notifications": [
            "airflow_provider_wbauto.notifications.wandb.SendNotificationNotifier",
            "airflow_provider_wbauto.notifications.wandb.SendWebhookNotifier",
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
        "plugins": [{"name": "wbauto", "plugin-class": "airflow_provider_wbauto.ui.plugin.WandbAutomationsPlugin"}],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_wbauto.hooks.wandb.WandbHook",
                "hook-name": "W&B",
                "connection-type": "wandb",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "Base URL", "password": "API key"},
                    "placeholders": {"host": "https://api.wandb.ai", "timeout": "20"},
                },
                "conn-fields": {
                    "timeout": {"label": "Timeout (s)", "schema": {"type": ["number", "null"]}},
                },
            },
            {
                "hook-class-name": "airflow_provider_wbauto.hooks.slack.SlackNotificationHook",
                "hook-name": "W&B automations: Slack incoming webhook",
                "connection-type": "wandb_slack",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "Slack base URL", "password": "Webhook token or URL"},
                    "placeholders": {"host": "https://hooks.slack.com/services", "password": "T000/B000/XXXX"},
                },
                "conn-fields": {
                    "timeout": {"label": "Timeout (s)", "schema": {"type": ["number", "null"]}},
                    "rate_limit_per_minute": {"label": "Deliveries per minute", "schema": {"type": ["number", "null"]}},
                },
            },
            {
                "hook-class-name": "airflow_provider_wbauto.hooks.webhook.WebhookHook",
                "hook-name": "W&B automations: webhook",
                "connection-type": "wandb_webhook",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "port"],
                    "relabeling": {"host": "URL", "password": "Access token"},
                    "placeholders": {"host": "https://example.com/hooks/wandb"},
                },
                "conn-fields": {
                    "signing_secret": {
                        "label": "Signing secret (X-Wandb-Signature)",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "secrets": {
                        "label": 'Named secrets, JSON {"NAME": "value"}',
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "timeout": {"label": "Timeout (s)", "schema": {"type": ["number", "null"]}},
                    "rate_limit_per_minute": {"label": "Deliveries per minute", "schema": {"type": ["number", "null"]}},
                },
            },
        ],
    }
