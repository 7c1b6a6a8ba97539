"""Interoperability on a real broker: events the hub writes decode with the Apache `avro` library alone.

The consumer side below uses nothing from ioxhub or fastavro: it loads `schemas/*/v*.avsc` with Apache
Avro, finds the writer schema by the single-object fingerprint (Apache Avro's own CRC-64-AVRO) or the
Confluent id (the documented formula), and decodes with `avro.io.DatumReader`. The other way round,
messages framed and encoded by Apache Avro (single-object and Confluent) decode with `ioxhub.contracts.codec`.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import struct
import uuid
from pathlib import Path

import avro.io
import avro.schema
import pytest
from kafka import TopicPartition

from ioxhub.contracts import codec
from ioxhub.kafka import make_admin, make_consumer, make_producer
from ioxhub.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone.utc)

EVENTS = {
    "dataset_chunk": dict(
        event_id="c0", org="WCO", dataset_id="seizures", release_id="2026-03", chunk_seq=0, chunk_count=1,
        produced_at=NOW, licence="CC-BY-4.0", source_url="https://example.org/wco.csv",
        strings=["HW_SEIZ", "FRA", "Germany", "3825", "2024-Q1", "T", "A", "seizures.csv", "note", "SEA", "D"],
        indicator=[0, 0, 0], ref_area=[1, 2, 1], counterpart_area=[-1, 1, -1], commodity=[3, 3, -1],
        period=[4, 4, 4], value=[12.5, 0.0, 1e12], missing_values=[1], unit=[5, 5, 5], unit_mult=[0, 0, 3],
        obs_status=[6, -1, 6], attributes=[{"name": "comment", "values": [8, -1, -1]}],
        source_file=[7, 7, 7], source_line=[2, 3, 4],
        dimensions=[{"name": "TRANSPORT_MODE", "values": [9, -1, 9]}], action=[-1, 10, -1],
        commodity_classification="HS2017"),
    "release_manifest": dict(
        event_id="m0", org="WCO", dataset_id="seizures", release_id="2026-03", chunk_count=1,
        observation_count=3, checksum="sha256:" + "0" * 64, produced_at=NOW, title="Seizures",
        licence=None, source_url=None, rejected_at_source=2, unit_translations={"PC": "NUMBER"}),
    "policy_update": dict(
        event_id="p0", org="WCO", instrument_id="WCO-FOS-ECOM", issuing_org="WCO", partner_orgs=["UPU"],
        title="Framework of Standards on Cross-Border E-Commerce", instrument_type="FRAMEWORK", binding=False,
        action="ADOPTED_BY_MEMBER", version="2018", effective_date=dt.date(2019, 7, 1),
        member_countries=["FRA", "KEN"], themes=["e-commerce"], related_indicators=["ECOM_CLEAR_TIME"],
        url="https://www.wcoomd.org/", produced_at=NOW),
    "dead_letter": dict(
        reason="bad-signature", detail="signature does not match", topic="ioxhub.wco.datasets", partition=0,
        offset=42, org="WCO", event_id="c9", observations=0, headers={"ioxhub-org": b"WCO"},
        payload=b"\xc3\x01...", quarantined_at=NOW),
    "raw_event": dict(
        topic="ioxhub.wco.datasets", partition=1, offset=7, timestamp=NOW, key=b"k", headers={"h": b"v"},
        value=b"\x00\x01"),
}


PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def spec_fingerprint(schema_json: str) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, with Apache Avro for Python.

    Its `canonical_form` keeps `{"type":"long"}` for a logical-typed primitive where the spec (and Java,
    fastavro) write `"long"`; dropping the logical-type wrappers first gives the spec's form.
    """
    def strip(node):
        if isinstance(node, dict):
            if "logicalType" in node and isinstance(node.get("type"), str) and node["type"] in PRIMITIVES:
                return node["type"]
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node
    return bytes(avro.schema.parse(json.dumps(strip(json.loads(schema_json)))).fingerprint("CRC-64-AVRO"))


class ApacheAvroConsumer:
    """A partner's consumer: Apache Avro and the schema files, nothing else."""

    def __init__(self, schemas_dir: Path):
        self.by_fp: dict[bytes, tuple[str, avro.schema.Schema]] = {}
        self.by_id: dict[int, tuple[str, avro.schema.Schema]] = {}
        self.latest: dict[str, avro.schema.Schema] = {}
        for path in sorted(schemas_dir.glob("*/v*.avsc"), key=lambda p: (p.parent.name, int(p.stem[1:]))):
            schema = avro.schema.parse(path.read_text())
            fp = spec_fingerprint(path.read_text())
            self.by_fp[fp] = (path.parent.name, schema)
            self.by_id[int.from_bytes(fp, "little") % (2**31 - 1) + 1] = (path.parent.name, schema)
            self.latest[path.parent.name] = schema

    def decode(self, value: bytes) -> tuple[str, dict]:
        if value[:2] == b"\xc3\x01":
            name, writer = self.by_fp[value[2:10]]
            body = value[10:]
        else:
            assert value[:1] == b"\x00"
            name, writer = self.by_id[struct.unpack(">I", value[1:5])[0]]
            body = value[5:]
        reader = avro.io.DatumReader(writer, self.latest[name])
        return name, reader.read(avro.io.BinaryDecoder(io.BytesIO(body)))


