"""Airflow's own cost of an asset watcher, for ``triggerer_scale --idle``: a watcher that never fires,
on a shared stream that never yields (the automations' watchers share theirs by scope and family)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent


class IdleWatcher(BaseEventTrigger):
    """:param name: its own (Airflow runs one trigger for watchers of equal kwargs).
    :param group: the shared stream it joins."""

    def __init__(self, *, name: str, group: int) -> None:
        super().__init__()
        self.name, self.group = name, group

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"name": self.name, "group": self.group}

    def shared_stream_key(self) -> Hashable:
        return ("idle", self.group)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None  # pragma: no cover  (never reached)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for _ in shared_stream:
            pass
        yield TriggerEvent(None)  # pragma: no cover  (the stream never ends)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.Event().wait()
        yield TriggerEvent(None)  # pragma: no cover
