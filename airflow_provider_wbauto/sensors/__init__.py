"""The event side: deferrable sensors that wait for a W&B automation's events."""

from .wandb import (
    ArtifactAliasSensor,
    ArtifactCreatedSensor,
    ArtifactLinkedSensor,
    ArtifactTagAddedSensor,
    ArtifactTagRemovedSensor,
    ArtifactUnlinkedSensor,
    CollectionTagAddedSensor,
    CollectionTagRemovedSensor,
    RunMetricSensor,
    RunStateSensor,
    WandbEventSensor,
)

__all__ = [
    "ArtifactAliasSensor",
    "ArtifactCreatedSensor",
    "ArtifactLinkedSensor",
    "ArtifactTagAddedSensor",
    "ArtifactTagRemovedSensor",
    "ArtifactUnlinkedSensor",
    "CollectionTagAddedSensor",
    "CollectionTagRemovedSensor",
    "RunMetricSensor",
    "RunStateSensor",
    "WandbEventSensor",
]
