"""The dataset_chunk contract: the numpy encoder is byte-identical to fastavro and to a plain zigzag loop,
the vectorized decoder gives what fastavro gives (or defers to it), the content check names what is wrong."""
from __future__ import annotations

import datetime as dt
import io
import json
import struct

import fastavro
import numpy as np
import pytest

from ioxhub.contracts import codec, content, dataset_chunk, release_manifest
from ioxhub.contracts.codec import ContentError
from ioxhub.contracts.registry import get_registry
from ioxhub.settings import PROJECT_ROOT

LONGS = {"type": "array", "items": "long"}
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def reference(values) -> bytes:
    """Zigzag varints, one value at a time (the Avro spec, literally)."""
    out = bytearray()
    for v in map(int, values):
        z = (v << 1) ^ (v >> 63)
        while z >= 0x80:
            out.append(z & 0x7F | 0x80)
            z >>= 7
        out.append(z)
    return bytes(out)


def fastavro_body(values) -> bytes:
    """The items of an Avro long array as fastavro writes them (count prefix and end marker cut off)."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, LONGS, [int(v) for v in values])
    return out.getvalue()[len(dataset_chunk.long(len(values))):-1] if len(values) else b""


def bounds(width: int) -> tuple[int, int]:
    """The non-negative values whose varint (of their zigzag) has `width` bytes, as a [lo, hi] range."""
    lo = 0 if width == 1 else 1 << (7 * (width - 1))
    hi = min((1 << (7 * width)) - 1, 2**64 - 1)
    return lo // 2, hi // 2          # zigzag(v) = 2v for v >= 0


def random_array(rng, n: int, widths: list[int], *, negative: bool = True) -> np.ndarray:
    """Values whose varints take the given widths, mixed in random order, both signs."""
    out = []
    for w in widths:
        lo, hi = bounds(w)
        v = [int(x) for x in rng.integers(lo, hi, n, endpoint=True, dtype=np.uint64)] if hi > lo else [lo] * n
        out += v
        if negative:
            out += [-x - 1 for x in v]    # zigzag(-x-1) = 2x+1: the same width
    rng.shuffle(out)
    return np.array(out, dtype=np.int64)


def test_width_bounds_are_right():
    for w in range(1, 11):
        lo, hi = bounds(w)
        assert len(reference([lo])) == len(reference([hi])) == len(reference([-hi - 1])) == w
        if w < 10:
            assert len(reference([hi + 1])) == w + 1


@pytest.mark.parametrize("width", range(1, 11))
def test_uniform_width(width):
    rng = np.random.default_rng(width)
    for negative in (False, True):
        v = random_array(rng, 500, [width], negative=negative)
        assert dataset_chunk.varints(v) == reference(v) == fastavro_body(v)


@pytest.mark.parametrize("widths", [[1, 2], [2, 3], [1, 3], [1, 2, 3], [3, 4], [4, 5], [1, 5], [5, 6, 7, 8],
                                    [1, 8], [8, 9], [1, 10], [9, 10], list(range(1, 11))])
def test_mixed_widths(widths):
    rng = np.random.default_rng(len(widths) * 100 + widths[-1])
    for negative in (False, True):
        v = random_array(rng, 300, widths, negative=negative)
        assert dataset_chunk.varints(v) == reference(v) == fastavro_body(v)


def test_extremes_and_edges():
    cases = [
        [], [0], [-1], [63], [64], [-64], [-65], [0] * 1000, [-1] * 1000, [127, 128],
        [2**31 - 1, -2**31], [2**31, -2**31 - 1], [INT64_MAX, INT64_MIN], [INT64_MIN], [INT64_MAX, 0, -1],
        [-1000, 1000], [-(2**20), 2**20],                    # signs mixed, nothing near zero
        list(range(-70, 70)), list(range(8000, 8400)),        # crossings of the 1/2 and 2/3 byte bounds
        [0] + [2**(7 * k - 1) for k in range(1, 10)],          # zigzag 2**(7k): zero groups below the top one
        [0] + [-(2**(7 * k - 1)) for k in range(1, 10)],       # zigzag 2**(7k) - 1: all groups 0x7F
        [1, 2**48], [1, 2**27, 2**20],
    ]
    for values in cases:
        v = np.array(values, dtype=np.int64)
        assert dataset_chunk.varints(v) == reference(values) == fastavro_body(values), values


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, bool])
def test_input_dtypes(dtype):
    info = np.iinfo(dtype) if dtype is not bool else None
    lo, hi = (0, 1) if info is None else (info.min, info.max)
    rng = np.random.default_rng(5)
    v = np.concatenate([rng.integers(lo, hi, 2000, endpoint=True, dtype=np.int64), [lo, hi]]).astype(dtype)
    assert dataset_chunk.varints(v) == reference(v.astype(np.int64))
    assert dataset_chunk.varints(v[::3]) == reference(v[::3].astype(np.int64))        # strided input


def test_single_values_match_fastavro():
    for value in [0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, 2**31 - 1, -2**31, 2**40, 2**55, -2**55 - 1,
                  INT64_MIN, INT64_MAX]:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, "long", value)
        assert dataset_chunk.long(value) == out.getvalue() == dataset_chunk.varints(np.array([value]))


def test_lookup_is_the_varints_of_the_gathered_table():
    rng = np.random.default_rng(11)
    tables = [
        np.array([-1], np.int32),                                    # absent everywhere
        np.array([3, 1, 2, -1], np.int32),
        rng.integers(0, 64, 50).astype(np.int32),
        rng.integers(-1, 900, 703).astype(np.int32),                 # 1 and 2 bytes
        rng.integers(60, 900, 703).astype(np.int32),                 # 2 bytes only
        np.array([INT64_MAX, INT64_MIN, 0, -1], np.int64),           # 10 bytes
    ]
    for table in tables:
        for n in (0, 1, 5000):
            for dtype in (np.int32, np.intp):
                indices = rng.integers(-1, len(table), n).astype(dtype)
                lookup = dataset_chunk.Lookup([(table, indices), (table, indices[: n // 2])])
                plain = np.concatenate([table[indices], table[indices[: n // 2]]])
                assert len(lookup) == len(plain)
                assert b"".join(dataset_chunk.int_array(lookup)) == b"".join(dataset_chunk.int_array(plain))
                assert b"".join(lookup.varints()) == reference(plain)


def test_uniform_subset_of_a_mixed_table():
    table = np.array([1, 200, 300, -1], np.int32)            # 1 and 2 bytes, rows use only the 2-byte ones
    indices = np.array([1, 2, 2, 1], np.intp)
    assert b"".join(dataset_chunk.Lookup([(table, indices)]).varints()) == reference(table[indices])


def test_string_array_matches_fastavro():
    texts = ["", "a", "é" * 31, "é" * 32, "x" * 63, "x" * 64, "€" * 100, "z" * 20000, "FRA"]
    for strings in (texts, texts[:2], ["KG"] * 3, [t for t in texts if len(t.encode()) < 64]):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, {"type": "array", "items": "string"}, strings)
        assert dataset_chunk.string_array(strings) == out.getvalue()
    assert dataset_chunk.string_array([]) == b"\x00"


SCHEMAS = {v: fastavro.parse_schema(json.loads((PROJECT_ROOT / "schemas" / "dataset_chunk" / f"v{v}.avsc").read_text()))
           for v in dataset_chunk.VERSIONS}


@pytest.mark.parametrize("extra", [False, True])
def test_numpy_encoder_is_byte_identical_to_fastavro(extra):
    """Without dimensions, actions or a classification the chunk is v1; with them, v2."""
    rng = np.random.default_rng(7)
    n = 5000
    cols = {k: rng.integers(-1, 3000, n).astype(np.int32) for k in
            ("indicator", "ref_area", "counterpart_area", "commodity", "period", "unit", "obs_status", "source_file")}
    cols["unit_mult"] = rng.integers(-18, 19, n).astype(np.int32)
    cols["source_line"] = rng.integers(1, 2**31 - 1, n).astype(np.int32)
    value = rng.normal(0, 1e9, n)
    missing = np.flatnonzero(rng.random(n) < 0.1).astype(np.int32)
    strings = ["é" * i for i in range(100)]                     # lengths of one and two varint bytes
    attributes = [("NOTE", rng.integers(-1, 5, n).astype(np.int32)), ("EMPTY", np.zeros(0, np.int32))]
    head = dict(event_id="e" * 64, org="WCO", dataset_id="D", release_id="r", chunk_seq=3, chunk_count=None,
                produced_at=1_764_000_000_000, licence=None, source_url="https://x")
    more = {}
    if extra:
        more = dict(dimensions=[("CURRENCY", rng.integers(-1, 90, n).astype(np.int32)),
                                ("EXR_SUFFIX", dataset_chunk.Lookup([(np.array([4, 7, -1], np.int32), rng.integers(0, 3, n))]))],
                    action=rng.integers(-1, 4, n).astype(np.int32), commodity_classification="HS2017")
    version = dataset_chunk.version_of(**more)
    assert version == (2 if extra else 1)
    body = dataset_chunk.chunk_body(**head, strings=strings, columns=cols, value=value, missing_values=missing,
                                    attributes=attributes, **more)
    record = dict(head, strings=strings, **{k: v.tolist() for k, v in cols.items()}, value=value.tolist(),
                  missing_values=missing.tolist(), attributes=[{"name": a, "values": v.tolist()} for a, v in attributes])
    if extra:
        lookup = more["dimensions"][1][1].parts[0]
        record.update(dimensions=[{"name": "CURRENCY", "values": more["dimensions"][0][1].tolist()},
                                  {"name": "EXR_SUFFIX", "values": lookup[0][lookup[1]].tolist()}],
                      action=more["action"].tolist(), commodity_classification="HS2017")
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMAS[version], record)
    assert body == out.getvalue()


# ------------------------------------------------------------------------------------------- decode
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
        elif key in ("attributes", "dimensions"):
            assert [(a["name"], a["values"].tolist()) for a in got] == [(a["name"], list(a["values"])) for a in want]
        else:
            assert got == want, key


def with_extras(rec: dict, seed: int = 0) -> dict:
    """A chunk record with v2's dimensions, actions and classification."""
    rng = np.random.default_rng(seed)
    n, size = len(rec["indicator"]), len(rec["strings"])
    return dict(rec, dimensions=[{"name": "CURRENCY", "values": rng.integers(-1, size, n).tolist()},
                                 {"name": "EXR_SUFFIX", "values": rng.integers(0, size, n).tolist()}],
                action=rng.integers(-1, size, n).tolist(), commodity_classification="HS2012")


