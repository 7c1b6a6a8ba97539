"""The ~30 reporting countries of the sample feeds and the code variants partner files use for them.

ISO 3166 alpha-3 is the canonical key; files use alpha-2, numeric (3-digit, zero-padded) or English
names as their publishers do. Every name here resolves with `pycountry.countries.lookup` (checked by
the tests), so a harmonizer that knows ISO 3166 names, official names and common names can map it back.
"""
from __future__ import annotations

from functools import lru_cache

import pycountry

ALPHA3 = (
    "AUS", "BRA", "CAN", "CHL", "CHN", "DEU", "EGY", "ESP", "FRA", "GBR",
    "GHA", "IDN", "IND", "ITA", "JPN", "KEN", "KOR", "MAR", "MEX", "NGA",
    "NLD", "PHL", "POL", "SAU", "SGP", "THA", "TUR", "USA", "VNM", "ZAF",
)

# Names as a postal operator's export spells them: mostly the ISO short name, some official or common
# names (all ISO 3166 / pycountry spellings, so resolvable; "Atlantis" in the bad rows is not).
_NAME_OVERRIDES = {
    "USA": "United States of America",
    "KOR": "South Korea",
    "VNM": "Vietnam",
    "DEU": "Federal Republic of Germany",
    "GBR": "United Kingdom of Great Britain and Northern Ireland",
}


@lru_cache(maxsize=None)
def _country(alpha3: str):
    return pycountry.countries.get(alpha_3=alpha3)


def alpha2(alpha3: str) -> str:
    return _country(alpha3).alpha_2


def numeric(alpha3: str) -> str:
    return _country(alpha3).numeric


def name(alpha3: str) -> str:
    return _NAME_OVERRIDES.get(alpha3) or _country(alpha3).name


CODE_STYLES = {"alpha3": lambda c: c, "alpha2": alpha2, "numeric": numeric, "name": name}


def codes(style: str, countries: tuple[str, ...] = ALPHA3) -> list[str]:
    """The countries written in one code style (alpha3, alpha2, numeric, name)."""
    return [CODE_STYLES[style](c) for c in countries]
