"""A signed webhook for every new version of the model collection (a DAG file).

The connection ``model_registry_hook`` holds the URL, an access token and the ``signing_secret``:
the receiver checks ``X-Wandb-Signature`` (base64 HMAC-SHA256 of the body) and drops repeats by
``Idempotency-Key``.
"""

from _settings import ENTITY, PROJECT, WATCH

from airflow_provider_wbauto.automations import OnCreateArtifact, SendWebhook, WebhookIntegration

OnCreateArtifact(scope=f"{ENTITY}/{PROJECT}/mnist-cnn").then(
    SendWebhook(
        integration=WebhookIntegration(conn_id="model_registry_hook"),
        payload={"version": "${artifact_version_string}", "metadata": "${artifact_metadata}", "event": "${event_id}"},
    )
).save(name="webhook-on-new-model-version", **WATCH)
