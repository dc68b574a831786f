"""Dry runs over history (W&B has none): what an automation would have fired had it been saved at ``since``.

The automation's own watch is polled once from an empty cursor with ``since`` as its start (the
same code that runs it for real, so the events are the ones it would have fired): runs created at
or after ``since`` are read from their first step, states reached since then fire, versions created
and links made since then fire. Run events are evaluated run by run (a listing and the history of
one run per step of the progress bar); events that occurred after ``until`` are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .automations.automation import Automation
from .automations.events import OnRunMetric, OnRunState
from .hooks.wandb import WandbHook, read_runs
from .hooks.watch import Payload, Watch, normalise_since, parse_time, poll, project_of, project_watches

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class DryRun:
    """The events an automation would have fired between ``since`` and ``until``."""

    automation: Automation
    since: str
    until: str | None
    events: list[Payload]


def dry_run(
    automation: Automation,
    hook: WandbHook,
    *,
    since: str,
    until: str | None = None,
    progress: Progress | None = None,
) -> DryRun:
    """Evaluate ``automation`` against the history in the backend, from ``since`` (ISO) to ``until``.

    :param automation: the automation (its event and filter; the action is not taken).
    :param hook: where the history is read.
    :param since: an ISO time, or ``"beginning"``: the automation behaves as if saved then.
    :param until: an ISO time; events that occurred after it are left out.
    :param progress: called with (done, total) as the runs (or the one artifact read) are done.
    """
    start, end = normalise_since(since), normalise_since(until)
    if start is None or end == "beginning":
        raise ValueError("since must be an ISO time or 'beginning', until an ISO time")
    watch = Watch(automation.event, automation.name, since=start).polled_by(hook, hook.endpoint)
    watches = hook.run(project_watches(watch))
    events = [e for watch_of_one in _split(watches, hook, progress) for e in hook.run(poll(watch_of_one, None))[0]]
    if end is not None:
        events = [e for e in events if parse_time(e["occurred_at"]) <= parse_time(end)]
    events.sort(key=lambda e: (parse_time(e["occurred_at"]), e.get("run_id", ""), e.get("step", 0)))
    return DryRun(automation, start, until, events)


def _split(watches: list[Watch], hook: WandbHook, progress: Progress | None) -> Iterator[Watch]:
    """The watch of each run of each project (run events), or the project watches (artifact events)."""
    if not all(isinstance(w.event, OnRunMetric | OnRunState) for w in watches):
        yield from watches
        if progress:
            progress(1, 1)
        return
    per_run = [one for watch in watches for one in _per_run(watch, hook)]
    if progress:
        progress(0, len(per_run))
    for done, one in enumerate(per_run, 1):
        yield one
        if progress:
            progress(done, len(per_run))


def _per_run(watch: Watch, hook: WandbHook) -> list[Watch]:
    event = watch.event
    assert isinstance(event, OnRunMetric | OnRunState)
    runs = hook.run(read_runs(*project_of(event.scope), filters=event.filter.run or None))
    return [replace(watch, event=event.model_copy(update={"filter": event.filter & {"name": r["id"]}})) for r in runs]


EVENT_COLUMNS = ("TIME", "SUBJECT", "STEP", "VALUE")


def event_row(event: dict[str, Any]) -> tuple[str, str, str, str]:
    """An event as a row of ``EVENT_COLUMNS``: when, which run or version, step, value."""
    subject = event.get("run_name") or event.get("artifact_version_string") or ""
    if "metric_value" in event:
        value = f"{event['metric_name']}={event['metric_value']:.6g}"
    elif "run_state" in event and "metric_name" not in event:
        value = str(event["run_state"])
    else:
        value = str(event.get("alias") or "")
    step = "" if event.get("step") is None else str(event["step"])
    return event["occurred_at"], subject, step, value
