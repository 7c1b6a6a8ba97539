"""The Airflow Assets of the hub: what the ingest DAGs produce and the derivation DAG is triggered by.

Used by the DAG definitions (app/airflow_dags.py); it imports Airflow, so it stays out of the core. URIs name the zones of the hub bucket.
"""
from airflow.sdk import Asset

from ioxhub.settings import get_settings

_bucket = get_settings().bucket

HARMONIZED_OBSERVATIONS = Asset(f"s3://{_bucket}/harmonized/observations", group="harmonized")
HARMONIZED_INSTRUMENTS = Asset(f"s3://{_bucket}/harmonized/instruments", group="harmonized")
CURATED = Asset(f"s3://{_bucket}/curated", group="curated")
