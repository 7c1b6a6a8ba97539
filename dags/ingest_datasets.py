"""Ingest the dataset release events of every org into the harmonized zone (ioxhub.airflow_dags)."""
from ioxhub.airflow_dags import ingest_dag

dag = ingest_dag("datasets")
