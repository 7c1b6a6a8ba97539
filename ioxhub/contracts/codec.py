"""The framing of ioxhub events: Avro single-object encoding on write, that or Confluent framing on read.

Entry points: `encode`, `encode_event` (value and Kafka headers), `decode` (resolved to the latest
version of the writer's schema), `writer_of`, `body`; the errors of an event (`DecodeError`,
`EncodeError`, `ContentError`) and `check_ids`, shared by the content checks of the contract modules.
The format and its rationale: docs/contracts.md.
"""
from __future__ import annotations

import copy
import datetime as _dt
import functools
import io
import struct
import time
from dataclasses import dataclass
from typing import Any, Iterable, Literal

import fastavro

from ioxhub.contracts.registry import Registry, SchemaVersion, UnknownSchema, get_registry
from ioxhub.errors import IoxhubError
from ioxhub.names import InvalidName, check_id

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
SINGLE_OBJECT_HEADER_LEN = 10          # magic + 8-byte fingerprint
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_LEN = 5               # magic + 4-byte big-endian schema id

CONTENT_TYPE = "application/vnd.apache.avro+binary; framing=single-object"

# Kafka record headers (values are UTF-8 bytes): the CloudEvents Kafka binary-mode attributes, and the
# writer schema's fingerprint. docs/partner-contract.md.
HEADER_CE_SPECVERSION = "ce_specversion"
HEADER_CE_ID = "ce_id"                 # the event id
HEADER_CE_SOURCE = "ce_source"         # urn:ioxhub:org:<ORG>
HEADER_CE_TYPE = "ce_type"             # org.ioxhub.<schema name>
HEADER_CE_TIME = "ce_time"             # RFC 3339 UTC, the event's produced_at
HEADER_CONTENT_TYPE = "content-type"
HEADER_SCHEMA = "ioxhub-schema"        # fingerprint, 16 hex digits
CE_SPECVERSION = "1.0"
CE_SOURCE_PREFIX = "urn:ioxhub:org:"
CE_TYPE_PREFIX = "org.ioxhub."
# Retired by ce_source and ce_id (contract 1.1); still read until contract 2.0.
HEADER_ORG = "ioxhub-org"
HEADER_EVENT_ID = "ioxhub-event-id"

Framing = Literal["single-object", "confluent"]
DecodeReason = Literal["not-avro", "unknown-schema", "truncated", "undecodable"]
BAD_NAME = "bad-name"                  # the content reason of an id that cannot become a key


