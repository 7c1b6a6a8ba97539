"""Validate source batches into observation columns, vectorized; bad rows become rejects.

`validate_batch(batch, mapping, file)` -> `Validated` (the good rows as dictionary-encoded `Observations`,
their extra dimensions and ACTION included; the rejects, their count); `check_constants(mapping)` checks a
mapping's constants and defaults once, up front. Each rule runs on the unique values of a column and
reaches the rows by one numpy gather. The rules and their reasons (those of ingest): docs/publishing.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ioxhub.harmonize import countries, hs, periods, units
from producers import rejects
from producers.mapping import STRING_FIELDS, ColumnMapping, MappingError, Source, is_hs
from producers.readers.base import SourceBatch

NOT_A_NUMBER = "not-a-number"
BAD_UNIT_MULT = "bad-unit-mult"
BAD_ACTION = "bad-action"
ACTIONS = ("I", "A", "R", "D")          # SDMX-CSV ACTION: information (merge), append, replace, delete
REQUIRED_TEXT = ("indicator", "ref_area", "period")
_NUMBER = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


@dataclass
class DictColumn:
    """A text column as the wire wants it: a dictionary of strings and int32 indexes (-1 = absent)."""

    dictionary: pa.Array        # string
    indices: np.ndarray         # int32

    def take(self, rows: np.ndarray) -> "DictColumn":
        return DictColumn(self.dictionary, self.indices[rows])

    def slice(self, start: int, stop: int) -> "DictColumn":
        return DictColumn(self.dictionary, self.indices[start:stop])


@dataclass
class Observations:
    """Validated observations of one file (a run of its rows), columnar."""

    file: str
    text: dict[str, DictColumn]         # the STRING_FIELDS
    attributes: dict[str, DictColumn]
    value: np.ndarray                   # float64, 0.0 where missing
    missing: np.ndarray                 # bool
    unit_mult: np.ndarray               # int32
    lines: np.ndarray                   # int64
    dimensions: dict[str, DictColumn] = field(default_factory=dict)    # extra dimensions, by name
    action: DictColumn | None = None    # SDMX ACTION (I, A, R, D; absent = I), None without an ACTION column

    def __len__(self) -> int:
        return len(self.lines)

    def slice(self, start: int, stop: int) -> "Observations":
        return Observations(self.file, {k: c.slice(start, stop) for k, c in self.text.items()},
                            {k: c.slice(start, stop) for k, c in self.attributes.items()},
                            self.value[start:stop], self.missing[start:stop], self.unit_mult[start:stop],
                            self.lines[start:stop], {k: c.slice(start, stop) for k, c in self.dimensions.items()},
                            self.action.slice(start, stop) if self.action is not None else None)


@dataclass
class Validated:
    observations: Observations
    rejects: pa.Table | None
    rejected_rows: int


# ---------------------------------------------------------------------------------------- unique-value rules
def _area_reasons(values: pa.Array) -> pa.Array:
    return countries.to_area_array(values).reason


def _hs_reasons(values: pa.Array) -> pa.Array:
    return hs.normalize_hs_array(values).reason


def _period_reasons(values: pa.Array) -> pa.Array:
    return periods.parse_period_array(values).reason


def _action_reasons(values: pa.Array) -> pa.Array:
    ok = pc.fill_null(pc.is_in(pc.utf8_trim_whitespace(values), value_set=pa.array(ACTIONS)), False)
    return pc.if_else(ok, pa.scalar(None, pa.string()), pa.scalar(BAD_ACTION))


def commodity_rule(classification: str | None) -> Callable[[pa.Array], pa.Array]:
    """The commodity rule of a classification: HS 2022 codes checked against the list, the HS editions
    whose list is not shipped by their shape only (`hs.normalize_hs_array`)."""
    if classification is None or not is_hs(classification):
        return _hs_reasons
    return lambda values: hs.normalize_hs_array(values, classification).reason


RULES: dict[str, Callable[[pa.Array], pa.Array]] = {
    "ref_area": _area_reasons,
    "counterpart_area": _area_reasons,
    "commodity": _hs_reasons,
    "period": _period_reasons,
}


def _unit_mult_of(text: str) -> int | None:
    try:
        number = float(text)
    except ValueError:
        return None
    if not number.is_integer() or abs(number) > units.MAX_UNIT_MULT:
        return None
    return int(number)


def check_constants(mapping: ColumnMapping) -> None:
    """Refuse a mapping whose constants or defaults would fail validation on every row."""
    checks = [(f"--const {k}" if mapping.origin.startswith("--") else f"{k}: {{const}}", k, s.const)
              for k, s in mapping.fields.items() if s.const is not None]
    checks += [(f"defaults.{k}", k, v) for k, v in mapping.defaults.items()]
    for where, name, value in checks:
        if name == "value":
            if pc.match_substring_regex(pa.array([value]), _NUMBER)[0].as_py() is False:
                raise MappingError(f"{mapping.origin}: {where} = {value!r} is not a number")
        elif name == "unit_mult":
            if _unit_mult_of(value) is None:
                raise MappingError(f"{mapping.origin}: {where} = {value!r} is not an integer in -18..18")
        elif name in RULES:
            reason = RULES[name](pa.array([value], pa.string()))[0].as_py()
            if reason is not None:
                raise MappingError(f"{mapping.origin}: {where} = {value!r} is refused: {reason}")


# ------------------------------------------------------------------------------------------------ columns
def _dict_column(table: pa.Table, source: Source | None, n: int, default: str | None) -> DictColumn:
    """A mapped text column (or constant) as a DictColumn with blanks as absent and the default filled."""
    if source is None:
        base = DictColumn(pa.array([], pa.string()), np.full(n, -1, dtype=np.int32))
    elif source.const is not None:
        return DictColumn(pa.array([source.const], pa.string()), np.zeros(n, dtype=np.int32))
    else:
        col = table[source.column]
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if not pa.types.is_dictionary(col.type):
            col = pc.dictionary_encode(col.cast(pa.string()) if not pa.types.is_string(col.type) else col)
        dictionary = col.dictionary
        if not pa.types.is_string(dictionary.type):
            dictionary = dictionary.cast(pa.string())
        indices = _indices(col.indices)
        blank = pc.equal(pc.utf8_trim_whitespace(dictionary), "").to_numpy(zero_copy_only=False)
        if blank.any():
            drop = np.flatnonzero(blank)
            indices = np.where(np.isin(indices, drop), -1, indices).astype(np.int32)
        base = DictColumn(dictionary, indices)
    if default is not None:
        absent = base.indices < 0
        if absent.any():
            position = len(base.dictionary)
            base = DictColumn(pa.concat_arrays([base.dictionary, pa.array([default], pa.string())]),
                              np.where(absent, position, base.indices).astype(np.int32))
    return base


def _indices(indices: pa.Array) -> np.ndarray:
    """Dictionary indexes as a writable int32 numpy array, -1 where null."""
    out = indices.cast(pa.int32()) if indices.type != pa.int32() else indices
    if out.null_count == 0:
        return out.to_numpy(zero_copy_only=False).copy() if out.offset else np.array(out.to_numpy(), copy=True)
    values = np.frombuffer(out.buffers()[1], dtype=np.int32, count=len(out) + out.offset)[out.offset:].copy()
    values[out.is_null().to_numpy(zero_copy_only=False)] = -1
    return values


def _values(table: pa.Table, source: Source, n: int, nan_is_missing: bool
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array | None]:
    """(value float64 with 0.0 where missing, missing mask, bad mask, the source text where bad)."""
    if source.const is not None:
        return np.full(n, float(source.const)), np.zeros(n, bool), np.zeros(n, bool), None
    col = table[source.column]
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        values = col.cast(pa.float64())
        missing = values.is_null().to_numpy(zero_copy_only=False)
        v = values.fill_null(0.0).to_numpy(zero_copy_only=False)
        finite = np.isfinite(v)
        if finite.all():
            return v, missing, np.zeros(n, bool), None
        nan = np.isnan(v)
        if nan_is_missing:
            missing |= nan
        bad = ~finite & ~missing
        v = np.where(finite, v, 0.0)
        return v, missing, bad, pc.cast(values, pa.string())
    text = col.cast(pa.string()) if not pa.types.is_string(col.type) else col
    stripped = pc.utf8_trim_whitespace(text)
    missing = pc.fill_null(pc.equal(stripped, ""), True)
    if nan_is_missing:
        missing = pc.fill_null(pc.or_(missing, pc.equal(pc.ascii_upper(stripped), "NAN")), True)
    numeric = pc.fill_null(pc.match_substring_regex(stripped, _NUMBER), False)
    missing_np = missing.to_numpy(zero_copy_only=False)
    bad = ~numeric.to_numpy(zero_copy_only=False) & ~missing_np
    v = pc.if_else(numeric, stripped, pa.scalar("0")).cast(pa.float64()).to_numpy(zero_copy_only=False)
    finite = np.isfinite(v)          # 1e999 parses, as inf
    bad |= ~finite & ~missing_np
    v = np.where(numeric.to_numpy(zero_copy_only=False) & finite, v, 0.0)
    return v, missing_np, bad, text


def _unit_mults(table: pa.Table, source: Source | None, n: int, default: str | None
                ) -> tuple[np.ndarray, np.ndarray, DictColumn | None]:
    col = _dict_column(table, source, n, default)
    parsed = [_unit_mult_of(v) for v in col.dictionary.to_pylist()]   # unique values only
    ok = np.array([p is not None for p in parsed] + [True], dtype=bool)
    lookup = np.array([p or 0 for p in parsed] + [0], dtype=np.int32)
    idx = np.where(col.indices < 0, len(parsed), col.indices)
    return lookup[idx], ~ok[idx], col


# ------------------------------------------------------------------------------------------------ validate
def validate_batch(batch: SourceBatch, mapping: ColumnMapping, file: str, *, nan_is_missing: bool = False) -> Validated:
    """Check one batch against the rules above: (good observations, rejects, rejected row count)."""
    table, lines = batch.table, batch.lines
    n = table.num_rows
    found: list[pa.Table] = [batch.rejects] if batch.rejects is not None and batch.rejects.num_rows else []
    bad_any = np.zeros(n, dtype=bool)

    def refuse(name: str, bad: np.ndarray, values: pa.Array | DictColumn, reason: str | np.ndarray) -> None:
        rows = np.flatnonzero(bad)
        if not len(rows):
            return
        bad_any[rows] = True
        if isinstance(values, DictColumn):
            idx = values.indices[rows]
            shown = pc.take(values.dictionary, pa.array(idx, pa.int32(), mask=idx < 0))
        else:
            shown = pc.take(values, pa.array(rows))
        why = reason if isinstance(reason, str) else pa.array(reason[rows], pa.string())
        found.append(rejects.make(file, lines[rows], name, shown, why))

    def check_rule(name: str, col: DictColumn, rule: Callable[[pa.Array], pa.Array]) -> None:
        reasons = rule(col.dictionary)
        has = reasons.is_valid().to_numpy(zero_copy_only=False)
        if has.any():
            present = col.indices >= 0
            bad = np.zeros(n, dtype=bool)
            bad[present] = has[col.indices[present]]
            reason_of = np.asarray(reasons.to_pylist(), dtype=object)
            per_row = np.empty(n, dtype=object)
            per_row[bad] = reason_of[col.indices[bad]]
            refuse(name, bad, col, per_row)

    text: dict[str, DictColumn] = {}
    for name in STRING_FIELDS:
        col = _dict_column(table, mapping.fields.get(name), n, mapping.defaults.get(name))
        text[name] = col
        if name in REQUIRED_TEXT:
            refuse(name, col.indices < 0, col, "missing-" + name.replace("_", "-"))
        rule = commodity_rule(mapping.commodity_classification) if name == "commodity" else RULES.get(name)
        if rule is not None and len(col.dictionary):
            check_rule(name, col, rule)

    value, missing, bad_value, value_text = _values(table, mapping.fields["value"], n, nan_is_missing)
    if bad_value.any():
        refuse("value", bad_value, value_text, NOT_A_NUMBER)

    unit_mult, bad_mult, mult_col = _unit_mults(table, mapping.fields.get("unit_mult"), n, mapping.defaults.get("unit_mult"))
    if bad_mult.any():
        refuse("unit_mult", bad_mult, mult_col, BAD_UNIT_MULT)

    attributes = {name: _dict_column(table, src, n, None) for name, src in mapping.attributes.items()}
    dimensions = {name: _dict_column(table, Source(column=column), n, None)
                  for name, column in mapping.extra_dimensions.items()}
    action = None
    if mapping.action is not None:
        action = _dict_column(table, Source(column=mapping.action), n, None)
        if len(action.dictionary):
            check_rule("action", action, _action_reasons)
    observations = Observations(file, text, attributes, value, missing, unit_mult, lines, dimensions, action)
    rejected = int(bad_any.sum()) + (batch.rejects.num_rows if batch.rejects is not None else 0)
    if bad_any.any():
        keep = np.flatnonzero(~bad_any)
        observations = Observations(
            file, {k: c.take(keep) for k, c in text.items()}, {k: c.take(keep) for k, c in attributes.items()},
            value[keep], missing[keep], unit_mult[keep], lines[keep], {k: c.take(keep) for k, c in dimensions.items()},
            action.take(keep) if action is not None else None)
    table_out = pa.concat_tables(found) if found else None
    if table_out is not None and table_out.num_rows > 1:
        table_out = table_out.sort_by([("line", "ascending")])
    return Validated(observations, table_out, rejected)
