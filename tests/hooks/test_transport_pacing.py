"""Pacing on W&B's RateLimit headers as wandb-core paces (core/internal/api/ratelimittracker.go,
ratelimitheaders.go, ratelimitwrapper.go): the tracker's port checked with wandb-core's own cases, and
requests against a real local server spaced when its Remaining runs low, not when it sends none."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from typing import Any

import httpx
import pytest

from airflow_provider_wbauto.hooks.transport import (
    HEADERS,
    Endpoint,
    GraphQLCall,
    RateLimitTracker,
    Read,
    RetryPolicy,
    rate_limit_headers,
    run_async,
    run_sync,
)
from tests.hooks.stub_server import Answer, StubServer


def _endpoint(url: str, policy: RetryPolicy | None = None, timeout: float = 5.0) -> Endpoint:
    conn_id = "pacing-" + uuid.uuid4().hex[:8]  # the process's memory is per URL and connection
    return Endpoint(url, httpx.BasicAuth("api", "k"), timeout, conn_id, policy or RetryPolicy())


# -- the tracker, with wandb-core's ratelimittracker_test.go cases -----------------------------------------


def _tracker(mn: float, mx: float, smoothing: float = 0, window: int = 1) -> RateLimitTracker:
    return RateLimitTracker(min_per_second=mn, max_per_second=mx, smoothing=smoothing, min_requests_for_estimate=window)


def test_initial_rate_limit() -> None:
    assert _tracker(1, 10).target_rate_limit() == 10


def test_no_smoothing_finds_optimal_rate() -> None:
    rl = _tracker(0.01, 10)
    rl.update_estimates(0, 20, 8)
    rl.track_request()
    rl.track_request()
    rl.update_estimates(2, 12, 6)
    assert rl.target_rate_limit() == 0.5  # 2 requests used 8 units; 12 left for 6 s: 3 requests in 6 s


def test_min_requests_for_estimate() -> None:
    rl = _tracker(0.01, 10, window=2)
    rl.update_estimates(0, 20, 7)
    rl.track_request()
    rl.update_estimates(1, 15, 6)
    assert rl.target_rate_limit() == 10
    rl.track_request()
    rl.update_estimates(2, 10, 5)
    assert rl.target_rate_limit() == pytest.approx(0.4)
    rl.track_request()
    rl.update_estimates(3, 5, 4)
    assert rl.target_rate_limit() == pytest.approx(0.4)


def test_smoothing_approaches_the_optimal_rate() -> None:
    rl = _tracker(0.01, 11, smoothing=0.5)
    rl.update_estimates(0, 50, 10)
    estimates = []
    for i in range(1, 10):
        rl.track_request()
        rl.update_estimates(1, 50 - i * 5, 10 - i)
        estimates.append(rl.target_rate_limit())
    assert estimates == sorted(estimates, reverse=True)
    assert estimates[-1] == pytest.approx(1.0, abs=0.05)


def test_one_second_left_changes_nothing() -> None:
    rl = _tracker(0.01, 10)
    rl.update_estimates(0, 6, 2)
    rl.track_request()
    rl.update_estimates(1, 5, 1)
    assert rl.target_rate_limit() == 10


def test_no_quota_change_raises_the_limit() -> None:
    rl = _tracker(0.01, 10)
    rl.update_estimates(0, 15, 6)
    rl.track_request()
    rl.update_estimates(1, 10, 5)
    assert rl.target_rate_limit() == pytest.approx(0.4)
    rl.track_request()
    rl.update_estimates(2, 10, 4)
    assert rl.target_rate_limit() == 10


def test_new_quota_window_raises_the_limit() -> None:
    rl = _tracker(0.01, 10)
    rl.update_estimates(0, 15, 6)
    rl.track_request()
    rl.track_request()
    rl.update_estimates(1, 10, 5)
    assert rl.target_rate_limit() == pytest.approx(0.8)
    rl.update_estimates(7, 5, 10)
    assert rl.target_rate_limit() == 10


def test_no_quota_left_is_the_minimum_rate() -> None:
    rl = _tracker(0.1, 10)
    rl.update_estimates(0, 0, 30)
    assert rl.target_rate_limit() == 0.1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"RateLimit-Remaining": "5"},
        {"RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "-1", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "five", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "nan", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "inf", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "1_000", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "5", "RateLimit-Reset": "Wed, 21 Oct 2015 07:28:00 GMT"},
    ],
)
def test_malformed_headers_are_ignored(headers: dict[str, str]) -> None:
    assert rate_limit_headers(httpx.Headers(headers)) is None


def test_headers_parse_as_wandb_core_parses_them() -> None:
    assert rate_limit_headers(httpx.Headers({"RateLimit-Remaining": "12.5", "RateLimit-Reset": "3"})) == (12.5, 3.0)


# -- against a real server -----------------------------------------------------------------------------


def _pings(n: int) -> Read[list[float]]:
    """``n`` calls, one after the other; the monotonic time each answer came back."""
    times = []
    for _ in range(n):
        yield GraphQLCall("query Ping { viewer { username } }", {})
        times.append(time.monotonic())
    return times


class Quota:
    """A quota of 300 units a 60 s window, a unit a request: about 5 requests a second is the pace that
    spends it by the window's end (what wandb-core's tracker converges to after a few dozen answers)."""

    def __init__(self, units: int = 300, window: float = 60.0) -> None:
        self.units, self.window, self.start, self.used = units, window, time.monotonic(), 0

    def __call__(self, body: dict[str, Any]) -> Answer:
        self.used += 1
        reset = math.ceil(self.window - (time.monotonic() - self.start))
        headers = {"RateLimit-Remaining": str(self.units - self.used), "RateLimit-Reset": str(reset)}
        return 200, headers, {"data": {"viewer": {"username": "u"}}}


REQUESTS = 60


def test_requests_are_spaced_when_remaining_runs_low() -> None:
    with StubServer(Quota()) as server, httpx.Client(headers=HEADERS) as client:
        times = run_sync(_pings(REQUESTS), _endpoint(server.url), client)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # the first answers raise no alarm (wandb-core starts at its maximum rate, with a burst of 10) ...
    assert max(gaps[:20]) < 0.1
    # ... and once it has learned that a request costs a unit of 5 a second left, it spaces them
    assert min(gaps[-5:]) > 0.12, gaps[-10:]
    assert sum(gaps[-5:]) / 5 < 0.5  # near the pace that spends the quota, not the 0.1/s floor


def test_requests_are_not_spaced_without_the_headers() -> None:
    answer: Answer = (200, {}, {"data": {"viewer": {"username": "u"}}})
    with StubServer(lambda body: answer) as server, httpx.Client(headers=HEADERS) as client:
        started = time.monotonic()
        run_sync(_pings(REQUESTS), _endpoint(server.url), client)
    assert time.monotonic() - started < 2.0


def test_pacing_is_bounded_by_the_retry_budget() -> None:
    """A server whose quota is spent asks for the slowest pace (0.1 a second: 10 s apart); a wait is
    never longer than the retry policy's whole budget."""

    def spent(body: dict[str, Any]) -> Answer:
        return 200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "3600"}, {"data": {"viewer": {}}}

    policy = RetryPolicy(max_total_seconds=0.2)
    with StubServer(spent) as server, httpx.Client(headers=HEADERS) as client:
        started = time.monotonic()
        run_sync(_pings(14), _endpoint(server.url, policy), client)  # 10 of burst, then 4 waits of <= 0.2 s
    assert 0.4 < time.monotonic() - started < 2.0


def test_an_async_wait_leaves_the_event_loop_free() -> None:
    def spent(body: dict[str, Any]) -> Answer:
        return 200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "3600"}, {"data": {"viewer": {}}}

    async def main(url: str) -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        async with httpx.AsyncClient(headers=HEADERS) as client:
            await run_async(_pings(13), _endpoint(url, RetryPolicy(max_total_seconds=0.3)), client)
        task.cancel()
        return ticks

    with StubServer(spent) as server:
        assert asyncio.run(main(server.url)) > 30  # the loop ran while the read waited ~0.9 s
