"""Row files (CSV, SDMX-CSV, JSON Lines) with planted mess: bad rows and exact duplicates.

Rows are dicts column -> value (str, int, float or None). A bad row is a copy of a good row with one
cell spoiled (or, for `missing-field`, emptied in CSV / the key removed in JSON Lines); a duplicate is an
exact copy of a good row. Both are inserted at seeded positions, and their 1-based line numbers are
recorded so tests and ingest can reconcile counts exactly.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from producers.samples.manifest import BadRow

MISSING = object()   # spoil value meaning "field missing"
INGEST_REASONS = frozenset({"missing-unit"})   # caught by harmonization, not by producer validation


@dataclass(frozen=True)
class Spoil:
    """One planted bad row: `column` (holding observation field `field`) gets `value`."""
    field: str
    column: str
    value: Any
    reason: str


def plant_mess(rows: list[dict], spoils: Sequence[Spoil], n_duplicates: int, rng: np.random.Generator,
               first_line: int) -> tuple[list[dict], list[BadRow], list[int]]:
    """Insert the bad rows and duplicates among `rows`; return (all rows, bad rows, duplicate lines)."""
    extras: list[tuple[str, dict, Spoil | None]] = []
    for spoil in spoils:
        row = dict(rows[int(rng.integers(len(rows)))])
        if spoil.value is MISSING:
            row[spoil.column] = MISSING
        else:
            row[spoil.column] = spoil.value
        extras.append(("bad", row, spoil))
    for i in sorted(rng.choice(len(rows), size=n_duplicates, replace=False).tolist()):
        extras.append(("dup", dict(rows[i]), None))
    total = len(rows) + len(extras)
    positions = np.sort(rng.choice(total, size=len(extras), replace=False))
    order = rng.permutation(len(extras))
    out: list[dict] = []
    bad: list[BadRow] = []
    dup_lines: list[int] = []
    placed = dict(zip(positions.tolist(), (extras[k] for k in order)))
    it = iter(rows)
    for pos in range(total):
        if pos in placed:
            kind, row, spoil = placed[pos]
            line = first_line + pos
            if kind == "dup":
                dup_lines.append(line)
            else:
                value = None if spoil.value is MISSING else str(spoil.value)
                stage = "ingest" if spoil.reason in INGEST_REASONS else "publish"
                bad.append(BadRow(line, spoil.field, spoil.column, spoil.reason, value, stage))
            out.append(row)
        else:
            out.append(next(it))
    return out, bad, dup_lines


def _cell(value: Any) -> str:
    if value is None or value is MISSING:
        return ""
    return str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(r[c]) for c in columns] for r in rows)


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for r in rows:
            fh.write(json.dumps({k: v for k, v in r.items() if v is not MISSING}, ensure_ascii=False))
            fh.write("\n")


def number(value: float, decimals: int) -> int | float:
    """A published number: an int when the value has no decimals, else a float rounded to `decimals`."""
    return int(value) if decimals == 0 else round(float(value), decimals)
