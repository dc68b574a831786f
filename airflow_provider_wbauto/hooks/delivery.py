"""Delivering an action's message to a receiver (Slack, a webhook): one JSON POST, retried within bounds.

The retry loop is the transport's (``retrying``): 5xx, 408, 3xx (a redirect is never followed, since
it would send the body and its signature elsewhere), timeouts and connection errors back off
exponentially, 429 waits for ``Retry-After``; another 4xx fails at once with the receiver's answer.
A per-integration rate limit spaces deliveries (W&B applies one; receivers need one). The hook
classes here hold every byte of I/O, sync and async, as the Slack provider's hooks do; the
operators and notifiers on top stay thin.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.log import mask_secret

from .transport import (
    HEADERS,
    Retry,
    RetryPolicy,
    Steps,
    Wait,
    drive_async,
    drive_sync,
    extra_number,
    judge_status,
    retrying,
    shared_async_client,
    shared_sync_client,
)

DEFAULT_TIMEOUT = 10.0
DEFAULT_RATE_PER_MINUTE = 60.0


class DeliveryError(AirflowException):
    """The receiver stayed unavailable within the retry bounds; Airflow may retry the task."""


class DeliveryRejected(AirflowFailException):
    """The receiver refused the message (a 4xx other than 429): retrying would not change its mind."""


@dataclass
class RateLimit:
    """At most ``per_minute`` deliveries per minute through one integration, spaced evenly."""

    per_minute: float = DEFAULT_RATE_PER_MINUTE
    last: float | None = field(default=None)

    def wait(self, now: float) -> float:
        if self.last is None or self.per_minute <= 0:
            return 0.0
        return max(0.0, self.last + 60.0 / self.per_minute - now)


@dataclass(frozen=True)
class Target:
    """Where a delivery goes and the secrets it may use; ``repr`` shows only its name."""

    url: str
    name: str
    timeout: float = DEFAULT_TIMEOUT
    per_minute: float = DEFAULT_RATE_PER_MINUTE
    secrets: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Target(name={self.name!r})"


def deliver(target: Target, policy: RetryPolicy, body: bytes, headers: Mapping[str, str]) -> Steps[int]:
    """One delivery as network steps; returns the receiver's status code."""

    def judge(response: httpx.Response) -> int | Retry:
        if response.status_code == 408:
            return Retry("HTTP 408 (request timeout)")
        retry = judge_status(response)
        if retry is not None:
            return retry
        if 300 <= response.status_code < 400:  # following it would send the body (and signature) elsewhere
            return Retry(
                f"HTTP {response.status_code} (a redirect, never followed: the message was not delivered; "
                "if it stays, point the connection at the final address)"
            )
        if response.status_code >= 400:
            answer = response.text[:500]
            for secret in (*target.secrets.values(), target.url):  # a receiver may echo what it was sent
                answer = answer.replace(secret, "***")
            raise DeliveryRejected(f"{target.name} refused the delivery: HTTP {response.status_code}: {answer!r}")
        return response.status_code

    return retrying(policy, body, judge, lambda why: DeliveryError(f"delivery to {target.name} {why}"), headers)


def _paced(limit: RateLimit, steps: Steps[int]) -> Steps[int]:
    wait = limit.wait(time.monotonic())
    if wait > 0:
        yield Wait(wait)
    try:
        return (yield from steps)
    finally:
        limit.last = time.monotonic()


class DeliveryHook(BaseHook, ABC):
    """Base of the action hooks: a connection that names a receiver, a retry policy and a rate limit.

    :param conn_id: the receiver's connection; ``None`` when the subclass has a literal URL.
    :param timeout: seconds per request (default: the connection's ``timeout``, else the default).
    :param retry: bounds for retrying 5xx, 408, 429, timeouts and connection errors; the default
        tries 5 times within 60 s.
    :param rate_per_minute: the most deliveries per minute (default: the connection's
        ``rate_limit_per_minute``, else 60, Slack's one message a second).
    """

    def __init__(
        self,
        conn_id: str | None,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        rate_per_minute: float | None = None,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_attempts=5, max_total_seconds=60.0, backoff_base=0.5, backoff_cap=10.0)
        self._rate = rate_per_minute
        self._limit: RateLimit | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r})"

    def target(self) -> Target:
        if self.conn_id is None:
            return self.make_target(None, {})
        conn = self.get_connection(self.conn_id)
        return self.make_target(conn, conn.extra_dejson)

    async def atarget(self) -> Target:
        if self.conn_id is None:
            return self.make_target(None, {})
        conn = await self.aget_connection(self.conn_id)
        return self.make_target(conn, await conn.aextra_dejson())

    @abstractmethod
    def make_target(self, conn: Any, extra: Mapping[str, Any]) -> Target:
        """The receiver described by a connection (``None``: the hook's literal URL)."""

    def tuning(self, extra: Mapping[str, Any]) -> tuple[float, float]:
        """Timeout and deliveries per minute: hook argument, else connection extra, else default."""
        per_minute = extra_number(extra, "rate_limit_per_minute", self.conn_id, DEFAULT_RATE_PER_MINUTE, low=-1)
        timeout = self.timeout or extra_number(extra, "timeout", self.conn_id, DEFAULT_TIMEOUT)
        return timeout, self._rate if self._rate is not None else per_minute

    def _steps(self, target: Target, body: bytes, headers: Mapping[str, str]) -> Steps[int]:
        if self._limit is None:
            self._limit = RateLimit(target.per_minute)
        return _paced(self._limit, deliver(target, self.retry, body, {**HEADERS, **headers}))

    def post(self, target: Target, body: bytes, headers: Mapping[str, str]) -> int:
        return drive_sync(self._steps(target, body, headers), target.url, shared_sync_client(), target.timeout)

    async def apost(self, target: Target, body: bytes, headers: Mapping[str, str]) -> int:
        steps = self._steps(target, body, headers)
        return await drive_async(steps, target.url, shared_async_client(), target.timeout)


def credential(value: str | None, *, conn_id: str | None, field: str) -> str:
    """A token from a connection, stripped (as the API key is) and checked to be one visible-ASCII
    word: a newline or a space inside it would make an invalid header, and the error raising it would
    carry the token. The message names the connection and the field, never the value."""
    token = (value or "").strip()
    inside = next((i for i, c in enumerate(token) if not "!" <= c <= "~"), None)
    if inside is not None:
        raise ValueError(
            f"connection {conn_id!r}: the {field} has a space, a control or a non-ASCII character inside it "
            f"(character {inside + 1} of {len(token)}); fix the connection (the value is not shown)"
        )
    return token


def masked(*values: Any) -> None:
    """Register secrets with Airflow's masker so no log line or rendered view shows them."""
    for value in values:
        if value:
            mask_secret(str(value))
