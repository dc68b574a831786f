"""The action hooks against a real HTTP receiver on 127.0.0.1: bodies, headers, signatures, variables,
Slack blocks, retries under 500 / 429 / timeouts, 4xx, and the rate limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_wbauto.hooks.delivery import DeliveryError, DeliveryRejected
from airflow_provider_wbauto.hooks.slack import SlackNotificationHook, slack_message, sparkline
from airflow_provider_wbauto.hooks.transport import RetryPolicy
from airflow_provider_wbauto.hooks.webhook import UnknownVariableError, WebhookHook, escape, resolve
from airflow_provider_wbauto.local.receiver import Answer, Chaos, Receiver
from tests.secrets_scan import secret

TOKEN, SIGNING, TEAM = secret("tok-" + "t" * 20), secret("sig-" + "s" * 20), secret("team-" + "k" * 20)
SLACK_TOKEN = secret("T1/B2/" + "slack" * 5)
FAST = RetryPolicy(max_attempts=4, max_total_seconds=30, backoff_base=0.05, backoff_cap=0.2)

METRIC_EVENT = {
    "event_id": "e1",
    "event_type": "RUN_METRIC",
    "entity_name": "acme",
    "project_name": "mnist",
    "run_id": "r1",
    "run_name": "bright-sun-1",
    "metric_name": "loss",
    "metric_value": 0.25,
    "step": 9,
    "window_values": [0.9, 0.3, 0.2, 0.25],
    "url": "https://wandb.ai/acme/mnist/runs/r1",
}
ALIAS_EVENT = {
    "event_id": "e2",
    "event_type": "ADD_ARTIFACT_ALIAS",
    "entity_name": "acme",
    "project_name": "mnist",
    "alias": "production",
    "artifact_collection_name": "model",
    "artifact_version_string": "acme/mnist/model:v3",
    "artifact_metadata": {"acc": 0.97},
    "url": "https://wandb.ai/acme/mnist/artifacts/model/model/v3",
}


@pytest.fixture
def webhook_conn(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    conn = {
        "conn_type": "wandb_webhook",
        "host": receiver.url(),
        "password": TOKEN,
        "extra": {"signing_secret": SIGNING, "secrets": {"TEAM_KEY": TEAM}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HOOK", json.dumps(conn))
    return receiver


def test_webhook_body_headers_signature_and_variables(webhook_conn: Receiver) -> None:
    payload = {
        "text": "${run_name} hit ${metric_name}=${metric_value} (${event_type})",
        "value": "${metric_value}",
        "auth": "${TEAM_KEY}",
        "nested": ["${project_name}/${entity_name}", {"url": "${url}"}],
    }
    WebhookHook("hook", retry=FAST).send(payload, [METRIC_EVENT], "e1")
    (got,) = webhook_conn.received
    body = json.loads(got.body)
    assert body == {
        "text": "bright-sun-1 hit loss=0.25 (RUN_METRIC)",
        "value": 0.25,  # a string that is exactly one variable keeps its JSON type
        "auth": TEAM,
        "nested": ["mnist/acme", {"url": METRIC_EVENT["url"]}],
    }
    assert got.headers["Authorization"] == f"Bearer {TOKEN}"
    assert got.headers["Idempotency-Key"] == "e1"
    assert got.headers["Content-Type"] == "application/json"
    expected = base64.b64encode(hmac.new(SIGNING.encode(), got.body, hashlib.sha256).digest()).decode()
    assert got.headers["X-Wandb-Signature"] == expected


def test_artifact_metadata_variables_and_batches(webhook_conn: Receiver) -> None:
    hook = WebhookHook("hook", retry=FAST)
    hook.send({"msg": "${alias} -> ${artifact_version_string} acc=${artifact_metadata.acc}"}, [ALIAS_EVENT], "e2")
    hook.send({"id": "${event_id}"}, [METRIC_EVENT, ALIAS_EVENT], "batch-key", batch=True)
    hook.send(None, [ALIAS_EVENT], "e2")  # no payload: the event itself
    hook.send('{"v": "${artifact_version_string}"}', [ALIAS_EVENT], "e2")  # JSON text, as W&B stores it
    single, batch, raw, text = (json.loads(r.body) for r in webhook_conn.received)
    assert text == {"v": "acme/mnist/model:v3"}
    assert single == {"msg": "production -> acme/mnist/model:v3 acc=0.97"}
    assert batch == {"events": [{"id": "e1"}, {"id": "e2"}]}
    assert raw == ALIAS_EVENT


@pytest.mark.hostile
def test_unknown_variable_is_an_error_naming_it(webhook_conn: Receiver) -> None:
    with pytest.raises(UnknownVariableError, match=r"\$\{alias\}.*not defined") as caught:
        WebhookHook("hook", retry=FAST).send({"a": "${alias}", "b": "${run_name}"}, [METRIC_EVENT], "e1")
    assert "${run_name}" in str(caught.value)  # the message lists what is available
    assert TOKEN not in str(caught.value) and TEAM not in str(caught.value)
    assert webhook_conn.received == []


@pytest.mark.parametrize(
    ("answers", "attempts"),
    [
        ([Answer(500), Answer(502)], 3),
        ([Answer(429, {"Retry-After": "1"})], 2),
        ([Answer(delay=5.0)], 2),  # the first attempt times out
        ([Answer(408)], 2),
        ([Answer(reset=True), Answer(reset=True)], 3),  # the connection reset under the request
    ],
    ids=["5xx", "429", "timeout", "408", "reset"],
)
def test_retries_until_delivered(webhook_conn: Receiver, answers: list[Answer], attempts: int) -> None:
    webhook_conn.answer(*answers)
    WebhookHook("hook", retry=FAST, timeout=2.0).send({"k": "v"}, [METRIC_EVENT], "e1")
    assert len(webhook_conn.received) == attempts
    assert len({r.body for r in webhook_conn.received}) == 1  # the same bytes, so the same signature
    if answers[0].status == 429:
        assert webhook_conn.received[1].at - webhook_conn.received[0].at >= 0.9


@pytest.mark.hostile
def test_4xx_fails_at_once_with_the_receivers_answer(webhook_conn: Receiver) -> None:
    webhook_conn.answer(Answer(400, body=b'{"error": "bad field"}'))
    with pytest.raises(DeliveryRejected, match=r"HTTP 400.*bad field"):
        WebhookHook("hook", retry=FAST).send({"k": "v"}, [METRIC_EVENT], "e1")
    assert len(webhook_conn.received) == 1


@pytest.mark.hostile
def test_a_receiver_echoing_secrets_does_not_put_them_in_the_error(webhook_conn: Receiver) -> None:
    webhook_conn.answer(Answer(422, body=f"bad token {TOKEN} and key {TEAM}".encode()))
    with pytest.raises(DeliveryRejected) as caught:
        WebhookHook("hook", retry=FAST).send({"k": "${TEAM_KEY}"}, [METRIC_EVENT], "e1")
    assert "HTTP 422" in str(caught.value) and TOKEN not in str(caught.value) and TEAM not in str(caught.value)


def test_gives_up_within_bounds(webhook_conn: Receiver) -> None:
    webhook_conn.answer(*[Answer(503)] * 10)
    with pytest.raises(DeliveryError, match="after 4 attempt"):
        WebhookHook("hook", retry=FAST).send({"k": "v"}, [METRIC_EVENT], "e1")
    assert len(webhook_conn.received) == 4


def test_rate_limit_spaces_deliveries(webhook_conn: Receiver) -> None:
    hook = WebhookHook("hook", retry=FAST, rate_per_minute=240)  # one per 0.25 s
    for i in range(5):
        hook.send({"i": i}, [METRIC_EVENT], f"k{i}")
    times = [r.at for r in webhook_conn.received]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 5 and min(gaps) >= 0.2, gaps


def test_sparkline() -> None:
    assert sparkline([1, 5, 3]) == "▁█▅"
    assert sparkline([2, 2]) == "▁▁" and sparkline([]) == ""


@pytest.mark.parametrize("severity", ["INFO", "WARN", "ERROR"])
def test_slack_blocks_show_severity_link_and_sparkline(severity: str) -> None:
    message = slack_message("Loss plateau", "check the LR", severity, [METRIC_EVENT])
    (attachment,) = message["attachments"]
    assert attachment["color"] == {"INFO": "#2eb67d", "WARN": "#ecb22e", "ERROR": "#e01e5a"}[severity]
    text = json.dumps(attachment["blocks"], ensure_ascii=False)
    assert "Loss plateau" in text and "check the LR" in text and f"*{severity}*" in text
    assert f"<{METRIC_EVENT['url']}|bright-sun-1>" in text
    assert sparkline(METRIC_EVENT["window_values"]) in text


@pytest.mark.parametrize("style", ["ours, full URL", "slackwebhook, host + token"])
def test_slack_connection_forms(receiver: Receiver, monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    base = receiver.url("/services")
    conn: dict[str, Any] = (
        {"conn_type": "wandb_slack", "password": base + "/" + SLACK_TOKEN}
        if style.startswith("ours")
        else {"conn_type": "slackwebhook", "host": base, "password": SLACK_TOKEN}
    )
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", json.dumps(conn))
    SlackNotificationHook(retry=FAST).send(slack_message("t", "m", "WARN", [ALIAS_EVENT]))
    (got,) = receiver.received
    assert got.path == "/services/" + SLACK_TOKEN
    assert json.loads(got.body)["attachments"][0]["color"] == "#ecb22e"


def test_slack_literal_url(receiver: Receiver) -> None:
    SlackNotificationHook(webhook_url=receiver.url("/quick")).send({"text": "hi"})
    assert [r.path for r in receiver.received] == ["/quick"]


def test_async_sends_match_the_sync_ones(webhook_conn: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notifiers' ``async_notify`` and deferrable callers use the async path: same bytes, same headers."""
    import asyncio

    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_DEFAULT", json.dumps({"conn_type": "wandb_slack", "password": webhook_conn.url()})
    )
    payload = {"text": "${run_name}", "value": "${metric_value}"}
    WebhookHook("hook", retry=FAST).send(payload, [METRIC_EVENT], "e1")
    webhook_conn.answer(Answer(503))  # the async path retries too
    asyncio.run(WebhookHook("hook", retry=FAST).async_send(payload, [METRIC_EVENT], "e1"))
    asyncio.run(SlackNotificationHook(retry=FAST).async_send(slack_message("t", "m", "INFO")))
    sync, failed, retried, slack = webhook_conn.received
    assert sync.body == failed.body == retried.body
    assert {k: sync.headers[k] for k in ("Authorization", "X-Wandb-Signature", "Idempotency-Key")} == {
        k: retried.headers[k] for k in ("Authorization", "X-Wandb-Signature", "Idempotency-Key")
    }
    assert json.loads(slack.body)["attachments"][0]["color"] == "#2eb67d"