@pytest.mark.parametrize("version", dataset_chunk.VERSIONS)
@pytest.mark.parametrize("n, seed", [(0, 0), (1, 1), (7, 2), (5000, 3)])
def test_same_record_as_fastavro(n, seed, version):
    """v1 chunks decode fast into the latest version's shape (v2's defaults), as fastavro resolves them."""
    rec = chunk(n, seed) if version == 1 else with_extras(chunk(n, seed), seed)
    value = codec.encode("dataset_chunk", rec, version=version)
    fast = dataset_chunk.decode(value)
    assert isinstance(fast.record["ref_area"], np.ndarray) and fast.record["ref_area"].dtype == np.int32
    assert fast.version == version
    same(fast, codec.decode(value))
    if version == 1:
        assert fast.record["dimensions"] == [] and fast.record["commodity_classification"] is None


def test_extreme_ints_and_optional_fields():
    n = 6
    rec = chunk(n, chunk_count=None, licence=None, source_url="https://example.org/x",
                unit_mult=[-(2**31), 2**31 - 1, 0, -1, 63, -64], source_line=[1, 127, 128, 16383, 16384, 2**31 - 1])
    value = codec.encode("dataset_chunk", rec)
    same(dataset_chunk.decode(value), codec.decode(value))


def _long(v: int) -> bytes:
    return reference([v])


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
    value = b"\xc3\x01" + get_registry().get("dataset_chunk", 1).fingerprint + bytes(body)
    slow = codec.decode(value)
    assert slow.record["ref_area"] == rec["ref_area"]       # the hand-written encoding is right
    same(dataset_chunk.decode(value), slow)
    rec = with_extras(rec)
    body += _blocks([_string(d["name"]) + _blocks([_long(v) for v in d["values"]], [4, 6]) for d in rec["dimensions"]], [1, 1])
    body += ints("action", [6, 4]) + _long(1) + _string(rec["commodity_classification"])
    value = b"\xc3\x01" + get_registry().get("dataset_chunk", 2).fingerprint + bytes(body)
    slow = codec.decode(value)
    assert slow.record["action"] == rec["action"] and slow.record["commodity_classification"] == "HS2012"
    same(dataset_chunk.decode(value), slow)


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
        dataset_chunk.decode(value)
    assert fast.value.reason == slow.value.reason == reason


