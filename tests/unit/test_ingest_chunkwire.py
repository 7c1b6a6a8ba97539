"""The vectorized chunk reader gives exactly what fastavro gives (codec.decode), or defers to it."""
from __future__ import annotations

import datetime as dt
import io
import struct

import fastavro
import numpy as np
import pytest

from ioxhub.contracts import codec
from ioxhub.contracts.registry import get_registry
from ioxhub.ingest import chunkwire

INT_FIELDS = ("indicator", "ref_area", "counterpart_area", "commodity", "period", "missing_values", "unit",
              "unit_mult", "obs_status", "source_file", "source_line")


def chunk(n: int, seed: int = 0, **overrides) -> dict:
    rng = np.random.default_rng(seed)
    strings = [f"s{i}" for i in range(40)] + ["Côte d'Ivoire", "日本"]

    def idx(absent: float = 0.1) -> list[int]:
        v = rng.integers(0, len(strings), n)
        v[rng.random(n) < absent] = -1
        return v.tolist()

    rec = {
        "event_id": "e-1", "org": "WTO", "dataset_id": "d", "release_id": "r", "chunk_seq": 3, "chunk_count": 7,
        "produced_at": dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc), "licence": "CC-BY-4.0",
        "source_url": None, "strings": strings, "indicator": idx(0), "ref_area": idx(), "counterpart_area": idx(),
        "commodity": idx(), "period": idx(0), "value": rng.normal(0, 1e9, n).tolist(),
        "missing_values": sorted(rng.choice(n, n // 10, replace=False).tolist()) if n else [],
        "unit": idx(), "unit_mult": rng.integers(-20, 20, n).tolist(), "obs_status": idx(),
        "attributes": [{"name": "FLOW", "values": idx()}, {"name": "NOTE", "values": idx(0.9)}],
        "source_file": [0] * n, "source_line": rng.integers(1, 2**31 - 1, n).tolist(),
    }
    rec.update(overrides)
    return rec


def same(fast: codec.Decoded, slow: codec.Decoded) -> None:
    assert (fast.name, fast.version, fast.fingerprint, fast.framing, fast.body_offset) == \
        (slow.name, slow.version, slow.fingerprint, slow.framing, slow.body_offset)
    assert fast.record.keys() == slow.record.keys()
    for key, want in slow.record.items():
        got = fast.record[key]
        if isinstance(got, np.ndarray):
            assert got.tolist() == list(want), key
        elif key == "attributes":
            assert [(a["name"], a["values"].tolist()) for a in got] == [(a["name"], list(a["values"])) for a in want]
        else:
            assert got == want, key


@pytest.mark.parametrize("n, seed", [(0, 0), (1, 1), (7, 2), (5000, 3)])
def test_same_record_as_fastavro(n, seed):
    value = codec.encode("dataset_chunk", chunk(n, seed))
    fast = chunkwire.decode(value)
    assert isinstance(fast.record["ref_area"], np.ndarray) and fast.record["ref_area"].dtype == np.int32
    same(fast, codec.decode(value))


def test_extreme_ints_and_optional_fields():
    n = 6
    rec = chunk(n, chunk_count=None, licence=None, source_url="https://example.org/x",
                unit_mult=[-(2**31), 2**31 - 1, 0, -1, 63, -64], source_line=[1, 127, 128, 16383, 16384, 2**31 - 1])
    value = codec.encode("dataset_chunk", rec)
    same(chunkwire.decode(value), codec.decode(value))


def _long(v: int) -> bytes:
    v = (v << 1) ^ (v >> 63)
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode()
    return _long(len(b)) + b


def _blocks(items: list[bytes], sizes: list[int]) -> bytes:
    """An Avro array written in several blocks, alternately with and without the byte-size form."""
    out, i = bytearray(), 0
    for k, size in enumerate(sizes):
        part = items[i:i + size]
        i += size
        body = b"".join(part)
        out += _long(-len(part)) + _long(len(body)) + body if k % 2 else _long(len(part)) + body
    assert i == len(items)
    return bytes(out + _long(0))


def test_arrays_in_several_blocks():
    """Other Avro writers may split arrays into blocks (with negative counts and byte sizes)."""
    rec = chunk(10, 5)
    body = bytearray()
    for name in ("event_id", "org", "dataset_id", "release_id"):
        body += _string(rec[name])
    body += _long(rec["chunk_seq"]) + _long(1) + _long(rec["chunk_count"])
    body += _long(int(rec["produced_at"].timestamp() * 1000))
    body += _long(1) + _string(rec["licence"]) + _long(0)
    body += _blocks([_string(s) for s in rec["strings"]], [20, 22])
    ints = lambda name, sizes: _blocks([_long(v) for v in rec[name]], sizes)  # noqa: E731
    for name in ("indicator", "ref_area", "counterpart_area", "commodity", "period"):
        body += ints(name, [3, 7])
    body += _blocks([struct.pack("<d", v) for v in rec["value"]], [4, 6])
    body += ints("missing_values", [len(rec["missing_values"])])
    for name in ("unit", "unit_mult", "obs_status"):
        body += ints(name, [5, 5])
    body += _blocks([_string(a["name"]) + _blocks([_long(v) for v in a["values"]], [2, 8]) for a in rec["attributes"]], [1, 1])
    body += ints("source_file", [10]) + ints("source_line", [1, 9])
    value = b"\xc3\x01" + get_registry().latest("dataset_chunk").fingerprint + bytes(body)
    slow = codec.decode(value)
    assert slow.record["ref_area"] == rec["ref_area"]       # the hand-written encoding is right
    same(chunkwire.decode(value), slow)


@pytest.mark.parametrize("damage, reason", [
    (lambda v: v[: len(v) // 2], "truncated"),
    (lambda v: v + b"\x00", "undecodable"),
    (lambda v: v[:2] + bytes(8) + v[10:], "unknown-schema"),
    (lambda v: b"\x17garbage", "not-avro"),
])
def test_damaged_values_raise_the_codecs_error(damage, reason):
    value = damage(codec.encode("dataset_chunk", chunk(50, 6)))
    with pytest.raises(codec.DecodeError) as slow:
        codec.decode(value)
    with pytest.raises(codec.DecodeError) as fast:
        chunkwire.decode(value)
    assert fast.value.reason == slow.value.reason == reason


def test_other_events_and_framings_go_to_the_codec():
    manifest = codec.encode("release_manifest", {
        "event_id": "m", "org": "WTO", "dataset_id": "d", "release_id": "r", "chunk_count": 1, "observation_count": 2,
        "checksum": "sha256:00", "produced_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
    assert chunkwire.decode(manifest) == codec.decode(manifest)
    sv = get_registry().latest("dataset_chunk")
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, sv.parsed, chunk(20, 7))
    confluent = b"\x00" + struct.pack(">I", sv.confluent_id) + buf.getvalue()
    same(chunkwire.decode(confluent), codec.decode(confluent))
