"""CSV: UTF-8 text with a header line, streamed in record-aligned blocks parsed by `pyarrow.csv`.

Entry point: `CsvReader` (registered as `csv`; `sdmx_csv.SdmxCsvReader` reuses it). `count_byte` is
the numpy byte count the cutter uses. Method, line numbers and costs: docs/readers.md.
"""
from __future__ import annotations

import csv as pycsv
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ioxhub.errors import not_utf8
from producers import rejects
from producers.filecheck import HEAD_BYTES as _HEAD
from producers.filecheck import MAX_LINE_BYTES, SourceError, long_line
from producers.filecheck import UTF8_BOM as _BOM
from producers.readers.base import LongLine, Reader, SourceBatch, SourceFile, check_line_length

CSV_PARSERS = 2                     # blocks parsed at once, each by one thread (docs/readers.md)
_DICT = pa.dictionary(pa.int32(), pa.string())
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class CsvLayout:
    """Where a CSV file's records start, the line they start at, the delimiter of its header, and the
    decimal mark of its numbers (`,` only for SDMX-CSV that says so, see `sdmx_csv`)."""

    data_offset: int
    first_line: int
    delimiter: str
    decimal_point: str = "."


class CsvReader(Reader):
    name = "csv"
    title = "CSV"
    expected = "CSV text"
    suffixes = (".csv", ".tsv", ".txt")
    line_based = True

    def check_header(self, path: Path, columns: list[str]) -> None:
        """A refinement of CSV (SDMX-CSV) checks its header here."""

    def open(self, path: Path, size: int, head: bytes, block_size: int) -> SourceFile:
        offset = len(_BOM) if head.startswith(_BOM) else 0
        skipped = 0
        while offset < len(head) and head[offset:offset + 1] in (b"\n", b"\r"):   # blank lines before the header
            skipped += head[offset:offset + 1] == b"\n"
            offset += 1
        end = _header_end(head, offset)
        if end is None:
            raise SourceError(f"{path}: no complete header line in the first {_HEAD // 1024} KB (expected {self.title} with a header)")
        header = head[offset:end].decode("utf-8", errors="replace").rstrip("\r\n")
        delimiter = max(_DELIMITERS, key=header.count)
        columns = next(pycsv.reader([header], delimiter=delimiter))
        columns = [c.strip() for c in columns]
        if any(not c for c in columns):
            raise SourceError(f"{path}: line {skipped + 1}: the header has an empty column name: {header[:200]!r}")
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise SourceError(f"{path}: line {skipped + 1}: the header repeats column(s) {', '.join(dupes)}")
        self.check_header(path, columns)
        first_line = skipped + head[offset:end].count(b"\n") + 1
        return SourceFile(path, self, columns, size, block_size, CsvLayout(end, first_line, delimiter))

    def read(self, source: SourceFile, columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        layout: CsvLayout = source.layout

        def parse(block: bytearray, first_line: int, newlines: int, consumed: int) -> SourceBatch:
            table, invalid = _parse_block(source, block, first_line, columns, value_column)
            lines, refused = _csv_lines(block, newlines, first_line, table.num_rows, invalid, source.name)
            return SourceBatch(table, lines, refused, layout.data_offset + consumed)

        line = layout.first_line
        with open(source.path, "rb") as fh, ThreadPoolExecutor(CSV_PARSERS, thread_name_prefix="ioxhub-csv") as pool:
            fh.seek(layout.data_offset)
            parsing: deque = deque()
            try:
                for block, consumed in _record_blocks(fh, source.block_size):
                    newlines = count_byte(block, b"\n")
                    parsing.append(pool.submit(parse, block, line, newlines, consumed))
                    line += newlines
                    if len(parsing) == CSV_PARSERS:
                        yield parsing.popleft().result()
            except LongLine:
                raise SourceError(long_line(source.name, line, MAX_LINE_BYTES, self.title)) from None
            while parsing:
                yield parsing.popleft().result()


def _parse_block(source: SourceFile, block: bytes, first_line: int, columns: list[str], value_column: str | None
                 ) -> tuple[pa.Table, list[tuple[int, int, str]]]:
    types = {c: _DICT for c in columns}
    if value_column is not None:
        types[value_column] = pa.float64()
    invalid: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def on_invalid(row: pacsv.InvalidRow) -> str:
        with lock:
            invalid.append((row.expected_columns, row.actual_columns, row.text))
        return "skip"

    for attempt in range(2):
        invalid.clear()
        try:
            return pacsv.read_csv(
                pa.py_buffer(block),
                read_options=pacsv.ReadOptions(column_names=source.columns, use_threads=False),
                parse_options=pacsv.ParseOptions(delimiter=source.layout.delimiter, newlines_in_values=True,
                                                 invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(column_types=types, include_columns=columns,
                                                     decimal_point=source.layout.decimal_point,
                                                     null_values=[""], strings_can_be_null=True,
                                                     quoted_strings_can_be_null=True),
            ), invalid
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if attempt == 0 and value_column is not None and "to double" in message:
                types[value_column] = pa.string()   # some value is not a number: validation reports it
                continue
            if "UTF8" in message or "UTF-8" in message:
                raise SourceError(f"{source.name}: {_utf8_error(block, first_line)}") from None
            last = first_line + block.count(b"\n")
            raise SourceError(f"{source.name}: lines {first_line}-{last}: not readable as CSV ({message})") from None
    raise AssertionError("unreachable")


def _header_end(head: bytes, start: int) -> int | None:
    """Offset just after the header record (a newline outside quotes), or None."""
    pos = start
    while True:
        nl = head.find(b"\n", pos)
        if nl < 0:
            return None
        if head.count(b'"', start, nl) % 2 == 0:
            return nl + 1
        pos = nl + 1


def _record_blocks(fh: BinaryIO, size: int) -> Iterator[tuple[bytearray, int]]:
    """Cut a CSV stream into blocks that end at a record boundary; yields (block, bytes consumed).

    A newline ends a record when the number of quote characters before it in the block is even (quotes
    inside quoted values are doubled, so they do not change the parity). A stray quote in an unquoted
    value could keep the parity odd forever: past 4 blocks without a boundary, the last newline is used
    (pyarrow then reports the broken quoting).

    Each block is read straight into its own bytearray after the carried-over tail of the previous one
    and truncated in place at the cut, so the file's bytes are copied once (a copy of 8 MB is ~4 ms
    here); quotes are counted with numpy (about 2.5x `bytes.count`).
    """
    rest = b""
    consumed = 0
    while True:
        buf = bytearray(len(rest) + size)
        buf[:len(rest)] = rest
        with memoryview(buf) as view, view[len(rest):] as tail:
            n = fh.readinto(tail)
        consumed += n
        if n == 0:
            if rest:
                yield bytearray(rest), consumed
            return
        if n < size:
            del buf[len(rest) + n:]
        if rest:
            check_line_length(buf)
        cut = buf.rfind(b"\n") + 1
        quotes = count_byte(buf, b'"', cut) if cut and b'"' in buf else 0
        while cut > 0 and quotes % 2:
            prev = buf.rfind(b"\n", 0, cut - 1) + 1
            quotes -= buf.count(b'"', prev, cut)
            cut = prev
        if cut == 0 and len(buf) > 4 * size:
            cut = buf.rfind(b"\n") + 1
        if cut == 0:
            rest = bytes(buf)
            continue
        rest = bytes(buf[cut:])
        del buf[cut:]
        yield buf, consumed - len(rest)


def count_byte(data: bytes | bytearray, byte: bytes, stop: int | None = None) -> int:
    """How many times `byte` occurs in `data[:stop]` (numpy compares ~2.5x faster than `bytes.count`)."""
    stop = len(data) if stop is None else stop
    return int(np.count_nonzero(np.frombuffer(data, np.uint8, count=stop) == byte[0]))


def _csv_lines(block: bytes, newlines: int, first_line: int, n_rows: int, invalid: list[tuple[int, int, str]],
               file: str) -> tuple[np.ndarray, pa.Table | None]:
    """The line of each parsed row of a block, and the rows pyarrow skipped as malformed (as rejects)."""
    records = newlines + (0 if block.endswith(b"\n") else 1)
    if not invalid and records == n_rows:
        return np.arange(first_line, first_line + n_rows, dtype=np.int64), None
    # Exact path: find record boundaries (newlines outside quotes), drop empty records (pyarrow ignores
    # them) and the malformed ones (matched by their text), in numpy.
    a = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(a == 10)
    quotes = np.flatnonzero(a == 34)
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0] if len(quotes) else newlines
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(block)]))
    length = stops - starts
    has_cr = (length > 0) & (a[np.maximum(stops - 1, 0)] == 13)
    keep = (length - has_cr) > 0
    starts, stops = starts[keep], stops[keep]
    lines = first_line + np.searchsorted(newlines, starts)
    refused = None
    if invalid:
        bad = np.zeros(len(starts), dtype=bool)
        reasons: dict[int, str] = {}
        for expected, actual, text in invalid:
            needle = text.encode("utf-8")
            pos = block.find(needle)
            while pos >= 0:
                i = np.searchsorted(starts, pos)
                if i < len(starts) and starts[i] == pos and block[pos:stops[i]].rstrip(b"\r") == needle:
                    bad[i] = True
                    reasons[int(i)] = f"malformed row: expected {expected} fields, found {actual}"
                pos = block.find(needle, pos + 1)
        idx = np.flatnonzero(bad)
        refused = rejects.make(file, lines[idx], "", [block[starts[i]:stops[i]].decode("utf-8", "replace").rstrip("\r") for i in idx],
                               pa.array([reasons[int(i)] for i in idx], pa.string()))
        lines = lines[~bad]
    if len(lines) != n_rows:   # should not happen; keep the data, say the numbers are approximate
        lines = np.arange(first_line, first_line + n_rows, dtype=np.int64)
    return lines, refused


def _utf8_error(block: bytes | bytearray, first_line: int) -> str:
    """The first byte of a block (starting at line `first_line`) that is not UTF-8, with its line."""
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not_utf8(bytes(block), exc.start, first_line)
    last = first_line + block.count(b"\n")
    return f"lines {first_line}-{last}: not UTF-8 text; save it as UTF-8"
