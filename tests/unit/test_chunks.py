"""Chunks: byte-identical to fastavro with the schema file, round trip, deterministic ids, size bound."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pytest

from ioxhub.contracts import codec
from ioxhub.producers import wire
from ioxhub.producers.chunks import ChunkBuilder, ReleaseInfo, chunk_event_id, manifest_event_id
from ioxhub.producers.mapping import ColumnMapping
from ioxhub.producers.publish import compute_release_id
from ioxhub.producers.readers import open_source
from ioxhub.producers.validate import validate_batch
from ioxhub.settings import PROJECT_ROOT

SCHEMA = fastavro.parse_schema(json.loads((PROJECT_ROOT / "schemas" / "dataset_chunk" / "v1.avsc").read_text()))
INFO = ReleaseInfo("WCO", "WCO-SEIZ", "r1", 1_764_000_000_000, licence="CC-BY-4.0", title="t")
AREAS = ["FRA", "DEU", "Italy", "ESP", "PRT", "BEL", "NLD", "076", "United States", "JPN"]


@pytest.mark.parametrize("value", [0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, 2**31 - 1, -2**31,
                                   2**40, -2**63, 2**63 - 1])
def test_varints_match_fastavro(value):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", value)
    assert wire.long(value) == out.getvalue()


def test_numpy_encoder_is_byte_identical_to_fastavro():
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
    body = wire.chunk_body(**head, strings=strings, columns=cols, value=value, missing_values=missing, attributes=attributes)
    record = dict(head, strings=strings, **{k: v.tolist() for k, v in cols.items()}, value=value.tolist(),
                  missing_values=missing.tolist(), attributes=[{"name": a, "values": v.tolist()} for a, v in attributes])
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, record)
    assert body == out.getvalue()


def observations(tmp_path: Path, n: int, *, block_size=8 << 20, name="f.csv"):
    rng = np.random.default_rng(3)
    path = tmp_path / name
    rows = ["IND,AREA,PERIOD,VALUE,NOTE"]
    for i in range(n):
        value = "" if i % 17 == 0 else f"{rng.normal(100, 30):.3f}"
        rows.append(f"SEIZ,{AREAS[i % len(AREAS)]},{2000 + i % 25},{value},{'n' + str(i % 3) if i % 5 else ''}")
    path.write_text("\n".join(rows) + "\n")
    src = open_source(path, block_size=block_size)
    m = ColumnMapping.from_dict({"indicator": "IND", "ref_area": "AREA", "period": "PERIOD", "value": "VALUE",
                                 "unit": {"const": "KG"}, "attributes": ["NOTE"]}).resolve(src.columns, src.name)
    return [validate_batch(b, m, name).observations for b in src.batches(m.source_columns(), "VALUE")]


def build(batches, **bounds):
    builder = ChunkBuilder(INFO, **bounds)
    chunks = [c for obs in batches for c in builder.add(obs)] + list(builder.finish())
    return builder, chunks


def test_round_trip_through_the_codec(tmp_path):
    batches = observations(tmp_path, 1000)
    builder, chunks = build(batches)
    assert len(chunks) == 1
    decoded = codec.decode(chunks[0].value)
    assert (decoded.name, decoded.version) == ("dataset_chunk", 1)
    rec = decoded.record
    s = rec["strings"]
    text = lambda col: [s[i] if i >= 0 else None for i in rec[col]]  # noqa: E731
    assert text("ref_area") == [AREAS[i % len(AREAS)] for i in range(1000)]
    assert text("period") == [str(2000 + i % 25) for i in range(1000)]
    assert text("unit") == ["KG"] * 1000 and text("counterpart_area") == [None] * 1000
    assert text("source_file") == ["f.csv"] * 1000
    assert rec["source_line"] == list(range(2, 1002))
    assert rec["missing_values"] == [i for i in range(1000) if i % 17 == 0]
    assert all(rec["value"][i] == 0.0 for i in rec["missing_values"])
    note = rec["attributes"][0]
    assert note["name"] == "NOTE"
    assert [s[i] if i >= 0 else None for i in note["values"]][:6] == [None, "n1", "n2", "n0", "n1", None]
    assert len(s) == len(set(s))                                      # one table entry per distinct string
    assert (rec["event_id"], rec["release_id"], rec["chunk_seq"]) == (chunk_event_id("WCO", "WCO-SEIZ", "r1", 0), "r1", 0)
    assert decoded.record["licence"] == "CC-BY-4.0" and rec["chunk_count"] is None


def test_chunk_bound_and_order(tmp_path):
    batches = observations(tmp_path, 20_000, block_size=32 << 10)
    builder, chunks = build(batches, max_bytes=30_000, max_observations=100_000)
    assert len(chunks) > 5
    assert all(len(c.value) <= 30_000 for c in chunks)
    lines = [line for c in chunks for line in codec.decode(c.value).record["source_line"]]
    assert lines == list(range(2, 20_002))                             # nothing lost, nothing doubled, in order
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    capped = build(observations(tmp_path, 2000), max_observations=300)[1]
    assert [c.observations for c in capped] == [300] * 6 + [200]


def test_bytes_do_not_depend_on_how_the_reader_batched(tmp_path):
    one = build(observations(tmp_path, 5000), max_bytes=20_000)[1]
    many = build(observations(tmp_path, 5000, block_size=4096), max_bytes=20_000)[1]
    assert [c.value for c in one] == [c.value for c in many]


def test_ids_and_manifest(tmp_path):
    builder, chunks = build(observations(tmp_path, 3000), max_bytes=20_000)
    manifest = builder.manifest(rejected_at_source=4)
    assert [c.event_id for c in chunks] == [
        hashlib.sha256(f"WCO/WCO-SEIZ/r1/{k}".encode()).hexdigest() for k in range(len(chunks))]
    assert manifest["event_id"] == manifest_event_id("WCO", "WCO-SEIZ", "r1") == \
        hashlib.sha256(b"WCO/WCO-SEIZ/r1/manifest").hexdigest()
    digest = hashlib.sha256()
    for c in chunks:
        digest.update(codec.body(c.value))
    assert manifest["checksum"] == "sha256:" + digest.hexdigest()
    assert manifest["chunk_count"] == len(chunks) and manifest["observation_count"] == 3000
    assert manifest["rejected_at_source"] == 4 and manifest["title"] == "t"
    assert codec.decode(codec.encode("release_manifest", manifest)).record["checksum"] == manifest["checksum"]


def test_release_id_is_deterministic_and_follows_content(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("IND,AREA,PERIOD,VALUE\nS,FRA,2024,1\n")
    m = ColumnMapping.from_dict({"indicator": "IND", "ref_area": "AREA", "period": "PERIOD", "value": "VALUE"})
    rid = lambda: compute_release_id("WCO", "D", [open_source(path)], m, (900_000, 250_000))  # noqa: E731
    first = rid()
    assert first == rid() and len(first) == 32
    path.write_text("IND,AREA,PERIOD,VALUE\nS,FRA,2024,2\n")
    assert rid() != first
    assert compute_release_id("WCO", "D", [open_source(path)], m, (500_000, 250_000)) != rid()


def test_empty_release_has_no_chunk():
    builder = ChunkBuilder(INFO)
    assert list(builder.finish()) == [] and builder.manifest()["chunk_count"] == 0


def test_all_chunks_decode_with_the_apache_avro_library(tmp_path):
    import avro.io
    import avro.schema

    schema = avro.schema.parse((PROJECT_ROOT / "schemas" / "dataset_chunk" / "v1.avsc").read_text())
    _, chunks = build(observations(tmp_path, 500), max_bytes=10_000)
    for c in chunks:
        record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(bytes(c.body))))
        assert record == codec.decode(c.value).record | {"produced_at": record["produced_at"]}
        assert len(record["indicator"]) == c.observations


def test_observations_piece_slices_are_views(tmp_path):
    obs = observations(tmp_path, 100)[0]
    part = obs.slice(10, 20)
    assert part.lines.tolist() == list(range(12, 22)) and isinstance(part.text["ref_area"].dictionary, pa.Array)
