"""The HTTP side of the local W&B stand-in: ``POST /graphql`` with Basic auth, plus fault injection.

Faults are rules kept by the server process (it is a test double): each matches a request path
(``*`` = every path) and applies to its next ``count`` requests (``None`` = until cleared), or with
``rate`` < 1 to that share of them, at random:

- ``status``: answer with ``status`` (default 503);
- ``rate_limit``: 429 with ``Retry-After`` and ``RateLimit-Reset`` headers;
- ``latency``: wait ``seconds`` before answering normally;
- ``drop``: close the connection without an answer;
- ``malformed``: 200 with a body that is not JSON.

They are set with ``POST /_local/faults`` (JSON body, or a list of them) or ``--fault`` at start,
cleared with ``DELETE /_local/faults``; ``GET /_local/stats`` counts requests and response bytes per path.
Both need the API key, and faults apply only to requests that carry it, so a stranger's request
neither reads nor resets them.

Strict (the default): a GraphQL request is served only when everything it uses of W&B's API (every
field, argument, and the forms of its ``order``, filter and history-spec values) occurs in a real W&B
client (``local/evidence.py``, ``wire_evidence.json``). Anything else is refused as W&B refuses an
invalid query: HTTP 200, ``{"errors": [{"message": ...}], "data": null}``, worded as graphql-js words it
(``Unknown argument "x" on field "Type.field".``). The refused items are counted in ``/_local/stats``
(``refused``). ``ServerState(strict=False)`` serves whatever its schema can answer
(``wbauto-local serve --no-evidence-check``; ``--lenient`` also answers as before issue 25,
``WireOptions.lenient()``).

Bad requests get a 4xx naming what is wrong: a body past ``Limits.body_bytes`` (413), one that is not
a JSON object with a string ``query`` (400), a query past the cost limits (400, ``local/limits.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pydantic
from graphql import DocumentNode, GraphQLError, GraphQLSchema, execute_sync, parse, validate
from pydantic import ConfigDict, Field
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import contents, schema
from .evidence import Evidence, Plan
from .limits import LimitError, Limits
from .limits import check as within_limits
from .store import Store, StoreError

FaultMode = Literal["status", "rate_limit", "latency", "drop", "malformed"]


Seconds = Annotated[float, Field(ge=0, le=600)]


@pydantic.dataclasses.dataclass(config=ConfigDict(extra="forbid", strict=True))
class Fault:
    """One fault rule (see the module docstring); a rule of the wrong shape is refused when set."""

    mode: FaultMode
    path: Annotated[str, Field(pattern=r"^(\*|/.*)$")] = "*"
    count: Annotated[int, Field(ge=1)] | None = 1
    status: Annotated[int, Field(ge=100, le=599)] = 503
    seconds: Seconds = 0.0
    retry_after: Seconds | None = 1.0
    reset: Seconds | None = 1.0
    rate: Annotated[float, Field(gt=0, le=1)] = 1.0  # the share of matching requests it takes, at random

    @classmethod
    def parse(cls, raw: Any) -> Fault:
        """A rule from JSON; a ``ValueError`` naming each field that is wrong and what it allows."""
        try:
            return _FAULT.validate_json(json.dumps(raw))
        except pydantic.ValidationError as exc:
            wrong = [
                f"{'.'.join(str(p) for p in e['loc']) or 'the rule'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise ValueError(f"fault rule refused: {'; '.join(wrong)}") from None


_FAULT: pydantic.TypeAdapter[Fault] = pydantic.TypeAdapter(Fault)


@dataclass
class ServerState:
    store: Store
    api_keys: frozenset[str]
    default_entity: str | None = None
    faults: list[Fault] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)  # response body bytes per path
    query_cache: int = 512  # parsed and validated query texts kept (0: parse and validate each request)
    limits: Limits = field(default_factory=Limits)
    crash_after: float = 300.0  # seconds of file-stream silence after which a running run is crashed
    upload_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))  # signs upload addresses
    chance: random.Random = field(default_factory=random.Random)  # for faults with a rate
    strict: bool = True  # serve only what real W&B clients send (local/evidence.py)
    refused: Counter[str] = field(default_factory=Counter)  # wire items refused as outside the evidence

    def take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path in ("*", path) and (fault.rate >= 1 or self.chance.random() < fault.rate):
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
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 inside
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
    state.stats[f"fault:{fault.mode}"] += 1
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


Checked = tuple[DocumentNode | None, list[GraphQLError], Plan | None]


def _checker(schema: GraphQLSchema, size: int, evidence: Evidence | None = None) -> Callable[[str], Checked]:
    """Parse and validate a query text, and plan its evidence check (``evidence``: strict), remembering
    the last ``size`` texts: a poller sends the same few queries again and again, and parsing and
    validating them was three quarters of a quiet poll's cost."""

    def check(query: str) -> Checked:
        try:
            document = parse(query)
        except GraphQLError as error:
            return None, [error], None
        errors = validate(schema, document)
        if errors:
            return None, errors, None
        return document, [], evidence.plan(document, schema) if evidence is not None else None

    return functools.lru_cache(maxsize=size)(check) if size else check


