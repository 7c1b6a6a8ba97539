"""Reference areas -> ISO 3166-1 alpha-3 countries (pycountry), and the areas beyond countries.

Observations: `harmonize_area(value) -> Area(code, area_type, reason)`, vectorized `to_area_array(values)`
(`AREA_CODEBOOK`): area_type country | aggregate | region | historic | subnational, from pycountry (ISO
3166-1, -2, -3) and `ioxhub/data/areas/` (world codes, EU/euro-area compositions, income groups, M49
regions); only unknown areas are refused. Countries only (policy members): `harmonize_country(value) ->
Country(iso3, reason)`, `to_iso3(value)`, `to_iso3_array(values)`, an aggregate or region refused as
"aggregate-area". Accepted codes and names, `VARIANTS` and the deliberate choices (UK, EL, Kosovo):
docs/harmonization.md.
"""
from __future__ import annotations

import csv
import functools
import re
import unicodedata
from importlib import resources
from typing import NamedTuple

import pycountry

import pyarrow as pa

from ioxhub.harmonize.columns import ArrayLike, Codebook, Harmonized

UNKNOWN = "unknown-country"
AGGREGATE = "aggregate-area"

# Spellings used by IOs that pycountry does not carry (World Bank, UN M49, WTO, Eurostat), -> alpha-3.
VARIANTS: dict[str, str] = {
    "UK": "GBR", "Great Britain": "GBR", "Britain": "GBR", "EL": "GRC",
    "USA": "USA", "United States of America": "USA", "U.S.": "USA", "US of America": "USA",
    "Vietnam": "VNM", "Korea, Rep.": "KOR", "Korea": "KOR", "Korea South": "KOR",
    "Korea, Dem. People's Rep.": "PRK", "Korea, DPR": "PRK", "DPRK": "PRK", "Korea North": "PRK",
    "Turkey": "TUR", "Turkiye": "TUR", "Ivory Coast": "CIV", "Russia": "RUS",
    "Iran, Islamic Rep.": "IRN", "Syria": "SYR", "Lao PDR": "LAO", "Venezuela, RB": "VEN",
    "Venezuela": "VEN", "Tanzania": "TZA", "Moldova": "MDA", "Czech Republic": "CZE",
    "Macedonia": "MKD", "Macedonia, FYR": "MKD", "Swaziland": "SWZ", "Cape Verde": "CPV",
    "Burma": "MMR", "East Timor": "TLS", "Egypt, Arab Rep.": "EGY", "Yemen, Rep.": "YEM",
    "Congo, Dem. Rep.": "COD", "DR Congo": "COD", "DRC": "COD", "Congo, Rep.": "COG",
    "Congo-Brazzaville": "COG", "Congo-Kinshasa": "COD",
    "Hong Kong SAR, China": "HKG", "Hong Kong, China": "HKG", "Macao SAR, China": "MAC",
    "Macau": "MAC", "Macao, China": "MAC", "Chinese Taipei": "TWN", "Taiwan, China": "TWN",
    "Palestine": "PSE", "West Bank and Gaza": "PSE", "Micronesia": "FSM", "Micronesia, Fed. Sts.": "FSM",
    "Kyrgyz Republic": "KGZ", "Slovak Republic": "SVK", "Vatican": "VAT", "Vatican City": "VAT",
    "Holy See": "VAT", "Brunei": "BRN", "Bahamas, The": "BHS", "Gambia, The": "GMB",
    "St. Martin (French part)": "MAF", "Sint Maarten": "SXM", "UAE": "ARE", "Bosnia": "BIH",
    "XK": "XKX", "XKX": "XKX", "Kosovo": "XKX",
}

COUNTRY, AGGREGATE_TYPE, REGION, HISTORIC, SUBNATIONAL = "country", "aggregate", "region", "historic", "subnational"
AREA_TYPES = (COUNTRY, AGGREGATE_TYPE, REGION, HISTORIC, SUBNATIONAL)

# Names of areas beyond countries that partners write besides those of the code lists -> canonical code.
AREA_NAMES: dict[str, str] = {
    "World": "WLD", "All countries": "WLD", "Rest of the world": "ROW", "European Union": "EU",
    "Euro area": "EA", "Eurozone": "EA", "Soviet Union": "SUN", "USSR": "SUN", "East Germany": "DDR",
    "Czechoslovakia": "CSK", "Yugoslavia": "YUG",
}
_SUBDIVISION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")

_ABBREVIATIONS = {"st": "saint", "rep": "republic", "dem": "democratic", "fed": "federated",
                  "sts": "states", "is": "islands"}
_DROPPED = frozenset({"the", "of", "and", "s"})  # "s": the possessive of "People's"


