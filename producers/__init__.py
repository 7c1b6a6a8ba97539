"""Producer SDK: read partner files, validate, chunk, sign and publish to Kafka.

    from producers import publish_dataset, publish_policy
    summary = publish_dataset("WCO", "WCO-HAZWASTE", ["seizures.csv"], "seizures.csv.mapping.yaml")
    summary.exit_code   # 1 when rows were rejected (see summary.rejects_path)
"""
from producers.mapping import ColumnMapping
from producers.publish import publish_dataset, publish_policy
from producers.summary import PublishError, PublishSummary

__all__ = ["ColumnMapping", "PublishError", "PublishSummary", "publish_dataset", "publish_policy"]
