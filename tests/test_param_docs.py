"""Every public sensor, operator, notifier, hook and trigger documents each constructor argument
(``:param name:`` in its docstring or a base's, or named where the docstring points to the class
that documents it), as the official providers do."""

from __future__ import annotations

import inspect

import pytest

from airflow_provider_wbauto.api import Api
from airflow_provider_wbauto.automations.automation import Automation, NewAutomation
from airflow_provider_wbauto.factory import build_dag
from airflow_provider_wbauto.hooks.slack import SlackNotificationHook
from airflow_provider_wbauto.hooks.wandb import WandbHook
from airflow_provider_wbauto.hooks.webhook import WebhookHook
from airflow_provider_wbauto.notifications.wandb import SendNotificationNotifier, SendWebhookNotifier
from airflow_provider_wbauto.operators.wandb import DoNothingOperator, SendNotificationOperator, SendWebhookOperator
from airflow_provider_wbauto.sensors.wandb import SENSORS_BY_EVENT
from airflow_provider_wbauto.triggers.wandb import WandbEventTrigger
from airflow_provider_wbauto.triggers.watcher import WandbAutomationTrigger

PUBLIC = [
    *SENSORS_BY_EVENT.values(),
    SendNotificationOperator,
    SendWebhookOperator,
    DoNothingOperator,
    SendNotificationNotifier,
    SendWebhookNotifier,
    WandbHook,
    SlackNotificationHook,
    WebhookHook,
    WandbEventTrigger,
    WandbAutomationTrigger,
    Api,
    Automation,
]


def _arguments(function: object) -> list[str]:
    skip = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    params = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    return [p.name for p in params if p.name != "self" and p.kind not in skip]


def _documented(name: str, docs: str) -> bool:
    return f":param {name}:" in docs or f"``{name}``" in docs


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_every_constructor_argument_is_documented(cls: type) -> None:
    docs = "\n".join(
        inspect.getdoc(base) or "" for base in cls.__mro__ if base.__module__.startswith("airflow_provider")
    )
    arguments = list(cls.model_fields) if hasattr(cls, "model_fields") else _arguments(cls.__init__)
    assert arguments, cls
    missing = [name for name in arguments if not _documented(name, docs)]
    assert not missing, f"{cls.__name__} does not document {missing}"


@pytest.mark.parametrize("function", [NewAutomation.save, build_dag], ids=["save", "build_dag"])
def test_the_factory_documents_its_arguments(function: object) -> None:
    docs = inspect.getdoc(function) or ""
    missing = [n for n in [*_arguments(function), "dag_kwargs"] if not _documented(n, docs)]
    assert not missing, f"{getattr(function, '__name__', function)} does not document {missing}"