@pytest.mark.hostile
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_a_delivery_and_is_not_followed(webhook_conn: Receiver, status: int) -> None:
    """A redirect is retried at the same address, like a 5xx; it is never followed (the body and its
    signature would go elsewhere), and one that stays is a DeliveryError saying so."""
    moved = Answer(status, {"Location": webhook_conn.url("/elsewhere")})
    webhook_conn.answer(moved)
    assert WebhookHook("hook", retry=FAST).send({"k": "v"}, [METRIC_EVENT], "e1") == 200
    webhook_conn.answer(*[moved] * FAST.max_attempts)
    with pytest.raises(DeliveryError, match=rf"HTTP {status} \(a redirect, never followed.*not delivered"):
        WebhookHook("hook", retry=FAST).send({"k": "v"}, [METRIC_EVENT], "e1")
    assert {r.path for r in webhook_conn.received} == {"/hook"}  # the body went nowhere else


HOSTILE_NAME = "<!channel> <https://evil.example|your model> & more"


@pytest.mark.hostile
def test_slack_shows_event_text_literally() -> None:
    """A run named to ping the channel and show a spoofed link is shown as its name, nothing more."""
    event = METRIC_EVENT | {"run_name": HOSTILE_NAME, "metric_name": "<@U123>", "url": "https://x.example/a|b"}
    text = json.dumps(slack_message("t", "", "INFO", [event | {"alias": "<!here>"}])["attachments"])
    assert "<!channel>" not in text and "<https://evil" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|your model&gt; &amp; more" in text
    assert "<https://x.example/a%7Cb|&lt;!channel&gt;" in text  # the one link is ours


