"""W&B's timestamps: ISO 8601 in UTC, ``Z`` or an offset, with or without microseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def wire_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
