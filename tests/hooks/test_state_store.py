"""Values past the asset state store's soft limit are kept whole over several keys, each under it:
in the real store (a sensor watching 1,000 active runs with a z-score window each, under
``dag.test()``), and through the writes a crash can interrupt."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_wbauto.hooks import state_store
from airflow_provider_wbauto.hooks.state_store import PART_BYTES, StoredValueError
from airflow_provider_wbauto.local import LocalWandb
from tests.airflow_env import SENSOR_MODES, play_during, ti_state, write_dag, xcom

LIMIT = 64 * 1024  # the store's soft limit


class DictStore:
    """The accessor's interface over a dict, counting writes, failing the n-th one when asked."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes, self.fail_at = 0, -1

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise RuntimeError("crash")
        self.values[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def _big(n: int, tag: str = "") -> dict[str, Any]:
    return {"runs": {f"run{i:05d}": {"last_step": i, "engine": {"buf": [i / 7] * 30}, "tag": tag} for i in range(n)}}


def test_a_big_value_is_split_under_the_limit_and_put_together_exactly() -> None:
    store, value = DictStore(), _big(1000)
    state_store.save(store, "k", value)
    assert len(store.values) > 2 and all(len(v) < LIMIT for v in store.values.values())
    assert state_store.load(store, "k") == value
    state_store.save(store, "k", {"small": True})  # back under the limit: stored whole, the parts deleted
    assert store.values == {"k": '{"small": true}'} and state_store.load(store, "k") == {"small": True}


def test_a_crash_between_the_parts_and_the_head_leaves_the_previous_value() -> None:
    store, old, new = DictStore(), _big(1000, "old"), _big(1000, "new")
    state_store.save(store, "k", old)
    parts = len(state_store.part_keys(store.get("k")))
    store.writes, store.fail_at = 0, parts + 1  # every new part written, then the head's write fails
    with pytest.raises(RuntimeError):
        state_store.save(store, "k", new)
    assert state_store.load(store, "k") == old
    store.fail_at = -1
    state_store.save(store, "k", new)  # the retry: parts already there are not written again
    assert state_store.load(store, "k") == new
    names = set(state_store.part_keys(store.get("k")))
    assert set(store.values) - {"k"} == names  # the old parts are gone; nothing unreferenced is left


def test_a_missing_part_is_an_error_naming_the_key_never_a_silent_reset() -> None:
    store = DictStore()
    state_store.save(store, "wbauto:d.t:abc", _big(1000))
    store.delete(state_store.part_keys(store.get("wbauto:d.t:abc"))[1])
    with pytest.raises(StoredValueError, match=r"'wbauto:d\.t:abc' names 1 part\(s\) that are missing.*delete"):
        state_store.load(store, "wbauto:d.t:abc")


def test_small_values_are_stored_as_they_are() -> None:
    store = DictStore()
    state_store.save(store, "k", {"version": 3, "cursor": None, "claims": []})
    assert json.loads(store.values["k"]) == {"version": 3, "cursor": None, "claims": []}
    assert PART_BYTES < LIMIT


def _stored_values(prefix: str) -> dict[str, str]:
    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetStateStoreModel).filter(AssetStateStoreModel.key.like(prefix + "%")).all()
        return {row.key: row.value for row in rows}


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_a_sensor_watching_1000_active_runs_keeps_every_stored_value_under_the_limit(
    wandb_conn: LocalWandb, entity: str, mode: str
) -> None:
    store = wandb_conn.store
    with store.transaction():
        for i in range(1000):
            store.upsert_run(entity, "p", f"run{i:04d}")
            store.log(entity, "p", f"run{i:04d}", [{"loss": 1.0 + (s % 5) / 9} for s in range(31)])
    dag = write_dag(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_provider_wbauto.automations import RunEvent
        from airflow_provider_wbauto.sensors import RunMetricSensor

        with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
                 max_active_runs=1) as dag:
            RunMetricSensor(task_id="watch", scope="{entity}/p", cursor_key="big-DAG_ID", since="beginning",
                            filter=RunEvent.metric("loss").zscore(window=30).gt(4),
                            poke_interval=0.2, timeout=300, {SENSOR_MODES[mode]})
        """
    )
    jumps = [lambda s, i=i: s.log(entity, "p", f"run{i:04d}", [{"loss": 50.0}]) for i in (3, 700, 900)]
    run = play_during(wandb_conn, dag, jumps[:1])
    assert ti_state(run, "watch") == "success"
    assert [(e["run_id"], e["step"]) for e in xcom(run, "watch")] == [("run0003", 31)]
    stored = _stored_values(f"big-{dag.dag_id}")
    assert len(stored) > 2 and all(len(v) < LIMIT for v in stored.values()), {k: len(v) for k, v in stored.items()}
    assert sum(len(v) for v in stored.values()) > 5 * LIMIT  # 1,000 windows of 30 values

    run = play_during(wandb_conn, dag, jumps[1:2])  # the next DAG run goes on from the stored parts
    assert [(e["run_id"], e["step"]) for e in xcom(run, "watch")] == [("run0700", 31)]
    # late enough that the sensor waits (deferred: in its trigger), the 1,000 runs re-listed at each poll
    run = play_during(wandb_conn, dag, jumps[2:], polls=80)
    assert [(e["run_id"], e["step"]) for e in xcom(run, "watch")] == [("run0900", 31)]
    if mode == "deferrable":  # the trigger read the cursor from the store: its kwargs stayed small
        kwargs = _trigger_kwargs(dag.dag_id)
        assert kwargs and all(k["cursor"] is None and k["stored"] for k in kwargs)
        assert max(len(json.dumps(k, default=str)) for k in kwargs) < 16 * 1024


def _trigger_kwargs(dag_id: str) -> list[dict[str, Any]]:
    """The kwargs of this DAG's sensor triggers (``dag.test()`` leaves their rows in the DB)."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Trigger).filter(Trigger.classpath.like("%WandbEventTrigger")).all()
        return [dict(t.kwargs) for t in rows if t.kwargs.get("automation") == f"{dag_id}.watch"]
