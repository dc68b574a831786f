"""Values of any size in Airflow's asset state store, each key's value under its 64 KiB soft limit.

A cursor that tracks 1,000 runs with a window each is hundreds of KiB; the store takes that from a
worker with only a warning, and its REST API refuses it. So a value whose JSON passes ``PART_BYTES``
is cut into parts stored under keys named by their content (``<key>#<digest>``), and the key itself
holds a head listing them. The parts are written before the head, so a crash in between leaves the
old head and everything it names in place (the new parts are simply unreferenced), and a reader never
follows a head to a part not yet written. Once the head has moved, parts only the old head named are
deleted (a crash just before that leaves them behind, unreferenced). Small values are stored as they
are, so a value stored by earlier versions reads unchanged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

PART_BYTES = 48 * 1024  # under the store's 64 KiB soft limit, with room for the key and the JSON quoting
HEAD = "wbauto_parts"  # the head's key: the part keys, in order


class StoredValueError(ValueError):
    """A stored value cannot be put together again (a part is missing)."""


def split(key: str, value: Any) -> tuple[Any, dict[str, str]]:
    """What to store at ``key`` (the value, or a head) and the parts to store first (key -> text)."""
    text = json.dumps(value, separators=(",", ":"))  # ASCII: a character is a byte
    if len(text) <= PART_BYTES:
        return value, {}
    chunks = [text[i : i + PART_BYTES] for i in range(0, len(text), PART_BYTES)]
    names = [f"{key}#{hashlib.sha256(chunk.encode()).hexdigest()[:16]}" for chunk in chunks]
    return {HEAD: names, "bytes": len(text)}, dict(zip(names, chunks, strict=True))


def part_keys(stored: Any) -> list[str]:
    """The keys of the parts a stored value is made of (none: it is stored whole)."""
    if isinstance(stored, dict) and isinstance(stored.get(HEAD), list):
        return [str(k) for k in stored[HEAD]]
    return []


def join(key: str, stored: Any, parts: list[Any]) -> Any:
    """The value a head and its parts (read in the head's order) make."""
    if not part_keys(stored):
        return stored
    missing = [name for name, part in zip(part_keys(stored), parts, strict=True) if not isinstance(part, str)]
    if missing:
        raise StoredValueError(
            f"state-store key {key!r} names {len(missing)} part(s) that are missing ({', '.join(missing)}); "
            f"delete {key!r} to start this watch afresh"
        )
    return json.loads("".join(parts))


def load(store: Any, key: str, default: Any = None) -> Any:
    """The value at ``key``, put together from its parts when it was split."""
    stored = store.get(key, default=default)
    return join(key, stored, [store.get(name, default=None) for name in part_keys(stored)])


async def aload(store: Any, key: str, default: Any = None) -> Any:
    stored = await store.aget(key, default=default)
    return join(key, stored, [await store.aget(name, default=None) for name in part_keys(stored)])


def save(store: Any, key: str, value: Any) -> None:
    """Store ``value`` at ``key``: parts first (those already stored are not written again), then the
    head in one ``set()``, then the parts the previous value had and this one has not are deleted."""
    before = set(part_keys(store.get(key, default=None)))
    head, parts = split(key, value)
    for name, part in parts.items():
        if name not in before:
            store.set(name, part)
    store.set(key, head)
    for name in sorted(before - parts.keys()):
        store.delete(name)


async def asave(store: Any, key: str, value: Any) -> None:
    before = set(part_keys(await store.aget(key, default=None)))
    head, parts = split(key, value)
    for name, part in parts.items():
        if name not in before:
            await store.aset(name, part)
    await store.aset(key, head)
    for name in sorted(before - parts.keys()):
        await store.adelete(name)
