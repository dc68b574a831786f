"""HTTP with retries, written once and driven both synchronously and asynchronously.

A read is a generator that yields ``GraphQLCall``s and receives their ``data``; one request's retry
policy (``retrying``) is a generator that yields ``Send`` / ``Wait`` steps and receives HTTP outcomes.
``drive_sync`` and ``drive_async`` are the only places that touch the network or the clock, so the
sync hooks (workers) and the async hooks (triggerers, notifiers) share every decision: backoff, rate
limits, error typing, paging. W&B's GraphQL reads and the action deliveries both use it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
import weakref
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from airflow.sdk.exceptions import AirflowFailException

T = TypeVar("T")


class WandbError(Exception):
    """Base of the provider's W&B errors. Messages never hold the API key."""


class WandbAuthError(WandbError, AirflowFailException):
    """401/403: a wrong or missing API key. Not retried; fails the task without Airflow retries."""


class WandbGraphQLError(WandbError):
    """The server answered with GraphQL ``errors``; ``messages`` holds the server's words."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("W&B GraphQL error: " + "; ".join(messages))


class WandbNotFoundError(WandbError):
    """A project or collection that does not exist (yet: W&B creates a project with its first run and
    a collection with its first version), or that the API key cannot see."""


class WandbUnavailableError(WandbError):
    """5xx, 429, timeouts, dropped connections or malformed bodies persisted past the retry budget."""


@dataclass(frozen=True)
class GraphQLCall:
    query: str
    variables: dict[str, Any]

    @property
    def operation(self) -> str:
        """The operation's name (``query WbautoRuns(...)``), else its first words."""
        found = re.match(r"\s*(?:query|mutation)\s+(\w+)", self.query)
        return found.group(1) if found else " ".join(self.query.split()[:3])


def checked(read: Read[T]) -> Read[T]:
    """``read``, with an answer it cannot read (a field missing, or of another type: not what W&B's API
    gives, as from a host that is not W&B) a ``WandbError`` naming the query, not a bare KeyError."""
    data: Any = None
    answered: GraphQLCall | None = None  # the call whose answer the read is reading
    while True:
        try:
            call = read.send(data)  # the first send (None) starts it
        except StopIteration as done:
            result: T = done.value
            return result
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            if answered is None:
                raise  # before any answer: not about one
            raise WandbError(
                f"W&B's answer to {answered.operation} is not what W&B's API gives ({type(exc).__name__}: {exc}); "
                "is the connection's host a W&B server?"
            ) from exc
        data = yield call
        answered = call


@dataclass(frozen=True)
class Send:
    """Post this body now (with these headers on top of the client's)."""

    body: bytes
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded in attempts and in total time; exponential backoff with jitter."""

    max_attempts: int = 5
    max_total_seconds: float = 120.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


Outcome = httpx.Response | httpx.TransportError
Read = Generator[GraphQLCall, dict[str, Any], T]
Steps = Generator[Send | Wait, Outcome | None, T]


@dataclass(frozen=True)
class Retry:
    """A judge's verdict: try again (after ``wait`` seconds, or the policy's backoff)."""

    problem: str
    wait: float | None = None


def retrying(
    policy: RetryPolicy,
    body: bytes,
    judge: Callable[[httpx.Response], T | Retry],
    unavailable: Callable[[str], Exception],
    headers: Mapping[str, str] | None = None,
    clock: Any = time.monotonic,
) -> Steps[T]:
    """Send, let ``judge`` read the response (a value, a ``Retry``, or an exception for a fatal
    answer), and resend within the policy's bounds; connection errors and timeouts are retried."""
    started = clock()
    problem = ""
    for attempt in range(1, policy.max_attempts + 1):
        outcome = yield Send(body, headers)
        if outcome is None:
            raise RuntimeError("retrying expects the outcome of Send")
        wait: float | None = None
        if isinstance(outcome, httpx.TransportError):
            problem = f"{type(outcome).__name__}: {outcome}" if str(outcome) else type(outcome).__name__
        else:
            verdict = judge(outcome)
            if not isinstance(verdict, Retry):
                return verdict
            problem, wait = verdict.problem, verdict.wait
        if attempt == policy.max_attempts:
            break
        wait = policy.backoff(attempt) if wait is None else wait
        if clock() - started + wait > policy.max_total_seconds:
            break
        yield Wait(wait)
    raise unavailable(f"failed after {attempt} attempt(s) in {clock() - started:.1f}s: last error was {problem}")


def judge_status(response: httpx.Response) -> Retry | None:
    """The verdict every receiver shares: 429 waits as told, 5xx retries; None when neither."""
    if response.status_code == 429:
        return Retry("HTTP 429 (rate limited)", rate_limit_wait(response.headers))
    if response.status_code >= 500:
        return Retry(f"HTTP {response.status_code}")
    return None


