"""The raw zone: every consumed record exactly as received, one Avro container file per partition batch.

The object name carries the offset range, so a rerun over the same offsets overwrites the same object;
an earlier attempt that started at the same offset but read a different range (a crashed run) is removed,
so raw/ never holds the same offsets twice.
"""
from __future__ import annotations

import io

import fastavro
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from ioxhub.contracts.registry import get_registry
from ioxhub.names import org_of_topic
from ioxhub.storage import ObjectStore, raw_key, raw_prefix_from


def raw_event(record: ConsumerRecord) -> dict:
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": max(0, int(record.timestamp or 0)),
        "key": record.key,
        "headers": {k: (v or b"") for k, v in (record.headers or [])},
        "value": record.value,
    }


def write_raw(store: ObjectStore, tp: TopicPartition, records: list[ConsumerRecord]) -> str:
    """Write one partition's records of this batch; returns the object key."""
    schema = get_registry().latest("raw_event").parsed
    first, last = records[0].offset, records[-1].offset
    org = org_of_topic(tp.topic) or "HUB"
    key = raw_key(org, tp.topic, tp.partition, first, last)
    sink = io.BytesIO()
    fastavro.writer(sink, schema, (raw_event(r) for r in records), codec="deflate", sync_interval=1 << 20)
    store.put_bytes(key, sink.getvalue(), "avro/binary")
    for stale in store.list(raw_prefix_from(org, tp.topic, tp.partition, first)):
        if stale != key:
            store.delete(stale)
    return key
