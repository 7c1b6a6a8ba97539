"""Ingest the policy update events of every org into the instruments tables (ioxhub.airflow_dags)."""
from ioxhub.airflow_dags import ingest_dag

dag = ingest_dag("policies")
