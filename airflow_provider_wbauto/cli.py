"""``wbauto``: the provider's command line. ``wbauto automations list [--project e/p] [--entity e] [--json]``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence

from .api import Api
from .automations.automation import Automation

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
    rows = [[str(v) for k, v in row(a).items() if k != "description"] for a in automations]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [COLUMNS, *rows]]
    return "\n".join(lines)


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
    args = parser.parse_args(argv)
    api = Api(airflow_url=args.airflow_url, dags_folder=args.dags_folder)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Airflow logs while parsing: keep stdout for the listing
            found = api.project(args.project).automations() if args.project else api.automations(entity=args.entity)
    except (ValueError, RuntimeError) as exc:
        print(f"wbauto: {exc}", file=sys.stderr)
        return 2
    print(json.dumps([row(a) for a in found], indent=2) if args.json else table(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
