"""JSON Lines: one JSON object per line, cut into blocks at newlines and parsed by `pyarrow.json`.

Entry point: `JsonLinesReader` (registered as `jsonl`). A block pyarrow cannot take (a field changing
type, a broken line) is parsed line by line instead, bad lines becoming rejects. See docs/readers.md.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from ioxhub.errors import not_utf8
from producers import rejects
from producers.filecheck import HEAD_BYTES as _HEAD
from producers.filecheck import MAX_LINE_BYTES, SourceError, long_line
from producers.readers.base import LongLine, Reader, SourceBatch, SourceFile, check_line_length

JSONL_COLUMN_SAMPLE = 1000          # columns: the keys seen in the first objects


class JsonLinesReader(Reader):
    name = "jsonl"
    title = "JSON Lines"
    expected = "JSON Lines"
    suffixes = (".jsonl", ".ndjson", ".json")
    looks = "JSON"
    line_based = True

    def open(self, path: Path, size: int, head: bytes, block_size: int) -> SourceFile:
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
        return SourceFile(path, self, list(columns), size, block_size)

    def read(self, source: SourceFile, columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        line = 1
        with open(source.path, "rb") as fh:
            try:
                for block, consumed in _line_blocks(fh, source.block_size):
                    table, lines, refused = _parse_jsonl_block(block, line, columns, value_column, source.name)
                    line += block.count(b"\n")
                    yield SourceBatch(table, lines, refused, consumed)
            except LongLine:
                raise SourceError(long_line(source.name, line, MAX_LINE_BYTES, self.title)) from None


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
            check_line_length(buf)
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
