"""SDMX-ML data messages, 2.1 (generic or structure-specific) and 3.0 (structure-specific), read whole with `sdmx1`.

Entry point: `SdmxMlReader` (registered as `sdmx-ml`). Columns: the dimension and attribute ids of each
observation (series and data-set attributes included), OBS_VALUE, and ACTION (I/A/R/D) when a data set
states its action; each row's line is its `Obs` element's. A structure-specific message names no roles:
with its DSD (`--structure FILE`) dimensions and attributes are the DSD's, without it sdmx1 takes every
series-level field for a dimension and the reader moves well-known attribute concepts back (docs/readers.md).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from producers.filecheck import SourceError
from producers.readers.base import SourceFile
from producers.readers.sdmx_rows import ACTION_CODES, ACTION_COLUMN, MessageReader, Observations, RowBuilder, split_known
from producers.readers.structure import TIME_DIMENSION, Structure


class SdmxMlReader(MessageReader):
    name = "sdmx-ml"
    title = "SDMX-ML"
    expected = "an SDMX-ML 2.1 or 3.0 XML data message"
    suffixes = (".xml",)
    looks = "XML"

    def open(self, path: Path, size: int, head: bytes, block_size: int, structure: Structure | None = None) -> SourceFile:
        import sdmx            # on first use: CSV and JSON Lines publishing never pays for importing sdmx1
        import sdmx.reader.xml.v30  # noqa: F401  before any read: sdmx1 2.28 cannot import its 3.0 reader
                                    # after its 2.1 reader met a structure-specific message's namespace
        from sdmx.message import DataMessage

        quiet = logging.getLogger("sdmx")
        level = quiet.level
        quiet.setLevel(logging.ERROR)      # sdmx1 warns on every structure-specific message read without its DSD
        try:
            message = sdmx.read_sdmx(path, format="XML", **({"structure": structure.dsd} if structure else {}))
        except Exception as exc:  # sdmx1 raises many types on a non-SDMX document (KeyError, ValueError, XMLSyntaxError...)
            raise SourceError(f"{path}: not an SDMX-ML data message ({type(exc).__name__}: {exc})") from None
        finally:
            quiet.setLevel(level)
        if not isinstance(message, DataMessage):
            raise SourceError(f"{path}: an SDMX-ML {type(message).__name__}, not a data message (expected GenericData or StructureSpecificData)")
        if not message.data:
            raise SourceError(f"{path}: the SDMX-ML data message holds no data set")
        # Per-observation Python here: sdmx1 hands out one object per observation; SDMX-ML files are small.
        out = RowBuilder()
        key_ids: dict[str, None] = {}
        actions = False
        for dataset in message.data:
            ds_attrs = {k: _sdmx_text(v) for k, v in (getattr(dataset, "attrib", None) or {}).items()}
            action = getattr(dataset, "action", None)
            if action is not None:
                actions = True
                ds_attrs[ACTION_COLUMN] = ACTION_CODES.get(str(getattr(action, "name", action)).lower(), str(action))
            for obs in dataset.obs:
                record = dict(ds_attrs)
                if obs.series_key is not None:
                    record.update({k: _sdmx_text(v) for k, v in (obs.series_key.attrib or {}).items()})
                key = {k: _sdmx_text(v) for k, v in obs.key.values.items()}
                key_ids.update(dict.fromkeys(key))
                record.update(key)
                record.update({k: _sdmx_text(v) for k, v in (obs.attrib or {}).items()})
                record["OBS_VALUE"] = None if obs.value is None else str(obs.value)
                out.add(record)
        if out.n == 0:
            raise SourceError(f"{path}: the SDMX-ML data message holds no observation")
        names = [k for k in out.rows if k not in (TIME_DIMENSION, "OBS_VALUE", ACTION_COLUMN)]
        if structure is not None:
            dims, attrs = structure.roles(path, names)
        elif _generic(path):     # a generic message says which values are the key: sdmx1's key is exact
            dims, attrs = split_known(names, tuple(k for k in key_ids if k != TIME_DIMENSION))
        else:
            dims, attrs = split_known(names, None)
        return SourceFile(path, self, list(out.rows), size, block_size, Observations(out.rows, _obs_lines(path, out.n)),
                          dimensions=dims, attributes=attrs, action_column=ACTION_COLUMN if actions else None)


def _generic(path: Path) -> bool:
    """Whether the message is GenericData (its root element, in the first bytes)."""
    with open(path, "rb") as fh:
        return b"GenericData" in fh.read(4096)


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
