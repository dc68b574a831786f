"""The action operators and notifiers in whole DAGs under ``dag.test()``, delivering to a real HTTP
receiver: Jinja and ``${...}`` rendering, batching, no repeat after a task retry, the notifier as an
``on_failure_callback``, and no secret in logs, XCom or rendered templates."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_wbauto.hooks.actions import collect_events
from airflow_provider_wbauto.local.receiver import Answer, Receiver
from tests.airflow_env import ti_state, write_dag, xcom
from tests.secrets_scan import secret

TOKEN, SIGNING, SLACK_PATH = (
    secret("tok-" + "q" * 24),
    secret("sig-" + "w" * 24),
    secret("T9/B9/slacksecret" + "z" * 12),
)
EVENTS = [
    {"event_id": f"id{i}", "event_type": "RUN_STATE", "run_id": f"r{i}", "run_name": f"run-{i}",
     "run_state": "failed", "entity_name": "acme", "project_name": "mnist", "url": f"https://wandb.ai/r{i}"}
    for i in range(3)
]  # fmt: skip

DAG_HEAD = """
import pendulum
from datetime import timedelta
from airflow.sdk import DAG, task
from airflow_provider_wbauto.hooks.transport import RetryPolicy
from airflow_provider_wbauto.notifications import send_wandb_notification
from airflow_provider_wbauto.operators import DoNothingOperator, SendNotificationOperator, SendWebhookOperator

FAST = RetryPolicy(max_attempts=3, max_total_seconds=20, backoff_base=0.05, backoff_cap=0.1)
EVENTS = EVENTS_LITERAL

with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         params={"team": "ml-platform"}) as dag:
    @task
    def sensed():
        return EVENTS
"""


@pytest.fixture
def connections(receiver: Receiver, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    hook = {"conn_type": "wandb_webhook", "host": receiver.url("/hook"), "password": TOKEN,
            "extra": {"signing_secret": SIGNING}}  # fmt: skip
    slack = {"conn_type": "slackwebhook", "host": receiver.url("/services"), "password": SLACK_PATH}
    monkeypatch.setenv("AIRFLOW_CONN_WANDB_WEBHOOK_DEFAULT", json.dumps(hook))
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", json.dumps(slack))
    return receiver


def dag_with(body: str) -> Any:
    return write_dag(DAG_HEAD.replace("EVENTS_LITERAL", repr(EVENTS)) + body)


def rendered_fields(run: Any) -> str:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(RenderedTaskInstanceFields).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        return json.dumps([r.rendered_fields for r in rows], default=str)


def test_actions_deliver_each_event_render_templates_and_keep_secrets(
    connections: Receiver, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    dag = dag_with(
        """
    events = sensed()
    DoNothingOperator(task_id="dry_run", events=events)
    SendWebhookOperator(task_id="hook", events=events, delivery_retry=FAST,
                        payload={"text": "{{ params.team }}: ${run_name} is ${run_state}", "id": "${event_id}",
                                 "token": "${ACCESS_TOKEN}"})
    SendNotificationOperator(task_id="slack", events=events, batch=True, title="{{ params.team }} runs failed",
                             text="see below", level="ERROR", delivery_retry=FAST)
"""
    )
    run = dag.test()
    assert {t: ti_state(run, t) for t in ("dry_run", "hook", "slack")} == dict.fromkeys(
        ("dry_run", "hook", "slack"), "success"
    )
    assert xcom(run, "dry_run") == EVENTS  # the dry run returns what it would have acted on
    hooks = [r for r in connections.received if r.path == "/hook"]
    assert [json.loads(r.body) for r in hooks] == [
        {"text": f"ml-platform: run-{i} is failed", "id": f"id{i}", "token": TOKEN} for i in range(3)
    ]
    assert [r.headers["Idempotency-Key"] for r in hooks] == ["id0", "id1", "id2"]
    (slack,) = [r for r in connections.received if r.path.startswith("/services")]
    assert slack.path == f"/services/{SLACK_PATH}"
    blocks = json.dumps(json.loads(slack.body)["attachments"][0]["blocks"])
    assert "ml-platform runs failed" in blocks and all(f"run-{i}" in blocks for i in range(3))

    out = capfd.readouterr()
    logs = out.out + out.err + caplog.text
    assert "Would act on RUN_STATE id0" in logs and "Delivered 1 event(s) (key id2)" in logs  # logs were captured
    rendered = rendered_fields(run)
    assert "ml-platform: ${run_name}" in rendered  # Jinja rendered, W&B variables left for send time
    seen = logs + rendered + json.dumps([xcom(run, t) for t in ("hook", "slack")])
    for value in (TOKEN, SIGNING, SLACK_PATH):
        assert value not in seen


def test_a_retry_does_not_repeat_deliveries_of_the_failed_try(connections: Receiver) -> None:
    connections.answer(Answer(200), *[Answer(503)] * 3)  # id0 delivered, then id1 fails three times
    dag = dag_with(
        """
    SendWebhookOperator(task_id="hook", events=sensed(), delivery_retry=FAST, retries=1,
                        retry_delay=timedelta(0), payload={"id": "${event_id}"})
