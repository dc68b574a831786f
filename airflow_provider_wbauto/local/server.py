"""The HTTP side of the local W&B stand-in: ``POST /graphql`` with Basic auth, plus fault injection.

Faults are rules kept by the server process (it is a test double): each matches a request path
(``*`` = every path) and applies to its next ``count`` requests (``None`` = until cleared):

- ``status``: answer with ``status`` (default 503);
- ``rate_limit``: 429 with ``Retry-After`` and ``RateLimit-Reset`` headers;
- ``latency``: wait ``seconds`` before answering normally;
- ``drop``: close the connection without an answer;
- ``malformed``: 200 with a body that is not JSON.

They are set with ``POST /_local/faults`` (JSON body, or a list of them) or ``--fault`` at start,
cleared with ``DELETE /_local/faults``; ``GET /_local/stats`` counts requests and response bytes per path.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from graphql import DocumentNode, GraphQLError, GraphQLSchema, execute_sync, parse, validate
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import resolvers
from .store import Store, StoreError

FaultMode = Literal["status", "rate_limit", "latency", "drop", "malformed"]
FAULT_MODES: tuple[str, ...] = ("status", "rate_limit", "latency", "drop", "malformed")


@dataclass
class Fault:
    mode: FaultMode
    path: str = "*"
    count: int | None = 1
    status: int = 503
    seconds: float = 0.0
    retry_after: float | None = 1.0
    reset: float | None = 1.0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Fault:
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; allowed: {sorted(cls.__dataclass_fields__)}")
        if raw.get("mode") not in FAULT_MODES:
            raise ValueError(f"fault mode {raw.get('mode')!r} is not one of {', '.join(FAULT_MODES)}")
        return cls(**raw)


@dataclass
class ServerState:
    store: Store
    api_keys: frozenset[str]
    default_entity: str | None = None
    faults: list[Fault] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)  # response body bytes per path
    query_cache: int = 512  # parsed and validated query texts kept (0: parse and validate each request)

    def take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path in ("*", path):
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                return fault
        return None


def _authorized(request: Request, keys: frozenset[str]) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, key = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return user == "api" and any(secrets.compare_digest(key, k) for k in keys)


def _abort_connection(request: Request) -> None:
    """Drop the TCP connection under the request (uvicorn keeps the transport on the receive callable)."""
    cycle = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("cannot reach the transport to drop the connection")
    transport.abort()


async def _apply_fault(request: Request, state: ServerState) -> Response | None:
    fault = state.take_fault(request.url.path)
    if fault is None:
        return None
    if fault.mode == "latency":
        await asyncio.sleep(fault.seconds)
        return None
    if fault.mode == "status":
        return JSONResponse({"error": f"injected fault {fault.status}"}, status_code=fault.status)
    if fault.mode == "rate_limit":
        headers = {"RateLimit-Remaining": "0"}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.reset is not None:
            headers["RateLimit-Reset"] = f"{fault.reset:g}"
        return JSONResponse({"error": "rate limited"}, status_code=429, headers=headers)
    if fault.mode == "malformed":
        return Response('{"data": {"viewer": ', status_code=200, media_type="application/json")
    _abort_connection(request)
    return Response(status_code=500)  # never reaches the client


def _dumps(payload: Any) -> bytes:
    # History values may be NaN or +-inf; W&B's JSON carries them as the literals Python accepts.
    return json.dumps(payload, allow_nan=True, separators=(",", ":")).encode()


Checked = tuple[DocumentNode | None, list[GraphQLError]]


def _checker(schema: GraphQLSchema, size: int) -> Callable[[str], Checked]:
    """Parse and validate a query text, remembering the last ``size`` texts: a poller sends the same few
    queries again and again, and parsing and validating them was three quarters of a quiet poll's cost."""

    def check(query: str) -> Checked:
        try:
            document = parse(query)
        except GraphQLError as error:
            return None, [error]
        errors = validate(schema, document)
        return (None, errors) if errors else (document, [])

    return functools.lru_cache(maxsize=size)(check) if size else check


def create_app(state: ServerState) -> Starlette:
    schema = resolvers.build()
    check = _checker(schema, state.query_cache)

    def run(query: str, variables: dict[str, Any], operation: str | None, context: dict[str, Any]) -> Any:
        document, errors = check(query)
        if document is None:
            return None, errors
        result = execute_sync(
            schema, document, variable_values=variables, operation_name=operation, context_value=context
        )
        return result.data, result.errors

    async def graphql_endpoint(request: Request) -> Response:
        state.stats[request.url.path] += 1
        faulted = await _apply_fault(request, state)
        if faulted is not None:
            return faulted
        if not _authorized(request, state.api_keys):
            return JSONResponse(
                {"errors": [{"message": "Unauthorized: invalid or missing API key"}]},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="wandb"'},
            )
        try:
            body = await request.json()
            query = body["query"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": [{"message": "expected a JSON body with a query"}]}, status_code=400)
        context = {"store": state.store, "default_entity": state.default_entity}
        if not isinstance(query, str):
            return JSONResponse({"errors": [{"message": "query must be a string"}]}, status_code=400)
        data, errors = await run_in_threadpool(
            run, query, body.get("variables") or {}, body.get("operationName") or None, context
        )
        payload: dict[str, Any] = {"data": data}
        if errors:
            payload["errors"] = [_error(e) for e in errors]
        body_out = _dumps(payload)
        state.sent[request.url.path] += len(body_out)
        return Response(body_out, media_type="application/json")

    async def faults_endpoint(request: Request) -> Response:
        if not _authorized(request, state.api_keys):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if request.method == "DELETE":
            state.faults.clear()
            return JSONResponse({"faults": []})
        if request.method == "POST":
            raw = await request.json()
            try:
                state.faults.extend(Fault.parse(f) for f in (raw if isinstance(raw, list) else [raw]))
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"faults": [f.__dict__ for f in state.faults]})

    async def stats_endpoint(request: Request) -> Response:
        if request.method == "DELETE":
            state.stats.clear()
            state.sent.clear()
        return JSONResponse({"requests": dict(state.stats), "bytes": dict(state.sent)})

    async def not_found(request: Request) -> Response:
        state.stats[request.url.path] += 1
        faulted = await _apply_fault(request, state)
        if faulted is not None:
            return faulted
        return JSONResponse({"error": "not found"}, status_code=404)

    return Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["POST"]),
            Route("/_local/faults", faults_endpoint, methods=["GET", "POST", "DELETE"]),
            Route("/_local/stats", stats_endpoint, methods=["GET", "DELETE"]),
            Route("/{path:path}", not_found, methods=["GET", "POST", "PUT"]),
        ]
    )


def _error(error: GraphQLError) -> dict[str, Any]:
    out: dict[str, Any] = {"message": str(error.message)}
    if error.path:
        out["path"] = list(error.path)
    if isinstance(error.original_error, StoreError):
        out["extensions"] = {"code": "BAD_REQUEST"}
    return out
