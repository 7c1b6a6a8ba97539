"""Ingest the policy update events of every org into the instruments tables (app.airflow_dags)."""
from app.airflow_dags import ingest_dag

dag = ingest_dag("policies")