def exchange(
    policy: RetryPolicy, conn_id: str, body: bytes, clock: Any = time.monotonic, host: str = ""
) -> Steps[dict[str, Any]]:
    """One GraphQL call: send, judge the outcome, wait and resend within the policy's bounds. Errors
    name the connection and the host, never the key."""
    at = f" at {host}" if host else ""

    def judge(outcome: httpx.Response) -> dict[str, Any] | Retry:
        if outcome.status_code in (401, 403):
            raise WandbAuthError(
                f"W&B{at} rejected the API key of connection {conn_id!r} (HTTP {outcome.status_code}); "
                "check the connection's password (API key) and host"
            )
        retry = judge_status(outcome)
        if retry is not None:
            return retry
        if outcome.status_code >= 400:
            raise WandbError(f"W&B answered HTTP {outcome.status_code}: {outcome.text[:500]}")
        try:
            answer = outcome.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return Retry("a malformed (non-JSON) response body")
        if answer.get("errors"):
            raise WandbGraphQLError([str(e.get("message", e)) for e in answer["errors"]])
        data: dict[str, Any] = answer.get("data") or {}
        return data

    def unavailable(why: str) -> WandbUnavailableError:
        return WandbUnavailableError(f"W&B{at} (connection {conn_id!r}) request {why}")

    return retrying(policy, body, judge, unavailable, clock=clock)


def rate_limit_wait(headers: httpx.Headers) -> float | None:
    """``Retry-After`` (seconds or an HTTP date), else ``RateLimit-Reset`` (seconds); None if neither."""
    for name in ("Retry-After", "RateLimit-Reset"):
        value = headers.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(0.0, when.timestamp() - time.time())
    return None


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to post. The key is only ever placed in the Authorization header."""

    url: str
    auth: httpx.BasicAuth
    timeout: float
    conn_id: str
    policy: RetryPolicy

    def __repr__(self) -> str:
        return f"Endpoint(url={self.url!r}, conn_id={self.conn_id!r})"

    @property
    def host(self) -> str:
        """The base URL, without the GraphQL path: what error messages name."""
        return self.url.removesuffix("/graphql")

    def body(self, call: GraphQLCall) -> bytes:
        return json.dumps({"query": call.query, "variables": call.variables}).encode()


HEADERS = {"Content-Type": "application/json", "User-Agent": "airflow-provider-wbauto"}


def extra_number(extra: Mapping[str, Any], name: str, conn_id: str | None, default: float, *, low: float = 0) -> float:
    """A number from a connection's extra (a number or its text), greater than ``low``; else a
    ValueError naming the connection and the field."""
    value = extra.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > low or number == float("inf"):
        raise ValueError(f"connection {conn_id!r}: extra {name!r} must be a number greater than {low:g}; got {value!r}")
    return number


def base_url(host: str | None, default: str) -> str:
    """A connection's host as a base URL: trimmed, no trailing ``/``, ``https://`` unless it names a scheme."""
    base = (host or default).strip().rstrip("/")
    return base if "://" in base else "https://" + base


def plan(read: Read[T], endpoint: Endpoint) -> Steps[T]:
    """The whole read as network steps: each call's exchange, in turn, until the read returns."""
    read = checked(read)
    try:
        call = next(read)
        while True:
            data = yield from exchange(endpoint.policy, endpoint.conn_id, endpoint.body(call), host=endpoint.host)
            call = read.send(data)
    except StopIteration as finished:
        result: T = finished.value
        return result


def run_sync(read: Read[T], endpoint: Endpoint, client: httpx.Client) -> T:
    return drive_sync(plan(read, endpoint), endpoint.url, client, endpoint.timeout, endpoint.auth)


async def run_async(read: Read[T], endpoint: Endpoint, client: httpx.AsyncClient) -> T:
    return await drive_async(plan(read, endpoint), endpoint.url, client, endpoint.timeout, endpoint.auth)


def drive_sync(
    steps: Steps[T], url: str, client: httpx.Client, timeout: float, auth: Any = httpx.USE_CLIENT_DEFAULT
) -> T:
    """The only synchronous code that touches the network or the clock."""
    outcome: Outcome | None = None
    try:
        while True:
            step = steps.send(outcome)
            if isinstance(step, Wait):
                time.sleep(step.seconds)
                outcome = None
                continue
            try:
                outcome = client.post(url, content=step.body, headers=step.headers, auth=auth, timeout=timeout)
            except httpx.TransportError as exc:
                outcome = exc
    except StopIteration as done:
        result: T = done.value
        return result


async def drive_async(
    steps: Steps[T], url: str, client: httpx.AsyncClient, timeout: float, auth: Any = httpx.USE_CLIENT_DEFAULT
) -> T:
    """``drive_sync`` for an event loop: awaits where the other blocks."""
    outcome: Outcome | None = None
    try:
        while True:
            step = steps.send(outcome)
            if isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
                outcome = None
                continue
            try:
                outcome = await client.post(url, content=step.body, headers=step.headers, auth=auth, timeout=timeout)
            except httpx.TransportError as exc:
                outcome = exc
    except StopIteration as done:
        result: T = done.value
        return result


_ASYNC_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
_SYNC_CLIENT: list[httpx.Client] = []
_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)


def shared_async_client() -> httpx.AsyncClient:
    """One pooled client per event loop: every trigger in a triggerer shares its connections."""
    loop = asyncio.get_running_loop()
    client = _ASYNC_CLIENTS.get(loop)
    if client is None or client.is_closed:
        client = _ASYNC_CLIENTS[loop] = httpx.AsyncClient(headers=HEADERS, limits=_LIMITS)
    return client


def shared_sync_client() -> httpx.Client:
    """One pooled client per process for the workers' synchronous calls."""
    if not _SYNC_CLIENT or _SYNC_CLIENT[0].is_closed:
        _SYNC_CLIENT[:] = [httpx.Client(headers=HEADERS, limits=_LIMITS)]
    return _SYNC_CLIENT[0]
