"""Derive the evidence datasets when harmonized data changed (ioxhub.airflow_dags)."""
from ioxhub.airflow_dags import derive_dag

dag = derive_dag()
