"""`make demo`: the example automations (``dags/examples``) on a real Airflow, watching the embedded W&B backend.

Starts the local backend (SQLite), local receivers standing in for Slack and two signed webhooks, and
Airflow's scheduler, triggerer, dag-processor and api-server on 127.0.0.1 with a SQLite metadata DB
in a temporary ``AIRFLOW_HOME``. Plays a training and model-registry story phase by phase, prints
each delivery as it arrives (checking webhook signatures), then reports per automation: the events,
when each happened, when its action was done, and the latency. Exits 1 if an expected delivery is
missing; ``--keep`` leaves Airflow and the backend up (the UI address and login are printed).
``--train`` tells the story with real training scripts instead (``demo/train.py``: the real ``wandb``
SDK writing to the backend, as a user's own script would).
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import hmac
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_wbauto.local import LocalWandb, Store
from airflow_provider_wbauto.local.receiver import Receiver
from airflow_provider_wbauto.tables import aligned

from .cluster import AirflowCluster, wait_for
from .scenario import ENTITY, PROJECT, REGISTRY, Phase, phases
from .training import training_phases

EXAMPLES = Path(__file__).resolve().parent.parent / "dags" / "examples"
API_KEY = "demo-key-" + "0" * 36  # the wandb SDK wants 40+ characters after the first dash
SECRET = "demo-signing-secret"
POLL_INTERVAL = 3
AUTOMATIONS = (
    "retrain-on-accuracy-drop",
    "retrain-on-accuracy-drop-dry-run",
    "deploy-on-production-alias",
    "alert-on-failed-runs",
    "webhook-on-new-model-version",
    "loss-plateau",
)
USER_DAGS = ("retrain_model", "wandb_daily_digest")
PHASE_TIMEOUT = 240.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave Airflow and the backend running at the end")
    parser.add_argument("--train", action="store_true", help="real training scripts (the wandb SDK) tell the story")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # in order with the printer thread
    signal.signal(signal.SIGTERM, _terminated)  # a kill stops what the demo started, as Ctrl-C does
    home = Path(tempfile.mkdtemp(prefix="wbauto-demo-"))
    began = time.monotonic()
    with LocalWandb(home / "wandb.db", api_key=API_KEY, entity=ENTITY) as backend, Receiver() as receiver:
        print(f"local W&B backend: {backend.url} (SQLite {backend.db})")
        cluster = AirflowCluster(home / "airflow", EXAMPLES, _environment(backend, receiver))
        printer = Printer(receiver, began)
        try:
            print(f"starting Airflow in {cluster.home} (scheduler, triggerer, dag-processor, api-server)...")
            cluster.start()
            print(f"Airflow is up at {cluster.url}")
            _load(cluster)
            printer.start()
            story = training_phases(backend.url, API_KEY, home) if args.train else phases(ENTITY)
            missing = _play(cluster, receiver, backend.store, story)
            printer.stop()
            print(_report(cluster, receiver))
            if missing:
                print("MISSING: " + "; ".join(missing), file=sys.stderr)
            if args.keep:
                _keep(cluster, backend)
            return 1 if missing else 0
        except BaseException:
            print(cluster.log_tail(30), file=sys.stderr)
            raise
        finally:
            printer.stop()
            cluster.stop()
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop Airflow and the backend


def _environment(backend: LocalWandb, receiver: Receiver) -> dict[str, str]:
    """The examples' settings and connections, as a deployment would set them (``AIRFLOW_CONN_*``)."""
    signed = {"signing_secret": SECRET}
    connections = {
        "WANDB_DEFAULT": {"conn_type": "wandb", "host": backend.url, "password": API_KEY},
        "SLACK_DEFAULT": {"conn_type": "wandb_slack", "password": receiver.url("/slack")},
        "MODEL_REGISTRY_HOOK": {"conn_type": "wandb_webhook", "host": receiver.url("/versions"), "extra": signed},
        "DEPLOY_HOOK": {"conn_type": "wandb_webhook", "host": receiver.url("/deploy"), "extra": signed},
    }
    return {
        "WBAUTO_ENTITY": ENTITY,
        "WBAUTO_PROJECT": PROJECT,
        "WBAUTO_REGISTRY": REGISTRY,
        "WBAUTO_SINCE": datetime.now(UTC).isoformat(),  # the story starts after the automations exist
        "WBAUTO_POLL_INTERVAL": str(POLL_INTERVAL),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        **{f"AIRFLOW_CONN_{name}": json.dumps(conn) for name, conn in connections.items()},
    }


