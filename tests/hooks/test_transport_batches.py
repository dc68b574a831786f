"""Batches that shrink: a call marked as a batch of n > 1 items that times out or gets a 5xx is not
sent again as is; the read is told (``BatchTooBig``) and asks for the work in halves, down to one item,
and the halved size is remembered for the endpoint and the batch's kind. Against a real local server
that fails any body with more than k aliases."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from airflow_provider_wbauto.hooks.transport import (
    HEADERS,
    Batch,
    BatchTooBig,
    Endpoint,
    GraphQLCall,
    Read,
    RetryPolicy,
    WandbUnavailableError,
    batch_limit,
    batched,
    run_async,
    run_sync,
)
from tests.hooks.stub_server import Answer, StubServer

ALIAS = re.compile(r"\bn(\d+): node")


def _endpoint(url: str, timeout: float = 5.0) -> Endpoint:
    policy = RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_cap=0.01)
    return Endpoint(url, httpx.BasicAuth("api", "k"), timeout, "batches-" + uuid.uuid4().hex[:8], policy)


def _call(chunk: Sequence[int]) -> GraphQLCall:
    fields = " ".join(f"n{i}: node(id: $i{i}) {{ id }}" for i in range(len(chunk)))
    decl = ", ".join(f"$i{i}: ID!" for i in range(len(chunk)))
    return GraphQLCall(f"query Nodes({decl}) {{ {fields} }}", {f"i{i}": str(item) for i, item in enumerate(chunk)})


def read_nodes(items: Sequence[int], default: int = 8) -> Read[list[str]]:
    """The ids of ``items``, read ``default`` at a time (fewer once a batch failed)."""
    answers = yield from batched(items, "nodes", default, _call)
    return [data[f"n{i}"]["id"] for chunk, data in answers for i in range(len(chunk))]


class FailsAbove:
    """Answers each node, unless the body asks for more than ``k``: then a 503, or (``slow``) no answer
    before the client's timeout."""

    def __init__(self, k: int, slow: float = 0.0) -> None:
        self.k, self.slow, self.sizes = k, slow, list[int]()

    def __call__(self, body: dict[str, Any]) -> Answer:
        size = len(ALIAS.findall(body["query"]))
        self.sizes.append(size)
        if size > self.k:
            if not self.slow:
                return 503, {}, {"error": "upstream timed out"}
            time.sleep(self.slow)
        return 200, {}, {"data": {f"n{i}": {"id": body["variables"][f"i{i}"]} for i in range(size)}}


def test_a_5xx_halves_the_batch_and_the_size_is_remembered() -> None:
    server_answers = FailsAbove(k=2)
    with StubServer(server_answers) as server, httpx.Client(headers=HEADERS) as client:
        endpoint = _endpoint(server.url)
        assert run_sync(read_nodes(range(8)), endpoint, client) == [str(i) for i in range(8)]
        assert server_answers.sizes == [8, 4, 2, 2, 2, 2]  # the heavy body is never sent twice
        assert batch_limit(endpoint, "nodes", 8) == 2
        assert batch_limit(endpoint, "other", 8) == 8  # per batch kind
        server_answers.sizes.clear()
        assert run_sync(read_nodes(range(5)), endpoint, client) == [str(i) for i in range(5)]
        assert server_answers.sizes == [2, 2, 1]  # the next read starts at the remembered size
        other = _endpoint(server.url)  # another connection to the same URL: its own memory
        assert batch_limit(other, "nodes", 8) == 8


def test_a_timeout_halves_the_batch() -> None:
    server_answers = FailsAbove(k=2, slow=1.0)
    with StubServer(server_answers) as server, httpx.Client(headers=HEADERS) as client:
        endpoint = _endpoint(server.url, timeout=0.3)
        assert run_sync(read_nodes(range(4), default=4), endpoint, client) == ["0", "1", "2", "3"]
    assert server_answers.sizes == [4, 2, 2]


def test_the_async_runner_halves_too() -> None:
    server_answers = FailsAbove(k=3)

    async def main(url: str) -> list[str]:
        async with httpx.AsyncClient(headers=HEADERS) as client:
            return await run_async(read_nodes(range(6), default=6), _endpoint(url), client)

    with StubServer(server_answers) as server:
        assert asyncio.run(main(server.url)) == [str(i) for i in range(6)]
    assert server_answers.sizes == [6, 3, 3]


def test_at_one_item_a_fault_is_retried_as_any_calls() -> None:
    server_answers = FailsAbove(k=0)
    with (
        StubServer(server_answers) as server,
        httpx.Client(headers=HEADERS) as client,
        pytest.raises(WandbUnavailableError, match="2 attempt"),
    ):
        run_sync(read_nodes(range(4), default=4), _endpoint(server.url), client)
    assert server_answers.sizes == [4, 2, 1, 1]  # halved down to one, then the policy's 2 attempts


def test_a_read_that_does_not_split_fails_as_unavailable() -> None:
    def unsplit() -> Read[dict[str, Any]]:
        data = yield GraphQLCall(_call(range(4)).query, _call(range(4)).variables, batch=Batch("nodes", 4))
        return data

    with StubServer(FailsAbove(k=1)) as server, httpx.Client(headers=HEADERS) as client:
        endpoint = _endpoint(server.url)
        with pytest.raises(BatchTooBig) as raised:
            run_sync(unsplit(), endpoint, client)
    assert isinstance(raised.value, WandbUnavailableError)
    assert batch_limit(endpoint, "nodes", 8) == 2


def test_a_429_on_a_batch_waits_and_resends_it_whole() -> None:
    """Rate limiting says nothing of the body's size: the batch is not split."""
    sizes: list[int] = []

    def limited_once(body: dict[str, Any]) -> Answer:
        sizes.append(size := len(ALIAS.findall(body["query"])))
        if len(sizes) == 1:
            return 429, {"Retry-After": "0"}, {}
        return 200, {}, {"data": {f"n{i}": {"id": body["variables"][f"i{i}"]} for i in range(size)}}

    with StubServer(limited_once) as server, httpx.Client(headers=HEADERS) as client:
        assert run_sync(read_nodes(range(4), default=4), _endpoint(server.url), client) == ["0", "1", "2", "3"]
    assert sizes == [4, 4]
