"""A new format is one Reader subclass: registered here, it is detected, opened, read, validated and chunked
into the same events as the same rows in CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pytest

from ioxhub.contracts import codec
from producers import readers
from producers.chunks import ChunkBuilder, ReleaseInfo
from producers.filecheck import SourceError
from producers.mapping import ColumnMapping, MappingError
from producers.readers import get_reader, open_source, register
from producers.readers.base import Reader, SourceBatch, SourceFile
from producers.validate import validate_batch


class KeyValueReader(Reader):
    """Throwaway format: a `#kv` line, then one record a line as KEY=VALUE pairs joined by `|`."""

    name = "kv"
    title = "key=value"
    expected = "key=value lines"
    suffixes = (".kv", ".txt")          # .txt is CSV's too: `detect` claims only files starting with #kv
    line_based = True

    def detect(self, head: bytes, path: Path) -> bool:
        return head.startswith(b"#kv\n")

    def open(self, path: Path, size: int, head: bytes, block_size: int) -> SourceFile:
        if not self.detect(head, path):
            raise SourceError(f"{path}: expected {self.expected}: line 1 is not #kv")
        first = head.split(b"\n")[1].decode()
        return SourceFile(path, self, [pair.split("=", 1)[0] for pair in first.split("|")], size, block_size)

    def read(self, source: SourceFile, columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        records = [dict(pair.split("=", 1) for pair in line.split("|"))
                   for line in source.path.read_text().splitlines()[1:]]
        table = pa.table({c: pa.array([r.get(c) or None for r in records], pa.string()) for c in columns})
        yield SourceBatch(table, np.arange(2, 2 + len(records), dtype=np.int64), None, source.size)


ROWS = [("SEIZ", "FRA", "2024", "1.5"), ("SEIZ", "Italy", "2023", ""), ("SEIZ", "Atlantis", "2024", "2")]
COLUMNS = ("IND", "AREA", "PERIOD", "VALUE")
MAPPING = {"indicator": "IND", "ref_area": "AREA", "period": "PERIOD", "value": "VALUE", "unit": {"const": "KG"}}


@pytest.fixture
def with_kv(monkeypatch):
    monkeypatch.setattr(readers, "READERS", list(readers.READERS))     # the registration ends with the test
    register(KeyValueReader())


def write_kv(path: Path) -> Path:
    path.write_text("#kv\n" + "".join("|".join(f"{c}={v}" for c, v in zip(COLUMNS, row)) + "\n" for row in ROWS))
    return path


def test_a_registered_format_is_detected_by_extension_and_first_bytes(with_kv, tmp_path):
    assert "kv" in readers.formats()
    assert open_source(write_kv(tmp_path / "a.kv")).format == "kv"
    assert open_source(write_kv(tmp_path / "a.txt")).format == "kv"             # a shared extension: detect decides
    plain = tmp_path / "b.txt"
    plain.write_text("IND,AREA\nSEIZ,FRA\n")
    assert open_source(plain).format == "csv"
    assert get_reader(tmp_path / "x.csv", "kv").name == "kv"
    assert ColumnMapping.from_dict({**MAPPING, "format": "kv"}).format == "kv"
    with pytest.raises(ValueError, match="registered already"):
        register(KeyValueReader())


def test_an_unregistered_format_is_refused_by_name():
    with pytest.raises(MappingError, match="format 'kv' is not one of csv, jsonl, sdmx-csv, sdmx-json, sdmx-ml"):
        ColumnMapping.from_dict({**MAPPING, "format": "kv"})


def test_a_registered_format_yields_the_same_events_as_csv(with_kv, tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text(",".join(COLUMNS) + "\n" + "".join(",".join(row) + "\n" for row in ROWS))
    info = ReleaseInfo("WCO", "WCO-SEIZ", "r1", 1_764_000_000_000)
    events = []
    for path in (csv, write_kv(tmp_path / "a.kv")):
        src = open_source(path)
        mapping = ColumnMapping.from_dict(MAPPING).resolve(src.columns, src.name)
        builder = ChunkBuilder(info)
        rejected, chunks = [], []
        for batch in src.batches(mapping.source_columns(), "VALUE"):
            checked = validate_batch(batch, mapping, "a", nan_is_missing=src.nan_is_missing)
            rejected += checked.rejects.to_pylist() if checked.rejects is not None else []
            chunks += builder.add(checked.observations)
        events.append([c.value for c in chunks + list(builder.finish())])
        assert [(r["line"], r["reason"]) for r in rejected] == [(4, "unknown-country")]
    assert events[0] == events[1]
    record = codec.decode(events[1][0]).record
    assert [record["strings"][i] for i in record["ref_area"]] == ["FRA", "Italy"]
    assert record["source_line"] == [2, 3] and record["missing_values"] == [1]