def apache_avro_encode(schema: avro.schema.Schema, record: dict) -> bytes:
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def round_trip(settings, values: list[tuple[bytes, list]]) -> list:
    topic = f"interop-{uuid.uuid4().hex[:8]}"
    producer = make_producer(settings)
    for value, headers in values:
        producer.send(topic, key=b"k", value=value, headers=headers)
    producer.flush(timeout=30)
    producer.close()
    consumer = make_consumer(None, settings, consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got = [m for m in consumer]
    consumer.close()
    admin = make_admin(settings)
    try:
        admin.delete_topics([topic])
    except Exception:  # noqa: BLE001 - cleanup only; a memory broker is thrown away anyway
        pass
    finally:
        admin.close()
    return got


def test_hub_events_decode_with_apache_avro_alone(stack_settings):
    values = []
    for name, record in EVENTS.items():
        value = codec.encode(name, record)
        fp = value[2:10]
        values.append((value, codec.record_headers("WCO", fp, f"{name}-1")))
    messages = round_trip(stack_settings, values)
    assert len(messages) == len(EVENTS)

    partner = ApacheAvroConsumer(PROJECT_ROOT / "schemas")
    for message, (name, record) in zip(messages, EVENTS.items()):
        got_name, got = partner.decode(message.value)
        assert got_name == name
        assert got == record, name
        assert dict(message.headers)["content-type"] == codec.CONTENT_TYPE.encode()
        assert codec.decode(message.value).record == record


def test_apache_avro_producers_are_read_by_the_hub(stack_settings):
    partner = ApacheAvroConsumer(PROJECT_ROOT / "schemas")
    values = []
    for name, record in EVENTS.items():
        schema = partner.latest[name]
        latest = max((PROJECT_ROOT / "schemas" / name).glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
        fp = spec_fingerprint(latest.read_text())
        confluent_id = int.from_bytes(fp, "little") % (2**31 - 1) + 1
        body = apache_avro_encode(schema, record)
        values.append((b"\xc3\x01" + fp + body, []))
        values.append((b"\x00" + struct.pack(">I", confluent_id) + body, []))
        # a partner trusting the library's own (non-spec) fingerprint is accepted too
        values.append((b"\xc3\x01" + bytes(schema.fingerprint("CRC-64-AVRO")) + body, []))
    messages = round_trip(stack_settings, values)
    assert len(messages) == 3 * len(EVENTS)
    for i, (name, record) in enumerate(EVENTS.items()):
        single, confluent, library = (codec.decode(m.value) for m in messages[3 * i: 3 * i + 3])
        assert (single.name, single.framing, single.record) == (name, "single-object", record)
        assert (confluent.name, confluent.framing, confluent.record) == (name, "confluent", record)
        assert (library.name, library.fingerprint, library.record) == (name, single.fingerprint, record)


def test_every_published_sample_feed_decodes_with_apache_avro(provisioned_settings, tmp_path):
    """The partner round trip: all sample feeds published; a partner's Apache Avro consumer decodes every
    message of the org topics with the schema files alone, and finds exactly what was published."""
    from app.demo import ensure_keys, publish_samples
    from ioxhub.orgs import load_orgs

    spec = load_orgs()
    ensure_keys([o.id for o in spec.orgs], provisioned_settings)
    published = publish_samples(tmp_path / "samples", provisioned_settings)
    ours = {eid for p in published for eid in p["event_ids"]}

    partner = ApacheAvroConsumer(PROJECT_ROOT / "schemas")
    consumer = make_consumer(None, provisioned_settings, consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(t.name, p) for o in spec.orgs for t in o.topics
                     for p in sorted(consumer.partitions_for_topic(t.name) or ())])
    consumer.seek_to_beginning()
    decoded: dict[str, dict] = {}
    for message in consumer:
        event_id = (codec.header_event_id(dict(message.headers)) or "")
        if event_id in ours:
            name, record = partner.decode(message.value)
            assert record["event_id"] == event_id
            decoded[event_id] = {"name": name, "record": record}
    consumer.close()
    assert set(decoded) == ours                          # every event of every feed, Apache Avro alone
    chunks = [d["record"] for d in decoded.values() if d["name"] == "dataset_chunk"]
    assert sum(len(c["indicator"]) for c in chunks) == sum(p["rows_sent"] for p in published if p["chunks"])
    policies = [d for d in decoded.values() if d["name"] == "policy_update"]
    assert len(policies) == sum(p["rows_sent"] for p in published if not p["chunks"])
