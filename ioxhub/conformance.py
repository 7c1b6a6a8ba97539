"""Does a partner's output conform to the contract (docs/partner-contract.md)? The ingest's own checks,
run on records from a file or a topic, without writing anything.

Entry points: `read_records(path)` (the JSON-lines record format of the test vectors), `fetch_records(settings,
topic, from_offset, to_offset)`, `check(records, trust)` -> `Report`. Per record it runs
`ioxhub.ingest.examine.inspect` (signature, framing, schema, org claims, content invariants, harmonization
of the observations); across records, `release_manifest.release_problem` (every chunk of a manifest,
checksum, counts): the same code as the ingest, not a second validator.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from kafka.structs import TopicPartition

from ioxhub.contracts import codec, release_manifest
from ioxhub.contracts.dataset_chunk import NAME as CHUNK
from ioxhub.errors import IoxhubError, read_user_text
from ioxhub.ingest.examine import ACCEPTED, inspect
from ioxhub.ingest.staging import INCOMPLETE_RELEASE
from ioxhub.kafka import make_consumer
from ioxhub.settings import Settings
from ioxhub.signing import TrustStore

BAD_RELEASE = "bad-release"


class RecordFileError(IoxhubError):
    """A records file that does not follow the record format (names the file, line and field)."""


@dataclass(frozen=True)
class Record:
    """A Kafka record as the ingest sees it (the attributes of kafka-python's ConsumerRecord it reads)."""

    topic: str
    value: bytes | None
    headers: list[tuple[str, bytes]]
    key: bytes | None = None
    partition: int = 0
    offset: int = -1
    timestamp: int | None = None
    timestamp_type: int | None = None      # 1: LogAppendTime (the broker's stamp), else CreateTime
    where: str = ""                        # file:line, or topic[partition]@offset


@dataclass(frozen=True)
class Finding:
    where: str
    reason: str
    detail: str
    event_id: str | None = None


@dataclass
class Report:
    records: int = 0
    conforming: int = 0
    releases_complete: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


# ------------------------------------------------------------------------------------------- reading
def _bytes(obj: dict, name: str, where: str, optional: bool = False) -> bytes | None:
    for form, decode in (("hex", bytes.fromhex), ("b64", lambda t: base64.b64decode(t, validate=True))):
        text = obj.get(f"{name}_{form}")
        if text is None:
            continue
        try:
            return decode(text)
        except (TypeError, ValueError, binascii.Error):
            raise RecordFileError(f"{where}: field {name}_{form} is not valid "
                                  f"{'hex' if form == 'hex' else 'base64'}") from None
    if optional:
        return None
    raise RecordFileError(f"{where}: field {name}_hex or {name}_b64 is missing")


def parse_record(obj: Any, where: str) -> Record:
    """One record of the JSON-lines format: topic, partition?, offset?, timestamp?, timestamp_type?,
    key_hex|key_b64?, headers ([[name, value_hex], ...]), value_hex|value_b64."""
    if not isinstance(obj, dict):
        raise RecordFileError(f"{where}: a record must be a JSON object")
    if not isinstance(obj.get("topic"), str):
        raise RecordFileError(f"{where}: field topic is missing or not a string")
    headers = []
    for i, pair in enumerate(obj.get("headers") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise RecordFileError(f"{where}: field headers[{i}] is not a [name, value_hex] pair")
        try:
            headers.append((pair[0], bytes.fromhex(pair[1])))
        except ValueError:
            raise RecordFileError(f"{where}: field headers[{i}] ({pair[0]}): value is not hex") from None
    ints = {}
    for name in ("partition", "offset", "timestamp", "timestamp_type"):
        v = obj.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise RecordFileError(f"{where}: field {name} is not an integer")
        ints[name] = v
    return Record(obj["topic"], _bytes(obj, "value", where), headers, _bytes(obj, "key", where, optional=True),
                  ints["partition"] if ints["partition"] is not None else 0,
                  ints["offset"] if ints["offset"] is not None else -1, ints["timestamp"], ints["timestamp_type"],
                  where)


def read_records(path: Path) -> list[Record]:
    """The records of a JSON-lines file (blank lines skipped)."""
    path = Path(path)
    lines = read_user_text(path, RecordFileError, "records file").splitlines()
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordFileError(f"{path}:{n}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        out.append(parse_record(obj, f"{path}:{n}"))
    return out


def fetch_records(settings: Settings, topic: str, from_offset: int, to_offset: int | None,
                  partition: int | None = None, idle_ms: int = 1500) -> list[Record]:
    """Records of `topic` (every partition, or one) with from_offset <= offset < to_offset (None: to the
    end: until the broker is idle for `idle_ms`)."""
    consumer = make_consumer(None, settings, enable_auto_commit=False, consumer_timeout_ms=idle_ms)
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        if not parts:
            raise IoxhubError(f"topic {topic} does not exist on {settings.kafka_bootstrap}")
        if partition is not None:
            if partition not in parts:
                raise IoxhubError(f"topic {topic} has no partition {partition} (it has {len(parts)})")
            parts = [partition]
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, from_offset)
        out, done, last = [], set(), time.monotonic()
        while len(done) < len(tps) and time.monotonic() - last < idle_ms / 1000:
            polled = consumer.poll(timeout_ms=200)
            if polled:
                last = time.monotonic()
            for tp, records in polled.items():
                for r in records:
                    if to_offset is not None and r.offset >= to_offset:
                        done.add(tp)
                        consumer.pause(tp)
                        break
                    out.append(Record(r.topic, r.value, list(r.headers or ()), r.key, r.partition, r.offset,
                                      r.timestamp, r.timestamp_type, f"{r.topic}[{r.partition}]@{r.offset}"))
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


# ------------------------------------------------------------------------------------------- checking
def check(records: Iterable[Record], trust: TrustStore | None) -> Report:
    """Each record through the ingest's per-record path, then each release across the records."""
    report = Report()
    releases: dict[tuple, dict] = defaultdict(lambda: {"chunks": {}, "values": {}, "manifest": None, "where": ""})
    for record in records:
        report.records += 1
        verdict = inspect(record, trust)
        headers = codec.header_map(record.headers)
        event_id = verdict.decoded.record.get("event_id") if verdict.decoded else codec.header_event_id(headers)
        if verdict.reason != ACCEPTED:
            report.findings.append(Finding(record.where, verdict.reason, verdict.detail, event_id))
            continue
        for reason, n in sorted(verdict.refused_rows.items()):
            report.findings.append(Finding(record.where, reason, f"{n} observation(s) refused, e.g. "
                                                                 f"{verdict.first_refused[reason]}", event_id))
        if not verdict.refused_rows:
            report.conforming += 1
        rec, name = verdict.decoded.record, verdict.decoded.name
        if name in (CHUNK, release_manifest.NAME):
            release = releases[(rec["org"], rec["dataset_id"], rec["release_id"])]
            release["where"] = release["where"] or record.where
            if name == CHUNK:
                release["chunks"][rec["chunk_seq"]] = len(rec["indicator"])
                release["values"][rec["chunk_seq"]] = record.value
            else:
                release["manifest"] = rec
    for (org, dataset_id, release_id), r in releases.items():
        what = f"release {release_id} of {org}/{dataset_id}"
        if r["manifest"] is None:
            report.findings.append(Finding(r["where"], INCOMPLETE_RELEASE,
                                           f"{what}: no release_manifest among the records ({len(r['chunks'])} chunk(s))"))
            continue
        problem = release_manifest.release_problem(r["manifest"], r["chunks"], r["values"].__getitem__)
        if problem == release_manifest.INCOMPLETE:
            missing = sorted(set(range(r["manifest"]["chunk_count"])) - set(r["chunks"]))
            report.findings.append(Finding(r["where"], INCOMPLETE_RELEASE,
                                           f"{what}: chunk_seq {', '.join(map(str, missing[:10]))} of "
                                           f"{r['manifest']['chunk_count']} missing"))
        elif problem:
            report.findings.append(Finding(r["where"], BAD_RELEASE, f"{what}: {problem}"))
        else:
            report.releases_complete += 1
    return report
