"""The wire codec: single-object encoding, Confluent framing, resolution to the latest version, errors."""
from __future__ import annotations

import datetime as dt
import io
import json
import struct

import fastavro
import pytest

from ioxhub.contracts import codec
from ioxhub.contracts.codec import DecodeError, EncodeError, decode, encode
from ioxhub.contracts.registry import Registry
from ioxhub.settings import PROJECT_ROOT

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def chunk(n: int = 3) -> dict:
    return dict(
        event_id="e1", org="WCO", dataset_id="seizures", release_id="r1", chunk_seq=0, chunk_count=1,
        produced_at=NOW, licence="CC-BY-4.0", source_url=None,
        strings=["SEIZ", "FRA", "DEU", "2024", "T", "a.csv"],
        indicator=[0] * n, ref_area=[1, 2, 1][:n], counterpart_area=[-1] * n, commodity=[-1] * n,
        period=[3] * n, value=[1.5, 0.0, 3.0][:n], missing_values=[1], unit=[4] * n, unit_mult=[0] * n,
        obs_status=[-1] * n, attributes=[{"name": "note", "values": [-1] * n}],
        source_file=[5] * n, source_line=[2, 3, 4][:n],
        dimensions=[], action=[], commodity_classification=None)        # dataset_chunk v2's fields


def test_round_trip_with_the_committed_schema():
    reg = Registry.load(PROJECT_ROOT / "schemas")
    value = encode("dataset_chunk", chunk(), registry=reg)
    sv = reg.latest("dataset_chunk")
    assert value[:2] == b"\xc3\x01" and value[2:10] == sv.fingerprint
    d = decode(value, registry=reg)
    assert (d.name, d.version, d.fingerprint, d.framing, d.body_offset) == \
        ("dataset_chunk", sv.version, sv.fingerprint, "single-object", 10)
    assert d.record == chunk()
    # the body is plain schemaless Avro of the writer schema
    assert fastavro.schemaless_reader(io.BytesIO(bytes(codec.body(value))), sv.schema) == chunk()


def test_confluent_framing_is_accepted():
    reg = Registry.load(PROJECT_ROOT / "schemas")
    sv = reg.latest("release_manifest")
    rec = dict(event_id="m", org="WHO", dataset_id="d", release_id="r", chunk_count=2, observation_count=10,
               checksum="sha256:00", produced_at=NOW, title=None, licence=None, source_url=None,
               rejected_at_source=0, unit_translations={"PC": "NUMBER"})
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", sv.confluent_id))
    fastavro.schemaless_writer(buf, sv.schema, rec)
    d = decode(buf.getvalue(), registry=reg)
    assert (d.name, d.framing, d.body_offset, d.record) == ("release_manifest", "confluent", 5, rec)
    assert bytes(codec.body(buf.getvalue())) == buf.getvalue()[5:]


def test_older_writer_resolves_to_latest_reader(tmp_path):
    base = {"type": "record", "name": "Thing", "namespace": "t", "fields": [{"name": "id", "type": "string"},
                                                                           {"name": "n", "type": "int"}]}
    v2 = dict(base, fields=base["fields"] + [{"name": "tag", "type": ["null", "string"], "default": None}])
    (tmp_path / "thing").mkdir()
    (tmp_path / "thing" / "v1.avsc").write_text(json.dumps(base))
    (tmp_path / "thing" / "v2.avsc").write_text(json.dumps(v2))
    reg = Registry.load(tmp_path)
    old = encode("thing", {"id": "a", "n": 7}, version=1, registry=reg)
    d = decode(old, registry=reg)
    assert (d.version, d.record) == (1, {"id": "a", "n": 7, "tag": None})
    new = encode("thing", {"id": "b", "n": 8, "tag": "x"}, registry=reg)
    assert decode(new, registry=reg).version == 2
    # a change other than appended fields with defaults (here int -> long): fastavro's resolution
    (tmp_path / "thing" / "v3.avsc").write_text(json.dumps(dict(v2, fields=[base["fields"][0], {"name": "n", "type": "long"},
                                                                        v2["fields"][2]])))
    reg = Registry.load(tmp_path)
    assert codec._appended_defaults(reg.get("thing", 1), reg.get("thing", 3)) is None
    d = decode(old, registry=reg)
    assert (d.version, d.record) == (1, {"id": "a", "n": 7, "tag": None})