def _load(cluster: AirflowCluster) -> None:
    """Wait for the DAG processor to parse the examples, unpause the user DAGs, wait for the watchers."""
    wanted = {*AUTOMATIONS, *USER_DAGS}
    print("waiting for the DAG processor to parse dags/examples...")
    wait_for(lambda: wanted <= {d["dag_id"] for d in cluster.api("GET", "/dags", params={"limit": 100})["dags"]},
             "the example DAGs parsed", timeout=300)  # fmt: skip
    # a user's DAG starts paused (the automations' are unpaused by save()); the digest waits for the story
    cluster.api("PATCH", "/dags/retrain_model", json={"is_paused": False})
    assets = [
        a for a in cluster.api("GET", "/assets", params={"limit": 100})["assets"] if a["uri"].startswith("wandb://")
    ]
    wait_for(lambda: all(cluster.watching(a["uri"]) for a in assets), "the watchers running", timeout=300)
    print(f"{len(AUTOMATIONS)} automations watching (poll interval {POLL_INTERVAL} s); retrain_model unpaused\n")


def _play(cluster: AirflowCluster, receiver: Receiver, store: Store, story: list[Phase]) -> list[str]:
    """Each phase of the story, then a wait (bounded) until what it must cause has happened."""
    missing: list[str] = []
    for phase in story:
        print(f"▶ {phase.what}")
        phase.play(store, ENTITY)
        for name, subjects in phase.expect.items():
            try:
                wait_for(functools.partial(_acted_on, cluster, name, subjects), f"{name}: {subjects}", PHASE_TIMEOUT)
            except TimeoutError as exc:
                missing.append(str(exc))
    print("▶ wandb_daily_digest is unpaused: it runs for today at once")
    cluster.api("PATCH", "/dags/wandb_daily_digest", json={"is_paused": False})
    checks = [
        (
            lambda: any("3 run(s) in" in json.dumps(b) for b in _bodies(receiver, "/slack")),
            "the daily digest of 3 runs",
        ),
        (lambda: "finetune-2" in _retrained(cluster), "retrain_model run for finetune-2"),
    ]
    for check, what in checks:
        try:
            wait_for(check, what, timeout=PHASE_TIMEOUT)
        except TimeoutError as exc:
            missing.append(str(exc))
    return missing


def _acted_on(cluster: AirflowCluster, automation: str, subjects: list[str]) -> bool:
    return set(subjects) <= set(_acted(cluster, automation))


def _acted(cluster: AirflowCluster, automation: str) -> list[str]:
    """The subjects (run or version) of the events an automation's action has done."""
    return [_subject(e) for _, e in _outlet_events(cluster, automation)]


def _outlet_events(cluster: AirflowCluster, automation: str) -> list[tuple[str, dict[str, Any]]]:
    """(when the action was done, event) for each event of the automation's outlet asset events."""
    found = cluster.api("GET", "/assets", params={"uri_pattern": f"wandb-automation://{automation}"})["assets"]
    asset = next((a for a in found if a["uri"].rstrip("/") == f"wandb-automation://{automation}"), None)
    if asset is None:
        return []
    events = cluster.api("GET", "/assets/events", params={"asset_id": asset["id"], "limit": 1000})["asset_events"]
    return [(ae["timestamp"], e) for ae in events for e in (ae.get("extra") or {}).get("events", [])]


