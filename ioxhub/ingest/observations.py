"""Dataset chunks -> harmonized observation rows (and refused rows with their reasons).

`harmonize_chunk(record, schema_version, published_at)` turns a chunk's columns into Arrow dictionary
arrays over its string table and runs each harmonization rule on them (`ioxhub.harmonize`); it returns the
rows in `HARMONIZED_SCHEMA` (plus `deleted`: the chunk's SDMX ACTION D rows) and the refused ones in
`REFUSED_SCHEMA` (first failing field, reason, source file and line); `with_all_columns(table)` gives rows
written before a column existed that column (null; `dimensions` ""). The harmonized row: docs/harmonization.md.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ioxhub.harmonize.columns import wire_column
from ioxhub.harmonize.countries import to_area_array
from ioxhub.harmonize.dimensions import dimensions_column
from ioxhub.harmonize.hs import normalize_hs_array
from ioxhub.harmonize.periods import parse_period_array
from ioxhub.harmonize.units import OVERFLOW, normalize_values

# The identity of an observation: a newer release with the same key revises it.
SERIES_KEY = ("indicator", "ref_area", "counterpart_area", "commodity", "period", "unit", "price_basis", "base_year",
              "unit_denominator", "dimensions")
DELETED = "deleted"     # bool column beside HARMONIZED_SCHEMA's: an ACTION D row (it deletes its key)
ACTIONS = ("I", "A", "R", "D")
BAD_ACTION = "bad-action"
NOT_HS = "commodity-not-hs"

HARMONIZED_SCHEMA = pa.schema([
    ("release_id", pa.string()),
    ("schema_version", pa.string()),
    ("indicator", pa.string()),
    ("ref_area", pa.string()),
    ("area_type", pa.string()),
    ("counterpart_area", pa.string()),
    ("counterpart_area_type", pa.string()),
    ("commodity", pa.string()),
    ("dimensions", pa.string()),
    ("freq", pa.string()),
    ("period", pa.string()),
    ("period_start", pa.date32()),
    ("period_end", pa.date32()),
    ("value", pa.float64()),
    ("unit", pa.string()),
    ("unit_code", pa.string()),
    ("unit_status", pa.string()),
    ("currency", pa.string()),
    ("price_basis", pa.string()),
    ("base_year", pa.int16()),
    ("unit_denominator", pa.string()),
    ("obs_status", pa.string()),
    ("published_at", pa.timestamp("ms", tz="UTC")),
])

REFUSED_SCHEMA = pa.schema([
    ("release_id", pa.string()),
    ("event_id", pa.string()),
    ("source_file", pa.string()),
    ("source_line", pa.int32()),
    ("field", pa.string()),
    ("value", pa.string()),
    ("reason", pa.string()),
])


@dataclass(frozen=True)
class ChunkResult:
    harmonized: pa.Table   # HARMONIZED_SCHEMA's columns, strings dictionary-encoded
    refused: pa.Table      # REFUSED_SCHEMA


def chunk_columns(record: dict) -> dict[str, pa.Array]:
    """The published columns of a decoded chunk record, as Arrow arrays (strings dictionary-encoded).

    The index and value columns may be lists (fastavro) or numpy arrays (`ioxhub.contracts.dataset_chunk.decode`)."""
    strings = pa.array(record["strings"], pa.string())
    n = len(record["indicator"])
    lengths = {name: len(record[name]) for name in
               ("ref_area", "counterpart_area", "commodity", "period", "value", "unit", "unit_mult",
                "obs_status", "source_file", "source_line")}
    bad = {name: size for name, size in lengths.items() if size != n}
    if bad:
        raise ValueError("columns of unequal length: indicator has %d, %s" % (
            n, ", ".join(f"{k} has {v}" for k, v in sorted(bad.items()))))
    values = np.asarray(record["value"], dtype=np.float64)
    missing = None
    if len(record["missing_values"]):
        missing = np.zeros(n, dtype=bool)
        missing[np.asarray(record["missing_values"], dtype=np.int64)] = True
    columns = {name: wire_column(strings, record[name]) for name in
               ("indicator", "ref_area", "counterpart_area", "commodity", "period", "unit", "obs_status",
                "source_file")}
    if len(record.get("action", ())):
        columns["action"] = wire_column(strings, record["action"])
    columns["value"] = pa.array(values, pa.float64(), mask=missing)
    columns["unit_mult"] = pa.array(np.asarray(record["unit_mult"], dtype=np.int32))
    columns["source_line"] = pa.array(np.asarray(record["source_line"], dtype=np.int32))
    return columns


def constant(value, n: int, type_: pa.DataType = pa.string()) -> pa.Array:
    """`n` copies of one value: a dictionary array over one entry for strings (no per-row objects)."""
    if pa.types.is_string(type_):
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string()))
    return pa.array(np.full(n, value), type_)


def harmonize_chunk(record: dict, schema_version: str, published_at: dt.datetime,
                    unit_translations: Mapping[str, str] | None = None) -> ChunkResult:
    """Harmonize one decoded dataset chunk (`unit_translations`: the release's mapping `units:`).

    The harmonized table has the columns of HARMONIZED_SCHEMA; its string columns are kept
    dictionary<int32, string> (cast with `as_output` where plain strings are wanted)."""
    cols = chunk_columns(record)
    n = len(cols["indicator"])
    ref = to_area_array(cols["ref_area"])
    counterpart = to_area_array(cols["counterpart_area"])
    classification = record.get("commodity_classification")
    hs = normalize_hs_array(cols["commodity"], classification)
    commodity_reason = hs.reason
    if classification is not None and not classification.upper().startswith("HS") and cols["commodity"].null_count < n:
        commodity_reason = pc.if_else(cols["commodity"].is_valid(), pa.scalar(NOT_HS), pa.scalar(None, pa.string()))
    action, deleted = _actions(record, n)
    deletes = deleted if pc.any(deleted).as_py() else None   # a D row needs its key, not a value or a unit
    period = parse_period_array(cols["period"])
    units = normalize_values(cols["value"], cols["unit"], cols["unit_mult"], unit_translations)

    # Checks in field order: the first failing field names the row's refusal (None: nothing fails).
    def missing(name: str) -> pa.Array | None:
        column = cols[name]
        if not column.null_count:
            return None
        return pc.if_else(column.is_null(), pa.scalar("missing-" + name.replace("_", "-")), pa.scalar(None, pa.string()))

    def either(first: pa.Array | None, second: pa.Array) -> pa.Array:
        return second if first is None else pc.coalesce(first, second)

    checks = [
        ("indicator", missing("indicator")),
        ("ref_area", either(missing("ref_area"), ref.reason)),
        ("counterpart_area", counterpart.reason),
        ("commodity", commodity_reason),
        ("period", either(missing("period"), period.reason)),
        *_value_and_unit_checks(units.reason if deletes is None else pc.if_else(deletes, pa.scalar(None, pa.string()), units.reason)),
        ("action", action),
    ]
    reason = pa.nulls(n, pa.string())
    field = pa.nulls(n, pa.string())
    for name, check in checks:
        if check is None or check.null_count == len(check):
            continue
        first = pc.and_(reason.is_null(), check.is_valid())
        reason = pc.if_else(first, check, reason)
        field = pc.if_else(first, pa.scalar(name), field)
    all_ok = reason.null_count == n

    release = constant(record["release_id"], n)
    table = pa.table({
        "release_id": release,
        "schema_version": constant(schema_version, n),
        "indicator": cols["indicator"],
        "ref_area": ref.value,
        "area_type": ref.area_type,
        "counterpart_area": counterpart.value,
        "counterpart_area_type": counterpart.area_type,
        "commodity": hs.code,
        "dimensions": dimensions_column(record["strings"], [(d["name"], d["values"]) for d in record.get("dimensions", ())], n),
        "freq": period.freq,
        "period": period.label,
        "period_start": period.start,
        "period_end": period.end,
        "value": units.value,
        "unit": units.unit,
        "unit_code": units.code,
        "unit_status": units.status,
        "currency": units.currency,
        "price_basis": units.price_basis,
        "base_year": units.base_year,
        "unit_denominator": units.denominator,
        "obs_status": cols["obs_status"],
        "published_at": constant(int(published_at.timestamp() * 1000), n, pa.timestamp("ms", tz="UTC")),
        DELETED: deleted,
    })
    if all_ok:
        return ChunkResult(table, REFUSED_SCHEMA.empty_table())
    ok = reason.is_null()
    refused = pa.table({
        "release_id": release.cast(pa.string()),
        "event_id": constant(record["event_id"], n).cast(pa.string()),
        "source_file": cols["source_file"].cast(pa.string()),
        "source_line": cols["source_line"],
        "field": field,
        "value": _field_values(cols, field),
        "reason": reason,
    }, schema=REFUSED_SCHEMA).filter(pc.invert(ok))
    return ChunkResult(table.filter(ok), refused)


def _actions(record: dict, n: int) -> tuple[pa.Array | None, pa.Array]:
    """(the refusal reason of each row's ACTION or None when all are good, whether each row is a D)."""
    if not len(record.get("action", ())):
        return None, pa.array(np.zeros(n, bool))
    letters = pc.utf8_trim_whitespace(wire_column(record["strings"], record["action"]).dictionary_decode())
    good = pc.or_(letters.is_null(), pc.is_in(letters, value_set=pa.array(ACTIONS)))     # absent: I
    reason = None if pc.all(good).as_py() else pc.if_else(good, pa.scalar(None, pa.string()), pa.scalar(BAD_ACTION))
    return reason, pc.fill_null(pc.equal(letters, "D"), False)


def with_all_columns(table: pa.Table) -> pa.Table:
    """`table` with every HARMONIZED_SCHEMA column, those it lacks (rows written before they existed) null,
    `dimensions` "" (no extra dimension)."""
    for f in HARMONIZED_SCHEMA:
        if f.name not in table.column_names:
            table = table.append_column(f.name, constant("", table.num_rows) if f.name == "dimensions"
                                        else pa.nulls(table.num_rows, f.type))
    return table


def as_output(table: pa.Table) -> pa.Table:
    """A harmonized table with plain string columns (exactly HARMONIZED_SCHEMA)."""
    return table.select(HARMONIZED_SCHEMA.names).cast(HARMONIZED_SCHEMA)


def _value_and_unit_checks(reason: pa.Array) -> list[tuple[str, pa.Array | None]]:
    """The units rule's reasons split by field: a value too large once rescaled names `value`, the rest `unit`."""
    if reason.null_count == len(reason):
        return [("unit", reason)]
    plain = reason.cast(pa.string())
    overflow = pc.equal(plain, pa.scalar(OVERFLOW))
    none = pa.scalar(None, pa.string())
    return [("value", pc.if_else(overflow, plain, none)), ("unit", pc.if_else(overflow, none, plain))]


def _field_values(cols: dict[str, pa.Array], field: pa.Array) -> pa.Array:
    """The published value of each row's failing field (null for good rows)."""
    out = pc.if_else(pc.equal(field, pa.scalar("value")), cols["value"].cast(pa.string()), pa.nulls(len(field), pa.string()))
    for name in ("indicator", "ref_area", "counterpart_area", "commodity", "period", "unit", "action"):
        if name in cols:
            out = pc.if_else(pc.equal(field, pa.scalar(name)), cols[name].cast(pa.string()), out)
    return out
