"""What a file format declares (`Reader`) and what every opened file has (`SourceFile`, `SourceBatch`).

A format is one module with one `Reader` subclass, listed in the registry (`readers/__init__.py`) or
added with `readers.register`. Shared here: `looks_like` (what a file's first bytes are) and the
line-length guard of the block cutters (`LongLine`, `check_line_length`). See docs/readers.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa

from producers.filecheck import MAX_LINE_BYTES

DEFAULT_BLOCK_SIZE = 8 << 20        # bytes of source text per batch


@dataclass
class SourceBatch:
    """Source columns of up to one block of rows, the line of each row, and rows the reader refused."""

    table: pa.Table
    lines: np.ndarray                   # int64, 1-based
    rejects: pa.Table | None = None     # rejects.SCHEMA
    bytes_read: int = 0                 # bytes of the file consumed so far


class Reader:
    """A file format. A subclass declares the class attributes and implements `open` and `read`."""

    name: str = ""                      # the --format value and the mapping's `format:`
    title: str = ""                     # in messages: "not a {title} file?"
    expected: str = ""                  # in messages: "expected {expected}"
    suffixes: tuple[str, ...] = ()      # extensions (lower case, with the dot) it reads
    looks: str = "text"                 # what the first bytes must look like (see `looks_like`)
    line_based: bool = False            # line 1 must end within the first 64 KB (`filecheck.check_file`)
    streams: bool = True                # rows are read while chunks go out, so publishing checks the
                                        # whole file is UTF-8 first; False: `open` parses all of it
    nan_is_missing: bool = False        # NaN in the value column means a missing value (SDMX)

    def detect(self, head: bytes, path: Path) -> bool:
        """Whether a file with one of `suffixes` and these first bytes is of this format."""
        return True

    def open(self, path: Path, size: int, head: bytes, block_size: int) -> "SourceFile":
        """Read what the format needs up front (header, column names...); `SourceError` if not the format."""
        raise NotImplementedError

    def read(self, source: "SourceFile", columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        """Stream `columns` (text; `value_column` as float64 where it parses) in bounded batches."""
        raise NotImplementedError


@dataclass
class SourceFile:
    """An opened source: its reader, its columns, and `batches()` to stream its rows."""

    path: Path
    reader: Reader
    columns: list[str]
    size: int
    block_size: int = DEFAULT_BLOCK_SIZE
    layout: Any = field(default=None, repr=False)   # what the format's reader keeps of the file
    dimensions: tuple[str, ...] = ()    # the series-key dimension column ids, in structure order (when known)
    attributes: tuple[str, ...] = ()    # the attribute column ids (when known)
    action_column: str | None = None    # the column holding SDMX-CSV ACTION (I/A/R/D), when present

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def format(self) -> str:
        return self.reader.name

    @property
    def nan_is_missing(self) -> bool:
        return self.reader.nan_is_missing

    def batches(self, columns: Sequence[str], value_column: str | None = None) -> Iterator[SourceBatch]:
        """Stream `columns` (text; `value_column` as float64 where it parses) in bounded batches."""
        return self.reader.read(self, list(dict.fromkeys(columns)), value_column)


def looks_like(head: bytes) -> str:
    """What UTF-8 text (as `check_file` passed it) starts with: XML, JSON, JSON array, text or empty."""
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


DESCRIBE = {"XML": "XML", "JSON": "JSON", "JSON array": "a JSON array (JSON Lines has one object per line)",
            "text": "plain text (CSV?)", "empty": "an empty file"}


class LongLine(Exception):
    """Raised by the block cutters at a line longer than MAX_LINE_BYTES; the reader adds its number."""


def check_line_length(buf: bytes | bytearray) -> None:
    """Raise LongLine if the first line of `buf` is longer than MAX_LINE_BYTES. Only a line carried
    over from earlier blocks can be (a block is shorter), so the cutters call this only then."""
    first = buf.find(b"\n", 0, MAX_LINE_BYTES + 1)
    if first < 0 and len(buf) > MAX_LINE_BYTES:
        raise LongLine
