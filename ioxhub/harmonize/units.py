"""Units and multipliers -> one canonical unit per quantity; values rescaled to it; the kind of each unit.

A harmonized value is `value x 10^unit_mult x factor(unit)`, in the canonical unit of `unit`. Units are
resolved from code lists shipped in `ioxhub/data/units/` (Eurostat `unit`, SDMX `CL_UNIT_MEASURE`, UN/CEFACT
Rec 20, ISO 4217 via pycountry, the hub's spellings), with currency, price basis, base year and denominator
where the code says so. An unknown unit is not refused: status "unrecognized", unit kept as published.
Scalar: `canonical_unit(unit) -> UnitFactor`, `normalize_value(value, unit, unit_mult)`. Vectorized:
`canonical_unit_array(units)`, `normalize_values(values, units, unit_mult, translations)`. Kinds:
`unit_kind(canonical)`, `unit_kinds()`, `canonical_units()`. Code lists, statuses and why: docs/units.md.
"""
from __future__ import annotations

import csv
import functools
import math
import re
from importlib import resources
from types import MappingProxyType
from typing import Mapping, NamedTuple

import numpy as np
import pyarrow as pa
import pycountry

from ioxhub.harmonize.columns import DICT_STRING, ArrayLike, Codebook

MISSING = "missing-unit"
BAD_MULT = "bad-unit-mult"
OVERFLOW = "value-overflow"      # a value that does not fit a float64 once rescaled (e.g. 1e300 x 10^18)
MAX_UNIT_MULT = 18
_REASON_CODE = {None: 0, MISSING: 1, BAD_MULT: 3, OVERFLOW: 4}

RECOGNIZED, TRANSLATED, UNRECOGNIZED = "recognized", "translated", "unrecognized"   # unit_status values

# The code lists, in precedence order (the first file naming a code wins): ioxhub/data/units/README.md.
CODE_LIST_FILES = ("hub_spellings.csv", "ISO 4217", "eurostat_unit.csv", "sdmx_unit_measure.csv", "uncefact_rec20.csv")


class UnitFactor(NamedTuple):
    """A canonical unit and its factor to it, `10^exp10 x num / den`, with what the code says besides
    (status, currency, price basis, base year, denominator); or a reason."""

    unit: str | None
    exp10: int
    num: int
    den: int
    reason: str | None
    status: str | None = None
    currency: str | None = None
    price_basis: str | None = None
    base_year: int | None = None
    denominator: str | None = None
    code: str | None = None          # the unit as published (the text resolved)

    @property
    def reason_code(self) -> int:
        """0 = fine, 1 = missing (codes of the vectorized path)."""
        return _REASON_CODE[self.reason]


class UnitKind(NamedTuple):
    """What a canonical unit measures, and so how the derivations treat its values (docs/units.md)."""

    kind: str           # "flow": an amount per period | "level": a rate, duration, share or index
    aggregation: str    # over sub-periods (and breakdowns, flows only): "sum" | "mean"
    scale: str          # the scale policy effects are read on: "log" (proportional, %) | "level" (in the unit)


FLOW = UnitKind("flow", "sum", "log")
LEVEL = UnitKind("level", "mean", "level")

# One entry per canonical unit the code lists use; every ISO 4217 currency code is a flow too (money).
_KINDS: dict[str, UnitKind] = {
    "KG": FLOW, "USD": FLOW, "EUR": FLOW, "NUMBER": FLOW, "PERSONS": FLOW, "DOSES": FLOW, "TEU": FLOW,
    "XDC": FLOW, "PPS": FLOW, "LITRE": FLOW, "M3": FLOW, "KWH": FLOW, "TJ": FLOW, "TOE": FLOW,
    "HOURS": LEVEL, "PERCENT": LEVEL, "INDEX": LEVEL,
}
CURRENCY_KIND = FLOW

_SCALES: dict[str, int] = {
    **dict.fromkeys(("THOUSAND", "THOUSANDS", "'000", "000S", "1000", "1,000", "K", "TH"), 3),
    **dict.fromkeys(("MILLION", "MILLIONS", "MN", "MLN", "MIO", "1000000", "1,000,000"), 6),
    **dict.fromkeys(("BILLION", "BILLIONS", "BN", "BLN"), 9),
}
_NOISE = re.compile(r"[()\[\]]")


