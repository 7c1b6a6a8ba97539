"""Units and multipliers (ioxhub.harmonize.units)."""
from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pycountry
import pytest

from ioxhub.harmonize.units import (BAD_MULT, MISSING, RECOGNIZED, UNRECOGNIZED, canonical_unit, canonical_unit_array,
                                    normalize_value, normalize_values)


@pytest.mark.parametrize("unit, canonical, exp10, num, den", [
    ("KG", "KG", 0, 1, 1), ("kg", "KG", 0, 1, 1), ("kilogram", "KG", 0, 1, 1), ("KGM", "KG", 0, 1, 1),
    ("T", "KG", 3, 1, 1), ("tonnes", "KG", 3, 1, 1), ("TNE", "KG", 3, 1, 1), ("g", "KG", -3, 1, 1),
    ("thousand KG", "KG", 3, 1, 1), ("1000 KG", "KG", 3, 1, 1), ("KG thousands", "KG", 3, 1, 1),
    ("thousand tonnes", "KG", 6, 1, 1),
    ("USD", "USD", 0, 1, 1), ("usd", "USD", 0, 1, 1), ("US$", "USD", 0, 1, 1), ("thousand USD", "USD", 3, 1, 1),
    ("million USD", "USD", 6, 1, 1), ("USD million", "USD", 6, 1, 1), ("USD (millions)", "USD", 6, 1, 1),
    ("thousands of USD", "USD", 3, 1, 1), ("'000 USD", "USD", 3, 1, 1), ("USD_BN", "USD", 9, 1, 1),
    ("EUR", "EUR", 0, 1, 1), ("XDR", "XDR", 0, 1, 1),
    ("NUMBER", "NUMBER", 0, 1, 1), ("items", "NUMBER", 0, 1, 1), ("count", "NUMBER", 0, 1, 1),
    ("PURE_NUMB", "NUMBER", 0, 1, 1), ("thousand items", "NUMBER", 3, 1, 1),
    ("DOSES", "DOSES", 0, 1, 1), ("million doses", "DOSES", 6, 1, 1), ("passengers", "PERSONS", 0, 1, 1),
    ("HOURS", "HOURS", 0, 1, 1), ("h", "HOURS", 0, 1, 1), ("DAYS", "HOURS", 0, 24, 1),
    ("minutes", "HOURS", 0, 1, 60), ("PERCENT", "PERCENT", 0, 1, 1), ("%", "PERCENT", 0, 1, 1),
    ("PC", "PERCENT", 0, 1, 1), ("TEU", "TEU", 0, 1, 1), ("thousand TEU", "TEU", 3, 1, 1),
    ("index", "INDEX", 0, 1, 1),
])
def test_canonical_unit(unit, canonical, exp10, num, den):
    assert canonical_unit(unit)[:6] == (canonical, exp10, num, den, None, RECOGNIZED)


def test_every_iso_4217_code_is_its_own_unit():
    for currency in pycountry.currencies:
        assert canonical_unit(currency.alpha_3).unit == currency.alpha_3


@pytest.mark.parametrize("unit", ["xyz", "thousand", "thousand million", "KG USD", "lbs", "1000", " pallets "])
def test_unknown_unit_is_kept_as_published(unit):
    assert canonical_unit(unit).reason is None
    assert canonical_unit(unit).status == UNRECOGNIZED
    assert normalize_value(1.0, unit) == (1.0, unit.strip(), None)
    assert normalize_value(1.0, unit, 3) == (1000.0, unit.strip(), None)   # the multiplier still applies


@pytest.mark.parametrize("value, unit, mult, expected", [
    (1.5, "thousand KG", 0, (1500.0, "KG", None)),
    (1.5, "KG", 3, (1500.0, "KG", None)),
    (1500, "G", 0, (1.5, "KG", None)),
    (2.0, "T", 0, (2000.0, "KG", None)),
    (2.0, "DAYS", 0, (48.0, "HOURS", None)),
    (30.0, "MIN", 0, (0.5, "HOURS", None)),
    (1.2, "USD", 6, (1.2e6, "USD", None)),
    (1.2, "million USD", 0, (1.2e6, "USD", None)),
    (1234.0, "USD", -2, (12.34, "USD", None)),
    (7.0, "million USD", -3, (7000.0, "USD", None)),
    (12.5, "%", 0, (12.5, "PERCENT", None)),
    (None, "KG", 0, (None, "KG", None)),
    (None, None, 0, (None, None, None)),
    (3.0, None, 0, (None, None, MISSING)),
    (3.0, "KG", 19, (None, None, BAD_MULT)),
    (3.0, "KG", -19, (None, None, BAD_MULT)),
])
def test_normalize_value(value, unit, mult, expected):
    assert normalize_value(value, unit, mult) == expected