"""
    )
    run = dag.test()
    assert ti_state(run, "hook") == "success"
    ids = [json.loads(r.body)["id"] for r in connections.received]
    assert ids == ["id0", "id1", "id1", "id1", "id1", "id2"]  # try 1: id0, id1 x3; try 2: id1, id2
    assert xcom(run, "hook") == ["id0", "id1", "id2"]


def test_no_events_means_nothing_sent(connections: Receiver) -> None:
    dag = dag_with(
        """
    SendWebhookOperator(task_id="hook", events=[], payload={"id": "${event_id}"})
"""
    )
    run = dag.test()
    assert ti_state(run, "hook") == "success" and connections.received == []


def test_notifier_as_on_failure_callback(connections: Receiver) -> None:
    dag = dag_with(
        """
    @task(on_failure_callback=send_wandb_notification(title="{{ ti.task_id }} failed", level="ERROR",
                                                       message="run {{ run_id }}"))
    def train():
        raise RuntimeError("diverged")

    train()
"""
    )
    run = dag.test()
    assert ti_state(run, "train") == "failed"
    (slack,) = connections.received
    message = json.loads(slack.body)
    assert message["attachments"][0]["color"] == "#e01e5a"
    assert "train failed" in json.dumps(message) and run.run_id in json.dumps(message)


def test_actions_built_from_the_sdk_models_with_a_quick_start_slack_url(
    connections: Receiver, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """``from_action`` on each operator, ``SlackIntegration(webhook_url=...)`` on an operator and a notifier."""
    dag = dag_with(
        """
    from airflow_provider_wbauto.automations import (
        DoNothing, SendNotification, SendWebhook, SlackIntegration, WebhookIntegration)

    quick = SlackIntegration(webhook_url="QUICK")
    events = sensed()
    DoNothingOperator.from_action(task_id="dry_run", action=DoNothing(), events=events)
    SendNotificationOperator.from_action(
        task_id="slack", events=events, batch=True, delivery_retry=FAST,
        action=SendNotification.from_integration(quick, title="{{ params.team }} alert", text="hi", level="WARN"))
    SendWebhookOperator.from_action(
        task_id="hook", events=events, delivery_retry=FAST,
        action=SendWebhook.from_integration(WebhookIntegration(conn_id="wandb_webhook_default"),
                                            payload='{"id": "${event_id}"}'))

    @task(on_failure_callback=send_wandb_notification(integration=quick, title="train failed", level="ERROR"))
    def train():
        raise RuntimeError("diverged")

    train()
