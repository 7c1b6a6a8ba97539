"""`ioxhub status`: the last run of each DAG (its counts) and the lag of each topic group.

Runs are read from the catalog (each ingest/derive run records its counts there); the lag is the
difference between the end offset of each topic and the ingest group's committed offset. On the local
tansu broker end offsets can under-report after batched produce (platform-facts): the lag is then a
lower bound, which the output says.
"""
from __future__ import annotations

from kafka.structs import TopicPartition

from ioxhub.catalog import Catalog
from ioxhub.kafka import make_consumer
from ioxhub.orgs import load_orgs
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore


def topic_lag(settings: Settings) -> dict[str, dict[str, int]]:
    """{kind: {topic: records not yet committed by the ingest group of that kind}}."""
    spec = load_orgs()
    lags: dict[str, dict[str, int]] = {}
    for kind in ("datasets", "policies"):
        consumer = make_consumer(f"{settings.consumer_group}-{kind}", settings)
        try:
            partitions = [TopicPartition(t, p) for t in (getattr(o, kind).name for o in spec.orgs)
                          for p in sorted(consumer.partitions_for_topic(t) or ())]
            ends = consumer.end_offsets(partitions)
            lag: dict[str, int] = {}
            for tp in partitions:
                committed = consumer.committed(tp) or 0
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends.get(tp, 0) - committed)
            lags[kind] = lag
        finally:
            consumer.close(autocommit=False)
    return lags


def hub_status(settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    return {"runs": Catalog(ObjectStore(settings)).last_runs(), "lag": topic_lag(settings)}
