"""Where the example DAGs look: W&B entity and project, and where they start watching.

Set ``WBAUTO_ENTITY`` / ``WBAUTO_PROJECT`` (and the connections ``wandb_default``, ``slack_default``,
``retrain_hook``) for your own W&B. ``WBAUTO_SINCE=beginning`` replays history (the demo does).
"""

import os

ENTITY = os.environ.get("WBAUTO_ENTITY", "acme")
PROJECT = os.environ.get("WBAUTO_PROJECT", "mnist")
REGISTRY = os.environ.get("WBAUTO_REGISTRY", "wandb-registry-model")
SINCE = os.environ.get("WBAUTO_SINCE") or None
COMMON = {"max_active_runs": 1, "catchup": False}  # one writer per sensor cursor: exactly-once
