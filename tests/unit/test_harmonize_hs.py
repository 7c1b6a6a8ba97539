"""Commodity codes -> HS 2022 (ioxhub.harmonize.hs)."""
from __future__ import annotations

import csv
import random
from importlib import resources

import pyarrow as pa
import pytest

from ioxhub.harmonize.hs import (TOTAL, UNKNOWN, HsCode, hs_description, hs_section, hs_section_array,
                                 normalize_hs, normalize_hs_array, section_name)


def _rows() -> list[dict[str, str]]:
    with (resources.files("ioxhub") / "data" / "hs" / "harmonized-system.csv").open(encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


ROWS = _rows()
CODES = [r["hscode"] for r in ROWS if r["hscode"] != TOTAL]


def test_every_listed_code_normalizes_to_itself():
    assert len(CODES) > 6900
    for row in ROWS:
        code = row["hscode"]
        if code == TOTAL:
            continue
        assert normalize_hs(code) == HsCode(code, len(code), code[:2], None), code
        assert len(code) == int(row["level"])


@pytest.mark.parametrize("value, code", [
    ("0101.21", "010121"), ("8471.30.00", "847130"), ("8471.30", "847130"), ("84713000", "847130"),
    ("8471300090", "847130"), (10121, "010121"), ("10121", "010121"), ("101", "0101"), ("1", "01"),
    ("1012100", "010121"), (" 0101 21 ", "010121"), ("01", "01"), ("0101", "0101"), ("99", "99"),
    ("999999", "999999"),
])
def test_normalization(value, code):
    result = normalize_hs(value)
    assert result == HsCode(code, len(code), code[:2], None)


@pytest.mark.parametrize("value", ["TOTAL", "total", "_T", " Total "])
def test_total(value):
    assert normalize_hs(value) == HsCode(TOTAL, 0, None, None)


def _absent_codes() -> list[str]:
    listed = set(CODES)
    return [c for c in ("0000", "000000", "98", "9800", "010100", "847199", "0106") if c not in listed]


@pytest.mark.parametrize("value", ["abc", "84a1", "8471-30", "10121.0", "٠١٠١", "+0101", *_absent_codes()])
def test_unknown(value):
    assert normalize_hs(value) == HsCode(None, None, None, UNKNOWN)


def test_absent_codes_really_are_absent_from_the_list():
    assert len(_absent_codes()) >= 5


@pytest.mark.parametrize("value", [None, "", "  "])
def test_absent(value):
    assert normalize_hs(value) == HsCode(None, None, None, None)


def test_lookups():
    assert hs_section("847130") == "XVI"
    assert hs_section("01") == "I"
    assert hs_section(TOTAL) == "TOTAL"
    assert hs_section("000000") is None and hs_section(None) is None
    assert hs_description("0101").startswith("Horses, asses, mules and hinnies")
    assert hs_description("nope") is None
    assert section_name("XVI").startswith("Machinery and mechanical appliances")
    assert section_name("XXII") is None
    assert hs_section_array(pa.array(["847130", None, "x", "01"])).to_pylist() == ["XVI", None, None, "I"]


def test_sections_follow_the_list():
    by_code = {r["hscode"]: r["section"] for r in ROWS}
    sample = random.Random(3).sample(CODES, 500)
    assert hs_section_array(pa.array(sample)).to_pylist() == [by_code[c] for c in sample]
    assert [hs_section(c) for c in sample] == [by_code[c] for c in sample]


@pytest.mark.parametrize("dictionary", [False, True])
def test_vectorized_equals_scalar(dictionary):
    rng = random.Random(5)
    pool = rng.sample(CODES, 300) + [None, "", "abc", "10121", "8471.30.00", "TOTAL", "000000", "1"]
    pool += [c[:4] + "." + c[4:] for c in rng.sample(CODES, 50)]
    pool += [c.lstrip("0") for c in rng.sample(CODES, 50)]
    values = [rng.choice(pool) for _ in range(5000)]
    column = pa.array(values, pa.string())
    result = normalize_hs_array(column.dictionary_encode() if dictionary else column)
    expected = [normalize_hs(v) for v in values]
    assert result.code.to_pylist() == [e.code for e in expected]
    assert result.level.to_pylist() == [e.level for e in expected]
    assert result.chapter.to_pylist() == [e.chapter for e in expected]
    assert result.reason.to_pylist() == [e.reason for e in expected]
    assert result.level.type == pa.int8()
    assert result.invalid.to_pylist() == [e.reason is not None for e in expected]