def name_key(text: str) -> str:
    """Matching key of a country name: no case, diacritics, punctuation, filler words or word order."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(ch for ch in t if not unicodedata.combining(ch)).casefold()
    t = re.sub(r"['\u2019`]", " ", t.replace(".", "").replace("&", " and "))
    words = (_ABBREVIATIONS.get(w, w) for w in re.split(r"[^0-9a-z]+", t) if w)
    return " ".join(sorted(w for w in words if w not in _DROPPED))


@functools.cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    """(codes -> alpha-3, name keys -> alpha-3) of the ISO 3166-1 countries, built once from pycountry."""
    codes: dict[str, str] = {}
    names: dict[str, str] = {}
    ambiguous: set[str] = set()

    def add_name(name: str, iso3: str) -> None:
        key = name_key(name)
        if key in ambiguous:
            return
        if names.get(key, iso3) != iso3:
            ambiguous.add(key)
            del names[key]
            return
        names[key] = iso3

    for c in pycountry.countries:
        codes[c.alpha_2] = codes[c.alpha_3] = codes[c.numeric] = c.alpha_3
        for attr in ("name", "official_name", "common_name"):
            if (name := getattr(c, attr, None)):
                add_name(name, c.alpha_3)
    for variant, iso3 in VARIANTS.items():
        if variant.isupper() and len(variant) <= 3:
            codes[variant] = iso3
        add_name(variant, iso3)
    return codes, names


def _read_areas(name: str) -> list[dict[str, str]]:
    text = resources.files("ioxhub").joinpath("data", "areas", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def _other_areas() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """(codes -> (canonical, area_type), name keys -> (canonical, area_type)) of the areas that are not
    current countries: groupings, M49 regions, ISO 3166-3 historic names; built once."""
    countries, country_names = _tables()
    codes: dict[str, tuple[str, str]] = {}
    names: dict[str, tuple[str, str]] = {}
    for row in _read_areas("groupings.csv"):
        codes[row["code"].upper()] = (row["canonical"], row["type"])
        names.setdefault(name_key(row["name"]), (row["canonical"], row["type"]))
    for row in _read_areas("m49_regions.csv"):
        codes[row["code"]] = (row["code"], REGION)
        names.setdefault(name_key(row["name"]), (row["code"], REGION))
    historic = list(pycountry.historic_countries)
    alpha2_uses: dict[str, int] = {}
    for h in historic:
        alpha2_uses[h.alpha_2] = alpha2_uses.get(h.alpha_2, 0) + 1
    for h in historic:
        canonical = h.alpha_4 if h.alpha_3 in countries else h.alpha_3
        entry = (canonical, HISTORIC)
        codes[h.alpha_4] = entry
        if h.alpha_3 not in countries:
            codes.setdefault(h.alpha_3, entry)
        if alpha2_uses[h.alpha_2] == 1 and h.alpha_2 not in countries:
            codes.setdefault(h.alpha_2, entry)
        names.setdefault(name_key(h.name), entry)
    for name, canonical in AREA_NAMES.items():
        names[name_key(name)] = codes[canonical] if canonical in codes else (canonical, HISTORIC)
    for key in list(names):
        if key in country_names:     # a country's name is the country (e.g. Micronesia)
            del names[key]
    return codes, names


class Area(NamedTuple):
    """(canonical code, area_type, None), (None, None, reason), or (None, None, None) when absent."""

    code: str | None
    area_type: str | None
    reason: str | None


_NO_AREA = Area(None, None, None)


@functools.lru_cache(maxsize=65536)
def harmonize_area(value: str | int | None) -> Area:
    """One reference or counterpart area -> Area(canonical code, area_type, reason); see the module docstring."""
    if value is None:
        return _NO_AREA
    text = str(value).strip()
    if not text:
        return _NO_AREA
    countries, country_names = _tables()
    others, other_names = _other_areas()
    code = text.upper()
    if code.isdigit() and len(code) <= 3:
        code = code.zfill(3)
    if (found := others.get(code)) is not None and code not in countries:
        return Area(found[0], found[1], None)
    if (iso3 := countries.get(code)) is not None:
        return Area(iso3, COUNTRY, None)
    if _SUBDIVISION.match(code) and pycountry.subdivisions.get(code=code) is not None:
        return Area(code, SUBNATIONAL, None)
    key = name_key(text)
    if (iso3 := country_names.get(key)) is not None:
        return Area(iso3, COUNTRY, None)
    if (found := other_names.get(key)) is not None:
        return Area(found[0], found[1], None)
    return Area(None, None, UNKNOWN)


class Country(NamedTuple):
    """(ISO 3166 alpha-3, None), (None, reason), or (None, None) when absent."""

    iso3: str | None
    reason: str | None


_ABSENT = Country(None, None)


@functools.lru_cache(maxsize=65536)
def harmonize_country(value: str | int | None) -> Country:
    """One area that must be a country -> Country(alpha-3, reason): an aggregate or a region is refused as
    "aggregate-area", anything else that is not a current country as "unknown-country"."""
    area = harmonize_area(value)
    if area.area_type == COUNTRY:
        return Country(area.code, None)
    if area.area_type in (AGGREGATE_TYPE, REGION):
        return Country(None, AGGREGATE)
    return _ABSENT if area.reason is None and area.area_type is None else Country(None, UNKNOWN)


def to_iso3(value: str | int | None) -> str | None:
    """One reference area -> ISO 3166 alpha-3, or None when absent, unknown or not a country."""
    return harmonize_country(value).iso3


CODEBOOK = Codebook(harmonize_country, strings=("iso3", "reason"), plain={})
AREA_CODEBOOK = Codebook(harmonize_area, strings=("code", "area_type", "reason"), plain={})


def to_iso3_array(values: ArrayLike) -> Harmonized:
    """A string or dictionary column of countries -> Harmonized(alpha-3, reason), dictionary<int32, string>."""
    rows = CODEBOOK.rows(values)
    return Harmonized(rows.strings("iso3"), rows.strings("reason"))


class AreaColumns(NamedTuple):
    """Vectorized `harmonize_area`: value (canonical code), area_type, reason; dictionary<int32, string>."""

    value: pa.Array
    area_type: pa.Array
    reason: pa.Array

    @property
    def invalid(self) -> pa.BooleanArray:
        return self.reason.is_valid()


def to_area_array(values: ArrayLike) -> AreaColumns:
    """A string or dictionary column of areas -> AreaColumns (each distinct value resolved once)."""
    rows = AREA_CODEBOOK.rows(values)
    return AreaColumns(rows.strings("code"), rows.strings("area_type"), rows.strings("reason"))
