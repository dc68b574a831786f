"""HTTP with retries, written once and driven both synchronously and asynchronously.

A read is a generator that yields ``GraphQLCall``s and receives their ``data``; one request's retry
policy (``retrying``) is a generator that yields ``Send`` / ``Wait`` steps and receives HTTP outcomes.
``drive_sync`` and ``drive_async`` are the only places that touch the network or the clock, so the
sync hooks (workers) and the async hooks (triggerers, notifiers) share every decision: backoff, rate
limits, error typing, paging. W&B's GraphQL reads and the action deliveries both use it.

A read may also yield two requests that only the runner can answer, since a read does not know its
endpoint: ``BatchLimit`` (how many items one batch of a kind may carry on this endpoint: a batch that
timed out or got a 5xx is halved, and the halved size remembered per endpoint and process) and
``Probe`` (a capability, read once per endpoint and process; see ``capabilities``). Every GraphQL
request is paced on W&B's ``RateLimit-Remaining`` / ``RateLimit-Reset`` headers as wandb-core paces.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx
from airflow.sdk.exceptions import AirflowFailException

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741

log = logging.getLogger(__name__)


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


class BatchTooBig(WandbUnavailableError):
    """Thrown into a read at a ``batch`` call of more than one item that timed out or got a 5xx: the
    read re-issues the work in smaller batches (``batched`` does). Not caught, it is an unavailability."""

    def __init__(self, batch: Batch, problem: str) -> None:
        self.batch = batch
        super().__init__(f"a batch of {batch.size} {batch.name} failed ({problem}); asking for fewer at a time")


@dataclass(frozen=True)
class Batch:
    """A call carrying ``size`` items of the kind ``name`` (runs, versions...): one that may be split."""

    name: str
    size: int


@dataclass(frozen=True)
class GraphQLCall:
    query: str
    variables: dict[str, Any]
    batch: Batch | None = None

    @property
    def operation(self) -> str:
        """The operation's name (``query WbautoRuns(...)``), else its first words."""
        found = re.match(r"\s*(?:query|mutation)\s+(\w+)", self.query)
        return found.group(1) if found else " ".join(self.query.split()[:3])


def checked(read: Read[T]) -> Read[T]:
    """``read``, with an answer it cannot read (a field missing, or of another type: not what W&B's API
    gives, as from a host that is not W&B) a ``WandbError`` naming the query, not a bare KeyError."""
    data: Any = None
    thrown: Exception | None = None  # what the runner threw at the read's last request
    answered: GraphQLCall | None = None  # the call whose answer the read is reading
    while True:
        try:
            call = read.send(data) if thrown is None else read.throw(thrown)  # the first send (None) starts it
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
        thrown = None
        try:
            data = yield call
        except Exception as exc:  # e.g. BatchTooBig: the read may re-issue its work
            thrown = exc
            continue
        if isinstance(call, GraphQLCall):
            answered = call


@dataclass(frozen=True)
class BatchLimit:
    """A read's question to its runner: how many ``name`` items may one call carry on this endpoint?
    The answer (an int) is ``default``, or less once a batch of that kind timed out or got a 5xx."""

    name: str
    default: int


@dataclass(frozen=True)
class Probe(Generic[T]):
    """A read's question to its runner: what ``read()`` answers on this endpoint. Run once per endpoint
    and process under ``key``; when it fails (not for a rejected key), ``fallback`` (the conservative
    answer) is given instead and the failure logged once."""

    key: str
    read: Callable[[], Read[T]]
    fallback: T


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
Request = GraphQLCall | BatchLimit | Probe[Any]
# A GraphQLCall is answered with its ``data`` (a dict), a BatchLimit with an int, a Probe with its value.
Read = Generator[Request, Any, T]
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


# -- pacing on W&B's RateLimit headers, as wandb-core paces (core/internal/api/ratelimit*.go) ----------

