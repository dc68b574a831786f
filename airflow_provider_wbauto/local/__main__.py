"""``python -m airflow_provider_wbauto.local`` (also ``wbauto-local``): serve or load the local W&B stand-in."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .fixtures import FixtureError, load_file


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import Fault, ServerState, create_app
    from .store import Store
    from .wire_options import WireOptions

    keys = args.api_key or ([os.environ["WANDB_API_KEY"]] if os.environ.get("WANDB_API_KEY") else [])
    if not keys:
        print("error: give at least one --api-key (or set WANDB_API_KEY)", file=sys.stderr)
        return 2
    store = Store(args.db)
    store.set_wire(WireOptions.lenient() if args.lenient else WireOptions.strict())
    for path in args.fixture:
        load_file(store, path)
    try:
        faults = [Fault.parse(json.loads(f)) for f in args.fault]
    except ValueError as exc:
        print(f"error: --fault: {exc}", file=sys.stderr)
        return 2
    state = ServerState(
        store=store,
        api_keys=frozenset(keys),
        default_entity=args.entity,
        faults=faults,
        query_cache=args.query_cache,
        crash_after=args.crash_after,
        strict=not (args.lenient or args.no_evidence_check),
    )
    config = uvicorn.Config(create_app(state), host=args.host, port=args.port, log_level=args.log_level)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"listening on http://{host}:{port}", flush=True)

    Server(config).run()
    return 0


def _load(args: argparse.Namespace) -> int:
    from .store import Store

    store = Store(args.db)
    try:
        for path in args.files:
            counts = load_file(store, path)
            print(f"loaded {path}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    finally:
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wbauto-local", description="A local W&B-compatible GraphQL server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve W&B's GraphQL API on HOST:PORT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed at start)")
    serve.add_argument("--db", default=":memory:", help="SQLite file, or :memory:")
    serve.add_argument("--api-key", action="append", default=[], help="accepted API key (repeatable)")
    serve.add_argument("--entity", default=None, help="the viewer's default entity")
    serve.add_argument("--fixture", action="append", default=[], help="JSON fixture to load at start")
    serve.add_argument("--fault", action="append", default=[], help='fault rule as JSON, e.g. {"mode":"status"}')
    serve.add_argument("--log-level", default="warning")
    serve.add_argument(
        "--crash-after", type=float, default=300.0, help="seconds of file-stream silence after which a run is crashed"
    )
    serve.add_argument(
        "--query-cache", type=int, default=512, help="parsed and validated query texts kept (0: none, a baseline)"
    )
    serve.add_argument(
        "--lenient",
        action="store_true",
        help="answer as before issue 25: whatever the schema answers, not only what real W&B clients send, "
        "and none of the ways W&B may answer otherwise (WireOptions.lenient()); the default is strict",
    )
    serve.add_argument(
        "--no-evidence-check",
        action="store_true",
        help="strict answers, but serve requests outside the evidence of real W&B clients (local/evidence.py)",
    )
    serve.set_defaults(func=_serve)
    load = sub.add_parser("load", help="load JSON fixtures into a database (also while a server runs on it)")
    load.add_argument("--db", required=True)
    load.add_argument("files", nargs="+")
    load.set_defaults(func=_load)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except FixtureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
