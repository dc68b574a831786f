"""The Automations page in the Airflow UI (``plugin.WandbAutomationsPlugin``, registered by the
provider): what is saved, what fired, and for a metric automation the picture of why."""
