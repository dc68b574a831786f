"""Signed JSON webhooks, as W&B's generic webhook action sends them.

Connection (type ``wandb_webhook``): ``host`` = the URL, ``password`` = access token (sent as
``Authorization: Bearer`` and available as ``${ACCESS_TOKEN}``), extra ``signing_secret`` (HMAC key
of ``X-Wandb-Signature``), extra ``secrets`` = ``{"NAME": "value"}`` (each as ``${NAME}``), plus
``timeout`` and ``rate_limit_per_minute``. Secrets are resolved at send time, so rendered templates,
XCom and logs only ever show the ``${...}`` placeholder.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
from airflow.sdk.exceptions import AirflowNotFoundException

from .delivery import DeliveryHook, Target, credential, masked

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
# What Jinja filled in is data, fenced off from the author's text: a BOUND at each end (so no variable
# can run from the author's text into it, as in ``${`` + data + ``}``) and after each ``$`` in it (so it
# cannot spell one of its own); its own private-use characters are kept by an ESCAPE before each.
ESCAPE, BOUND = "\ue000", "\ue001"
_RESOLVED = re.compile(VARIABLE.pattern + "|" + ESCAPE + "(.)|" + BOUND, re.DOTALL)  # what resolve reads
EVENT_VARIABLES = (
    *("project_name", "entity_name", "event_type", "event_author", "alias", "tag", "artifact_collection_name"),
    *("artifact_version", "artifact_version_string", "artifact_version_index", "artifact_metadata"),
    *("run_name", "run_id", "run_state", "metric_name", "metric_value", "step", "window_values"),
    *("event_id", "url", "automation_name", "occurred_at"),
)


class UnknownVariableError(ValueError):
    """A ``${...}`` the event and the connection do not define: named, never replaced by a blank."""


def event_variables(event: Mapping[str, Any]) -> dict[str, Any]:
    """W&B's payload variables (and ours) that this event defines, ``artifact_metadata.KEY`` included."""
    found = {name: event[name] for name in EVENT_VARIABLES if event.get(name) is not None}
    found.setdefault("event_author", "airflow")
    for key, value in (event.get("artifact_metadata") or {}).items():
        found[f"artifact_metadata.{key}"] = value
    return found


def resolve(value: Any, variables: Mapping[str, Any]) -> Any:
    """Replace ``${name}`` in every string of a JSON value. A string that is exactly one variable takes
    the variable's JSON value (a number stays a number); inside text it is formatted."""
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if not isinstance(value, str):
        return value
    names = VARIABLE.findall(value)
    missing = sorted({n for n in names if n not in variables})
    if missing:
        raise UnknownVariableError(
            f"payload variable(s) {', '.join('${' + n + '}' for n in missing)} not defined for this event; "
            f"available: {', '.join('${' + n + '}' for n in sorted(variables))}"
        )
    whole = VARIABLE.fullmatch(value)
    if whole:
        return variables[whole.group(1)]
    return _RESOLVED.sub(lambda m: _text(variables[m.group(1)]) if m.group(1) else m.group(2) or "", value)