def _read_list(name: str) -> dict[str, UnitFactor]:
    """One shipped code list: code (upper case) -> UnitFactor (status recognized)."""
    text = resources.files("ioxhub").joinpath("data", "units", name).read_text(encoding="utf-8")
    out: dict[str, UnitFactor] = {}
    for row in csv.DictReader(text.splitlines()):
        out.setdefault(row["code"].strip().upper(), UnitFactor(
            row["unit"], int(row["exp10"]), int(row.get("num") or 1), int(row.get("den") or 1), None, RECOGNIZED,
            row.get("currency") or None, row.get("price_basis") or None,
            int(row["base_year"]) if row.get("base_year") else None, row.get("denominator") or None))
    return out


@functools.cache
def _code_lists() -> dict[str, dict[str, UnitFactor]]:
    """Every code list by name, in precedence order (ISO 4217 from pycountry)."""
    iso = {c.alpha_3: UnitFactor(c.alpha_3, 0, 1, 1, None, RECOGNIZED, c.alpha_3) for c in pycountry.currencies}
    return {name: iso if name == "ISO 4217" else _read_list(name) for name in CODE_LIST_FILES}


@functools.cache
def _base_units() -> dict[str, UnitFactor]:
    """Code or spelling -> factor, built once: the code lists merged, the first naming a code winning."""
    currencies = {c.alpha_3 for c in pycountry.currencies}
    units: dict[str, UnitFactor] = {}
    for codes in _code_lists().values():
        for code, factor in codes.items():
            if factor.currency is None and factor.unit in currencies:     # "US$": an amount in USD
                factor = factor._replace(currency=factor.unit)
            units.setdefault(code, factor)
    return units


@functools.cache
def canonical_units() -> frozenset[str]:
    """Every unit the harmonizer emits for a recognized code: the code lists' canonical units."""
    return frozenset(f.unit for f in _base_units().values())


@functools.cache
def unit_kinds() -> Mapping[str, UnitKind]:
    """Canonical unit -> its kind: the entries of `_KINDS` plus every ISO 4217 currency code (read-only)."""
    return MappingProxyType({**{c.alpha_3: CURRENCY_KIND for c in pycountry.currencies}, **_KINDS})


def unit_kind(unit: str | None) -> UnitKind | None:
    """The kind of a canonical unit ("KG", "HOURS", "CHF"...); None for anything else (a published
    spelling such as "T" or "DAYS" is not a canonical unit: harmonize it first; nor is an unrecognized one)."""
    return unit_kinds().get(unit) if unit is not None else None


def _words(unit: str) -> list[str]:
    return [w for w in _NOISE.sub(" ", unit.upper()).replace("_", " ").split() if w != "OF"]


@functools.lru_cache(maxsize=65536)
def canonical_unit(unit: str | None) -> UnitFactor:
    """One published unit -> UnitFactor: a code of the lists, else a spelling with an optional scale word
    ("thousand KG"), else status "unrecognized" with the unit as published (trimmed)."""
    words = _words(unit) if unit is not None else []
    if not words:
        return UnitFactor(None, 0, 1, 1, MISSING)
    base = _base_units()
    found = base.get(unit.strip().upper())
    if found is not None:
        return found._replace(code=unit)
    scale = 0
    if len(words) > 1 and words[0] in _SCALES:
        scale, words = _SCALES[words[0]], words[1:]
    elif len(words) > 1 and words[-1] in _SCALES:
        scale, words = _SCALES[words[-1]], words[:-1]
    found = base.get(" ".join(words))
    if found is None:
        return UnitFactor(unit.strip(), 0, 1, 1, None, UNRECOGNIZED, code=unit)
    return found._replace(exp10=found.exp10 + scale, code=unit)


def translation_problem(source: str, target: str) -> str | None:
    """Why a mapping's unit translation `source -> target` cannot be used (None when it can)."""
    if not source.strip():
        return "empty source code"
    if canonical_unit(target).status != RECOGNIZED:
        return f"target {target!r} is not a code of the unit code lists (docs/units.md)"
    return None