class BadRequest(ValueError):
    """A request the server refuses with a 4xx: its status and a message naming what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes, whatever it claims."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the request body is {declared} bytes; at most {limit} are served")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BadRequest(413, f"the request body passes {limit} bytes; at most {limit} are served")
    except ClientDisconnect:  # the client gave up (a latency fault past its timeout): nobody to answer
        raise BadRequest(499, "the client closed the connection before sending its body") from None
    return bytes(body)


def _graphql_request(raw: bytes) -> tuple[str, dict[str, Any], str | None]:
    """``(query, variables, operationName)`` from a JSON body; a ``BadRequest`` naming the field."""
    try:
        body = json.loads(raw)
    except ValueError:  # not JSON, or not UTF-8
        raise BadRequest(400, 'the body is not JSON; expected {"query": ..., "variables": {...}}') from None
    if not isinstance(body, dict):
        raise BadRequest(400, f"the body is a JSON {type(body).__name__}; expected an object with a query")
    query, variables, operation = body.get("query"), body.get("variables"), body.get("operationName")
    if not isinstance(query, str):
        raise BadRequest(400, "query must be a string (the GraphQL document)")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest(400, "variables must be a JSON object or null")
    if operation is not None and not isinstance(operation, str):
        raise BadRequest(400, "operationName must be a string or null")
    return query, variables or {}, operation or None


def _refused(status: int, message: str) -> Response:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status)


OPERATION_NAME = re.compile(r"^\s*(?:query|mutation|subscription)\s+(\w+)")  # when operationName is not sent
STREAM_BYTES, FILE_BYTES = 16 << 20, 256 << 20  # a file_stream request (the SDK caps at ~10 MiB); a run file
log = logging.getLogger("wbauto.local")


def _address_token(state: ServerState, method: str, kind: str, *parts: str) -> str:
    """What makes an address this server signs (the SDK sends no Authorization header to them): one
    method, one kind, one target; a download address cannot upload."""
    message = json.dumps([method, kind, *parts]).encode()
    return hmac.new(state.upload_key, message, hashlib.sha256).hexdigest()[:32]


Upload = Callable[[Store, list[str], bytes], dict[str, str]]  # -> response headers
Download = Callable[[Store, list[str]], bytes]


def _artifact_pk(text: str) -> int:
    if not text.isdigit():
        raise StoreError(f"artifact {text!r} does not exist")
    return int(text)


def _put_run_file(store: Store, parts: list[str], body: bytes) -> dict[str, str]:
    entity, project, run, name = parts
    store.put_run_file(entity, project, run, name, body)
    return {}


def _put_blob(store: Store, parts: list[str], body: bytes) -> dict[str, str]:
    contents.put_blob(store, parts[0], body)
    return {}


def _put_manifest(store: Store, parts: list[str], body: bytes) -> dict[str, str]:
    contents.put_manifest(store, _artifact_pk(parts[0]), body)
    return {}


def _put_part(store: Store, parts: list[str], body: bytes) -> dict[str, str]:
    upload, number = parts
    if not number.isdigit():
        raise StoreError(f"part number {number!r} is not a number")
    return {"ETag": f'"{contents.put_part(store, upload, int(number), body)}"'}  # S3's answer: the part's MD5


# The addresses this server signs, by kind: the parts of their path, and what a PUT or a GET does.
SIGNED_PARTS = {"files": ("entity", "project", "run", "name"), "blobs": ("md5",), "manifests": ("artifact",),
                "parts": ("upload", "part")}  # fmt: skip
UPLOADS: dict[str, Upload] = {
    "files": _put_run_file,
    "blobs": _put_blob,
    "manifests": _put_manifest,
    "parts": _put_part,
}
DOWNLOADS: dict[str, Download] = {
    "blobs": lambda store, parts: contents.blob(store, parts[0]),
    "manifests": lambda store, parts: contents.manifest_body(store, _artifact_pk(parts[0])),
}


async def _sweep_crashed(state: ServerState) -> None:
    """Runs whose SDK went silent (a killed process sends nothing more) become crashed, as on W&B."""
    while True:
        await asyncio.sleep(max(0.2, min(5.0, state.crash_after / 4)))
        crashed = await run_in_threadpool(state.store.crash_silent, state.crash_after)
        if crashed:
            log.info("runs crashed after %.0f s of silence: %s", state.crash_after, ", ".join(crashed))


def create_app(state: ServerState) -> Starlette:
    executable = schema.build()
    check = _checker(executable, state.query_cache, Evidence.load() if state.strict else None)

    def run(query: str, variables: dict[str, Any], operation: str | None, context: dict[str, Any]) -> Any:
        """``(data, errors, status)``: GraphQL errors come with 200, as from W&B (a request outside the
        evidence is one); a query past a limit is a bad request (400), whatever else is wrong with it."""
        document, errors, plan = check(query)
        if document is None:
            return None, errors, 200
        try:
            within_limits(state.limits, document, variables, operation)
        except LimitError as exc:
            return None, [GraphQLError(str(exc))], 400
        refused = plan.check(variables) if plan is not None else []
        if refused:
            state.refused.update(v.item for v in refused)
            return None, [GraphQLError(v.message) for v in refused], 200
        result = execute_sync(
            executable, document, variable_values=variables, operation_name=operation, context_value=context
        )
        return result.data, result.errors, 200

    def unauthorized() -> Response:
        return JSONResponse(
            {"errors": [{"message": "Unauthorized: invalid or missing API key"}]},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="wandb"'},
        )

    async def graphql_endpoint(request: Request) -> Response:
        state.stats[request.url.path] += 1
        if not _authorized(request, state.api_keys):  # before the faults: a stranger's request takes none
            return unauthorized()
        faulted = await _apply_fault(request, state)
        if faulted is not None:
            return faulted
        try:
            query, variables, operation = _graphql_request(await _body(request, state.limits.body_bytes))
        except BadRequest as exc:
            return _refused(exc.status, str(exc))
        base = str(request.base_url).rstrip("/")

        def signed(method: str, kind: str, *parts: str) -> str:
            path = "/".join(urllib.parse.quote(part, safe="") for part in parts)
            return f"{base}/_local/{kind}/{_address_token(state, method, kind, *parts)}/{path}"

        context = {"store": state.store, "default_entity": state.default_entity, "signed": signed}
        data, errors, status = await run_in_threadpool(run, query, variables, operation, context)
        if data is None and errors:  # e.g. an operation this server does not serve: say so where it runs
            named = operation or next(iter(OPERATION_NAME.findall(query)), "(unnamed)")
            log.warning("GraphQL operation %s not served: %s", named, errors[0].message)
        payload: dict[str, Any] = {"data": data}
        if errors:
            payload["errors"] = [_error(e) for e in errors]
        body_out = _dumps(payload)
        state.sent[request.url.path] += len(body_out)
        return Response(body_out, media_type="application/json", status_code=status)

    async def file_stream(request: Request) -> Response:
        """The SDK's run stream: history, summary, heartbeat and the run's end (``Store.stream``)."""
        state.stats["/files/file_stream"] += 1
        if not _authorized(request, state.api_keys):
            return unauthorized()
        faulted = await _apply_fault(request, state)
        if faulted is not None:
            return faulted
        p = request.path_params
        try:
            body = json.loads(await _body(request, STREAM_BYTES) or b"{}")
            if not isinstance(body, dict):
                raise BadRequest(400, "the body must be a JSON object")
            await run_in_threadpool(state.store.stream, p["entity"], p["project"], p["run"], body)
        except BadRequest as exc:
            return _refused(exc.status, str(exc))
        except ValueError as exc:  # not JSON (StoreError is one too)
            missing = "does not exist" in str(exc)
            return _refused(404 if missing else 400, str(exc))
        return JSONResponse({})

    async def signed_transfer(request: Request) -> Response:
        """A PUT or GET of an address this server signed: run files, artifact files and manifests, the
        parts of a multipart upload (the SDK sends no Authorization header there; the token authorises)."""
        kind = request.url.path.split("/")[2]
        parts = [request.path_params[name] for name in SIGNED_PARTS[kind]]
        expected = _address_token(state, request.method, kind, *parts)
        if not secrets.compare_digest(request.path_params["token"], expected):
            return _refused(403, "this address was not given by this server")
        try:
            if request.method == "GET":
                body = await run_in_threadpool(DOWNLOADS[kind], state.store, parts)
                return Response(body, media_type="application/octet-stream")
            content = await _body(request, FILE_BYTES)
            headers = await run_in_threadpool(UPLOADS[kind], state.store, parts, content)
        except BadRequest as exc:
            return _refused(exc.status, str(exc))
        except StoreError as exc:
            return _refused(404 if request.method == "GET" else 400, str(exc))
        return Response(status_code=200, headers=headers)

    async def faults_endpoint(request: Request) -> Response:
        if not _authorized(request, state.api_keys):
            return unauthorized()
        if request.method == "DELETE":
            state.faults.clear()
            return JSONResponse({"faults": []})
        if request.method == "POST":
            try:
                raw = json.loads(await _body(request, state.limits.body_bytes))
                state.faults.extend([Fault.parse(f) for f in (raw if isinstance(raw, list) else [raw])])
            except BadRequest as exc:
                return _refused(exc.status, str(exc))
            except ValueError as exc:  # not JSON, or a rule refused (nothing of the request is kept)
                return _refused(400, str(exc))
        return JSONResponse({"faults": [dataclasses.asdict(f) for f in state.faults]})

    async def stats_endpoint(request: Request) -> Response:
        if not _authorized(request, state.api_keys):
            return unauthorized()
        if request.method == "DELETE":
            state.stats.clear()
            state.sent.clear()
            state.refused.clear()
        return JSONResponse({"requests": dict(state.stats), "bytes": dict(state.sent), "refused": dict(state.refused)})

    async def not_found(request: Request) -> Response:
        state.stats[request.url.path] += 1
        if _authorized(request, state.api_keys):  # a stranger's request takes no fault
            faulted = await _apply_fault(request, state)
            if faulted is not None:
                return faulted
        return JSONResponse({"error": "not found"}, status_code=404)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_crashed(state))
        try:
            yield
        finally:
            sweeper.cancel()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/graphql", graphql_endpoint, methods=["POST"]),
            Route("/files/{entity}/{project}/{run}/file_stream", file_stream, methods=["POST"]),
            Route("/_local/files/{token}/{entity}/{project}/{run}/{name:path}", signed_transfer, methods=["PUT"]),
            Route("/_local/blobs/{token}/{md5}", signed_transfer, methods=["PUT", "GET"]),
            Route("/_local/manifests/{token}/{artifact}", signed_transfer, methods=["PUT", "GET"]),
            Route("/_local/parts/{token}/{upload}/{part}", signed_transfer, methods=["PUT"]),
            Route("/_local/faults", faults_endpoint, methods=["GET", "POST", "DELETE"]),
            Route("/_local/stats", stats_endpoint, methods=["GET", "DELETE"]),
            Route("/{path:path}", not_found, methods=["GET", "POST", "PUT"]),
        ],
    )


def _error(error: GraphQLError) -> dict[str, Any]:
    out: dict[str, Any] = {"message": str(error.message)}
    if error.path:
        out["path"] = list(error.path)
    if isinstance(error.original_error, StoreError):
        out["extensions"] = {"code": "BAD_REQUEST"}
    return out
