"""Reference areas -> ISO 3166 alpha-3 (ioxhub.harmonize.countries)."""
from __future__ import annotations

import random

import pyarrow as pa
import pycountry
import pytest

from ioxhub.harmonize.columns import wire_column
from ioxhub.harmonize.countries import (AGGREGATE, UNKNOWN, VARIANTS, _read_areas, harmonize_country, to_iso3,
                                        to_iso3_array)

COUNTRIES = list(pycountry.countries)


@pytest.mark.parametrize("country", COUNTRIES, ids=lambda c: c.alpha_3)
def test_every_iso_country_resolves_from_its_codes_and_names(country):
    spellings = [country.alpha_2, country.alpha_3, country.numeric, str(int(country.numeric)),
                 country.alpha_3.lower(), f"  {country.alpha_2.lower()} "]
    spellings += [n for a in ("name", "official_name", "common_name") if (n := getattr(country, a, None))]
    spellings += [s.upper() for s in spellings]
    for s in spellings:
        assert harmonize_country(s) == (country.alpha_3, None), s


@pytest.mark.parametrize("value, iso3", [
    ("Viet Nam", "VNM"), ("Vietnam", "VNM"), ("Korea, Republic of", "KOR"), ("South Korea", "KOR"),
    ("Republic of Korea", "KOR"), ("Rep. of Korea", "KOR"), ("Korea, Dem. People's Rep.", "PRK"),
    ("Türkiye", "TUR"), ("Turkey", "TUR"), ("TURKIYE", "TUR"), ("Côte d'Ivoire", "CIV"),
    ("COTE D IVOIRE", "CIV"), ("cote d’ivoire", "CIV"), ("Ivory Coast", "CIV"),
    ("Bolivia (Plurinational State of)", "BOL"), ("St. Lucia", "LCA"), ("Saint Kitts & Nevis", "KNA"),
    ("Congo, Dem. Rep.", "COD"), ("Democratic Republic of the Congo", "COD"), ("Congo", "COG"),
    ("Curacao", "CUW"), ("Réunion", "REU"), ("Virgin Islands, U.S.", "VIR"), ("Chinese Taipei", "TWN"),
    ("UK", "GBR"), ("EL", "GRC"), ("USA", "USA"), ("United States of America", "USA"), ("04", "AFG"),
    (4, "AFG"), ("Kosovo", "XKX"), ("XK", "XKX"), ("Gambia, The", "GMB"),
])
def test_variants_case_diacritics_and_word_order(value, iso3):
    assert harmonize_country(value) == (iso3, None)
    assert to_iso3(value) == iso3


def test_variant_table_entries_all_resolve_to_their_target():
    for variant, iso3 in VARIANTS.items():
        assert to_iso3(variant) == iso3, variant
        assert to_iso3(variant.lower()) == iso3, variant


@pytest.mark.parametrize("value", ["W00", "WLD", "World", "0", "000", "EU27_2020", "European Union",
                                   "euro area", "OECD"])
def test_aggregates_are_not_countries(value):
    assert harmonize_country(value) == (None, AGGREGATE)


def test_groupings_and_regions_resolve_to_no_country():
    for row in _read_areas("groupings.csv") + _read_areas("m49_regions.csv"):
        assert harmonize_country(row["code"]) == (None, AGGREGATE), row["code"]


@pytest.mark.parametrize("value", ["Atlantis", "ZZ", "ZZZ", "999", "1000", "ANT", "SCG", "Korea Republic Of Atlantis",
                                   "??", "V1etnam"])
def test_unknown(value):
    assert harmonize_country(value) == (None, UNKNOWN)
    assert to_iso3(value) is None


@pytest.mark.parametrize("value", [None, "", "   "])
def test_absent_is_null_without_reason(value):
    assert harmonize_country(value) == (None, None)


def test_sample_feed_spellings_resolve():
    samples = pytest.importorskip("producers.samples.countries",
                                  reason="the SAMPLES helper's country module is not there yet")
    for style in samples.CODE_STYLES:
        assert [to_iso3(v) for v in samples.codes(style)] == list(samples.ALPHA3), style


def _pool() -> list[str | None]:
    rng = random.Random(7)
    pool: list[str | None] = [None, "", "Atlantis", "W00", "World", "ANT", "zz"]
    for c in rng.sample(COUNTRIES, 60):
        pool += [c.alpha_2, c.alpha_3.lower(), c.numeric, c.name, c.name.upper()]
    pool += list(VARIANTS)
    return pool


@pytest.mark.parametrize("encoding", ["plain", "dictionary", "chunked", "wire"])
def test_vectorized_equals_scalar(encoding):
    rng = random.Random(11)
    pool = _pool()
    values = [rng.choice(pool) for _ in range(5000)]
    if encoding == "plain":
        column = pa.array(values, pa.string())
    elif encoding == "dictionary":
        column = pa.array(values, pa.string()).dictionary_encode()
    elif encoding == "chunked":
        column = pa.chunked_array([pa.array(values[:1234], pa.string()), pa.array(values[1234:], pa.string())])
    else:
        strings = sorted({v for v in values if v is not None}) + ["unused"]
        position = {s: i for i, s in enumerate(strings)}
        column = wire_column(strings, [position[v] if v is not None else -1 for v in values])
    result = to_iso3_array(column)
    expected = [harmonize_country(v) for v in values]
    assert result.value.to_pylist() == [e[0] for e in expected]
    assert result.reason.to_pylist() == [e[1] for e in expected]
    assert result.invalid.to_pylist() == [e[1] is not None for e in expected]


def test_vectorized_empty_and_all_null():
    assert to_iso3_array(pa.array([], pa.string())).value.to_pylist() == []
    result = to_iso3_array(pa.array([None, None]))
    assert result.value.to_pylist() == [None, None]
    assert result.reason.to_pylist() == [None, None]


def test_vectorized_accepts_numeric_columns():
    result = to_iso3_array(pa.array([4, 840, None, 0], pa.int64()))
    assert result.value.to_pylist() == ["AFG", "USA", None, None]
    assert result.reason.to_pylist() == [None, None, None, AGGREGATE]
    assert result.value.type == pa.dictionary(pa.int32(), pa.string())
