"""The action side: Slack notification, signed webhook, and the dry run."""

from .wandb import DoNothingOperator, EventActionOperator, SendNotificationOperator, SendWebhookOperator

__all__ = ["DoNothingOperator", "EventActionOperator", "SendNotificationOperator", "SendWebhookOperator"]
