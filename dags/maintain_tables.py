"""Maintain the hub's Iceberg tables once a day (app.airflow_dags)."""
from app.airflow_dags import maintain_dag

dag = maintain_dag()
