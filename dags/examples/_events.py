"""Events that more than one example automation watches."""

from _settings import ENTITY, PROJECT

from airflow_provider_wbauto.automations import OnRunMetric, RunEvent

# the mean of the last 3 val_accuracy values falls by at least 5 % against the 3 before them
ACCURACY_DROP = OnRunMetric(
    scope=f"{ENTITY}/{PROJECT}", filter=RunEvent.metric("val_accuracy").mean(3).decreases_by(frac=0.05)
)
