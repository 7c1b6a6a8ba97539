"""Units and multipliers -> one canonical unit per quantity; values rescaled to it; the kind of each unit.

A harmonized value is `value x 10^unit_mult x factor(unit)`, in the canonical unit of `unit`.
Scalar: `canonical_unit(unit) -> UnitFactor`, `normalize_value(value, unit, unit_mult) -> (value, unit,
reason)`. Vectorized: `canonical_unit_array(units) -> UnitColumns`, `normalize_values(values, units,
unit_mult) -> NormalizedValues`. Kinds (flow: summed, log scale; level: averaged, level scale):
`unit_kind(canonical) -> UnitKind | None`, `unit_kinds()`, `canonical_units()`. Table and why: docs/units.md.
"""
from __future__ import annotations

import functools
import math
import re
from types import MappingProxyType
from typing import Mapping, NamedTuple

import numpy as np
import pyarrow as pa
import pycountry

from ioxhub.harmonize.columns import DICT_STRING, ArrayLike, Codebook

UNKNOWN = "unknown-unit"
MISSING = "missing-unit"
BAD_MULT = "bad-unit-mult"
OVERFLOW = "value-overflow"      # a value that does not fit a float64 once rescaled (e.g. 1e300 x 10^18)
MAX_UNIT_MULT = 18
_REASON_CODE = {None: 0, MISSING: 1, UNKNOWN: 2, BAD_MULT: 3, OVERFLOW: 4}


class UnitFactor(NamedTuple):
    """A canonical unit and its factor to it, `10^exp10 x num / den`; or a reason."""

    unit: str | None
    exp10: int
    num: int
    den: int
    reason: str | None

    @property
    def reason_code(self) -> int:
        """0 = fine, 1 = missing, 2 = unknown (codes of the vectorized path)."""
        return _REASON_CODE[self.reason]


# canonical unit, 10^exp10, num, den  <- accepted spellings (docs/units.md)
_TABLE: list[tuple[str, int, int, int, tuple[str, ...]]] = [
    ("KG", 0, 1, 1, ("KG", "KGM", "KILOGRAM", "KILOGRAMS", "KILO", "KILOS")),
    ("KG", 3, 1, 1, ("T", "TNE", "TONNE", "TONNES", "METRIC TON", "METRIC TONS", "MT")),
    ("KG", -3, 1, 1, ("G", "GRM", "GRAM", "GRAMS")),
    ("USD", 0, 1, 1, ("US$", "US DOLLAR", "US DOLLARS", "DOLLAR", "DOLLARS")),
    ("EUR", 0, 1, 1, ("EURO", "EUROS")),
    ("NUMBER", 0, 1, 1, ("NUMBER", "NR", "NO", "NUM", "COUNT", "ITEM", "ITEMS", "UNIT", "UNITS",
                         "PIECE", "PIECES", "PCS", "C62", "PURE NUMB")),
    ("PERSONS", 0, 1, 1, ("PERSON", "PERSONS", "PEOPLE", "PAX", "PASSENGER", "PASSENGERS")),
    ("DOSES", 0, 1, 1, ("DOSE", "DOSES")),
    ("HOURS", 0, 1, 1, ("HOUR", "HOURS", "H", "HR", "HRS", "HUR")),
    ("HOURS", 0, 24, 1, ("DAY", "DAYS", "D")),
    ("HOURS", 0, 1, 60, ("MINUTE", "MINUTES", "MIN", "MINS")),
    ("PERCENT", 0, 1, 1, ("PERCENT", "PER CENT", "PC", "PCT", "%")),
    ("TEU", 0, 1, 1, ("TEU", "TEUS", "TWENTY-FOOT EQUIVALENT UNIT", "TWENTY-FOOT EQUIVALENT UNITS")),
    ("INDEX", 0, 1, 1, ("INDEX", "IX", "IDX")),
]


class UnitKind(NamedTuple):
    """What a canonical unit measures, and so how the derivations treat its values (docs/units.md)."""

    kind: str           # "flow": an amount per period | "level": a rate, duration, share or index
    aggregation: str    # over sub-periods (and breakdowns, flows only): "sum" | "mean"
    scale: str          # the scale policy effects are read on: "log" (proportional, %) | "level" (in the unit)


