"""The wire fuzzer: valid events as seeds, hypothesis strategies that mutate their bytes, their decoded
records and their Kafka headers, and `run_case`, which hands one case to the ingest's per-record path
(`ioxhub.ingest.examine.examine`) and reports an escape (any exception) instead of raising.

Used by tests/unit/test_fuzz_wire.py (a few thousand cases, plus the saved crashing inputs in
tests/unit/fuzz_corpus/) and bench/fuzz.py (>= 100,000 cases, prints the escapes).
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import fastavro
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from ioxhub.contracts import codec
from ioxhub.contracts.registry import get_registry
from ioxhub.ingest.examine import examine
from ioxhub.orgs import SigningKey
from ioxhub.signing import HEADER_KEY_ID, HEADER_SIGNATURE, Signer, TrustedKey, TrustStore

ORG = "ICC"
TOPICS = {"dataset_chunk": "ioxhub.icc.datasets", "release_manifest": "ioxhub.icc.datasets",
          "policy_update": "ioxhub.icc.policies"}
CORPUS = Path(__file__).parent / "fuzz_corpus"
PRODUCED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))       # a fixed test key: reproducible cases
SIGNER = Signer(ORG, "icc-fuzz", _KEY)
TRUST = TrustStore([TrustedKey(ORG, SigningKey("icc-fuzz", _KEY.public_key().public_bytes_raw(),
                                               dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)), "fuzz")])
VERIFY_AT_MS = int(dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)


@dataclass(frozen=True)
class Record:
    """A consumed Kafka record as the ingest sees it (the fields of kafka-python's ConsumerRecord it uses)."""

    topic: str
    value: bytes
    headers: list = field(default_factory=list)
    partition: int = 0
    offset: int = 0
    timestamp: int = VERIFY_AT_MS
    timestamp_type: int = 1          # LogAppendTime: the broker's clock decides a key's validity


# ------------------------------------------------------------------------------------------- seeds
def _chunk(n: int, strings_extra: int = 0, **change) -> dict:
    strings = ["ICC.TRADE_FLOW", "FRA", "DEU", "United States", "2023", "2024-Q1", "2024-M03", "KG", "USD",
               "thousand KG", "030211", "E", "seed.csv", "NOTE"] + [f"extra{i}" for i in range(strings_extra)]
    record = {
        "event_id": "seed-c0", "org": ORG, "dataset_id": "fuzz", "release_id": "seed", "chunk_seq": 0,
        "chunk_count": 1, "produced_at": PRODUCED, "licence": "CC-BY-4.0", "source_url": None, "strings": strings,
        "indicator": [0] * n, "ref_area": [1 + i % 3 for i in range(n)],
        "counterpart_area": [-1 if i % 2 else 2 for i in range(n)], "commodity": [10 if i % 3 else -1 for i in range(n)],
        "period": [4 + i % 3 for i in range(n)], "value": [float(i) * 1.5 for i in range(n)],
        "missing_values": [i for i in range(n) if i % 7 == 3], "unit": [7 + i % 3 for i in range(n)],
        "unit_mult": [i % 4 for i in range(n)], "obs_status": [11 if i % 5 == 0 else -1 for i in range(n)],
        "attributes": [{"name": "COMMENT", "values": [13 if i % 2 else -1 for i in range(n)]}],
        "source_file": [12] * n, "source_line": [i + 2 for i in range(n)],
    }
    if strings_extra:
        record["ref_area"] = [len(strings) - 1 - (i % 3) for i in range(n)]     # multi-byte varints
    record.update(change)
    return record


def _manifest(**change) -> dict:
    record = {"event_id": "seed-m", "org": ORG, "dataset_id": "fuzz", "release_id": "seed", "chunk_count": 1,
              "observation_count": 12, "checksum": "sha256:" + "ab" * 32, "produced_at": PRODUCED,
              "title": "Seed", "licence": None, "source_url": None, "rejected_at_source": 0}
    record.update(change)
    return record


def _policy(**change) -> dict:
    record = {"event_id": "seed-p", "org": ORG, "instrument_id": "ICC-FUZZ", "issuing_org": ORG,
              "partner_orgs": ["WCO"], "title": "Fuzz rules", "instrument_type": "GUIDELINE", "binding": False,
              "action": "ADOPTED_BY_MEMBER", "version": "1", "effective_date": dt.date(2024, 1, 1),
              "member_countries": ["FRA", "DEU"], "themes": ["trade"], "related_indicators": ["ICC.TRADE_FLOW"],
              "url": None, "produced_at": PRODUCED}
    record.update(change)
    return record


SEED_RECORDS: list[tuple[str, dict]] = [
    ("dataset_chunk", _chunk(4)),
    ("dataset_chunk", _chunk(40)),
    ("dataset_chunk", _chunk(0)),
    ("dataset_chunk", _chunk(12, strings_extra=200)),
    ("release_manifest", _manifest()),
    ("policy_update", _policy()),
]


def encode_loose(name: str, record: dict) -> bytes:
    """Single-object encoding without the codec's checks (what a buggy producer may send)."""
    sv = get_registry().latest(name)
    buf = io.BytesIO()
    buf.write(codec.SINGLE_OBJECT_MAGIC + sv.fingerprint)
    fastavro.schemaless_writer(buf, sv.parsed, record)
    return buf.getvalue()


def seed_values() -> list[tuple[str, bytes]]:
    return [(name, codec.encode(name, record)) for name, record in SEED_RECORDS]


def signed_headers(name: str, value: bytes, event_id: str = "seed") -> list[tuple[str, bytes]]:
    fingerprint = value[2:codec.SINGLE_OBJECT_HEADER_LEN] if len(value) >= 10 else b"\0" * 8
    return SIGNER.sign(value, codec.record_headers(ORG, fingerprint, event_id), TOPICS[name])


# ------------------------------------------------------------------------------------------- mutations
BIG_INTS = st.one_of(st.integers(-3, 300), st.integers(-(1 << 40), 1 << 40),
                     st.sampled_from([-(1 << 31) - 1, -(1 << 31), (1 << 31) - 1, 1 << 31, -(1 << 63), (1 << 63) - 1]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e308, -1e308]))
TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["", "..", "../x", "a/b", "\x00", "WCO", "2024", "x" * 200]))


def _field_value(schema_type, current):
    """A strategy for another value of a field of this Avro type."""
    if isinstance(schema_type, list):                      # unions: null or the other branch
        other = [t for t in schema_type if t != "null"][0]
        return st.one_of(st.none(), _field_value(other, current))
    if isinstance(schema_type, dict):
        kind = schema_type.get("type")
        if kind == "array":
            items = schema_type["items"]
            if items == "int":
                n = len(current) if isinstance(current, list) else 4
                return st.lists(BIG_INTS, min_size=0, max_size=n + 4)
            if items == "double":
                return st.lists(FLOATS, max_size=(len(current) if isinstance(current, list) else 4) + 4)
            if items == "string":
                return st.lists(TEXT, max_size=8)
            return st.just([])
        if schema_type.get("logicalType") == "date":
            return st.dates()
        if schema_type.get("logicalType") == "timestamp-millis":
            return st.datetimes(timezones=st.just(dt.timezone.utc))
        if kind == "enum":
            return st.sampled_from(schema_type["symbols"])
        return _field_value(kind, current)
    return {"int": BIG_INTS, "long": BIG_INTS, "string": TEXT, "boolean": st.booleans(),
            "double": FLOATS, "bytes": st.binary(max_size=16)}.get(schema_type, st.none())


@st.composite
def record_mutation(draw, name: str, record: dict) -> bytes | None:
    """The seed record with 1-3 fields replaced by other values of their type (None if not encodable)."""
    fields = {f["name"]: f["type"] for f in get_registry().latest(name).schema["fields"]}
    changed = dict(record)
    for field_name in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True)):
        changed[field_name] = draw(_field_value(fields[field_name], record.get(field_name)))
    try:
        return encode_loose(name, changed)
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError):
        return None


@st.composite
def byte_mutation(draw, value: bytes) -> bytes:
    """1-4 byte-level edits: bit flips, byte sets, inserts, deletes, truncation."""
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "flip", "set", "insert", "delete", "truncate"]))
        body = codec.SINGLE_OBJECT_HEADER_LEN if len(data) > codec.SINGLE_OBJECT_HEADER_LEN and \
            draw(st.integers(0, 9)) else 0      # mostly the body: a broken frame is refused at once
        pos = draw(st.integers(body, max(body, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


HEADER_NAMES = [codec.HEADER_CE_SPECVERSION, codec.HEADER_CE_ID, codec.HEADER_CE_SOURCE, codec.HEADER_CE_TYPE,
                codec.HEADER_CE_TIME, codec.HEADER_ORG, codec.HEADER_SCHEMA, codec.HEADER_EVENT_ID, codec.HEADER_CONTENT_TYPE,
                HEADER_KEY_ID, HEADER_SIGNATURE, "other"]


@st.composite
def header_mutation(draw, headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes | None]]:
    """Headers with entries dropped, duplicated, or given other (possibly junk or None) values."""
    out = list(headers)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "replace", "add"]))
        if op == "drop" and out:
            out.pop(draw(st.integers(0, len(out) - 1)))
        elif op == "replace" and out:
            i = draw(st.integers(0, len(out) - 1))
            out[i] = (out[i][0], draw(st.one_of(st.none(), st.binary(max_size=80), st.sampled_from([b"", b"ICC", b"WCO"]))))
        else:
            out.insert(0, (draw(st.sampled_from(HEADER_NAMES)), draw(st.one_of(st.none(), st.binary(max_size=80)))))
    return out


@st.composite
def cases(draw) -> Record:
    """One fuzz case: a seed, mutated in its record, its bytes or its headers; signed (so the content
    path is reached) or not (trust off), as a record of its org's topic."""
    name, record = draw(st.sampled_from(SEED_RECORDS))
    value = codec.encode(name, record)
    how = draw(st.sampled_from(["record", "record", "bytes", "bytes", "headers", "record+bytes"]))
    if "record" in how:
        mutated = draw(record_mutation(name, record))
        value = mutated if mutated is not None else value
    if "bytes" in how:
        value = draw(byte_mutation(value))
    headers = signed_headers(name, value)
    if how == "headers":
        headers = draw(header_mutation(headers))
    return Record(TOPICS[name], value, headers)


# ------------------------------------------------------------------------------------------- running
@dataclass
class Outcome:
    reason: str | None = None          # what the record became ("accepted" or a refusal reason)
    escape: str | None = None          # the traceback of an exception that escaped


def run_case(record: Record, signed: bool = True) -> Outcome:
    """Hand one record to the per-record path; never raises."""
    try:
        return Outcome(reason=examine(record, TRUST if signed else None))
    except Exception:
        return Outcome(escape=traceback.format_exc())


def to_json(record: Record) -> dict:
    return {"topic": record.topic, "value": base64.b64encode(record.value).decode(),
            "headers": [[k, None if v is None else base64.b64encode(v).decode()] for k, v in record.headers]}


def from_json(doc: dict) -> Record:
    return Record(doc["topic"], base64.b64decode(doc["value"]),
                  [(k, None if v is None else base64.b64decode(v)) for k, v in doc["headers"]])