_NUMBER = re.compile(r"\+?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def rate_limit_headers(headers: httpx.Headers) -> tuple[float, float] | None:
    """(``RateLimit-Remaining``, ``RateLimit-Reset``) when both are non-negative numbers, else None
    (wandb-core's ParseRateLimitHeaders; a missing, repeated or malformed header is ignored)."""
    values = []
    for name in ("RateLimit-Remaining", "RateLimit-Reset"):
        text = (headers.get(name) or "").strip()
        if not _NUMBER.fullmatch(text):
            return None
        values.append(float(text))
    remaining, reset = values
    return (remaining, reset) if math.isfinite(remaining) and math.isfinite(reset) else None


@dataclass
class RateLimitTracker:
    """wandb-core's RateLimitTracker: the request rate that spends the quota left (``Remaining``, in
    an opaque unit) by the window's end (``Reset`` seconds), learning how many requests a unit buys
    from consecutive answers. Starts at ``max_per_second``; never below ``min_per_second``."""

    min_per_second: float = 0.1
    max_per_second: float = 65536.0
    smoothing: float = 0.2
    min_requests_for_estimate: int = 5
    requests_per_unit: float = 1.0
    target_units_per_sec: float = field(default=0.0)
    last_remaining: float = 0.0
    last_invalid_time: float = -math.inf
    requests_since_last: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.smoothing < 1:
            raise ValueError(f"bad rate limit smoothing: {self.smoothing}")
        self.min_requests_for_estimate = max(1, self.min_requests_for_estimate)
        self.target_units_per_sec = self.target_units_per_sec or self.max_per_second

    def target_rate_limit(self) -> float:
        rate = self.requests_per_unit * self.target_units_per_sec
        return min(max(rate, self.min_per_second), self.max_per_second)

    def track_request(self) -> None:
        self.requests_since_last += 1

    def update_estimates(self, now: float, remaining: float, reset: float) -> None:
        if reset <= 1:
            return  # too little of the quota window left to estimate a rate
        requests, self.requests_since_last = self.requests_since_last, 0
        if now < self.last_invalid_time and requests < self.min_requests_for_estimate:
            self.requests_since_last += requests  # too few requests for a good estimate
            return
        consumed, new_window = self.last_remaining - remaining, now > self.last_invalid_time
        self.last_remaining, self.last_invalid_time = remaining, now + reset
        self.target_units_per_sec = remaining / reset
        if self.target_units_per_sec <= 0:
            return  # no quota left: the rate is the minimum until an answer says otherwise (wandb-core: NaN)
        if consumed < 1 or new_window:
            estimate = self.max_per_second / self.target_units_per_sec
        else:
            estimate = requests / consumed
        self.requests_per_unit = self.requests_per_unit * self.smoothing + estimate * (1 - self.smoothing)


@dataclass
class TokenBucket:
    """golang.org/x/time/rate's Limiter, as wandb-core uses it: ``limit`` tokens a second, up to ``burst``."""

    limit: float
    burst: int
    tokens: float = field(default=-1.0)
    last: float = field(default=-math.inf)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst) if self.tokens < 0 else self.tokens

    def _advance(self, now: float) -> None:
        if now > self.last:
            elapsed = now - self.last if self.last > -math.inf else 0.0
            self.tokens = min(float(self.burst), self.tokens + elapsed * self.limit)
            self.last = now

    def set_limit(self, now: float, limit: float) -> None:
        self._advance(now)
        self.limit = limit

    def reserve(self, now: float, max_wait: float) -> float:
        """Take a token; the seconds to wait before using it (a wait over ``max_wait`` takes none and
        is cut to ``max_wait``: the request goes then, unpaced, as the retry budget allows no more)."""
        self._advance(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        wait = (1 - self.tokens) / self.limit
        if wait > max_wait:
            return max_wait
        self.tokens -= 1
        return wait


class Pacer:
    """One endpoint's pacing, shared by every read of the process (threads and event loops)."""

    MAX_BURST = 10  # wandb-core's maxBurst

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.tracker = RateLimitTracker()
        self.bucket = TokenBucket(self.tracker.max_per_second, self.MAX_BURST)
        self.lock = threading.Lock()

    def before(self, max_wait: float) -> float:
        """Seconds to wait before the next request (and count it)."""
        with self.lock:
            wait = self.bucket.reserve(self.clock(), max(0.0, max_wait))
            self.tracker.track_request()
            return wait

    def after(self, headers: httpx.Headers) -> None:
        """Learn from an answer's RateLimit headers; an answer without them changes nothing."""
        parsed = rate_limit_headers(headers)
        if parsed is None:
            return
        with self.lock:
            now = self.clock()
            self.tracker.update_estimates(now, *parsed)
            self.bucket.set_limit(now, self.tracker.target_rate_limit())


_PACERS: dict[tuple[str, str], Pacer] = {}
_MEMORY_LOCK = threading.Lock()


def pacer(endpoint: Endpoint) -> Pacer:
    """The endpoint's (URL and connection) pacer in this process."""
    with _MEMORY_LOCK:
        return _PACERS.setdefault(endpoint.key, Pacer())


def paced(steps: Steps[T], by: Pacer, max_wait: float) -> Steps[T]:
    """``steps``, with a wait before each send as ``by`` says (at most ``max_wait``), and every answer's
    RateLimit headers given to ``by``."""
    outcome: Outcome | None = None
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(step, Send):
            wait = by.before(max_wait)
            if wait > 0:
                yield Wait(wait)
        outcome = yield step
        if isinstance(outcome, httpx.Response):
            by.after(outcome.headers)


# -- batches that shrink on timeouts and 5xx, remembered per endpoint and process ------------------------

_BATCH_LIMITS: dict[tuple[str, str, str], int] = {}


def batch_limit(endpoint: Endpoint, name: str, default: int) -> int:
    """How many ``name`` items one call may carry on ``endpoint``: ``default``, or the halved size
    remembered since a bigger batch of them timed out or got a 5xx in this process."""
    with _MEMORY_LOCK:
        return max(1, min(default, _BATCH_LIMITS.get((*endpoint.key, name), default)))


def _remember_halved(endpoint: Endpoint, batch: Batch) -> None:
    halved = max(1, batch.size // 2)
    with _MEMORY_LOCK:
        key = (*endpoint.key, batch.name)
        _BATCH_LIMITS[key] = min(halved, _BATCH_LIMITS.get(key, halved))
    log.warning(
        "W&B at %s: a batch of %d %s failed; asking for %d at a time", endpoint.host, batch.size, batch.name, halved
    )


def _splittable(steps: Steps[T], batch: Batch) -> Steps[T]:
    """``steps``, except that a timeout or a 5xx raises ``BatchTooBig`` instead of resending the body."""
    outcome: Outcome | None = None
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as done:
            result: T = done.value
            return result
        outcome = yield step
        if isinstance(outcome, httpx.TimeoutException):
            problem = type(outcome).__name__
        elif isinstance(outcome, httpx.Response) and outcome.status_code >= 500:
            problem = f"HTTP {outcome.status_code}"
        else:
            continue
        steps.close()
        raise BatchTooBig(batch, problem)


def batched(
    items: Sequence[I], name: str, default: int, make_call: Callable[[Sequence[I]], GraphQLCall]
) -> Read[list[tuple[Sequence[I], dict[str, Any]]]]:
    """Each chunk of ``items`` with the ``data`` of ``make_call(chunk)``, in order: chunks of the
    endpoint's limit for ``name`` (``default`` until a batch fails); a chunk that times out or gets a
    5xx is asked again in halves, down to one item (whose faults are retried as any call's)."""
    size: int = yield BatchLimit(name, default)
    answers: list[tuple[Sequence[I], dict[str, Any]]] = []
    start = 0
    while start < len(items):
        chunk = items[start : start + size]
        try:
            data = yield replace(make_call(chunk), batch=Batch(name, len(chunk)))
        except BatchTooBig:
            size = max(1, len(chunk) // 2)
            continue
        answers.append((chunk, data))
        start += len(chunk)
    return answers


# -- capability probes: once per endpoint and process -------------------------------------------------


@dataclass
class _Probed:
    value: Any
    error: str | None  # why the probe failed (its fallback is the value), else None
    until: float  # monotonic time after which a failure that may pass (unavailable) is probed again


_PROBES: dict[tuple[str, str, str], _Probed] = {}
PROBE_RETRY_SECONDS = 600.0  # a probe that failed as unavailable is tried again after this


def _probe(probe: Probe[T], endpoint: Endpoint) -> Steps[T]:
    key = (*endpoint.key, probe.key)
    with _MEMORY_LOCK:
        known = _PROBES.get(key)
    if known is not None and time.monotonic() < known.until:
        value: T = known.value
        return value
    try:
        value = yield from plan(probe.read(), endpoint)
        probed = _Probed(value, None, math.inf)
    except WandbAuthError:
        raise
    except WandbError as exc:
        value = probe.fallback
        passing = isinstance(exc, WandbUnavailableError)
        probed = _Probed(value, str(exc), time.monotonic() + PROBE_RETRY_SECONDS if passing else math.inf)
        if known is None or known.error is None:
            log.warning(
                "W&B at %s (connection %r): probe %s failed, using the conservative answer %r: %s",
                endpoint.host,
                endpoint.conn_id,
                probe.key,
                value,
                exc,
            )
    with _MEMORY_LOCK:
        _PROBES[key] = probed
    return value


def probe_errors(endpoint: Endpoint) -> dict[str, str]:
    """The probes that failed on ``endpoint`` in this process (whose conservative answer is in use), with why."""
    with _MEMORY_LOCK:
        return {k[2]: p.error for k, p in _PROBES.items() if k[:2] == endpoint.key and p.error is not None}


def forget_endpoint(endpoint: Endpoint) -> None:
    """Drop what this process learned about ``endpoint``: pacing, batch limits, probes (``doctor`` asks afresh)."""
    with _MEMORY_LOCK:
        _PACERS.pop(endpoint.key, None)
        for memory in (_BATCH_LIMITS, _PROBES):
            for k in [k for k in memory if k[:2] == endpoint.key]:
                del memory[k]


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
    def key(self) -> tuple[str, str]:
        """What the process's memory of an endpoint (pacing, batch sizes, probes) is kept under."""
        return (self.url, self.conn_id)

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
    """The whole read as network steps: each call's exchange, paced, in turn, until the read returns;
    ``BatchLimit`` and ``Probe`` requests answered from the endpoint's memory (a probe run at most once)."""
    read = checked(read)
    answer: Any = None
    thrown: BatchTooBig | None = None
    while True:
        try:
            request = read.send(answer) if thrown is None else read.throw(thrown)
        except StopIteration as finished:
            result: T = finished.value
            return result
        thrown = None
        if isinstance(request, BatchLimit):
            answer = batch_limit(endpoint, request.name, request.default)
        elif isinstance(request, Probe):
            answer = yield from _probe(request, endpoint)
        else:
            steps = exchange(endpoint.policy, endpoint.conn_id, endpoint.body(request), host=endpoint.host)
            if request.batch is not None and request.batch.size > 1:
                steps = _splittable(steps, request.batch)
            try:
                answer = yield from paced(steps, pacer(endpoint), endpoint.policy.max_total_seconds)
            except BatchTooBig as exc:
                _remember_halved(endpoint, exc.batch)
                thrown = exc


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
