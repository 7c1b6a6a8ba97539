"""Chunks: byte-identical to fastavro with the schema file, round trip, deterministic ids, size bound
(the encoder alone: tests/unit/test_dataset_chunk.py)."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pytest

from ioxhub.contracts import codec, release_manifest
from ioxhub.contracts.registry import get_registry
from ioxhub.contracts.dataset_chunk import chunk_event_id
from ioxhub.contracts.release_manifest import manifest_event_id
from producers.chunks import ChunkBuilder, ReleaseInfo
from producers.mapping import STRING_FIELDS, ColumnMapping
from producers.release_id import compute_release_id
from producers.readers import open_source
from producers.validate import DictColumn, Observations, validate_batch
from ioxhub.settings import PROJECT_ROOT

SCHEMA = fastavro.parse_schema(json.loads((PROJECT_ROOT / "schemas" / "dataset_chunk" / "v1.avsc").read_text()))
INFO = ReleaseInfo("WCO", "WCO-SEIZ", "r1", 1_764_000_000_000, licence="CC-BY-4.0", title="t")
AREAS = ["FRA", "DEU", "Italy", "ESP", "PRT", "BEL", "NLD", "076", "United States", "JPN"]


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
    assert codec.decode(release_manifest.encode(manifest)).record["checksum"] == manifest["checksum"]


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
        assert c.fingerprint == get_registry().get("dataset_chunk", 1).fingerprint   # nothing of v2's: v1
        record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(bytes(c.body))))
        latest = codec.decode(c.value).record
        assert latest["dimensions"] == [] and latest["action"] == [] and latest["commodity_classification"] is None
        assert record == {k: latest[k] for k in record} | {"produced_at": record["produced_at"]}
        assert len(record["indicator"]) == c.observations


def test_observations_piece_slices_are_views(tmp_path):
    obs = observations(tmp_path, 100)[0]
    part = obs.slice(10, 20)
    assert part.lines.tolist() == list(range(12, 22)) and isinstance(part.text["ref_area"].dictionary, pa.Array)


def dict_column(values: list[str | None], dictionary: list[str]) -> DictColumn:
    """A DictColumn over `dictionary` (may hold unused entries, and duplicates that rows use); None = absent."""
    at: dict[str, list[int]] = {}
    for i, s in enumerate(dictionary):
        at.setdefault(s, []).append(i)
    indices = [-1 if v is None else at[v][row % len(at[v])] for row, v in enumerate(values)]
    return DictColumn(pa.array(dictionary, pa.string()), np.array(indices, np.int32))


def piece(rng, file: str, start_line: int, n: int, attributes: dict[str, list[str]]) -> tuple[Observations, dict]:
    """Random observations and the plain per-row strings they hold."""
    pools = {"indicator": ["I1", "I2", "I3"], "ref_area": AREAS, "counterpart_area": AREAS[:4] + ["ZZZ"],
             "commodity": [f"{c:06d}" for c in range(100000, 100300)], "period": [str(y) for y in range(1990, 2030)],
             "unit": ["KG", "USD"], "obs_status": ["A", "E", "é"]}
    rows, text = {}, {}
    for name in STRING_FIELDS:
        pool = pools[name]
        values = [pool[i] for i in rng.integers(0, len(pool), n)]
        if name in ("counterpart_area", "obs_status"):
            values = [None if rng.random() < 0.3 else v for v in values]
        if name == "commodity":
            values[:5000] = [v if v < "100250" else pool[0] for v in values[:5000]]     # late first uses
        dictionary = pool[::-1] + (["unused", pool[0]] if name in ("ref_area", "commodity", "obs_status") else [])
        rows[name], text[name] = values, dict_column(values, dictionary)
    attrs = {}
    for name, pool in attributes.items():
        values = [pool[i] if i < len(pool) else None for i in rng.integers(0, len(pool) + 1, n)]
        rows[name], attrs[name] = values, dict_column(values, pool)
    value = rng.normal(0, 1e6, n)
    missing = rng.random(n) < 0.05
    value[missing] = 0.0
    obs = Observations(file, text, attrs, value, missing, rng.integers(-3, 4, n).astype(np.int32),
                       np.arange(start_line, start_line + n, dtype=np.int64))
    return obs, rows


def expected_record(pieces_rows: list[tuple[Observations, dict]], seq: int) -> dict:
    """The chunk record by the rules in producers/chunks.py, one value at a time."""
    attr_names = list(dict.fromkeys(a for obs, _ in pieces_rows for a in obs.attributes))
    columns = list(STRING_FIELDS) + attr_names
    rows = {c: [v for obs, r in pieces_rows for v in r.get(c, [None] * len(obs))] for c in columns}
    rows["source_file"] = [obs.file for obs, _ in pieces_rows for _ in range(len(obs))]
    distinct = [sorted({v for v in rows[c] if v is not None}) for c in columns + ["source_file"]]
    order = sorted(range(len(distinct)), key=lambda i: (len(distinct[i]), i))
    strings = list(dict.fromkeys(s for i in order for s in distinct[i]))
    index = {s: i for i, s in enumerate(strings)}
    ints = {c: [-1 if v is None else index[v] for v in rows[c]] for c in columns + ["source_file"]}
    cat = lambda f: np.concatenate([f(obs) for obs, _ in pieces_rows])  # noqa: E731
    return {
        "event_id": chunk_event_id("WCO", "WCO-SEIZ", "r1", seq), "org": "WCO", "dataset_id": "WCO-SEIZ",
        "release_id": "r1", "chunk_seq": seq, "chunk_count": None, "produced_at": INFO.produced_at,
        "licence": INFO.licence, "source_url": None, "strings": strings,
        **{c: ints[c] for c in STRING_FIELDS}, "value": cat(lambda o: o.value).tolist(),
        "missing_values": np.flatnonzero(cat(lambda o: o.missing)).tolist(),
        "unit_mult": cat(lambda o: o.unit_mult).tolist(),
        "attributes": [{"name": a, "values": ints[a]} for a in attr_names],
        "source_file": ints["source_file"], "source_line": cat(lambda o: o.lines).tolist(),
    }


@pytest.mark.parametrize("sizes", [[1], [9000], [3000, 6000], [5000, 1, 4000]])
def test_chunk_is_fastavro_of_the_record_built_value_by_value(sizes):
    """Pieces of several files, attributes in some pieces only, unused/duplicate dictionary entries."""
    rng = np.random.default_rng(sum(sizes))
    attribute_sets = [{"NOTE": ["n1", "n2", "n3"]}, {}, {"NOTE": ["n3", "x"], "FLAG": ["F"]}]
    pieces_rows = [piece(rng, f"f{k % 2}.csv", 2 + 10_000 * k, n, attribute_sets[k % 3]) for k, n in enumerate(sizes)]
    builder = ChunkBuilder(INFO, max_observations=sum(sizes))
    chunks = [c for obs, _ in pieces_rows for c in builder.add(obs)] + list(builder.finish())
    assert len(chunks) == 1
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, expected_record(pieces_rows, 0))
    assert bytes(chunks[0].body) == out.getvalue()
    assert chunks[0].value[:codec.SINGLE_OBJECT_HEADER_LEN] == builder.frame
    assert builder.checksum == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
