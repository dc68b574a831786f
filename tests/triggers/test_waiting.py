"""The watcher's record of events yielded and not yet acted on: when it nudges, and when it stops."""

from __future__ import annotations

from airflow_provider_wbauto.triggers.watcher import NUDGES, WAITING_KEPT, Waiting


def test_an_event_acted_on_in_time_is_never_nudged_for() -> None:
    waiting = Waiting(30.0, now=0.0)
    waiting.add(["a", "b"], now=0.0)
    assert not waiting.any_due(29.9)
    assert waiting.take_due(["a", "b"], now=31.0) == []
    assert waiting.ids() == []


def test_a_stranded_event_is_nudged_for_with_doubling_gaps_then_given_up() -> None:
    waiting = Waiting(10.0, now=0.0)
    waiting.add(["stranded", "fine"], now=0.0)
    nudged_at = []
    t = 0.0
    while waiting.ids() and t < 10_000:
        t += 1.0
        if waiting.any_due(t):
            taken = waiting.take_due(["fine"], t)
            assert taken in ([], ["stranded"])
            if taken:
                nudged_at.append(t)
    assert nudged_at == [10.0, 30.0, 70.0, 150.0, 310.0]  # 10, then 20, 40, 80, 160 s later
    assert len(nudged_at) == NUDGES and waiting.ids() == []


def test_acted_on_after_a_nudge_ends_the_nudges() -> None:
    waiting = Waiting(5.0, ["x"], now=0.0)  # read back from the store at a restart
    assert waiting.take_due([], 5.0) == ["x"]
    assert waiting.take_due(["x"], 15.0) == []
    assert waiting.ids() == []


def test_an_id_yielded_again_keeps_its_schedule_and_the_record_is_bounded() -> None:
    waiting = Waiting(5.0, now=0.0)
    waiting.add(["x"], now=0.0)
    waiting.add(["x"], now=4.0)  # re-polled after a restart: the same id
    assert waiting.take_due([], 5.0) == ["x"]
    waiting.add((str(i) for i in range(WAITING_KEPT + 10)), now=6.0)
    assert len(waiting.ids()) == WAITING_KEPT and waiting.ids()[-1] == str(WAITING_KEPT + 9)