def _translated(unit: str | None, table: Mapping[str, str]) -> UnitFactor:
    if unit is not None and (target := table.get(unit.strip().upper())) is not None:
        factor = canonical_unit(target)
        if factor.status == RECOGNIZED:
            return factor._replace(status=TRANSLATED, code=unit)
    return canonical_unit(unit)


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
    """Vectorized `normalize_value`: value (float64, canonical unit), unit, reason, and the unit's details
    (status, currency, price_basis, denominator: dictionary strings; base_year: int16), null where refused;
    code: the unit as published (a dictionary of the distinct codes only)."""

    value: pa.Array
    unit: pa.Array
    reason: pa.Array
    status: pa.Array
    currency: pa.Array
    price_basis: pa.Array
    base_year: pa.Array
    denominator: pa.Array
    code: pa.Array

    @property
    def invalid(self) -> pa.BooleanArray:
        return self.reason.is_valid()


def canonical_unit_array(units: ArrayLike) -> UnitColumns:
    """A string or dictionary column of units -> UnitColumns (absent units: reason "missing-unit")."""
    rows = CODEBOOK.rows(units)
    return UnitColumns(unit=rows.strings("unit"), exp10=rows.plain("exp10").cast(pa.int16()),
                       num=rows.plain("num").cast(pa.int32()), den=rows.plain("den").cast(pa.int32()),
                       reason=rows.strings("reason"))


_REASONS = pa.array([MISSING, "", BAD_MULT, OVERFLOW], pa.string())  # dictionary of the reason column (code - 1)
_DETAILS = ("unit", "reason", "status", "currency", "price_basis", "denominator", "code")
_PLAIN = {"exp10": pa.int64(), "num": pa.float64(), "den": pa.float64(), "reason_code": pa.int8(), "base_year": pa.int16()}

CODEBOOK = Codebook(canonical_unit, strings=_DETAILS, plain=_PLAIN)


@functools.lru_cache(maxsize=64)
def _translating_codebook(translations: tuple[tuple[str, str], ...]) -> Codebook:
    """The codebook of one set of mapping translations (source code upper case -> canonical code)."""
    return Codebook(functools.partial(_translated, table=dict(translations)), strings=_DETAILS, plain=_PLAIN)


def codebook_for(translations: Mapping[str, str] | None) -> Codebook:
    """The shared codebook, or the one of these translations (`{source code: canonical code}`)."""
    if not translations:
        return CODEBOOK
    return _translating_codebook(tuple(sorted((k.strip().upper(), v) for k, v in translations.items())))


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


def _base_years(rows, refused: np.ndarray) -> pa.Array:
    years = rows.state.column("base_year")[0]
    if years.null_count == len(years) or not len(rows.ids):
        return pa.nulls(len(rows.ids), pa.int16())
    out = rows.plain("base_year")
    return pa.array(out.to_numpy(zero_copy_only=False), pa.int16(), mask=refused | out.is_null().to_numpy(zero_copy_only=False)) \
        if refused.any() else out


def normalize_values(values: pa.Array | pa.ChunkedArray | np.ndarray, units: ArrayLike,
                     unit_mult: pa.Array | np.ndarray | int = 0,
                     translations: Mapping[str, str] | None = None) -> NormalizedValues:
    """Rescale a value column to canonical units: `value x 10^unit_mult x factor(unit)`.

    `values`: float64 (nulls = missing values; a numpy array has none); `units`: string or dictionary
    column (null = absent); `unit_mult`: int column or one int for all; `translations`: a mapping's
    `units:` (source code -> canonical code). Units are resolved once per distinct value; the rest is numpy
    over the rows. The string columns are dictionary<int32, string>.
    """
    rows = codebook_for(translations).rows(units)
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
    refused = ~ok
    return NormalizedValues(
        value=pa.array(scaled, pa.float64(), mask=None if valid.all() else ~valid),
        unit=rows.strings("unit", null_where=refused),
        reason=reason,
        status=rows.strings("status", null_where=refused),
        currency=rows.strings("currency", null_where=refused),
        price_basis=rows.strings("price_basis", null_where=refused),
        base_year=_base_years(rows, refused),
        denominator=rows.strings("denominator", null_where=refused),
        code=rows.strings("code"),
    )
