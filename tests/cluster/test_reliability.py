"""The CI slice of the reliability suites (``python -m reliability`` runs them whole): on PostgreSQL,
ten saved automations run by one triggerer with a standby, 60 events while W&B fails 20% of its
requests and the receiver 30% of its deliveries; the watchers' triggerer is SIGKILLed for good
mid-scenario and tasks' processes are SIGKILLed. Every event is accepted once (or again under the
same Idempotency-Key), and the standby runs every watcher at the end."""

from __future__ import annotations

import pytest

from reliability.__main__ import SLICE
from reliability.scenario import run


@pytest.mark.timeout(1500)
def test_every_event_lands_once_through_faults_kills_and_a_triggerer_taken_over() -> None:
    outcome = run(SLICE)
    print(outcome.row())
    assert outcome.lost == [] and outcome.duplicated == []
    assert outcome.moved is True  # every watcher on the standby
    assert outcome.killed["triggerer for good"] == 1
    assert outcome.backend_faulted > 0 and outcome.receiver_faulted > 0  # the faults were there
