"""SDMX-CSV 1.0 (first column DATAFLOW), 2.0 and 3.0 (STRUCTURE, STRUCTURE_ID, ACTION...): the CSV reader plus SDMX rules.

Entry point: `SdmxCsvReader` (registered as `sdmx-csv`): a file with a CSV extension recognized by its
first header field. On top of `csv.CsvReader` (pyarrow, streamed in blocks): "ID: Label" headers and cells
read as their ids, `;` files with a decimal comma, `[a|b]` multi-valued cells refused (a one-value `[a]`
unwrapped), NaN read as missing, and the file's dimensions, attributes and ACTION column. Not read with
sdmx1: its CSV reader needs the DSD, holds the whole file in memory and builds one Python object per
observation. Rules and choices: docs/readers.md.
"""
from __future__ import annotations

import csv as pycsv
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from producers import rejects
from producers.filecheck import UTF8_BOM, SourceError
from producers.readers.base import SourceBatch, SourceFile
from producers.readers.csv import CsvLayout, CsvReader
from producers.readers.structure import TIME_DIMENSION, Structure

_FIRST_COLUMNS = ("DATAFLOW", "STRUCTURE")
# Columns that say which structure and action a row is for: neither dimensions nor attributes.
SPECIAL_COLUMNS = frozenset({"DATAFLOW", "STRUCTURE", "STRUCTURE_ID", "STRUCTURE_NAME", "ACTION", "SERIES_KEY", "OBS_KEY"})
VALUE_COLUMN = "OBS_VALUE"
MULTI_VALUED = "multi-valued-cell"
# "ID: Label" (SDMX-CSV with labels=both): an SDMX id, a colon and a blank, then the label.
_ID = r"[A-Za-z0-9_@$\-][A-Za-z0-9_@$.\-]*"
_LABELLED_HEADER = re.compile(rf"^({_ID}): .*$", re.S)
_LABELLED_CELL = rf"(?s)^({_ID}): .*$"
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")


@dataclass(frozen=True)
class SdmxCsvLayout(CsvLayout):
    """A CSV layout, and the columns whose header carried a label (their cells may be "ID: Label")."""

    labelled: frozenset[str] = frozenset()