def test_decode_errors_have_machine_readable_reasons():
    reg = Registry.load(PROJECT_ROOT / "schemas")
    good = encode("dataset_chunk", chunk(), registry=reg)
    cases = {
        b"": "not-avro",
        b'{"org": "WCO"}': "not-avro",
        b"\xc3\x01" + bytes(8) + b"\x02": "unknown-schema",
        b"\x00" + struct.pack(">I", 0) + b"\x02": "unknown-schema",
        good[:6]: "truncated",
        good[:-3]: "truncated",
        good + b"\x00": "undecodable",
    }
    for value, reason in cases.items():
        with pytest.raises(DecodeError) as err:
            decode(value, registry=reg)
        assert err.value.reason == reason, (value[:12], err.value)
        assert err.value.detail
    # a body that decodes as garbage: an invalid UTF-8 string where event_id is expected
    garbage = good[:10] + b"\x04\xff\xfe" + good[13:]
    with pytest.raises(DecodeError) as err:
        decode(garbage, registry=reg)
    assert err.value.reason in ("undecodable", "truncated")


def test_every_prefix_and_corruption_fails_cleanly():
    reg = Registry.load(PROJECT_ROOT / "schemas")
    good = encode("dataset_chunk", chunk(), registry=reg)
    for i in range(len(good)):
        with pytest.raises(DecodeError):
            decode(good[:i], registry=reg)


def test_encode_refuses_a_record_that_does_not_fit():
    reg = Registry.load(PROJECT_ROOT / "schemas")
    bad = chunk()
    bad["chunk_seq"] = "zero"
    with pytest.raises(EncodeError, match="dataset_chunk v2"):
        encode("dataset_chunk", bad, registry=reg)


def test_headers():
    fp = bytes.fromhex("9876c3c049ccbcc4")
    headers = codec.record_headers("WCO", fp, "e1", "dataset_chunk", 1_767_225_600_007)
    m = codec.header_map(headers + [("ce_source", b"urn:ioxhub:org:WHO")])
    assert m == {"ce_specversion": b"1.0", "ce_id": b"e1", "ce_source": b"urn:ioxhub:org:WCO",
                 "ce_type": b"org.ioxhub.dataset_chunk", "ce_time": b"2026-01-01T00:00:00.007Z",
                 "ioxhub-schema": b"9876c3c049ccbcc4", "content-type": codec.CONTENT_TYPE.encode()}
    assert (codec.header_org(m), codec.header_event_id(m)) == ("WCO", "e1")
    legacy = codec.header_map(codec.legacy_record_headers("WCO", fp, "e1"))
    assert (codec.header_org(legacy), codec.header_event_id(legacy)) == ("WCO", "e1")
    assert codec.header_org({"ce_source": b"https://example.org/WCO"}) is None


def test_apache_avro_python_fingerprints_are_accepted_as_aliases():
    # Apache Avro for Python renders logical-typed primitives as {"type":"long"} in its canonical form, so
    # its fingerprint of our schemas differs from the spec's (Java, fastavro); such frames must still decode.
    avro_schema = pytest.importorskip("avro.schema", reason="Apache avro is a dev dependency")
    reg = Registry.load(PROJECT_ROOT / "schemas")
    sv = reg.latest("dataset_chunk")
    theirs = bytes(avro_schema.parse(sv.path.read_text()).fingerprint("CRC-64-AVRO"))
    assert theirs != sv.fingerprint and sv.alias_fingerprints == (theirs,)
    value = b"\xc3\x01" + theirs + bytes(codec.body(encode("dataset_chunk", chunk(), registry=reg)))
    d = decode(value, registry=reg)
    assert (d.name, d.fingerprint, d.record) == ("dataset_chunk", sv.fingerprint, chunk())


def test_encode_event_gives_value_and_identifying_headers():
    reg = Registry.load(PROJECT_ROOT / "schemas")
    value, headers = codec.encode_event("dataset_chunk", chunk(), registry=reg)
    assert decode(value, registry=reg).record == chunk()
    assert codec.header_map(headers) == codec.header_map(
        codec.record_headers("WCO", reg.latest("dataset_chunk").fingerprint, "e1", "dataset_chunk",
                             int(NOW.timestamp() * 1000)))
