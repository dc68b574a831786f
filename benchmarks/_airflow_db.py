"""Connection arguments for the benchmark's Airflow on SQLite (``[database] sql_alchemy_connect_args``).

1,000 DAGs make the scheduler, the DAG processor and the triggerer write at once; SQLite's default 5 s
wait for its lock ran out and killed the triggerer in a first run ("database is locked" while it stored
an asset event). Production Airflow runs on PostgreSQL, where writers do not lock the whole file.
"""

CONNECT_ARGS = {"timeout": 120}
