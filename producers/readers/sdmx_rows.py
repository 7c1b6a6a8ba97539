"""What the whole-message SDMX readers (SDMX-ML, SDMX-JSON) share: observations gathered column by column.

Entry points: `RowBuilder` (add one observation's cells, `columns()` at the end), `Observations` (the
columns and the source line of each row: a reader's `layout`), `MessageReader` (a `Reader` whose `read`
cuts those columns into batches), `ACTION_CODES` (SDMX data set actions -> the SDMX-CSV ACTION letters).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa

from producers.readers.base import Reader, SourceBatch, SourceFile

SDMX_BATCH_ROWS = 100_000
ACTION_COLUMN = "ACTION"
# An SDMX data set's action (SDMX-ML `action=`, SDMX-JSON "action") -> the SDMX-CSV 2.0 ACTION letter.
ACTION_CODES = {"information": "I", "append": "A", "replace": "R", "delete": "D"}
# Attribute concepts of the SDMX Content-Oriented Guidelines (and ECB/Eurostat ones) that providers attach
# to series: without a DSD they tell a structure-specific message's series attributes from its dimensions.
KNOWN_ATTRIBUTES = frozenset({
    "OBS_STATUS", "OBS_CONF", "OBS_PRE_BREAK", "OBS_COM", "OBS_FLAG", "CONF_STATUS", "UNIT_MEASURE", "UNIT",
    "UNIT_MULT", "DECIMALS", "TIME_FORMAT", "TITLE", "TITLE_COMPL", "COLLECTION", "COMMENT", "COMMENT_OBS",
    "COMMENT_TS", "COMMENT_DSET", "SOURCE_DETAIL", "COMPILING_ORG", "DATA_COMP", "BREAKS", "EMBARGO_TIME",
    "NATURE", "BASE_PER", "BASE_YEAR", "REF_PERIOD_DETAIL", "TIME_PER_COLLECT", "PRE_BREAK_VALUE"})


@dataclass(frozen=True)
class Observations:
    """The message's observations, column by column (text or None), and the source line of each."""

    rows: dict[str, list]
    lines: np.ndarray


class RowBuilder:
    """Columns of text cells filled one observation at a time; a column first seen late is padded."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {}
        self.n = 0

    def add(self, record: dict[str, str | None]) -> None:
        rows, n = self.rows, self.n
        for k in record:
            if k not in rows:
                rows[k] = [None] * n
        for k, col in rows.items():
            col.append(record.get(k))
        self.n = n + 1


class MessageReader(Reader):
    """A format whose `open` parses the whole message into `Observations` (its `layout`)."""

    streams = False
    nan_is_missing = True
    takes_structure = True

    def read(self, source: SourceFile, columns: list[str], value_column: str | None) -> Iterator[SourceBatch]:
        rows, lines = source.layout.rows, source.layout.lines
        n = len(lines)
        for start in range(0, max(n, 1), SDMX_BATCH_ROWS):
            stop = min(start + SDMX_BATCH_ROWS, n)
            table = pa.table({c: pa.array(rows.get(c, [None] * n)[start:stop], pa.string()) for c in columns})
            yield SourceBatch(table, lines[start:stop], None, source.size if stop == n else int(source.size * stop / n))


def split_known(names: list[str], key: tuple[str, ...] | None, known_attributes: frozenset[str] = KNOWN_ATTRIBUTES
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(dimensions, attributes) among `names`: `key` when the message says which fields are the series
    key, else every name that is not a well-known SDMX attribute concept (docs/readers.md)."""
    dims = tuple(d for d in key if d in names) if key is not None else tuple(c for c in names if c not in known_attributes)
    return dims, tuple(c for c in names if c not in dims)