class SdmxCsvReader(CsvReader):
    name = "sdmx-csv"
    title = "SDMX-CSV"
    expected = "SDMX-CSV text"
    nan_is_missing = True
    takes_structure = True

    def detect(self, head: bytes, path: Path) -> bool:
        first_line = head.lstrip(UTF8_BOM).split(b"\n", 1)[0]
        first = re.split(rb"[,;\t|]", first_line, maxsplit=1)[0].strip(b'"\r\n ')
        return first.split(b":", 1)[0] in (b"DATAFLOW", b"STRUCTURE")

    def check_header(self, path: Path, columns: list[str]) -> None:
        if columns[0].split(":", 1)[0].strip() not in _FIRST_COLUMNS:
            raise SourceError(f"{path}: not SDMX-CSV: the first column is {columns[0]!r}, expected DATAFLOW (SDMX-CSV 1.0) "
                              "or STRUCTURE (2.0, 3.0)")

    def open(self, path: Path, size: int, head: bytes, block_size: int, structure: Structure | None = None) -> SourceFile:
        source = super().open(path, size, head, block_size)
        layout: CsvLayout = source.layout
        ids, labelled = [], set()
        for column in source.columns:
            m = _LABELLED_HEADER.match(column)
            ids.append(m.group(1) if m else column)
            if m:
                labelled.add(m.group(1))
        dupes = sorted({c for c in ids if ids.count(c) > 1})
        if dupes:
            raise SourceError(f"{path}: line {layout.first_line - 1}: the header repeats column id(s) {', '.join(dupes)}")
        decimal = "," if layout.delimiter == ";" and _decimal_comma(head[layout.data_offset:], ids, layout.delimiter) else "."
        dims, attrs = _roles(path, ids, structure)
        return replace(source, columns=ids, layout=SdmxCsvLayout(layout.data_offset, layout.first_line, layout.delimiter,
                                                                 decimal, frozenset(labelled)),
                       dimensions=dims, attributes=attrs, action_column="ACTION" if "ACTION" in ids else None)

    def read(self, source: SourceFile, columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        labelled = [c for c in columns if c in source.layout.labelled and c != value_column]
        for batch in super().read(source, columns, value_column):
            yield _sdmx_cells(batch, [c for c in columns if c != value_column], labelled, source.name)


def _roles(path: Path, ids: list[str], structure: Structure | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(dimensions, attributes): the DSD's, else by position: SDMX-CSV puts the dimensions (time last)
    before OBS_VALUE and the attributes after it."""
    if structure is not None:
        return structure.roles(path, ids)
    if VALUE_COLUMN not in ids:
        return (), ()
    at = ids.index(VALUE_COLUMN)
    dims = tuple(c for c in ids[:at] if c not in SPECIAL_COLUMNS and c != TIME_DIMENSION)
    return dims, tuple(c for c in ids[at + 1:] if c not in SPECIAL_COLUMNS)


def _decimal_comma(data: bytes, ids: list[str], delimiter: str) -> bool:
    """Whether the OBS_VALUE cells of the first rows (up to the first 64 KB) use a decimal comma."""
    if VALUE_COLUMN not in ids:
        return False
    at = ids.index(VALUE_COLUMN)
    text = data.decode("utf-8", "ignore").splitlines()[:-1] or data.decode("utf-8", "ignore").splitlines()
    cells = [row[at] for row in pycsv.reader(text, delimiter=delimiter) if len(row) > at]
    return any(_DECIMAL_COMMA.match(c) for c in cells) and not any("." in c for c in cells)


def _sdmx_cells(batch: SourceBatch, text_columns: list[str], labelled: list[str], file: str) -> SourceBatch:
    """Label cells -> ids, `[a]` -> a, rows with a multi-valued `[a|b]` cell -> rejects. Works on each
    column's dictionary (its distinct values), reaching the rows by index gathers."""
    table, bad, refused = batch.table, None, []
    for name in text_columns:
        column = table.column(name)
        chunks, changed = [], False
        for chunk in column.chunks:
            if not isinstance(chunk, pa.DictionaryArray):
                chunks.append(chunk)
                continue
            values = chunk.dictionary
            multi = pc.and_(pc.starts_with(values, "["), pc.ends_with(values, "]"))
            has_multi = pc.any(multi).as_py()
            if not has_multi and name not in labelled:
                chunks.append(chunk)
                continue
            new = values
            if has_multi:
                many = pc.and_(multi, pc.match_substring(values, "|"))
                if pc.any(many).as_py():
                    rows = pc.is_in(chunk.indices, value_set=pa.array(np.flatnonzero(many.to_numpy(zero_copy_only=False)), pa.int32()))
                    rows = rows.fill_null(False).to_numpy(zero_copy_only=False)
                    offset = sum(len(c) for c in chunks)
                    mask = np.zeros(table.num_rows, dtype=bool)
                    mask[offset:offset + len(chunk)] = rows
                    bad = mask if bad is None else bad | mask
                    refused.append((name, mask))
                new = pc.if_else(multi, pc.utf8_slice_codeunits(new, 1, -1), new)
            # A coded column has every cell "ID: Label"; in a free-text one ("Note: revised") no cell is cut.
            if name in labelled and pc.all(pc.match_substring_regex(new, _LABELLED_CELL)).as_py():
                new = pc.replace_substring_regex(new, pattern=_LABELLED_CELL, replacement=r"\1")
            chunks.append(_redictionary(chunk, new))
            changed = True
        if changed:
            table = table.set_column(table.schema.get_field_index(name), name, pa.chunked_array(chunks, chunks[0].type))
    if bad is None:
        return batch if table is batch.table else SourceBatch(table, batch.lines, batch.rejects, batch.bytes_read)
    pieces, taken = [], np.zeros(table.num_rows, dtype=bool)
    for name, mask in refused:          # a row with several multi-valued cells is reported once
        rows = mask & ~taken
        taken |= mask
        if rows.any():
            raw = batch.table.column(name).filter(pa.array(rows)).combine_chunks().cast(pa.string())
            pieces.append(rejects.make(file, batch.lines[rows], name, raw, MULTI_VALUED))
    if batch.rejects is not None:
        pieces.insert(0, batch.rejects)
    return SourceBatch(table.filter(pa.array(~bad)), batch.lines[~bad], pa.concat_tables(pieces).sort_by("line"), batch.bytes_read)


def _redictionary(chunk: pa.DictionaryArray, values: pa.Array) -> pa.DictionaryArray:
    """`chunk` with its dictionary replaced by `values` (same length), merged back to distinct entries."""
    distinct = pc.unique(values)
    remap = pc.index_in(values, value_set=distinct).cast(pa.int32())
    return pa.DictionaryArray.from_arrays(pc.take(remap, chunk.indices), distinct)
