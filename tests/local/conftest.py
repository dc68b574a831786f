"""These modules inject faults or run the wandb client: each gets a server of its own."""

from tests.own_server import local_wandb  # noqa: F401
