"""Deploy when a registry version gets the ``production`` alias: a signed webhook to the deployer (a DAG file).

Moving ``production`` from one version to another is a new event: the new version is deployed.
"""

from _settings import ENTITY, REGISTRY, WATCH

from airflow_provider_wbauto.automations import (
    ArtifactEvent,
    OnAddArtifactAlias,
    SendWebhook,
    WebhookIntegration,
)

OnAddArtifactAlias(scope=f"{ENTITY}/{REGISTRY}/mnist-classifier", filter=ArtifactEvent.alias == "production").then(
    SendWebhook(
        integration=WebhookIntegration(conn_id="deploy_hook"),
        payload={"deploy": "${artifact_version_string}", "alias": "${alias}", "event": "${event_id}"},
    )
).save(name="deploy-on-production-alias", description="Roll out the version that becomes production", **WATCH)