@pytest.mark.hostile
@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.text(min_size=1))
def test_no_event_text_makes_mrkdwn_of_its_own(name: str, metric: str, alias: str) -> None:
    event = METRIC_EVENT | {"run_name": name or "r", "metric_name": metric, "alias": alias, "run_state": name}
    for block in slack_message("t", "", "INFO", [event])["attachments"][0]["blocks"]:
        for element in [block.get("text") or {}, *block.get("elements", [])]:
            if element.get("type") != "mrkdwn":
                continue
            ours = f"<{METRIC_EVENT['url']}|"  # the one link made, to the run
            rest = element["text"].replace(ours, "", 1)
            assert "<" not in rest and rest.count(">") == (ours in element["text"]), element["text"]


PIECES = st.sampled_from(
    ["${", "}", "$", "{", "ACCESS_TOKEN", "{ACCESS_TOKEN}", "run_name", "step", "a.b", "\ue000", "\ue001"]
)
TEMPLATE_TEXT = st.lists(st.one_of(PIECES, st.text(max_size=3)), max_size=12).map("".join)


@pytest.mark.hostile
@settings(max_examples=500, deadline=None)
@given(TEMPLATE_TEXT, TEMPLATE_TEXT, TEMPLATE_TEXT)
def test_the_renderer_gives_data_back_literally_and_raises_only_for_unknown_names(
    author: str, data: str, after: str
) -> None:
    """``${...}`` is resolved only in the author's text: what Jinja filled in (escaped) comes back as it
    was, whatever it holds; the only error is ``UnknownVariableError``, naming a variable."""
    variables = {"ACCESS_TOKEN": TOKEN, "run_name": data, "step": 3}
    assert resolve(escape(data), variables) == data  # data is never resolved, whatever it spells
    assert resolve(escape({"k": [data, 1]}), variables) == {"k": [data, 1]}
    try:
        out = resolve(author + escape(data) + after, variables)
    except UnknownVariableError as err:
        assert "not defined for this event" in str(err) and TOKEN not in str(err)
    else:
        assert isinstance(out, str | int)
        if TOKEN in str(out):
            assert "${ACCESS_TOKEN}" in author + after  # only where the author wrote it
    for before, data, after in [("$", "{ACCESS_TOKEN}", ""), ("cost: $", "{step}", ""), ("${", "ACCESS_TOKEN", "}")]:
        # the author's text around the data cannot make a variable of it
        assert resolve(before + escape(data) + after, variables) == before + data + after
    assert resolve(escape("a") + escape("b"), variables) == "ab"  # two expressions side by side


