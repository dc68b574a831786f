"""Loss plateau notice: the mean loss of the last 5 steps changed by less than 1 % against the 5 before (a DAG file).

W&B's change filters say "changed by at least"; ``cmp="<"`` turns one into a plateau detector.
"""

from _settings import ENTITY, PROJECT, WATCH

from airflow_provider_wbauto.automations import OnRunMetric, RunEvent, SendNotification

OnRunMetric(scope=f"{ENTITY}/{PROJECT}", filter=RunEvent.metric("loss").mean(5).changes_by(frac=0.01, cmp="<")).then(
    SendNotification(title="Loss has plateaued", message="Consider stopping early or lowering the learning rate.")
).save(name="loss-plateau", **WATCH)
