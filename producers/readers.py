"""Read partner files into bounded Arrow batches of source columns, each row with its source line.

Formats (`open_source(path, fmt)`; `fmt=None` guesses from the extension and, for CSV, the header):

- **csv**: UTF-8 text, header line, delimiter `,` `;` `|` or tab (the most frequent one in the header).
  The file is cut into record-aligned blocks of `block_size` bytes (a cut is only made at a newline
  outside quotes, found by quote parity) and `CSV_PARSERS` blocks are parsed at once by
  `pyarrow.csv.read_csv`, each in one thread (pyarrow's threads within a block cost ~35% more CPU for
  the same time on 2 cores), batches coming out in file order; memory stays at a few blocks whatever
  the file size. Mapped text columns come out
  dictionary-encoded straight from the parser (validation works on their unique values), the value
  column as float64 when the whole block parses as numbers, else as text.
- **sdmx-csv**: the same reader (SDMX-CSV is CSV whose first column is DATAFLOW (1.0) or STRUCTURE
  (2.0), with SDMX concept names as headers, so it needs no mapping). Read with pyarrow rather than
  sdmx1 so that large SDMX-CSV files stream in bounded memory like any CSV.
- **jsonl**: JSON Lines, one object per line, cut into blocks at newlines and parsed by
  `pyarrow.json.read_json`; a block where a field changes type (a number in one row, text in another:
  common in messy feeds) or a line is not valid JSON is parsed line by line with the `json` module
  instead (bad lines become rejects). Columns are the keys seen in the first 1,000 objects.
- **sdmx-ml**: SDMX-ML 2.1 data messages (generic or structure-specific), read with the `sdmx1`
  library (`sdmx.read_sdmx`). The whole message is loaded in memory: SDMX-ML files are typically small,
  and sdmx1 builds its object model for the whole message anyway. Columns: the dimension and attribute
  ids of each observation (series and data-set attributes included) plus OBS_VALUE.

Line numbers (1-based, the header is line 1): exact for CSV, including quoted values that span lines,
blank lines and rows skipped as malformed (those blocks take a slower numpy path); for JSON Lines the
line of each object; for SDMX-ML the line of each `Obs` element (taken with lxml), or its position in
the message if the element count does not match what sdmx1 returned.

Every file first passes `filecheck.check_file` (a directory, an empty file, UTF-16, binary data, text
that is not UTF-8, a first line longer than 64 KB: one `SourceError` naming the file and the fault);
anything else not of the stated format (XML given as CSV, JSON given as SDMX-ML) raises one
`SourceError` naming the file and what was expected. Faults further in are raised where the reader meets
them, with their line: a byte that is not UTF-8, a line longer than `filecheck.MAX_LINE_BYTES`.
"""
from __future__ import annotations

import csv as pycsv
import json
import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from ioxhub.errors import not_utf8
from ioxhub.producers import rejects
from ioxhub.producers.filecheck import HEAD_BYTES as _HEAD
from ioxhub.producers.filecheck import MAX_LINE_BYTES, SourceError, check_file, long_line
from ioxhub.producers.filecheck import UTF8_BOM as _BOM

DEFAULT_BLOCK_SIZE = 8 << 20        # bytes of source text per batch
CSV_PARSERS = 2                     # blocks parsed at once, each by one thread (see the module docstring)
SDMX_ML_BATCH_ROWS = 100_000
JSONL_COLUMN_SAMPLE = 1000
_HEAD = 64 << 10
_DICT = pa.dictionary(pa.int32(), pa.string())
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".json": "jsonl", ".xml": "sdmx-ml"}
_DELIMITERS = (",", ";", "\t", "|")


@dataclass
class SourceBatch:
    """Source columns of up to one block of rows, the line of each row, and rows the reader refused."""

    table: pa.Table
    lines: np.ndarray                   # int64, 1-based
    rejects: pa.Table | None = None     # rejects.SCHEMA
    bytes_read: int = 0                 # bytes of the file consumed so far