def _subject(event: dict[str, Any]) -> str:
    return str(event.get("run_name") or event.get("artifact_version_string"))


def _retrained(cluster: AirflowCluster) -> list[str]:
    runs = [r for r in cluster.dag_runs("retrain_model") if r["state"] == "success"]
    out: list[str] = []
    for run in runs:
        path = f"/dags/retrain_model/dagRuns/{run['dag_run_id']}/taskInstances/retrain_model/xcomEntries/return_value"
        out += cluster.api("GET", path).get("value") or []
    return out


def _bodies(receiver: Receiver, path: str) -> list[Any]:
    return [json.loads(r.body) for r in list(receiver.received) if r.path == path]


def _report(cluster: AirflowCluster, receiver: Receiver) -> str:
    rows = [("AUTOMATION", "EVENT", "SUBJECT", "HAPPENED", "ACTED", "LATENCY")]
    for automation in AUTOMATIONS:
        for done, event in sorted(_outlet_events(cluster, automation), key=lambda x: x[0]):
            happened, acted = _time(event["occurred_at"]), _time(done)
            latency = f"{(acted - happened).total_seconds():.1f} s"
            subject = _subject(event) + _detail(event)
            rows.append(
                (automation, event["event_type"], subject, f"{happened:%H:%M:%S}", f"{acted:%H:%M:%S}", latency)
            )
    retrained = _retrained(cluster)
    digests = sum("daily digest" in json.dumps(b) for b in _bodies(receiver, "/slack"))
    return (
        "\nREPORT (HAPPENED: the run's last heartbeat, the version's creation, or when an alias was seen;"
        " ACTED: the action task's asset event)\n"
        + aligned(rows)
        + f"\nretrain_model: {len(retrained)} run(s) of retraining, for {', '.join(retrained) or 'none'}"
        + f"\nwandb_daily_digest: {digests} Slack message(s)\n"
    )


def _detail(event: dict[str, Any]) -> str:
    if "step" in event:
        return f" @ step {event['step']}: {event['metric_name']}={event['metric_value']:.4g}"
    return f" ({event['alias']})" if event.get("alias") else ""


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


class Printer(threading.Thread):
    """Prints each request the receivers get as it arrives: Slack messages and signed webhooks."""

    def __init__(self, receiver: Receiver, began: float) -> None:
        super().__init__(daemon=True)
        self.receiver, self.began, self.done = receiver, began, threading.Event()

    def run(self) -> None:
        shown = 0
        while not self.done.wait(0.2):
            for request in list(self.receiver.received)[shown:]:
                shown += 1
                print(f"  [{request.at - self.began:6.1f} s] {_describe(request)}", flush=True)

    def stop(self) -> None:
        if self.is_alive():
            time.sleep(0.5)  # let it print what just arrived
            self.done.set()
            self.join(timeout=5)


def _describe(request: Any) -> str:
    body = json.loads(request.body)
    if request.path == "/slack":
        blocks = body["attachments"][0]["blocks"]
        lines = [b["text"]["text"] for b in blocks if b.get("type") in ("header", "section")]
        return "Slack  " + " | ".join(line.replace("\n", " ")[:90] for line in lines)
    expected = base64.b64encode(hmac.new(SECRET.encode(), request.body, hashlib.sha256).digest()).decode()
    signed = "signature ok" if request.headers.get("X-Wandb-Signature") == expected else "BAD SIGNATURE"
    return f"POST {request.path} ({signed}) {json.dumps(body)}"


def _keep(cluster: AirflowCluster, backend: LocalWandb) -> None:
    login = "none needed (all admins)" if cluster.all_admins else f"admin / {cluster.password()}"
    print(f"\nAirflow UI: {cluster.url}  login: {login}")
    print(f"W&B backend: {backend.url}  API key: {API_KEY}")
    print("Press Ctrl-C to stop everything.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
