"""The dead-letter path: refused events and observations, with their reasons.

`DeadLetters.refuse(record, reason, detail)` collects a refusal (schemas/dead_letter); `internal_error`
refuses a record that raised unexpectedly and keeps its traceback; `write(store, settings)` writes one
Avro container file per partition batch under quarantine/events/ (a rerun overwrites it), the tracebacks
under quarantine/errors/, and sends every letter to the dead-letter topic keyed by
`topic/partition/offset/reason`. `OUTAGES`: the errors that fail the run instead. Reasons: docs/reliability.md.
"""
from __future__ import annotations

import datetime as dt
import io
import traceback
from collections import Counter
from dataclasses import dataclass, field

import fastavro
from kafka.errors import KafkaError
from typing import Any, Protocol

from ioxhub.contracts import codec
from ioxhub.contracts.registry import get_registry
from ioxhub.kafka import make_producer
from ioxhub.names import DEAD_LETTER_TOPIC
from ioxhub.settings import Settings
from ioxhub.storage import ObjectStore, StorageError, quarantine_error_key, quarantine_events_key

INTERNAL_ERROR = "internal-error"

# Failures of the platform, not of a record (storage or broker unreachable, local disk, memory): the run
# fails and is retried from the same offsets; never a reason to quarantine an event.
OUTAGES: tuple[type[BaseException], ...] = (StorageError, KafkaError, OSError, MemoryError)


class SourceRecord(Protocol):
    """Where a refused event came from: a kafka-python ConsumerRecord, or a staged event's coordinates."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    headers: Any
    value: bytes | None


@dataclass
class DeadLetters:
    """Refusals collected during one run, grouped by source partition."""

    letters: dict[tuple[str, int], list[dict]] = field(default_factory=dict)
    tracebacks: dict[str, str] = field(default_factory=dict)     # quarantine/errors/ key -> traceback
    earlier: Counter = field(default_factory=Counter)            # reasons of letters for earlier runs' events

    def refuse(self, record: SourceRecord, reason: str, detail: str, *, org: str | None = None,
               event_id: str | None = None, observations: int = 0, keep_payload: bool = True,
               earlier_run: bool = False) -> None:
        """Refuse an event (or `observations` of it). `earlier_run`: an event an earlier run consumed and
        counted as staged, refused now with its release (not an event of this run's counts)."""
        if earlier_run:
            self.earlier[reason] += 1
        self.letters.setdefault((record.topic, record.partition), []).append({
            "reason": reason,
            "detail": detail,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "org": org,
            "event_id": event_id,
            "observations": observations,
            "headers": {k: (v or b"") for k, v in (record.headers or [])},
            "payload": record.value if keep_payload else None,
            "quarantined_at": dt.datetime.fromtimestamp(max(0, record.timestamp or 0) / 1000, dt.timezone.utc),
            "earlier_run": earlier_run,
        })

    def internal_error(self, record: SourceRecord, exc: BaseException, *, org: str | None = None,
                       event_id: str | None = None, earlier_run: bool = False) -> str:
        """Refuse a record whose handling raised an unexpected exception (a bug, not bad input): reason
        `internal-error`, its traceback kept under quarantine/errors/. Returns the letter's detail."""
        key = quarantine_error_key(record.topic, record.partition, record.offset)
        self.tracebacks[key] = "".join(traceback.format_exception(exc))
        detail = (f"{record.topic}[{record.partition}]@{record.offset}: unexpected {type(exc).__name__}: "
                  f"{str(exc)[:300]} (traceback in {key})")
        self.refuse(record, INTERNAL_ERROR, detail, org=org, event_id=event_id, earlier_run=earlier_run)
        return detail
    def events_by_reason(self) -> Counter:
        """Whole events of this run refused (observations == 0 marks a whole-event refusal)."""
        return Counter(l["reason"] for ls in self.letters.values() for l in ls
                       if l["observations"] == 0 and not l["earlier_run"])

    def observations_by_reason(self) -> Counter:
        counts: Counter = Counter()
        for ls in self.letters.values():
            for l in ls:
                if l["observations"]:
                    counts[l["reason"]] += l["observations"]
        return counts

    def write(self, store: ObjectStore, settings: Settings, attempt: str | None = None) -> int:
        """Write every letter to quarantine/ and the dead-letter topic; returns how many.

        The object of a partition is named by the offsets of its letters: a rerun of the same batch
        writes the same object (`attempt`: a quarantine retry's, named apart from the original letters)."""
        for key, text in sorted(self.tracebacks.items()):
            store.put_bytes(key, text.encode(), "text/plain; charset=utf-8")
        if not self.letters:
            return 0
        registry = get_registry(settings.schemas_dir)
        schema = registry.latest("dead_letter").parsed
        producer = make_producer(settings)
        try:
            futures = []
            for (topic, partition), letters in sorted(self.letters.items()):
                letters.sort(key=lambda l: (l["offset"], l["reason"]))
                first, last = letters[0]["offset"], letters[-1]["offset"]
                sink = io.BytesIO()
                fastavro.writer(sink, schema, letters, codec="deflate")
                store.put_bytes(quarantine_events_key(topic, partition, first, last, attempt), sink.getvalue(), "avro/binary")
                for letter in letters:
                    key = f"{topic}/{partition}/{letter['offset']}/{letter['reason']}".encode()
                    futures.append(producer.send(DEAD_LETTER_TOPIC, key=key, value=codec.encode("dead_letter", letter, registry=registry),
                                                 headers=[("reason", letter["reason"].encode())]))
            producer.flush()
            for f in futures:
                f.get(timeout=30)
        finally:
            producer.close()
        return sum(len(ls) for ls in self.letters.values())