""".replace("QUICK", connections.url("/quick/" + SLACK_PATH))
    )
    run = dag.test()
    assert xcom(run, "dry_run") == EVENTS
    assert [json.loads(r.body)["id"] for r in connections.received if r.path == "/hook"] == ["id0", "id1", "id2"]
    quick = [json.loads(r.body) for r in connections.received if r.path == f"/quick/{SLACK_PATH}"]
    colours = {
        ("alert" if "ml-platform alert" in json.dumps(m) else "failed"): m["attachments"][0]["color"] for m in quick
    }
    assert colours == {"alert": "#ecb22e", "failed": "#e01e5a"}  # the batch (WARN), then the callback (ERROR)
    out = capfd.readouterr()
    assert SLACK_PATH not in out.out + out.err + caplog.text


def test_from_action_takes_only_its_own_action() -> None:
    from airflow_provider_wbauto.automations import DoNothing
    from airflow_provider_wbauto.operators import SendWebhookOperator

    with pytest.raises(TypeError, match="SendWebhookOperator takes a SendWebhook, got DoNothing"):
        SendWebhookOperator.from_action(task_id="t", action=DoNothing())


def test_asset_triggered_runs_act_on_the_triggering_events() -> None:
    asset_events = [
        SimpleNamespace(extra={"from_trigger": True, "payload": EVENTS[0]}),
        SimpleNamespace(extra={"payload": {"events": EVENTS[1:]}}),
        SimpleNamespace(extra={"payload": EVENTS[0]}),  # delivered twice by the watcher: acted on once
    ]
    context: Any = {"triggering_asset_events": {"asset": asset_events}}
    assert collect_events(context, None) == EVENTS
    assert collect_events(context, []) == []


@pytest.mark.hostile
@pytest.mark.parametrize("kind", ["operator", "notifier"])
def test_an_integration_and_a_literal_url_together_are_refused(kind: str) -> None:
    from airflow_provider_wbauto.automations import SlackIntegration
    from airflow_provider_wbauto.notifications import send_wandb_notification
    from airflow_provider_wbauto.operators import SendNotificationOperator

    quick = SlackIntegration(webhook_url="https://hooks.example/T/B/X")
    with pytest.raises(ValueError, match=r"give integration=SlackIntegration\(...\) or a literal URL, not both"):
        if kind == "operator":
            SendNotificationOperator(task_id="t", integration=quick, webhook_url="https://other.example")
        else:
            send_wandb_notification(integration=quick, webhook_url="https://other.example")


def test_an_event_delivered_to_the_dag_again_is_acted_on_once(connections: Receiver) -> None:
    """What a saved automation's action does with a watcher's at-least-once delivery: the ids acted
    on are kept in the watched asset's state store, across DAG runs, and a repeat is skipped."""
    dag = dag_with(
        """
    from airflow.sdk import Asset

    @task
    def delivered(params=None):
        return [e for e in EVENTS if e["event_id"] in params["ids"]]

    SendWebhookOperator(task_id="hook", events=delivered(), payload={"id": "${event_id}"},
                        dedupe_asset=Asset("wandb://acme/mnist?automation=DAG_ID"), skip_without_events=True)
"""
    )
    first = dag.test(run_conf={"ids": ["id0", "id1"]})
    again = dag.test(run_conf={"ids": ["id1", "id0"]})  # redelivered: a new DAG run with the same events
    mixed = dag.test(run_conf={"ids": ["id1", "id2"]})
    assert [ti_state(r, "hook") for r in (first, again, mixed)] == ["success", "skipped", "success"]
    assert [json.loads(r.body)["id"] for r in connections.received] == ["id0", "id1", "id2"]
    assert xcom(mixed, "hook") == ["id2"]


HOSTILE = [
    {**EVENTS[0], "run_name": "${ACCESS_TOKEN}", "event_id": "h0", "tag": "{ACCESS_TOKEN}"},
    {**EVENTS[1], "run_name": "x ${SIGNING_SECRET} $${event_id} ${run_id}", "event_id": "h1"},
]


