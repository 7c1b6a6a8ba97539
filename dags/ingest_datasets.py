"""Ingest the dataset release events of every org into the harmonized zone (app.airflow_dags)."""
from app.airflow_dags import ingest_dag

dag = ingest_dag("datasets")
