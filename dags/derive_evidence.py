"""Derive the evidence datasets when harmonized data changed (app.airflow_dags)."""
from app.airflow_dags import derive_dag

dag = derive_dag()
