"""Reference areas (countries) -> ISO 3166-1 alpha-3, via pycountry.

Scalar: `harmonize_country(value) -> Country(iso3, reason)`, `to_iso3(value) -> iso3 | None`.
Vectorized: `to_iso3_array(values) -> Harmonized(value, reason)` (each distinct value once, `CODEBOOK`).
Accepted codes and names, `VARIANTS`, `AGGREGATES` ("aggregate-area") and the deliberate choices (UK, EL,
Kosovo): docs/harmonization.md.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from typing import NamedTuple

import pycountry

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

# Area codes and names that are aggregates, not countries (reported with reason "aggregate-area").
AGGREGATES: frozenset[str] = frozenset({
    "W00", "W0", "W1", "WLD", "WORLD", "000", "_T", "TOTAL", "ALL",
    "EU", "EUU", "EU27", "EU27_2020", "EU28", "EU15", "EA", "EA19", "EA20", "EMU", "EZ", "OECD", "OED",
    "European Union", "Euro area", "Eurozone", "All countries", "Rest of the world",
})

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
def _tables() -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
    """(codes -> alpha-3, name keys -> alpha-3, aggregate keys), built once from pycountry."""
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
    aggregates = frozenset(a.upper() for a in AGGREGATES) | frozenset(name_key(a) for a in AGGREGATES)
    return codes, names, aggregates


class Country(NamedTuple):
    """(ISO 3166 alpha-3, None), (None, reason), or (None, None) when absent."""

    iso3: str | None
    reason: str | None


_ABSENT = Country(None, None)


@functools.lru_cache(maxsize=65536)
def harmonize_country(value: str | int | None) -> Country:
    """One reference area -> Country(alpha-3, reason); see the module docstring."""
    if value is None:
        return _ABSENT
    text = str(value).strip()
    if not text:
        return _ABSENT
    codes, names, aggregates = _tables()
    code = text.upper()
    if code.isdigit() and len(code) <= 3:
        code = code.zfill(3)
    if code in aggregates:
        return Country(None, AGGREGATE)
    if (iso3 := codes.get(code)) is not None:
        return Country(iso3, None)
    key = name_key(text)
    if (iso3 := names.get(key)) is not None:
        return Country(iso3, None)
    if key in aggregates:
        return Country(None, AGGREGATE)
    return Country(None, UNKNOWN)


def to_iso3(value: str | int | None) -> str | None:
    """One reference area -> ISO 3166 alpha-3, or None when absent, unknown or an aggregate."""
    return harmonize_country(value).iso3


CODEBOOK = Codebook(harmonize_country, strings=("iso3", "reason"), plain={})


def to_iso3_array(values: ArrayLike) -> Harmonized:
    """A string or dictionary column of areas -> Harmonized(alpha-3, reason), dictionary<int32, string>."""
    rows = CODEBOOK.rows(values)
    return Harmonized(rows.strings("iso3"), rows.strings("reason"))