def test_a_chaotic_receiver_answers_faultily_at_its_rate_and_every_delivery_still_lands(receiver: Receiver) -> None:
    receiver.chaos = Chaos(0.3, [Answer(500), Answer(429, {"Retry-After": "0"}), Answer(302), Answer(reset=True)])
    hook = WebhookHook(None, url=receiver.url("/c"), retry=RetryPolicy(8, 30, 0.01, 0.05), rate_per_minute=0)
    for i in range(40):
        assert hook.send({"i": i}, [METRIC_EVENT], f"k{i}") == 200
    accepted = [json.loads(r.body)["i"] for r in receiver.received if r.answer.accepted]
    faulty = [r for r in receiver.received if not r.answer.accepted]
    assert accepted == list(range(40)) and 5 <= len(faulty) <= 40  # 17 expected


@pytest.mark.hostile
@pytest.mark.parametrize(
    ("kind", "extra", "said"),
    [
        ("wandb", {"timeout": "soon"}, "extra 'timeout' must be a number greater than 0; got 'soon'"),
        ("wandb", {"timeout": -1}, "extra 'timeout' must be a number greater than 0; got -1"),
        ("wandb", {"timeout": "inf"}, "got 'inf'"),
        ("wandb", {"timeout": [3]}, "got [3]"),
        ("wandb_webhook", {"timeout": 0}, "extra 'timeout' must be a number greater than 0; got 0"),
        ("wandb_webhook", {"rate_limit_per_minute": "fast"}, "extra 'rate_limit_per_minute' must be a number"),
        ("wandb_webhook", {"secrets": "{not json"}, "extra 'secrets' must be a JSON object of names"),
        ("wandb_webhook", {"secrets": ["TEAM_KEY"]}, "extra 'secrets' must be a JSON object of names"),
        ("wandb_webhook", {"secrets": {"bad name!": "v"}}, "extra 'secrets' must be a JSON object of names"),
        ("wandb_slack", {"timeout": "nan"}, "extra 'timeout' must be a number greater than 0; got 'nan'"),
    ],
)
def test_a_bad_connection_extra_is_an_error_naming_the_connection_and_field(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, kind: str, extra: dict[str, Any], said: str
) -> None:
    from airflow_provider_wbauto.hooks.wandb import WandbHook

    conn = {"conn_type": kind, "host": receiver.url(), "password": TOKEN, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_BAD", json.dumps(conn))
    hook: Any = {"wandb": WandbHook, "wandb_webhook": WebhookHook, "wandb_slack": SlackNotificationHook}[kind]("bad")
    with pytest.raises(ValueError, match="connection 'bad': ") as err:
        _ = hook.endpoint if kind == "wandb" else hook.target()
    assert said in str(err.value) and TOKEN not in str(err.value) and receiver.received == []
