"""The same automation as retrain_on_accuracy_drop, as a dry run: DoNothing logs what would have fired.

A DAG like this one shows what an automation would do before it does anything; ``wbauto automations
dry-run`` does the same over history already logged.
"""

from _events import ACCURACY_DROP
from _settings import WATCH

from airflow_provider_wbauto.automations import DoNothing

ACCURACY_DROP.then(DoNothing()).save(name="retrain-on-accuracy-drop-dry-run", **WATCH)
