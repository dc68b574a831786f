"""W&B Automations run by Apache Airflow. ``from airflow_provider_wbauto import Api`` lists saved ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Api", "__version__"]

if TYPE_CHECKING:
    from .api import Api


def __getattr__(name: str) -> Any:
    """``Api`` is imported on first use: the pure model (``.automations``) must not pull in Airflow."""
    if name == "Api":
        from .api import Api

        return Api
    raise AttributeError(f"module 'airflow_provider_wbauto' has no attribute {name!r}")
