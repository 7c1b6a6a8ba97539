"""SDMX-ML 2.1 data messages (generic or structure-specific), read whole with the `sdmx1` library.

Entry point: `SdmxMlReader` (registered as `sdmx-ml`). Columns: the dimension and attribute ids of each
observation (series and data-set attributes included) plus OBS_VALUE; each row's line is its `Obs`
element's. See docs/readers.md.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from producers.filecheck import SourceError
from producers.readers.base import Reader, SourceBatch, SourceFile

SDMX_ML_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class Observations:
    """The message's observations, column by column, and the source line of each."""

    rows: dict[str, list]
    lines: np.ndarray


class SdmxMlReader(Reader):
    name = "sdmx-ml"
    title = "SDMX-ML 2.1"
    expected = "an SDMX-ML 2.1 XML message"
    suffixes = (".xml",)
    looks = "XML"
    streams = False
    nan_is_missing = True

    def open(self, path: Path, size: int, head: bytes, block_size: int) -> SourceFile:
        import sdmx            # on first use: CSV and JSON Lines publishing never pays for importing sdmx1
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
        return SourceFile(path, self, list(rows), size, block_size, Observations(rows, _obs_lines(path, n)))

    def read(self, source: SourceFile, columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        rows, lines = source.layout.rows, source.layout.lines
        n = len(lines)
        for start in range(0, max(n, 1), SDMX_ML_BATCH_ROWS):
            stop = min(start + SDMX_ML_BATCH_ROWS, n)
            table = pa.table({c: pa.array(rows.get(c, [None] * n)[start:stop], pa.string()) for c in columns})
            yield SourceBatch(table, lines[start:stop], None, source.size if stop == n else int(source.size * stop / n))


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