FLOW = UnitKind("flow", "sum", "log")
LEVEL = UnitKind("level", "mean", "level")

# One entry per canonical unit of _TABLE; every ISO 4217 currency code is a flow too (an amount of money).
_KINDS: dict[str, UnitKind] = {
    "KG": FLOW, "USD": FLOW, "EUR": FLOW, "NUMBER": FLOW, "PERSONS": FLOW, "DOSES": FLOW, "TEU": FLOW,
    "HOURS": LEVEL, "PERCENT": LEVEL, "INDEX": LEVEL,
}
CURRENCY_KIND = FLOW

_SCALES: dict[str, int] = {
    **dict.fromkeys(("THOUSAND", "THOUSANDS", "'000", "000S", "1000", "1,000", "K", "TH"), 3),
    **dict.fromkeys(("MILLION", "MILLIONS", "MN", "MLN", "MIO", "1000000", "1,000,000"), 6),
    **dict.fromkeys(("BILLION", "BILLIONS", "BN", "BLN"), 9),
}
_NOISE = re.compile(r"[()\[\]]")


@functools.cache
def _base_units() -> dict[str, UnitFactor]:
    """Spelling -> factor, built once: the table above plus every ISO 4217 currency code."""
    units = {c.alpha_3: UnitFactor(c.alpha_3, 0, 1, 1, None) for c in pycountry.currencies}
    for canonical, exp10, num, den, spellings in _TABLE:
        for s in spellings:
            units[s] = UnitFactor(canonical, exp10, num, den, None)
    return units


@functools.cache
def canonical_units() -> frozenset[str]:
    """Every unit the harmonizer can emit: the canonical units of the table and the ISO 4217 codes."""
    return frozenset(f.unit for f in _base_units().values())


@functools.cache
def unit_kinds() -> Mapping[str, UnitKind]:
    """Canonical unit -> its kind: the entries of `_KINDS` plus every ISO 4217 currency code (read-only)."""
    return MappingProxyType({**{c.alpha_3: CURRENCY_KIND for c in pycountry.currencies}, **_KINDS})


def unit_kind(unit: str | None) -> UnitKind | None:
    """The kind of a canonical unit ("KG", "HOURS", "CHF"...); None for anything else (a published
    spelling such as "T" or "DAYS" is not a canonical unit: harmonize it first)."""
    return unit_kinds().get(unit) if unit is not None else None


def _words(unit: str) -> list[str]:
    return [w for w in _NOISE.sub(" ", unit.upper()).replace("_", " ").split() if w != "OF"]


@functools.lru_cache(maxsize=65536)
def canonical_unit(unit: str | None) -> UnitFactor:
    """One published unit -> UnitFactor(canonical unit, exp10, num, den, reason)."""
    words = _words(unit) if unit is not None else []
    if not words:
        return UnitFactor(None, 0, 1, 1, MISSING)
    base = _base_units()
    scale = 0
    if len(words) > 1 and words[0] in _SCALES:
        scale, words = _SCALES[words[0]], words[1:]
    elif len(words) > 1 and words[-1] in _SCALES:
        scale, words = _SCALES[words[-1]], words[:-1]
    found = base.get(" ".join(words))
    if found is None:
        return UnitFactor(None, 0, 1, 1, UNKNOWN)
    return found._replace(exp10=found.exp10 + scale)


def _scale(value: float, exp10: int, num: int, den: int) -> float:
    # The same float operations, in the same order, as the numpy path in normalize_values.
    scaled = value * 10.0 ** exp10 if exp10 >= 0 else value / 10.0 ** -exp10
    return scaled * num / den


def normalize_value(value: float | None, unit: str | None, unit_mult: int = 0
                    ) -> tuple[float | None, str | None, str | None]:
    """One observation -> (value in the canonical unit, canonical unit, reason); see the docstring."""
    factor = canonical_unit(unit)
    if factor.reason == MISSING and value is None:
        return None, None, None
    if factor.reason is not None:
        return None, None, factor.reason
    if not -MAX_UNIT_MULT <= unit_mult <= MAX_UNIT_MULT:
        return None, None, BAD_MULT
    if value is None:
        return None, factor.unit, None
    scaled = _scale(float(value), factor.exp10 + unit_mult, factor.num, factor.den)
    if not math.isfinite(scaled):
        return None, None, OVERFLOW
    return scaled, factor.unit, None


