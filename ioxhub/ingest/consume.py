"""Consume one bounded batch from a set of topics, and commit it once its results are durable.

`BatchConsumer.poll_batch(max_records, idle_ms, take)` hands records to `take` poll by poll until
`max_records` were read or nothing arrived for `idle_ms` (or, for a follow process, `max_seconds` passed
or `stop()` is true; end offsets are not trusted to stop early, see
docs/local-stack.md, only to keep waiting while they show records past the position); `commit(batch)` commits the batch's offsets to the consumer group. Partitions are
assigned explicitly (no group join), so runs resume where the last committed run stopped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata, TopicPartition

from ioxhub.kafka import make_consumer
from ioxhub.settings import Settings


ROUND_RECORDS = 16           # records handed over per poll (a dataset chunk is up to ~1 MB)
FETCH_BYTES = 8 << 20        # fetched but not yet handed over, per request / partition: 8 MB / 4 MB
MAX_IDLE_EXTENSIONS = 20     # idle windows a run keeps waiting while the broker shows records past its position


@dataclass
class Batch:
    """The offset range of each partition read in one run."""

    first: dict[TopicPartition, int] = field(default_factory=dict)
    last: dict[TopicPartition, int] = field(default_factory=dict)
    count: int = 0
    idle: bool = False       # ended by silence: nothing was waiting

    def next_offsets(self) -> dict[TopicPartition, int]:
        return {tp: last + 1 for tp, last in self.last.items()}


class BatchConsumer:
    """A consumer over every partition of `topics`, committing to `group_id`."""

    def __init__(self, settings: Settings, group_id: str, topics: list[str]):
        self.consumer: KafkaConsumer = make_consumer(group_id, settings, max_poll_records=ROUND_RECORDS,
                                                     fetch_max_bytes=FETCH_BYTES, max_partition_fetch_bytes=FETCH_BYTES // 2)
        partitions = []
        for topic in topics:
            for p in sorted(self.consumer.partitions_for_topic(topic) or ()):
                partitions.append(TopicPartition(topic, p))
        self.partitions = partitions
        self.consumer.assign(partitions)
        committed = {tp: self.consumer.committed(tp) for tp in partitions}
        for tp, offset in committed.items():
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)

    def poll_batch(self, max_records: int, idle_ms: int,
                   take: Callable[[dict[TopicPartition, list[ConsumerRecord]]], None], *,
                   max_seconds: float | None = None, stop: Callable[[], bool] | None = None) -> Batch:
        """Poll until `max_records`, `idle_ms` of silence, `max_seconds` or `stop()`; each poll's records go
        to `take` (by partition, in offset order) and are not kept."""
        batch = Batch()
        last_data = started = time.monotonic()
        extensions = MAX_IDLE_EXTENSIONS
        while batch.count < max_records:
            if (stop is not None and stop()) or (max_seconds is not None and time.monotonic() - started >= max_seconds):
                break
            polled = self.consumer.poll(timeout_ms=200, max_records=min(ROUND_RECORDS, max_records - batch.count))
            if not polled:
                if (time.monotonic() - last_data) * 1000 >= idle_ms:
                    if extensions and self._records_waiting():
                        extensions -= 1            # slow to arrive (a loaded machine, a restarted broker)
                        last_data = time.monotonic()
                        continue
                    batch.idle = True
                    break
                continue
            last_data = time.monotonic()
            for tp, recs in polled.items():
                batch.first.setdefault(tp, recs[0].offset)
                batch.last[tp] = recs[-1].offset
                batch.count += len(recs)
            take(polled)
        return batch

    def _records_waiting(self) -> bool:
        """True when the broker's end offset of some partition is past this consumer's position: records
        certainly wait there (end offsets may under-report on tansu, never over-report, so this only ever
        makes a run wait longer, never stop early)."""
        try:
            ends = self.consumer.end_offsets(self.partitions)
            return any(self.consumer.position(tp) < ends.get(tp, 0) for tp in self.partitions)
        except KafkaError:
            return False

    def commit(self, batch: Batch) -> None:
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in batch.next_offsets().items()}
        if offsets:
            self.consumer.commit(offsets)

    def lag(self) -> dict[str, int]:
        """Records not yet committed per topic (from end offsets: indicative only on tansu)."""
        ends = self.consumer.end_offsets(self.partitions)
        lag: dict[str, int] = {}
        for tp in self.partitions:
            committed = self.consumer.committed(tp) or 0
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends.get(tp, 0) - committed)
        return lag

    def close(self) -> None:
        self.consumer.close(autocommit=False)