def test_other_events_and_framings_go_to_the_codec():
    manifest = release_manifest.encode({
        "event_id": "m", "org": "WTO", "dataset_id": "d", "release_id": "r", "chunk_count": 1, "observation_count": 2,
        "checksum": "sha256:00", "produced_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
    assert dataset_chunk.decode(manifest) == codec.decode(manifest)
    sv = get_registry().latest("dataset_chunk")
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, sv.parsed, chunk(20, 7))
    confluent = b"\x00" + struct.pack(">I", sv.confluent_id) + buf.getvalue()
    same(dataset_chunk.decode(confluent), codec.decode(confluent))


# -------------------------------------------------------------------------------------------- check
def refused(record: dict) -> ContentError:
    """The ContentError of `record`, checked both as fastavro gives it and as the fast decoder gives it."""
    reasons = []
    for decode in (codec.decode, dataset_chunk.decode):
        decoded = decode(codec.encode("dataset_chunk", record))
        with pytest.raises(ContentError) as exc:
            content.check_event(decoded)
        reasons.append((exc.value.reason, exc.value.detail))
    assert reasons[0] == reasons[1]
    return exc.value


def test_a_sound_chunk_passes_both_decodings():
    for decode in (codec.decode, dataset_chunk.decode):
        dataset_chunk.check_chunk(decode(codec.encode("dataset_chunk", chunk(300, 8))).record)


@pytest.mark.parametrize("change, reason, field", [
    ({"chunk_seq": 7}, dataset_chunk.BAD_CHUNK_SEQ, "chunk_seq 7"),
    ({"ref_area": [0, 1]}, dataset_chunk.UNEQUAL_COLUMNS, "ref_area has 2"),
    ({"strings": []}, dataset_chunk.EMPTY_STRING_TABLE, "empty string table"),
    ({"commodity": [0, 1, 42, 3, 4]}, dataset_chunk.INDEX_OUT_OF_RANGE, "field commodity: string index 42"),
    ({"commodity": [0, 1, -2, 3, 4]}, dataset_chunk.INDEX_OUT_OF_RANGE, "field commodity: string index -2"),
    ({"missing_values": [5]}, dataset_chunk.BAD_MISSING_POSITION, "position 5"),
    ({"value": [1.0, float("inf"), 3.0, 4.0, 5.0]}, dataset_chunk.NON_FINITE_VALUE, "at position 1"),
    ({"release_id": "../x"}, codec.BAD_NAME, "release_id"),
    ({"action": [0, 1]}, dataset_chunk.UNEQUAL_COLUMNS, "action has 2"),
    ({"action": [0, 1, 2, 3, 42]}, dataset_chunk.INDEX_OUT_OF_RANGE, "field action: string index 42"),
    ({"dimensions": [{"name": "A", "values": [0] * 5}, {"name": "A", "values": [1] * 5}]}, dataset_chunk.BAD_DIMENSION, "'A', 'A'"),
    ({"dimensions": [{"name": "", "values": [0] * 5}]}, dataset_chunk.BAD_DIMENSION, "non-empty"),
    ({"dimensions": [{"name": "X", "values": [0] * 4}]}, dataset_chunk.UNEQUAL_COLUMNS, "dimensions[X] has 4"),
    ({"dimensions": [{"name": "X", "values": [0, 0, 0, 0, 99]}]}, dataset_chunk.INDEX_OUT_OF_RANGE, "dimensions[X]"),
])
def test_unusable_chunks_are_refused_with_reason_and_field(change, reason, field):
    record = chunk(5, 9, missing_values=[])
    record.update(change)
    exc = refused(record)
    assert exc.reason == reason and field in exc.detail, exc


def test_a_non_finite_value_listed_as_missing_passes():
    record = chunk(5, 9, missing_values=[1], value=[1.0, float("nan"), 3.0, 4.0, 5.0])
    dataset_chunk.check_chunk(codec.decode(codec.encode("dataset_chunk", record)).record)


def test_the_codec_reads_v1_as_avro_resolution_would_without_the_resolving_reader():
    """v2 only appends fields with defaults: the codec reads a v1 chunk with the v1 schema and adds them,
    which must equal fastavro's schema resolution (the slow path it avoids)."""
    registry = get_registry()
    v1, v2 = registry.get("dataset_chunk", 1), registry.get("dataset_chunk", 2)
    assert codec._appended_defaults(v1, v2) == {"dimensions": [], "action": [], "commodity_classification": None}
    value = codec.encode("dataset_chunk", chunk(300, 12), version=1)
    resolved = fastavro.schemaless_reader(io.BytesIO(value[10:]), v1.parsed, v2.parsed, return_record_name=False)
    first, second = codec.decode(value), codec.decode(value)
    assert first.record == resolved and first.version == 1
    first.record["dimensions"].append("x")              # each record has its own default lists
    assert second.record["dimensions"] == []
    assert codec._appended_defaults(registry.get("policy_update", 1), v2) is None
