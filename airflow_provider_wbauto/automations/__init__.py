"""W&B's automation vocabulary as pydantic models: pure, no I/O, no Airflow imports.

Port an automation from ``wandb.automations`` by changing the import; scopes are strings here.
"""

from .actions import DoNothing, Integration, SendNotification, SendWebhook, SlackIntegration, WebhookIntegration
from .automation import Automation, NewAutomation
from .events import (
    ArtifactEvent,
    OnAddArtifactAlias,
    OnAddArtifactTag,
    OnAddCollectionTag,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRemoveArtifactTag,
    OnRemoveCollectionTag,
    OnRunMetric,
    OnRunState,
    OnUnlinkArtifact,
    RunEvent,
    RunMetricFilter,
    RunStateFilter,
    StateFilter,
)
from .expressions import FilterableField, FilterExpr
from .metric_filters import MetricChangeFilter, MetricThresholdFilter, MetricZScoreFilter
from .scopes import OrgScope, Scope, TeamScope

__all__ = [
    "ArtifactEvent",
    "Automation",
    "DoNothing",
    "FilterExpr",
    "FilterableField",
    "Integration",
    "MetricChangeFilter",
    "MetricThresholdFilter",
    "MetricZScoreFilter",
    "NewAutomation",
    "OnAddArtifactAlias",
    "OnAddArtifactTag",
    "OnAddCollectionTag",
    "OnCreateArtifact",
    "OnLinkArtifact",
    "OnRemoveArtifactTag",
    "OnRemoveCollectionTag",
    "OnRunMetric",
    "OnRunState",
    "OnUnlinkArtifact",
    "OrgScope",
    "RunEvent",
    "RunMetricFilter",
    "RunStateFilter",
    "Scope",
    "SendNotification",
    "SendWebhook",
    "SlackIntegration",
    "StateFilter",
    "TeamScope",
    "WebhookIntegration",
]