def test_negative_multipliers_divide_exactly():
    # 0.1 x 3 != 0.3 in floats; dividing by a power of ten is the correctly rounded result.
    for cents in range(0, 100000, 7):
        assert normalize_value(float(cents), "USD", -2)[0] == cents / 100


def _sample(n: int, seed: int):
    rng = random.Random(seed)
    units = [None, "KG", "kg", "thousand KG", "T", "G", "USD", "million USD", "EUR", "DAYS", "HOURS", "MIN",
             "%", "TEU", "items", "xyz", "lbs"]
    values = [None if rng.random() < 0.1 else rng.uniform(-1e6, 1e6) for _ in range(n)]
    unit = [rng.choice(units) for _ in range(n)]
    mult = [rng.choice([0, 0, 0, 3, 6, -2, -3, 20, -19]) for _ in range(n)]
    return values, unit, mult


@pytest.mark.parametrize("form", ["arrow", "numpy-dictionary", "wire"])
def test_vectorized_equals_scalar(form):
    values, unit, mult = _sample(20000, 13)
    unit_col = pa.array(unit, pa.string())
    if form == "arrow":
        result = normalize_values(pa.array(values, pa.float64()), unit_col, pa.array(mult, pa.int32()))
    elif form == "numpy-dictionary":
        present = np.array([v is not None for v in values])
        arr = pa.array(np.array([v if v is not None else 0.0 for v in values]), mask=~present)
        result = normalize_values(arr, unit_col.dictionary_encode(), np.array(mult))
    else:
        from ioxhub.harmonize.columns import wire_column
        strings = sorted({u for u in unit if u is not None})
        idx = [strings.index(u) if u is not None else -1 for u in unit]
        result = normalize_values(pa.array(values, pa.float64()), wire_column(strings, idx), np.array(mult, np.int32))
    expected = [normalize_value(v, u, m) for v, u, m in zip(values, unit, mult)]
    assert result.value.to_pylist() == [e[0] for e in expected]  # bit-identical floats
    assert result.unit.to_pylist() == [e[1] for e in expected]
    assert result.reason.to_pylist() == [e[2] for e in expected]
    assert result.invalid.to_pylist() == [e[2] is not None for e in expected]


def test_scalar_multiplier_and_numpy_values():
    result = normalize_values(np.array([1.0, 2.5]), pa.array(["thousand KG", "T"]), 1)
    assert result.value.to_pylist() == [10000.0, 25000.0]
    assert result.unit.to_pylist() == ["KG", "KG"]


def test_canonical_unit_array():
    units = ["KG", None, "xyz", "DAYS", "KG"]
    result = canonical_unit_array(pa.array(units).dictionary_encode())
    expected = [canonical_unit(u) for u in units]
    assert result.unit.to_pylist() == [e.unit for e in expected]
    assert result.exp10.to_pylist() == [e.exp10 for e in expected]
    assert result.num.to_pylist() == [e.num for e in expected]
    assert result.den.to_pylist() == [e.den for e in expected]
    assert result.reason.to_pylist() == [e.reason for e in expected]


def test_a_value_too_large_once_rescaled_is_refused_not_stored_as_infinity():
    from ioxhub.harmonize.units import OVERFLOW, normalize_value

    assert normalize_value(1e300, "KG", 18) == (None, None, OVERFLOW)
    out = normalize_values(pa.array([1e300, 2.0, -1e300]), pa.array(["KG", "KG", "thousand KG"]), np.array([18, 18, 10]))
    assert out.value.to_pylist() == [None, 2e18, None]
    assert out.reason.cast(pa.string()).to_pylist() == [OVERFLOW, None, OVERFLOW]
    assert out.unit.cast(pa.string()).to_pylist() == [None, "KG", None]
