"""The registry of partner file formats, and `open_source`, the one way a partner file is opened.

- `open_source(path, fmt=None, *, block_size)`: `filecheck.check_file`, then the file's reader opens
  it -> `base.SourceFile` (its columns; `batches()` streams its rows).
- `get_reader(path, format=None, head=b"")`: the reader named `format`, else the first of `READERS`
  that takes the extension and accepts the first bytes; `formats()`, `register(reader)`.
One module a format (`base.Reader`): csv, sdmx_csv, jsonl, sdmx_json, sdmx_ml; `structure`: an SDMX DSD
given with `--structure`. How each reads: docs/readers.md.
"""
from __future__ import annotations

from pathlib import Path

from producers.filecheck import SourceError, check_file
from producers.readers.base import DEFAULT_BLOCK_SIZE, DESCRIBE, Reader, SourceFile, looks_like
from producers.readers.csv import CsvReader
from producers.readers.jsonl import JsonLinesReader
from producers.readers.sdmx_csv import SdmxCsvReader
from producers.readers.sdmx_json import SdmxJsonReader
from producers.readers.sdmx_ml import SdmxMlReader
from producers.readers.structure import Structure

# In detection order: SDMX-CSV before CSV and SDMX-JSON before JSON Lines, whose extensions they share.
READERS: list[Reader] = [SdmxCsvReader(), CsvReader(), SdmxJsonReader(), JsonLinesReader(), SdmxMlReader()]


def formats() -> list[str]:
    """The names of the registered formats, sorted."""
    return sorted(r.name for r in READERS)


def register(reader: Reader) -> None:
    """Add a format; it is tried before the others on the extensions it shares with them."""
    if reader.name in formats():
        raise ValueError(f"a reader of format {reader.name!r} is registered already")
    READERS.insert(0, reader)


def get_reader(path: Path, format: str | None = None, head: bytes = b"") -> Reader:
    """The reader named `format`, or the one for `path` and its first bytes; `SourceError` if none."""
    if format is not None:
        for reader in READERS:
            if reader.name == format:
                return reader
        raise SourceError(f"{path}: unknown format {format!r} ({', '.join(formats())})")
    suffix = path.suffix.lower()
    candidates = [r for r in READERS if suffix in r.suffixes]
    if not candidates:
        *most, last = formats()
        raise SourceError(f"{path}: cannot tell the format from the extension {suffix or '(none)'}; "
                          f"give --format {', '.join(most)} or {last}")
    return next((r for r in candidates if r.detect(head, path)), candidates[-1])


def open_source(path: str | Path, fmt: str | None = None, *, block_size: int = DEFAULT_BLOCK_SIZE,
                structure: Structure | None = None) -> SourceFile:
    """Check and open a partner file of format `fmt` (None: from its extension and first bytes); `structure`:
    an SDMX DSD (`structure.load_structure`) for the SDMX readers."""
    path = Path(path)
    size, head = check_file(path, _line_format(path, fmt))
    reader = get_reader(path, fmt, head)
    looks = looks_like(head)
    if looks == "empty":
        raise SourceError(f"{path}: holds only blank space (expected {reader.expected})")
    if looks != reader.looks:
        raise SourceError(f"{path}: expected {reader.expected}, but the file looks like {DESCRIBE[looks]}")
    if structure is None:
        return reader.open(path, size, head, block_size)
    if not reader.takes_structure:
        raise SourceError(f"{path}: --structure applies to the SDMX formats, not to {reader.title}")
    return reader.open(path, size, head, block_size, structure=structure)


def _line_format(path: Path, fmt: str | None) -> str | None:
    """The title of the line-based format the name or extension alone points to (for `check_file`)."""
    try:
        reader = get_reader(path, fmt)
    except SourceError:
        return None
    return reader.title if reader.line_based else None
