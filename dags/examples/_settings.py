"""Where the example automations look, and how often: set these for your own W&B.

``WBAUTO_ENTITY`` / ``WBAUTO_PROJECT`` / ``WBAUTO_REGISTRY`` name what to watch; the connections
``wandb_default`` (W&B), ``slack_default`` (Slack), ``model_registry_hook`` and ``deploy_hook``
(signed webhooks) say where to read and deliver. ``WBAUTO_SINCE`` (an ISO time, or ``beginning``)
backfills history; ``WBAUTO_POLL_INTERVAL`` is in seconds; ``WBAUTO_MODE=sensor`` runs them as
sensor DAGs, for an Airflow without a triggerer.
"""

import os

ENTITY = os.environ.get("WBAUTO_ENTITY", "acme")
PROJECT = os.environ.get("WBAUTO_PROJECT", "mnist")
REGISTRY = os.environ.get("WBAUTO_REGISTRY", "wandb-registry-model")
WATCH = {
    "since": os.environ.get("WBAUTO_SINCE") or None,
    "poll_interval": float(os.environ.get("WBAUTO_POLL_INTERVAL", "60")),
    "mode": os.environ.get("WBAUTO_MODE", "event"),
}
