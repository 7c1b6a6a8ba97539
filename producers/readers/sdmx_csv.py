"""SDMX-CSV: CSV whose first column is DATAFLOW (1.0) or STRUCTURE (2.0), headed by SDMX concept names.

Entry point: `SdmxCsvReader` (registered as `sdmx-csv`): the CSV reader, a file with a CSV extension
recognized by its first header field, NaN read as a missing value. See docs/readers.md.
"""
from __future__ import annotations

from pathlib import Path

from producers.filecheck import UTF8_BOM, SourceError
from producers.readers.csv import CsvReader

_FIRST_COLUMNS = ("DATAFLOW", "STRUCTURE")


class SdmxCsvReader(CsvReader):
    name = "sdmx-csv"
    title = "SDMX-CSV"
    expected = "SDMX-CSV text"
    nan_is_missing = True

    def detect(self, head: bytes, path: Path) -> bool:
        return head.lstrip(UTF8_BOM).split(b",", 1)[0].strip(b'"\r\n') in (b"DATAFLOW", b"STRUCTURE")

    def check_header(self, path: Path, columns: list[str]) -> None:
        if columns[0] not in _FIRST_COLUMNS:
            raise SourceError(f"{path}: not SDMX-CSV: the first column is {columns[0]!r}, expected DATAFLOW (SDMX-CSV 1.0) or STRUCTURE (2.0)")