class DecodeError(IoxhubError, ValueError):
    """A record value that is not a decodable ioxhub event. `reason` is machine-readable."""

    def __init__(self, reason: DecodeReason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class EncodeError(IoxhubError, ValueError):
    """A record that does not fit its schema."""


class ContentError(IoxhubError, ValueError):
    """A decoded event whose content is unusable (what the schema cannot say): `reason`
    (machine-readable, the dead-letter reason) and `detail` (which field)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_ids(record: dict[str, Any], fields: tuple[str, ...] = ("dataset_id", "release_id", "event_id")) -> None:
    """The ids that become object keys: no path tricks, no control characters (checked first, so nothing
    is looked up under a bad name); else ContentError(BAD_NAME)."""
    try:
        for name in fields:
            check_id(record[name], name)
    except InvalidName as exc:
        raise ContentError(BAD_NAME, str(exc)) from None


@dataclass(frozen=True)
class Decoded:
    """A decoded event: the writer's schema version, and the record in the latest version's shape."""

    name: str
    version: int            # the writer's version
    fingerprint: bytes      # the writer's fingerprint
    record: dict[str, Any]
    framing: Framing
    body_offset: int        # where the Avro body starts in the value (10 or 5)


def encode(name: str, record: dict[str, Any], *, version: int | None = None,
           registry: Registry | None = None) -> bytes:
    """Single-object encoding of `record` with the latest (or the given) version of schema `name`."""
    reg = registry or get_registry()
    sv = reg.latest(name) if version is None else reg.get(name, version)
    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MAGIC)
    buf.write(sv.fingerprint)
    try:
        fastavro.schemaless_writer(buf, sv.parsed, record)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise EncodeError(f"record does not fit {sv}: {exc}") from None
    return buf.getvalue()


def body(value: bytes) -> memoryview:
    """The Avro body of a single-object or Confluent-framed value (what the release manifest checksums)."""
    return memoryview(value)[_frame(value)[2]:]


def writer_of(value: bytes, registry: Registry | None = None) -> tuple[SchemaVersion, Framing, int]:
    """The writer schema version, framing and body offset of a value, without decoding the body."""
    return _frame(value, registry or get_registry())


def _frame(value: bytes, reg: Registry | None = None) -> tuple[Any, Framing, int]:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise DecodeError("not-avro", f"record value is {type(value).__name__}, not bytes")
    head = bytes(value[:SINGLE_OBJECT_HEADER_LEN])
    if head[:2] == SINGLE_OBJECT_MAGIC:
        if len(head) < SINGLE_OBJECT_HEADER_LEN:
            raise DecodeError("truncated", f"single-object header cut short ({len(value)} bytes)")
        fp = head[2:SINGLE_OBJECT_HEADER_LEN]
        if reg is None:
            return None, "single-object", SINGLE_OBJECT_HEADER_LEN
        try:
            return reg.by_fingerprint(fp), "single-object", SINGLE_OBJECT_HEADER_LEN
        except UnknownSchema:
            raise DecodeError("unknown-schema", f"writer schema fingerprint {fp.hex()} is not in the registry") from None
    if head[:1] == CONFLUENT_MAGIC:
        if len(head) < CONFLUENT_HEADER_LEN:
            raise DecodeError("truncated", f"Confluent header cut short ({len(value)} bytes)")
        (schema_id,) = struct.unpack(">I", head[1:CONFLUENT_HEADER_LEN])
        if reg is None:
            return None, "confluent", CONFLUENT_HEADER_LEN
        try:
            return reg.by_confluent_id(schema_id), "confluent", CONFLUENT_HEADER_LEN
        except UnknownSchema:
            raise DecodeError("unknown-schema", f"Confluent schema id {schema_id} is not in the registry") from None
    shown = head[:4].hex(" ") or "empty value"
    raise DecodeError("not-avro", f"value starts with {shown}: neither Avro single-object (c3 01) nor Confluent (00) framing")


def decode(value: bytes, registry: Registry | None = None) -> Decoded:
    """Decode a framed event and resolve it to the latest version of its schema."""
    reg = registry or get_registry()
    writer, framing, offset = _frame(value, reg)
    reader = reg.latest(writer.name)
    appended = None if reader is writer or reader.fingerprint == writer.fingerprint else _appended_defaults(writer, reader)
    resolve = reader is not writer and reader.fingerprint != writer.fingerprint and appended is None
    buf = io.BytesIO(value)
    buf.seek(offset)
    try:
        record = fastavro.schemaless_reader(buf, writer.parsed, reader.parsed if resolve else None,
                                            return_record_name=False)
        if appended:
            record.update(copy.deepcopy(appended))
    except (EOFError, IndexError):  # fastavro's compiled reader raises IndexError on a varint past the end
        raise DecodeError("truncated", f"{writer} body ends early ({len(value) - offset} bytes)") from None
    except Exception as exc:  # fastavro raises many types on garbage (ValueError, IndexError, UnicodeDecodeError...)
        raise DecodeError("undecodable", f"{writer} body does not decode: {type(exc).__name__}: {exc}") from None
    trailing = len(value) - buf.tell()
    if trailing:
        raise DecodeError("undecodable", f"{writer} body has {trailing} trailing bytes after the record")
    return Decoded(writer.name, writer.version, writer.fingerprint, record, framing, offset)


@functools.cache
def _appended_defaults(writer: SchemaVersion, reader: SchemaVersion) -> dict[str, Any] | None:
    """When `reader` is `writer` plus fields with defaults at the end (docs aside), those fields' defaults:
    reading with the writer schema and adding them is Avro's resolution, without fastavro's slower
    resolving reader. None for any other difference."""
    def plain(node):
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items() if k != "doc"}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node
    w, r = plain(writer.schema), plain(reader.schema)
    if not (isinstance(w, dict) and isinstance(r, dict) and w.get("type") == r.get("type") == "record"):
        return None
    wf, rf = w["fields"], r["fields"]
    if {k: v for k, v in w.items() if k != "fields"} != {k: v for k, v in r.items() if k != "fields"} \
            or rf[:len(wf)] != wf or not all("default" in f for f in rf[len(wf):]):
        return None
    return {f["name"]: f["default"] for f in rf[len(wf):]}


# -------------------------------------------------------------------------------------------- headers
def record_headers(org: str, fingerprint: bytes, event_id: str, schema: str = "event",
                   time_ms: int | None = None) -> list[tuple[str, bytes]]:
    """The identifying Kafka headers of an event (CloudEvents binary mode; signing adds its own two).
    `schema`: the event's schema name (ce_type); `time_ms`: its produced_at (ce_time; default: now)."""
    if time_ms is None:
        time_ms = int(time.time() * 1000)
    return [
        (HEADER_CE_SPECVERSION, CE_SPECVERSION.encode()),
        (HEADER_CE_ID, event_id.encode()),
        (HEADER_CE_SOURCE, (CE_SOURCE_PREFIX + org).encode()),
        (HEADER_CE_TYPE, (CE_TYPE_PREFIX + schema).encode()),
        (HEADER_CE_TIME, ce_time(time_ms).encode()),
        (HEADER_CONTENT_TYPE, CONTENT_TYPE.encode()),
        (HEADER_SCHEMA, fingerprint.hex().encode()),
    ]


def legacy_record_headers(org: str, fingerprint: bytes, event_id: str) -> list[tuple[str, bytes]]:
    """The headers of contract 1.0 (before CloudEvents), which ingest still accepts until contract 2.0."""
    return [(HEADER_ORG, org.encode()), (HEADER_SCHEMA, fingerprint.hex().encode()),
            (HEADER_EVENT_ID, event_id.encode()), (HEADER_CONTENT_TYPE, CONTENT_TYPE.encode())]


def ce_time(time_ms: int) -> str:
    """ce_time of an epoch-milliseconds time: RFC 3339 in UTC with milliseconds and a `Z`."""
    t = _dt.datetime.fromtimestamp(time_ms / 1000, _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def header_org(headers: dict[str, bytes]) -> str | None:
    """The org a record's headers name: ce_source (urn:ioxhub:org:<ORG>), else the retired ioxhub-org."""
    source = headers.get(HEADER_CE_SOURCE)
    if source is not None:
        text = source.decode(errors="replace")
        return text[len(CE_SOURCE_PREFIX):] or None if text.startswith(CE_SOURCE_PREFIX) else None
    return headers.get(HEADER_ORG, b"").decode(errors="replace") or None


def header_event_id(headers: dict[str, bytes]) -> str | None:
    """The event id a record's headers name: ce_id, else the retired ioxhub-event-id."""
    raw = headers.get(HEADER_CE_ID, headers.get(HEADER_EVENT_ID, b""))
    return raw.decode(errors="replace") or None


def encode_event(name: str, record: dict[str, Any], *, registry: Registry | None = None) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Value and identifying headers of an event whose record carries `org`, `event_id` and `produced_at`
    (then sign them)."""
    value = encode(name, record, registry=registry)
    produced = record.get("produced_at")
    time_ms = int(produced.timestamp() * 1000) if isinstance(produced, _dt.datetime) else produced
    return value, record_headers(record["org"], value[2:SINGLE_OBJECT_HEADER_LEN], record["event_id"], name, time_ms)


def header_map(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, bytes]:
    """Kafka headers (a list of pairs, as kafka-python gives them) as a dict; the first of a name wins."""
    out: dict[str, bytes] = {}
    for key, value in headers or ():
        if key not in out and value is not None:
            out[key] = bytes(value)
    return out
