"""``python -m reliability`` (``make reliability``): run the reliability suites and write RELIABILITY.md.

1. the hostile-input corpus (the tests marked ``hostile``), with the secrets scan over that run;
2. the fault suite: 500 events under 20% W&B faults, a receiver failing 30%, 50 random kills;
3. distributed Airflow: PostgreSQL, a triggerer running 100 watchers and a standby, 300 events, the
   first triggerer killed mid-scenario.

``--quick`` runs the slice ``make test`` runs (tests/cluster/test_reliability.py) instead of 2 and 3.
Each suite is bounded in time; the whole takes about 25 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .scenario import Outcome, Scenario, run

ROOT = Path(__file__).resolve().parent.parent
FAULTS = Scenario("faults", events=500, automations=10, backend_faults=0.2, receiver_faults=0.3, kills=50)
HA = Scenario("HA triggerers", events=300, automations=100, postgres=True, triggerers=2, ha=True, kills=1, pace=3)
SLICE = Scenario(
    "CI slice",
    events=60,
    automations=10,
    backend_faults=0.2,
    receiver_faults=0.3,
    kills=4,
    postgres=True,
    triggerers=2,
    ha=True,
)
COLUMNS = ["scenario", "Airflow", "fault", "rate (injected)", "events", "lost", "duplicated", "attempts", "result"]


def hostile() -> dict[str, Any]:
    """Run the hostile-input corpus; its row, with what the secrets scan saw over the run."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "hostile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    tail = done.stdout.strip().splitlines()[-3:]
    passed = re.search(r"(\d+) passed", done.stdout)
    failed = re.search(r"(\d+) failed", done.stdout)
    scan = re.search(r"secrets scan: (.*)", done.stdout)
    verdict = "pass" if done.returncode == 0 and not failed else "FAIL"
    print(*tail, sep="\n")
    return {
        "scenario": "hostile inputs",
        "Airflow": "dag.test() and the hooks",
        "fault": "specs, filters, scopes, connections, templates, payloads, cursors, GraphQL answers, HTTP requests",
        "rate (injected)": f"every case; secrets scan of the run: {scan.group(1) if scan else 'not run'}",
        "events": f"{passed.group(1) if passed else 0} cases",
        "lost": "-",
        "duplicated": "-",
        "attempts": "-",
        "result": f"{verdict} in {time.monotonic() - started:.0f} s",
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def write(rows: list[dict[str, Any]], quick: bool) -> None:
    command = "`python -m reliability" + (" --quick`" if quick else "` (`make reliability`)")
    text = f"""# Reliability, measured

Produced by {command} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({platform.machine()}, Python
{platform.python_version()}); every suite runs on this machine against the local W&B backend and a
real HTTP receiver on 127.0.0.1, the fault and HA suites on a real Airflow (scheduler, triggerers,
dag-processor, api-server as processes).

- **lost**: events the receiver never accepted (2xx); **duplicated**: events it accepted under two
  different `Idempotency-Key` values. Deliveries accepted again under the same key (an answer that
  landed after the client's timeout) are counted as redelivered: the key is there for them.
- **W&B faults**: 5xx, 429 with `Retry-After`, 429 with only `RateLimit-Reset`, answers slower than
  the hook's timeout, dropped connections, bodies that are not JSON, each alike.
  **Receiver faults**: 500, 429, answers slower than the delivery timeout, reset connections,
  redirects. **Kills**: SIGKILL of a triggerer (restarted) or of a running task's process; in the HA
  suite, of the triggerer running every watcher, for good, with a standby triggerer running.
- `make test` runs the hostile corpus, the secrets scan over the whole test run, and the CI slice.

{table(rows)}
"""
    (ROOT / "RELIABILITY.md").write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the CI slice instead of the full suites")
    parser.add_argument("--only", choices=["hostile", "faults", "ha"], help="one suite (RELIABILITY.md is not written)")
    args = parser.parse_args(argv)
    suites = [SLICE] if args.quick else [s for s, key in ((FAULTS, "faults"), (HA, "ha")) if args.only in (None, key)]
    rows = [hostile()] if args.only in (None, "hostile") else []
    outcomes: list[Outcome] = []
    for scenario in suites:
        outcomes.append(run(scenario))
        rows.append(outcomes[-1].row())
        print(json.dumps(rows[-1]))
    if args.only is None:
        write(rows, args.quick)
    return 0 if all(o.ok for o in outcomes) and all(r["result"].startswith("pass") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