def escape(value: Any) -> Any:
    """``value`` with its strings fenced off (``BOUND``) so that no ``${...}`` can be made of them,
    which ``resolve`` gives back as they were: what Jinja fills into a payload (a run's name, an XCom)
    is data, and a run named ``${ACCESS_TOKEN}`` must not become the token. Only the template's own
    text is resolved."""
    if isinstance(value, str):
        kept = value.replace(ESCAPE, ESCAPE + ESCAPE).replace(BOUND, ESCAPE + BOUND)
        return BOUND + kept.replace("$", "$" + BOUND) + BOUND
    if isinstance(value, dict):
        return {k: escape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(escape(v) for v in value)
    return value


_FENCES = re.compile(ESCAPE + "(.)|" + BOUND, re.DOTALL)


def unfenced(value: Any) -> Any:
    """``value`` as it reads without the fences ``escape`` put around data: what a rendered template
    shows (its ``${...}`` unresolved, as they are until send time)."""
    if isinstance(value, str):
        return _FENCES.sub(lambda m: m.group(1) or "", value)
    if isinstance(value, dict):
        return {k: unfenced(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(unfenced(v) for v in value)
    return value


class FencedPayload:
    """For an operator or notifier with a templated ``payload``: what Jinja fills in is fenced off as
    data (``escape``), the fenced payload is what is sent (``fenced_payload``), and ``payload`` itself
    shows as rendered without the fences (Airflow's rendered-template view reads it)."""

    payload: Any
    fenced_payload: Any = None

    def render_template_fields(self, context: Any, jinja_env: jinja2.Environment | None = None) -> None:
        env = jinja_env or self.get_template_env(dag=context.get("dag"))  # type: ignore[attr-defined]
        super().render_template_fields(context, data_escaping(env))  # type: ignore[misc]
        self.fenced_payload, self.payload = self.payload, unfenced(self.payload)

    @property
    def payload_to_send(self) -> Any:
        return self.payload if self.fenced_payload is None else self.fenced_payload


def data_escaping(env: jinja2.Environment) -> jinja2.Environment:
    """``env`` whose every ``{{ expression }}`` output is escaped (``escape``) after its own finalize."""
    inner = env.finalize or (lambda v: v)
    return env.overlay(finalize=lambda value: escape(inner(value)))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _named_secrets(value: Any, conn_id: str | None) -> dict[str, str]:
    """The extra ``secrets``: a JSON object (or its text) of names to values; else a ValueError naming
    the connection (never the values)."""
    if isinstance(value, str) and value.strip():
        with contextlib.suppress(ValueError):  # not JSON: it stays text, refused below
            value = json.loads(value)
    value = value or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and VARIABLE.fullmatch(f"${{{k}}}") for k in value):
        raise ValueError(
            f"connection {conn_id!r}: extra 'secrets' must be a JSON object of names (letters, digits, '_', "
            "'.', '-') to values, each used as ${NAME}; the values are not shown"
        )
    masked(*value.values())
    return {k: str(v) for k, v in value.items()}


def signature(secret: str, body: bytes) -> str:
    """``X-Wandb-Signature``: base64 of the HMAC-SHA256 of the exact body bytes."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WebhookHook(DeliveryHook):
    """Posts JSON to a webhook receiver with W&B's variables, bearer token, signature and idempotency key.

    :param webhook_conn_id: a ``wandb_webhook`` connection: host = URL, password = access token,
        extras ``signing_secret`` (``X-Wandb-Signature``), ``secrets`` (``{"NAME": "value"}`` for
        ``${NAME}``), ``timeout`` and ``rate_limit_per_minute``.
    :param url: a literal receiver URL instead (masked in logs).

    ``timeout``, ``retry`` and ``rate_per_minute`` are ``DeliveryHook``'s.
    """

    conn_name_attr = "webhook_conn_id"
    default_conn_name = "wandb_webhook_default"
    conn_type = "wandb_webhook"
    hook_name = "W&B automations: webhook"

    def __init__(self, webhook_conn_id: str | None = default_conn_name, url: str | None = None, **kw: Any) -> None:
        super().__init__(None if url else webhook_conn_id, **kw)
        self.url = url
        masked(url)

    def make_target(self, conn: Any, extra: Mapping[str, Any]) -> Target:
        secrets: dict[str, str] = {}
        if conn is None:
            url = self.url or ""
        else:
            url = (conn.host or "").strip()
            if conn.schema and "://" not in url:
                url = f"{conn.schema}://{url}"
            masked(conn.password, extra.get("signing_secret"))  # as stored, before anything can fail
            if token := credential(conn.password, conn_id=self.conn_id, field="access token (password)"):
                secrets["ACCESS_TOKEN"] = token
            if signing := str(extra.get("signing_secret") or "").strip():
                secrets["SIGNING_SECRET"] = signing
            secrets.update(_named_secrets(extra.get("secrets"), self.conn_id))
        if not url.startswith("http"):
            raise AirflowNotFoundException(f"webhook connection {self.conn_id!r} has no URL (host)")
        masked(*secrets.values())
        name = f"webhook ({self.conn_id or 'literal URL'})"
        timeout, per_minute = self.tuning(extra)
        return Target(url=url, name=name, secrets=secrets, timeout=timeout, per_minute=per_minute)

    def request(
        self, target: Target, payload: Any, events: Sequence[Mapping[str, Any]], idempotency_key: str, batch: bool
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body bytes and headers: one event's payload, or ``{"events": [...]}`` for a batch
        (one resolved payload per event); ``payload=None`` sends the events themselves."""
        if isinstance(payload, str):  # W&B's requestPayload is JSON text; so may a rendered template be
            try:
                payload = json.loads(payload)
            except json.JSONDecodeError as exc:
                raise ValueError(f"webhook payload is not valid JSON: {exc}") from None
        secrets = {k: v for k, v in target.secrets.items() if k != "SIGNING_SECRET"}
        bodies = [e if payload is None else resolve(payload, {**event_variables(e), **secrets}) for e in events]
        body = json.dumps({"events": bodies} if batch else bodies[0], separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        if target.secrets.get("ACCESS_TOKEN"):
            headers["Authorization"] = f"Bearer {target.secrets['ACCESS_TOKEN']}"
        if target.secrets.get("SIGNING_SECRET"):
            headers["X-Wandb-Signature"] = signature(target.secrets["SIGNING_SECRET"], body)
        return body, headers

    def send(self, payload: Any, events: Sequence[Mapping[str, Any]], key: str, batch: bool = False) -> int:
        target = self.target()
        return self.post(target, *self.request(target, payload, events, key, batch))

    async def async_send(self, payload: Any, events: Sequence[Mapping[str, Any]], key: str, batch: bool = False) -> int:
        target = await self.atarget()
        return await self.apost(target, *self.request(target, payload, events, key, batch))
