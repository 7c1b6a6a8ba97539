"""The raw zone: every consumed record exactly as received, one Avro container file per partition batch.

`RawZone.add(tp, records)` appends records to local container files as they are polled (deflate in a
background thread); `write()` uploads each under a name carrying its offset range (a rerun overwrites it)
and removes an earlier attempt that started at the same offset with another range, so raw/ never holds
an offset twice.
"""
from __future__ import annotations

from pathlib import Path

from fastavro.write import Writer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from ioxhub.contracts.registry import Registry, get_registry
from ioxhub.ingest.background import Background
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


class RawZone:
    """This run's raw objects, one per partition, written to local files as records arrive."""

    def __init__(self, store: ObjectStore, directory: Path, registry: Registry | None = None):
        self.store, self.directory = store, directory
        directory.mkdir(parents=True, exist_ok=True)
        self.schema = (registry or get_registry()).latest("raw_event").parsed
        self.files: dict[TopicPartition, tuple] = {}      # tp -> (file, writer, first, last)
        self.background = Background("raw")

    def add(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        if tp not in self.files:
            handle = open(self.directory / f"{tp.topic}-{tp.partition}.avro", "w+b")
            self.files[tp] = (handle, Writer(handle, self.schema, codec="deflate", sync_interval=1 << 20,
                                             compression_level=1),   # level 1: 2x faster, ~1% bigger
                              records[0].offset, records[0].offset)
        handle, writer, first, _ = self.files[tp]
        self.background.submit(_append, writer, records)
        self.files[tp] = (handle, writer, first, records[-1].offset)

    def close(self) -> None:
        """Stop the background writer (after `write`, or on an error path)."""
        self.background.close()

    def write(self) -> list[str]:
        """Upload every partition's object (and remove a crashed attempt's); returns the keys."""
        try:
            self.background.wait()
        finally:
            self.background.close()
        keys = []
        for tp, (handle, writer, first, last) in sorted(self.files.items()):
            writer.flush()
            handle.close()
            org = org_of_topic(tp.topic) or "HUB"
            key = raw_key(org, tp.topic, tp.partition, first, last)
            self.store.put_file(key, handle.name, "avro/binary")
            for stale in self.store.list(raw_prefix_from(org, tp.topic, tp.partition, first)):
                if stale != key:
                    self.store.delete(stale)
            keys.append(key)
        self.files.clear()
        return keys


def _append(writer: Writer, records: list[ConsumerRecord]) -> None:
    for record in records:
        writer.write(raw_event(record))
