"""``wbauto``: the provider's command line.

``wbauto automations list [--project e/p] [--entity e] [--json]``: the automations Airflow knows.
``wbauto automations dry-run NAME-or-FILE --since ISO [--until ISO]``: what one would have fired.
Both parse the DAGs folder as Airflow does; a DAG file that fails to import is named on stderr with
its error, and the command exits 2 (after listing, or dry-running, what the other files save).
``wbauto doctor [--conn-id ID] [--organization ORG]``: the W&B server a connection reaches, its version
and features, the API key's viewer, and the read plan each event family will use there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence

from airflow.sdk.exceptions import AirflowNotFoundException

from .api import Api
from .automations.automation import Automation
from .dry_run import EVENT_COLUMNS, dry_run, event_row
from .hooks.capabilities import read_diagnosis, report
from .hooks.transport import WandbError, forget_endpoint, probe_errors
from .hooks.wandb import WandbHook
from .tables import aligned

COLUMNS = ("NAME", "SCOPE", "EVENT", "ACTION", "ENABLED", "MODE", "DAG ID")


def row(automation: Automation) -> dict[str, str | bool]:
    return {
        "name": automation.name,
        "scope": str(automation.scope),
        "event": automation.event.event_type,
        "action": automation.action.action_type,
        "enabled": automation.enabled,
        "mode": automation.mode,
        "dag_id": automation.dag_id,
        "description": automation.description or "",
    }


def table(automations: Sequence[Automation]) -> str:
    return aligned([COLUMNS, *([str(v) for k, v in row(a).items() if k != "description"] for a in automations)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wbauto", description="W&B automations run by Airflow")
    groups = parser.add_subparsers(dest="group", required=True)
    automations = groups.add_parser("automations", help="saved automations")
    commands = automations.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list the automations Airflow knows")
    listing.add_argument("--project", help="only this project's: entity/project")
    listing.add_argument("--entity", help="only this entity's")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--airflow-url", help="Airflow's api-server (default WBAUTO_AIRFLOW_URL, else the DAGs folder)"
    )
    listing.add_argument("--dags-folder", help="the folder to parse (default: Airflow's DAGs folder)")
    dry = commands.add_parser("dry-run", help="the events an automation would have fired over past history")
    dry.add_argument("target", metavar="NAME-or-FILE", help="an automation's name, or a DAG file (all of its)")
    dry.add_argument("--since", required=True, help="ISO time (or 'beginning'): as if the automation was saved then")
    dry.add_argument("--until", help="ISO time: leave out events after it")
    dry.add_argument(
        "--conn-id", default=WandbHook.default_conn_name, help="the wandb connection (default %(default)s)"
    )
    dry.add_argument("--json", action="store_true", help="print the events as JSON")
    dry.add_argument("--airflow-url", help="find NAME through Airflow's api-server (default WBAUTO_AIRFLOW_URL)")
    dry.add_argument("--dags-folder", help="find NAME in this folder (default: Airflow's DAGs folder)")
    doctor = groups.add_parser("doctor", help="what a connection reaches, and how the watches will read it")
    doctor.add_argument(
        "--conn-id", default=WandbHook.default_conn_name, help="the wandb connection (default %(default)s)"
    )
    doctor.add_argument(
        "--organization",
        action="append",
        help="probe this organization's advanced registry search (repeatable; default: the viewer's entity's)",
    )
    args = parser.parse_args(argv)
    failed: dict[str, str] = {}  # DAG files that failed to import, as the commands parsed them
    try:
        if args.group == "doctor":
            return _doctor(args)
        code = _dry_run(args, failed) if args.command == "dry-run" else _list(args, failed)
    except (ValueError, RuntimeError, KeyError, WandbError, AirflowNotFoundException) as exc:
        _report(failed)
        print(f"wbauto: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    _report(failed)
    return 2 if failed else code


def _report(failed: dict[str, str]) -> None:
    """Each DAG file that failed to import, with its error, on stderr: a listing without it is incomplete."""
    for file, error in failed.items():
        print(f"wbauto: {file} failed to import: {error}", file=sys.stderr)


def _list(args: argparse.Namespace, failed: dict[str, str]) -> int:
    api = Api(airflow_url=args.airflow_url, dags_folder=args.dags_folder)
    with contextlib.redirect_stdout(sys.stderr):  # Airflow logs while parsing: keep stdout for the listing
        found = api.project(args.project).automations() if args.project else api.automations(entity=args.entity)
    failed.update(api.import_errors)
    print(json.dumps([row(a) for a in found], indent=2) if args.json else table(found))
    return 0


def _dry_run(args: argparse.Namespace, failed: dict[str, str]) -> int:
    with contextlib.redirect_stdout(sys.stderr):
        if os.path.isfile(args.target):  # a DAG file: every automation it saves
            api = Api(dags_folder=args.target)
            chosen = api.automations()
            failed.update(api.import_errors)
            if not chosen:
                raise ValueError(f"{args.target} " + ("failed to import" if failed else "saves no automation"))
        else:
            api = Api(airflow_url=args.airflow_url, dags_folder=args.dags_folder)
            try:
                chosen = [api.automation(args.target)]
            finally:
                failed.update(api.import_errors)
    hook = WandbHook(args.conn_id)
    results = [dry_run(a, hook, since=args.since, until=args.until, progress=_bar(a.name)) for a in chosen]
    if args.json:
        print(json.dumps({r.automation.name: r.events for r in results}, indent=2))
        return 0
    for result in results:
        window = f"{result.since} .. {result.until or 'now'}"
        print(f"{result.automation.name}: {result.automation.event.event_type} at {result.automation.scope}, {window}")
        if result.events:
            print(aligned([EVENT_COLUMNS, *(event_row(e) for e in result.events)]))
        print(f"{len(result.events)} event(s) would have fired\n")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    hook = WandbHook(args.conn_id)
    endpoint = hook.endpoint
    forget_endpoint(endpoint)  # probe afresh: what the server says now
    diagnosis = hook.run(read_diagnosis(args.organization))
    if not diagnosis.viewer:
        raise WandbError(f"W&B at {endpoint.host} accepted the request but returned no viewer")
    print("\n".join(report(diagnosis, endpoint.host, endpoint.conn_id, probe_errors(endpoint))))
    return 0


def _bar(name: str, width: int = 30) -> Callable[[int, int], None]:
    """A progress bar on stderr (stdout keeps only the result)."""

    def show(done: int, total: int) -> None:
        filled = width * done // total if total else width
        sys.stderr.write(f"\r{name}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


if __name__ == "__main__":
    raise SystemExit(main())
