"""BaseNotifier versions of the actions, for task and DAG callbacks."""

from .wandb import SendNotificationNotifier, SendWebhookNotifier, send_wandb_notification, send_wandb_webhook

__all__ = ["SendNotificationNotifier", "SendWebhookNotifier", "send_wandb_notification", "send_wandb_webhook"]