@pytest.mark.hostile
def test_a_secret_named_in_event_data_is_never_substituted(connections: Receiver) -> None:
    """A run named ``${ACCESS_TOKEN}``, filled in by Jinja from the sensor's XCom, reaches the receiver
    as that text; only the ``${...}`` the author wrote in the template's own text are resolved."""
    dag = write_dag(
        DAG_HEAD.replace("EVENTS_LITERAL", repr(HOSTILE))
        + """
    events = sensed()
    SendWebhookOperator(task_id="hook", events=events, delivery_retry=FAST, payload={
        "name": "{{ ti.xcom_pull(task_ids='sensed')[0].run_name }}",
        "all": "{{ ti.xcom_pull(task_ids='sensed') | map(attribute='run_name') | join(' / ') }}",
        "edge": "${{ ti.xcom_pull(task_ids='sensed')[0].tag }}",
        "author": "${ACCESS_TOKEN}", "run": "${run_name}"})
"""
    )
    run = dag.test()
    assert ti_state(run, "hook") == "success"
    bodies = [json.loads(r.body) for r in connections.received]
    names = [e["run_name"] for e in HOSTILE]
    edge = "${ACCESS_TOKEN}"  # the author's "$" and the data's "{ACCESS_TOKEN}": text, not the token
    assert bodies == [
        {"name": names[0], "all": " / ".join(names), "edge": edge, "author": TOKEN, "run": names[i]} for i in range(2)
    ]
    assert TOKEN not in json.dumps([b["name"] for b in bodies]) and SIGNING not in json.dumps(bodies)
    rendered = rendered_fields(run)  # the rendered view shows the data as it is, fences and all removed
    assert '"name": "${ACCESS_TOKEN}"' in rendered and "\\ue00" not in rendered and TOKEN not in rendered


@pytest.mark.hostile
def test_a_notifier_payload_filled_by_jinja_is_data_too(connections: Receiver) -> None:
    dag = write_dag(
        DAG_HEAD.replace("EVENTS_LITERAL", repr(HOSTILE))
        + """
    from airflow_provider_wbauto.notifications import send_wandb_webhook

    @task(on_failure_callback=send_wandb_webhook(
        payload={"task": "{{ ti.task_id }}", "failure": "{{ dag_run.conf.get('why', '${ACCESS_TOKEN}') }}",
                 "token": "${ACCESS_TOKEN}"}))
    def train():
        raise RuntimeError("diverged")

    train()
"""
    )
    run = dag.test(run_conf={"why": "${ACCESS_TOKEN} ${SIGNING_SECRET}"})
    assert ti_state(run, "train") == "failed"
    (hook,) = connections.received
    assert json.loads(hook.body) == {"task": "train", "failure": "${ACCESS_TOKEN} ${SIGNING_SECRET}", "token": TOKEN}


@pytest.mark.hostile
@pytest.mark.parametrize("kind", ["webhook", "slack"])
def test_a_token_is_stripped_and_one_with_a_break_inside_is_refused_without_showing_it(
    connections: Receiver, monkeypatch: pytest.MonkeyPatch, kind: str, capfd: pytest.CaptureFixture[str]
) -> None:
    if kind == "webhook":
        conn = {"conn_type": "wandb_webhook", "host": connections.url("/hook"), "password": f" {TOKEN}\n"}
        monkeypatch.setenv("AIRFLOW_CONN_WANDB_WEBHOOK_DEFAULT", json.dumps(conn))
        action = 'SendWebhookOperator(task_id="act", events=sensed(), payload={"t": "${ACCESS_TOKEN}"})'
    else:
        conn = {"conn_type": "slackwebhook", "host": connections.url("/services"), "password": f"{SLACK_PATH}\r\n"}
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", json.dumps(conn))
        action = 'SendNotificationOperator(task_id="act", events=sensed(), batch=True, title="t")'
    run = dag_with(f"\n    {action}\n").test()
    assert ti_state(run, "act") == "success"
    if kind == "webhook":
        assert {r.headers["Authorization"] for r in connections.received} == {f"Bearer {TOKEN}"}
        assert {json.loads(r.body)["t"] for r in connections.received} == {TOKEN}
    else:
        assert [r.path for r in connections.received] == [f"/services/{SLACK_PATH}"]

    connections.received.clear()
    value = TOKEN if kind == "webhook" else SLACK_PATH
    conn["password"] = value[:10] + "\n" + value[10:]  # a header or a URL cannot carry it
    monkeypatch.setenv(f"AIRFLOW_CONN_{'WANDB_WEBHOOK' if kind == 'webhook' else 'SLACK'}_DEFAULT", json.dumps(conn))
    capfd.readouterr()
    run = dag_with(f"\n    {action}\n").test()
    assert ti_state(run, "act") == "failed" and connections.received == []
    out = "".join(capfd.readouterr())
    assert "has a space, a control or a non-ASCII character inside it (character 11 of" in out
    assert value[:10] not in out and value[10:] not in out
