"""The local real-server stack: SeaweedFS (S3) and tansu (Kafka protocol), optionally Airflow."""
