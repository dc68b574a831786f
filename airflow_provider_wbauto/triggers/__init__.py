"""Async triggers: the deferrable sensors' polling loop."""

from .wandb import WandbEventTrigger

__all__ = ["WandbEventTrigger"]