class UnitColumns(NamedTuple):
    """Vectorized `canonical_unit`: unit, exp10 (int16), num and den (int32), reason (strings: dictionary)."""

    unit: pa.Array
    exp10: pa.Array
    num: pa.Array
    den: pa.Array
    reason: pa.Array


class NormalizedValues(NamedTuple):
    """Vectorized `normalize_value`: value (float64, canonical unit), unit, reason (strings: dictionary)."""

    value: pa.Array
    unit: pa.Array
    reason: pa.Array

    @property
    def invalid(self) -> pa.BooleanArray:
        return self.reason.is_valid()


def canonical_unit_array(units: ArrayLike) -> UnitColumns:
    """A string or dictionary column of units -> UnitColumns (absent units: reason "missing-unit")."""
    rows = CODEBOOK.rows(units)
    return UnitColumns(unit=rows.strings("unit"), exp10=rows.plain("exp10").cast(pa.int16()),
                       num=rows.plain("num").cast(pa.int32()), den=rows.plain("den").cast(pa.int32()),
                       reason=rows.strings("reason"))


_REASONS = pa.array([MISSING, UNKNOWN, BAD_MULT, OVERFLOW], pa.string())  # dictionary of the reason column (code - 1)


CODEBOOK = Codebook(canonical_unit, strings=("unit", "reason"),
                    plain={"exp10": pa.int64(), "num": pa.float64(), "den": pa.float64(), "reason_code": pa.int8()})


def _float_column(values: pa.Array | pa.ChunkedArray | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with 0.0 where missing, present mask)."""
    if isinstance(values, np.ndarray):
        v = values.astype(np.float64, copy=False)
        return v, np.ones(len(v), bool)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(pa.float64())
    if values.null_count == 0:
        return values.to_numpy(), np.ones(len(values), bool)
    return values.fill_null(0.0).to_numpy(), values.is_valid().to_numpy(zero_copy_only=False)


def normalize_values(values: pa.Array | pa.ChunkedArray | np.ndarray, units: ArrayLike,
                     unit_mult: pa.Array | np.ndarray | int = 0) -> NormalizedValues:
    """Rescale a value column to canonical units: `value x 10^unit_mult x factor(unit)`.

    `values`: float64 (nulls = missing values; a numpy array has none); `units`: string or dictionary
    column (null = absent); `unit_mult`: int column or one int for all. Units are resolved once per
    distinct value; the rest is numpy over the rows. The unit and reason columns are dictionary<int32,
    string>.
    """
    rows = CODEBOOK.rows(units)
    v, present = _float_column(values)
    if isinstance(unit_mult, (pa.Array, pa.ChunkedArray)):
        unit_mult = unit_mult.fill_null(0).to_numpy()
    mult = np.broadcast_to(np.asarray(unit_mult, dtype=np.int64), v.shape)

    code = rows.numbers("reason_code")
    nothing = (code == 1) & ~present  # an absent unit on a missing value: nothing to harmonize
    code[nothing] = 0
    code[(code == 0) & ~nothing & (np.abs(mult) > MAX_UNIT_MULT)] = 3
    ok = code == 0

    # The same float operations as the scalar `_scale`; steps that are exact no-ops are skipped.
    e = np.clip(rows.numbers("exp10") + mult, -40, 40)
    scaled = v
    with np.errstate(over="ignore", invalid="ignore"):
        if e.any():
            power = 10.0 ** np.abs(e)
            scaled = np.where(e >= 0, v * power, v / power)
        num, den = rows.numbers("num"), rows.numbers("den")
        if (num != 1).any() or (den != 1).any():
            scaled = scaled * num / den
    overflow = ok & present & ~np.isfinite(scaled)
    if overflow.any():
        code[overflow] = _REASON_CODE[OVERFLOW]
        ok = code == 0
    valid = ok & present
    if code.any():
        reason = pa.DictionaryArray.from_arrays(pa.array(code.astype(np.int32) - 1, pa.int32(), mask=ok), _REASONS)
    else:
        reason = pa.nulls(len(code), DICT_STRING)
    return NormalizedValues(
        value=pa.array(scaled, pa.float64(), mask=None if valid.all() else ~valid),
        unit=rows.strings("unit", null_where=~ok),
        reason=reason,
    )
