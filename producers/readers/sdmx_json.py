"""SDMX-JSON data messages, versions 1.0 (SDMX 2.1) and 2.0 (SDMX 3.0), read whole with the `json` module.

Entry point: `SdmxJsonReader` (registered as `sdmx-json`, extension .json, told from JSON Lines by its
`dataSets`/`structure` keys). Columns: every dimension and attribute id (data-set, series and observation
level) plus OBS_VALUE, and ACTION (I/A/R/D) from each data set's `action`. Not read with sdmx1 (2.28): its
JSON reader fails on SDMX-JSON 2.0 (`data.structures` is a list) and, in 1.0, gives every series the data
set's attribute indices instead of the series' own (a series' UNIT_MULT is lost). See docs/readers.md.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from producers.filecheck import SourceError
from producers.readers.base import SourceFile
from producers.readers.sdmx_rows import ACTION_CODES, ACTION_COLUMN, MessageReader, Observations, RowBuilder
from producers.readers.structure import TIME_DIMENSION, Structure

LEVELS = ("dataSet", "series", "observation")
VALUE_COLUMN = "OBS_VALUE"


class SdmxJsonReader(MessageReader):
    name = "sdmx-json"
    title = "SDMX-JSON"
    expected = "an SDMX-JSON data message"
    suffixes = (".json",)
    looks = "JSON"

    def detect(self, head: bytes, path: Path) -> bool:
        return b'"dataSets"' in head or (b'"structure' in head and (b'"header"' in head or b'"meta"' in head))

    def open(self, path: Path, size: int, head: bytes, block_size: int, structure: Structure | None = None) -> SourceFile:
        try:
            with open(path, "rb") as fh:
                tree = json.load(fh)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        root = tree.get("data", tree) if isinstance(tree, dict) else None
        if not isinstance(root, dict) or "dataSets" not in root:
            raise SourceError(f"{path}: not an SDMX-JSON data message (no dataSets)")
        structures = root.get("structures") or [root.get("structure") or tree.get("structure")]
        if not all(isinstance(s, dict) and "dimensions" in s for s in structures):
            raise SourceError(f"{path}: the SDMX-JSON message has no structure with dimensions")
        try:
            rows, dims, attrs = _observations(root["dataSets"], structures)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise SourceError(f"{path}: SDMX-JSON data message not readable ({type(exc).__name__}: {exc})") from None
        if rows.n == 0:
            raise SourceError(f"{path}: the SDMX-JSON data message holds no observation")
        if structure is not None:
            dims, attrs = structure.roles(path, list(rows.rows))
        action = ACTION_COLUMN if ACTION_COLUMN in rows.rows else None
        # Rows have no line of their own in a JSON message: a row's "line" is its position in the message.
        return SourceFile(path, self, list(rows.rows), size, block_size,
                          Observations(rows.rows, np.arange(1, rows.n + 1, dtype=np.int64)),
                          dimensions=dims, attributes=attrs, action_column=action)


def _observations(datasets: list, structures: list) -> tuple[RowBuilder, tuple[str, ...], tuple[str, ...]]:
    """Every observation of the data sets as text cells; the dimension ids (key order, without the time
    dimension) and attribute ids of the structures used."""
    out = RowBuilder()
    dims: dict[str, int] = {}
    attrs: dict[str, None] = {}
    # Per-observation Python (the key strings "0:1:3" must be split anyway); SDMX-JSON messages are small.
    for ds in datasets:
        st = structures[int(ds.get("structure", 0))]
        d_levels = {lv: st["dimensions"].get(lv) or [] for lv in LEVELS}
        a_levels = {lv: (st.get("attributes") or {}).get(lv) or [] for lv in LEVELS}
        for lv in LEVELS:
            for pos, d in enumerate(d_levels[lv]):
                if d["id"] != TIME_DIMENSION and "TIME_PERIOD" not in (d.get("roles") or []) and d.get("role") != "time":
                    dims.setdefault(d["id"], d.get("keyPosition", 1000 + len(dims)))
            for a in a_levels[lv]:
                attrs.setdefault(a["id"])
        base: dict[str, str | None] = {d["id"]: _code(d["values"][0]) for d in d_levels["dataSet"] if d.get("values")}
        base.update(_attributes(a_levels["dataSet"], ds.get("attributes")))
        action = ds.get("action")
        if action:
            base[ACTION_COLUMN] = ACTION_CODES.get(str(action).lower(), str(action))
        for key, series in (ds.get("series") or {}).items():
            record = dict(base)
            record.update(_key(d_levels["series"], key))
            record.update(_attributes(a_levels["series"], series.get("attributes")))
            _add_obs(out, record, d_levels["observation"], a_levels["observation"], series.get("observations") or {})
        # A flat data set (no series): each observation key covers every dimension, all at observation level.
        _add_obs(out, base, d_levels["observation"], a_levels["observation"], ds.get("observations") or {})
    return out, tuple(sorted(dims, key=dims.get)), tuple(attrs)


def _add_obs(out: RowBuilder, base: dict, dims: list, attrs: list, observations: dict) -> None:
    for key, cells in observations.items():
        record = dict(base)
        record.update(_key(dims, key))
        record[VALUE_COLUMN] = None if not cells or cells[0] is None else str(cells[0])
        record.update(_attributes(attrs, cells[1:]))
        out.add(record)


def _key(dims: list, key: str) -> dict[str, str | None]:
    if not key:
        return {}
    return {d["id"]: _code(d["values"][int(i)]) for d, i in zip(dims, key.split(":"))}


def _attributes(attrs: list, indexes: Any) -> dict[str, str | None]:
    """Attribute cells from a list of indexes into each attribute's values (None: not given)."""
    out: dict[str, str | None] = {}
    for a, i in zip(attrs, indexes or []):
        if i is None:
            continue
        values = a.get("values") or []
        out[a["id"]] = _code(values[int(i)]) if values else str(i)
    return out


def _code(value: Any) -> str | None:
    """A value entry's code: its id, else its value, else its name (a localized name: English first)."""
    if not isinstance(value, dict):
        return None if value is None else str(value)
    for key in ("id", "value", "name"):
        v = value.get(key)
        if isinstance(v, dict):
            v = v.get("en", next(iter(v.values()), None))
        if v is not None:
            return str(v)
    return None