@dataclass
class SourceFile:
    """An opened source: its format, its columns, and `batches()` to stream its rows."""

    path: Path
    format: str
    columns: list[str]
    size: int
    nan_is_missing: bool = False        # SDMX writes a missing value as NaN
    block_size: int = DEFAULT_BLOCK_SIZE
    _data_offset: int = 0
    _first_line: int = 1
    _delimiter: str = ","
    _sdmx_rows: dict[str, list] | None = field(default=None, repr=False)
    _sdmx_lines: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.path)

    def batches(self, columns: Sequence[str], value_column: str | None = None) -> Iterator[SourceBatch]:
        """Stream `columns` (text; `value_column` as float64 where it parses) in bounded batches."""
        columns = list(dict.fromkeys(columns))
        if self.format in ("csv", "sdmx-csv"):
            return self._csv_batches(columns, value_column)
        if self.format == "jsonl":
            return self._jsonl_batches(columns, value_column)
        return self._sdmx_ml_batches(columns)

    # ------------------------------------------------------------------------------------------ CSV
    def _csv_batches(self, columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        def parse(block: bytearray, first_line: int, newlines: int, consumed: int) -> SourceBatch:
            table, invalid = self._parse_csv_block(block, first_line, columns, value_column)
            lines, refused = _csv_lines(block, newlines, first_line, table.num_rows, invalid, self.name)
            return SourceBatch(table, lines, refused, self._data_offset + consumed)

        line = self._first_line
        with open(self.path, "rb") as fh, ThreadPoolExecutor(CSV_PARSERS, thread_name_prefix="ioxhub-csv") as pool:
            fh.seek(self._data_offset)
            parsing: deque = deque()
            try:
                for block, consumed in _record_blocks(fh, self.block_size):
                    newlines = count_byte(block, b"\n")
                    parsing.append(pool.submit(parse, block, line, newlines, consumed))
                    line += newlines
                    if len(parsing) == CSV_PARSERS:
                        yield parsing.popleft().result()
            except _LongLine:
                raise SourceError(long_line(self.name, line, MAX_LINE_BYTES, self.format)) from None
            while parsing:
                yield parsing.popleft().result()

    def _parse_csv_block(self, block: bytes, first_line: int, columns: list[str], value_column: str | None
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
                    read_options=pacsv.ReadOptions(column_names=self.columns, use_threads=False),
                    parse_options=pacsv.ParseOptions(delimiter=self._delimiter, newlines_in_values=True,
                                                     invalid_row_handler=on_invalid),
                    convert_options=pacsv.ConvertOptions(column_types=types, include_columns=columns,
                                                         null_values=[""], strings_can_be_null=True,
                                                         quoted_strings_can_be_null=True),
                ), invalid
            except pa.ArrowInvalid as exc:
                message = str(exc)
                if attempt == 0 and value_column is not None and "to double" in message:
                    types[value_column] = pa.string()   # some value is not a number: validation reports it
                    continue
                if "UTF8" in message or "UTF-8" in message:
                    raise SourceError(f"{self.name}: {_utf8_error(block, first_line)}") from None
                last = first_line + block.count(b"\n")
                raise SourceError(f"{self.name}: lines {first_line}-{last}: not readable as CSV ({message})") from None
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------------------------- JSON Lines
    def _jsonl_batches(self, columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        line = 1
        with open(self.path, "rb") as fh:
            try:
                for block, consumed in _line_blocks(fh, self.block_size):
                    table, lines, refused = _parse_jsonl_block(block, line, columns, value_column, self.name)
                    line += block.count(b"\n")
                    yield SourceBatch(table, lines, refused, consumed)
            except _LongLine:
                raise SourceError(long_line(self.name, line, MAX_LINE_BYTES, "jsonl")) from None

    # ------------------------------------------------------------------------------------- SDMX-ML
    def _sdmx_ml_batches(self, columns: list[str]) -> Iterator[SourceBatch]:
        rows, lines = self._sdmx_rows or {}, self._sdmx_lines
        n = len(lines)
        for start in range(0, max(n, 1), SDMX_ML_BATCH_ROWS):
            stop = min(start + SDMX_ML_BATCH_ROWS, n)
            table = pa.table({c: pa.array(rows.get(c, [None] * n)[start:stop], pa.string()) for c in columns})
            yield SourceBatch(table, lines[start:stop], None, self.size if stop == n else int(self.size * stop / n))


# ================================================================================================ opening
def open_source(path: str | Path, fmt: str | None = None, *, block_size: int = DEFAULT_BLOCK_SIZE) -> SourceFile:
    """Open a source file of format csv, sdmx-csv, jsonl or sdmx-ml (None: guess from the extension)."""
    path = Path(path)
    size, head = check_file(path, fmt or _EXTENSIONS.get(path.suffix.lower()))
    if fmt is None:
        fmt = _guess_format(path, head)
    if fmt not in ("csv", "sdmx-csv", "jsonl", "sdmx-ml"):
        raise SourceError(f"{path}: unknown format {fmt!r} (csv, jsonl, sdmx-csv, sdmx-ml)")
    looks = _looks_like(head)
    expected = {"csv": "CSV text", "sdmx-csv": "SDMX-CSV text", "jsonl": "JSON Lines", "sdmx-ml": "an SDMX-ML 2.1 XML message"}[fmt]
    if looks == "empty":
        raise SourceError(f"{path}: holds only blank space (expected {expected})")
    wanted = {"csv": "text", "sdmx-csv": "text", "jsonl": "JSON", "sdmx-ml": "XML"}[fmt]
    if looks != wanted:
        raise SourceError(f"{path}: expected {expected}, but the file looks like {_DESCRIBE[looks]}")
    if fmt in ("csv", "sdmx-csv"):
        return _open_csv(path, fmt, size, head, block_size)
    if fmt == "jsonl":
        return _open_jsonl(path, size, head, block_size)
    return _open_sdmx_ml(path, size)


_DESCRIBE = {"XML": "XML", "JSON": "JSON", "JSON array": "a JSON array (JSON Lines has one object per line)",
             "text": "plain text (CSV?)", "empty": "an empty file"}


def _looks_like(head: bytes) -> str:
    """What UTF-8 text (as `check_file` passed it) starts with."""
    text = head.decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")
    if not text:
        return "empty"
    if text[0] == "<":
        return "XML"
    if text[0] == "{":
        return "JSON"
    if text[0] == "[":
        return "JSON array"
    return "text"


def _guess_format(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    fmt = _EXTENSIONS.get(suffix)
    if fmt is None:
        raise SourceError(f"{path}: cannot tell the format from the extension {suffix or '(none)'}; "
                          f"give --format csv, jsonl, sdmx-csv or sdmx-ml")
    if fmt == "csv" and head.lstrip(_BOM).split(b",", 1)[0].strip(b'"\r\n') in (b"DATAFLOW", b"STRUCTURE"):
        return "sdmx-csv"
    return fmt


# ================================================================================================ CSV
def _open_csv(path: Path, fmt: str, size: int, head: bytes, block_size: int) -> SourceFile:
    offset = len(_BOM) if head.startswith(_BOM) else 0
    skipped = 0
    while offset < len(head) and head[offset:offset + 1] in (b"\n", b"\r"):   # blank lines before the header
        skipped += head[offset:offset + 1] == b"\n"
        offset += 1
    end = _header_end(head, offset)
    if end is None:
        raise SourceError(f"{path}: no complete header line in the first {_HEAD // 1024} KB (expected {fmt.upper()} with a header)")
    header = head[offset:end].decode("utf-8", errors="replace").rstrip("\r\n")
    delimiter = max(_DELIMITERS, key=header.count)
    columns = next(pycsv.reader([header], delimiter=delimiter))
    columns = [c.strip() for c in columns]
    if any(not c for c in columns):
        raise SourceError(f"{path}: line {skipped + 1}: the header has an empty column name: {header[:200]!r}")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise SourceError(f"{path}: line {skipped + 1}: the header repeats column(s) {', '.join(dupes)}")
    if fmt == "sdmx-csv" and columns[0] not in ("DATAFLOW", "STRUCTURE"):
        raise SourceError(f"{path}: not SDMX-CSV: the first column is {columns[0]!r}, expected DATAFLOW (SDMX-CSV 1.0) or STRUCTURE (2.0)")
    first_line = skipped + head[offset:end].count(b"\n") + 1
    return SourceFile(path, fmt, columns, size, nan_is_missing=fmt == "sdmx-csv", block_size=block_size,
                      _data_offset=end, _first_line=first_line, _delimiter=delimiter)


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
            _check_line_length(buf)
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


class _LongLine(Exception):
    """Raised by the block cutters at a line longer than MAX_LINE_BYTES; the reader adds its number."""


def _check_line_length(buf: bytes | bytearray) -> None:
    """Raise _LongLine if the first line of `buf` is longer than MAX_LINE_BYTES. Only a line carried
    over from earlier blocks can be (a block is shorter), so the cutters call this only then."""
    first = buf.find(b"\n", 0, MAX_LINE_BYTES + 1)
    if first < 0 and len(buf) > MAX_LINE_BYTES:
        raise _LongLine


def _utf8_error(block: bytes | bytearray, first_line: int) -> str:
    """The first byte of a block (starting at line `first_line`) that is not UTF-8, with its line."""
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not_utf8(bytes(block), exc.start, first_line)
    last = first_line + block.count(b"\n")
    return f"lines {first_line}-{last}: not UTF-8 text; save it as UTF-8"


# ================================================================================================ JSONL
def _open_jsonl(path: Path, size: int, head: bytes, block_size: int) -> SourceFile:
    columns: dict[str, None] = {}
    seen = 0
    body = head if len(head) < _HEAD else head[:head.rfind(b"\n") + 1] or head
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if seen == 0:
                raise SourceError(f"{path}: line {number}: not JSON Lines (one JSON object per line): {exc}") from None
            continue
        if not isinstance(obj, dict):
            if seen == 0:
                raise SourceError(f"{path}: line {number}: not JSON Lines: expected a JSON object, found {type(obj).__name__}")
            continue
        columns.update(dict.fromkeys(obj))
        seen += 1
        if seen >= JSONL_COLUMN_SAMPLE:
            break
    if not columns:
        raise SourceError(f"{path}: no JSON object with fields in the first {_HEAD // 1024} KB (expected JSON Lines)")
    return SourceFile(path, "jsonl", list(columns), size, block_size=block_size)


def _line_blocks(fh: BinaryIO, size: int) -> Iterator[tuple[bytes, int]]:
    """Cut a stream into blocks ending at a newline (JSON strings cannot hold a raw newline)."""
    rest = b""
    consumed = 0
    while True:
        data = fh.read(size)
        consumed += len(data)
        if not data:
            if rest:
                yield rest, consumed
            return
        buf = rest + data if rest else data
        if rest:
            _check_line_length(buf)
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            rest = buf
            continue
        rest = buf[cut:]
        yield buf[:cut], consumed - len(rest)


def _parse_jsonl_block(block: bytes, first_line: int, columns: list[str], value_column: str | None, file: str
                       ) -> tuple[pa.Table, np.ndarray, pa.Table | None]:
    if not block.isascii():     # pyarrow's JSON reader does not check UTF-8: invalid text would be sent on
        try:
            block.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{file}: {not_utf8(block, exc.start, first_line)}") from None
    raw_lines = block.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    try:
        parsed = pajson.read_json(pa.py_buffer(block), read_options=pajson.ReadOptions(block_size=1 << 20))
        table = _normalize_json_table(parsed, columns, value_column)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return _parse_jsonl_slowly(raw_lines, first_line, columns, value_column, file)
    if table.num_rows == len(raw_lines):
        lines = np.arange(first_line, first_line + table.num_rows, dtype=np.int64)
    else:
        lines = np.array([first_line + i for i, raw in enumerate(raw_lines) if raw.strip()], dtype=np.int64)
        if len(lines) != table.num_rows:
            return _parse_jsonl_slowly(raw_lines, first_line, columns, value_column, file)
    return table, lines, None


def _normalize_json_table(parsed: pa.Table, columns: list[str], value_column: str | None) -> pa.Table:
    """Mapped columns as text (value as float64 if numeric); raises ArrowInvalid on nested values."""
    out = {}
    for name in columns:
        if name not in parsed.column_names:
            out[name] = pa.nulls(parsed.num_rows, pa.float64() if name == value_column else pa.string())
            continue
        col = parsed[name].combine_chunks()
        kind = col.type
        if pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
            raise pa.ArrowInvalid(f"nested values in {name}")
        if name == value_column and (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
            out[name] = col.cast(pa.float64())
        elif pa.types.is_floating(kind):
            raise pa.ArrowInvalid(f"floats in text column {name}")  # 1.0 vs "1": let Python format it
        else:
            out[name] = col.cast(pa.string())
    return pa.table(out)


def _parse_jsonl_slowly(raw_lines: list[bytes], first_line: int, columns: list[str], value_column: str | None,
                        file: str) -> tuple[pa.Table, np.ndarray, pa.Table | None]:
    """Line by line with `json`: for blocks with mixed types or broken lines (rare; per-row Python)."""
    values: dict[str, list] = {c: [] for c in columns}
    lines: list[int] = []
    bad_lines: list[int] = []
    bad_fields: list[str] = []
    bad_values: list[str] = []
    bad_reasons: list[str] = []

    def refuse(line: int, fieldname: str, value: str, reason: str) -> None:
        bad_lines.append(line)
        bad_fields.append(fieldname)
        bad_values.append(value)
        bad_reasons.append(reason)

    for i, raw in enumerate(raw_lines):
        if not raw.strip():
            continue
        line = first_line + i
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            refuse(line, "", raw.decode("utf-8", "replace"), f"not valid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            refuse(line, "", raw.decode("utf-8", "replace"), f"not a JSON object ({type(obj).__name__})")
            continue
        nested = next((c for c in columns if isinstance(obj.get(c), (dict, list))), None)
        if nested is not None:
            refuse(line, nested, json.dumps(obj[nested]), "expected a single value, found a JSON object or array")
            continue
        for c in columns:
            v = obj.get(c)
            if v is None:
                values[c].append(None)
            elif isinstance(v, bool):
                values[c].append("true" if v else "false")
            elif isinstance(v, str):
                values[c].append(v)
            elif c == value_column:
                values[c].append(repr(float(v)) if isinstance(v, float) else str(v))
            else:
                values[c].append(str(v))
        lines.append(line)
    table = pa.table({c: pa.array(values[c], pa.string()) for c in columns}) if columns else pa.table({})
    refused = None
    if bad_lines:
        refused = rejects.make(file, bad_lines, "", bad_values, pa.array(bad_reasons, pa.string()))
        refused = refused.set_column(2, "field", pa.array(bad_fields, pa.string()))
    return table, np.asarray(lines, dtype=np.int64), refused


# ============================================================================================== SDMX-ML
def _open_sdmx_ml(path: Path, size: int) -> SourceFile:
    import sdmx
    from sdmx.message import DataMessage

    quiet = logging.getLogger("sdmx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)      # sdmx1 warns on every structure-specific message read without its DSD
    try:
        message = sdmx.read_sdmx(path, format="XML")
    except Exception as exc:  # sdmx1 raises many types on a non-SDMX document (KeyError, ValueError, XMLSyntaxError...)
        raise SourceError(f"{path}: not an SDMX-ML 2.1 data message ({type(exc).__name__}: {exc})") from None
    finally:
        quiet.setLevel(level)
    if not isinstance(message, DataMessage):
        raise SourceError(f"{path}: an SDMX-ML {type(message).__name__}, not a data message (expected GenericData or StructureSpecificData)")
    if not message.data:
        raise SourceError(f"{path}: the SDMX-ML data message holds no data set")
    # Per-observation Python here: sdmx1 hands out one object per observation; SDMX-ML files are small.
    rows: dict[str, list] = {}
    n = 0
    for dataset in message.data:
        ds_attrs = {k: _sdmx_text(v) for k, v in (getattr(dataset, "attrib", None) or {}).items()}
        for obs in dataset.obs:
            record = dict(ds_attrs)
            if obs.series_key is not None:
                record.update({k: _sdmx_text(v) for k, v in (obs.series_key.attrib or {}).items()})
            record.update({k: _sdmx_text(v) for k, v in obs.key.values.items()})
            record.update({k: _sdmx_text(v) for k, v in (obs.attrib or {}).items()})
            record["OBS_VALUE"] = None if obs.value is None else str(obs.value)
            for k in record:
                if k not in rows:
                    rows[k] = [None] * n
            for k, col in rows.items():
                col.append(record.get(k))
            n += 1
    if n == 0:
        raise SourceError(f"{path}: the SDMX-ML data message holds no observation")
    return SourceFile(path, "sdmx-ml", list(rows), size, nan_is_missing=True,
                      _sdmx_rows=rows, _sdmx_lines=_obs_lines(path, n))


def _sdmx_text(value) -> str | None:
    inner = getattr(value, "value", value)
    inner = getattr(inner, "id", inner)      # a coded value: its code id
    return None if inner is None else str(inner)


def _obs_lines(path: Path, n: int) -> np.ndarray:
    """Source line of each Obs element in document order (sdmx1's order), or 1..n if counts differ."""
    from lxml import etree

    found: list[int] = []
    try:
        for _, elem in etree.iterparse(str(path), events=("end",)):
            if isinstance(elem.tag, str) and etree.QName(elem).localname == "Obs":
                found.append(elem.sourceline or 0)
                elem.clear()
    except etree.XMLSyntaxError:
        found = []
    if len(found) == n:
        return np.asarray(found, dtype=np.int64)
    return np.arange(1, n + 1, dtype=np.int64)
