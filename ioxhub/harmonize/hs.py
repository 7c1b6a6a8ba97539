"""Commodity codes -> HS 2022 codes checked against the nomenclature in `ioxhub/data/hs/`.

Scalar: `normalize_hs(value) -> HsCode` (code, level, chapter, reason). Vectorized:
`normalize_hs_array(values, edition=None) -> HsColumns` (an edition whose list is not shipped, e.g.
HS2017: the same normalization, codes checked by their shape only; `validated(edition)` says which).
Look-ups on normalized codes: `hs_section`, `hs_description`, `hs_section_array`, `section_name`. The
normalization steps (separators, lost leading zeros, national tariff lines): docs/harmonization.md.
"""
from __future__ import annotations

import functools
import re
from importlib import resources
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ioxhub.harmonize.columns import ArrayLike, Codebook

UNKNOWN = "unknown-hs-code"
DEFAULT_EDITION = "HS2022"
SHIPPED_EDITIONS = frozenset({"HS", "HS2022"})     # editions whose code list is in ioxhub/data/hs/
TOTAL = "TOTAL"
_TOTAL_ALIASES = frozenset({"TOTAL", "_T"})
_SEPARATORS = re.compile(r"[.\s]")


class HsCode(NamedTuple):
    """One normalized HS code: code (2/4/6 digits or TOTAL), level (2/4/6, 0 for TOTAL), chapter, reason."""

    code: str | None
    level: int | None
    chapter: str | None
    reason: str | None


class HsColumns(NamedTuple):
    """Vectorized result: code, level (int8), chapter, reason (null = ok); strings are dictionary<int32, string>."""

    code: pa.Array
    level: pa.Array
    chapter: pa.Array
    reason: pa.Array

    @property
    def invalid(self) -> pa.BooleanArray:
        return self.reason.is_valid()


class _Nomenclature(NamedTuple):
    table: pa.Table            # hscode, section, description, level (as in the CSV)
    sections: dict[str, str]   # code -> section (roman numeral, or TOTAL)
    descriptions: dict[str, str]
    section_names: dict[str, str]


@functools.cache
def _nomenclature() -> _Nomenclature:
    """Load the HS 2022 list once (pyarrow.csv)."""
    folder = resources.files("ioxhub") / "data" / "hs"
    strings = pacsv.ConvertOptions(column_types={"hscode": pa.string(), "parent": pa.string(),
                                                 "section": pa.string()})
    with (folder / "harmonized-system.csv").open("rb") as f:
        table = pacsv.read_csv(f, convert_options=strings)
    with (folder / "sections.csv").open("rb") as f:
        sections = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
            column_types={"section": pa.string()}))
    codes = table["hscode"].to_pylist()
    return _Nomenclature(
        table=table.select(["hscode", "section", "description", "level"]),
        sections=dict(zip(codes, table["section"].to_pylist())),
        descriptions=dict(zip(codes, table["description"].to_pylist())),
        section_names=dict(zip(sections["section"].to_pylist(),
                               (n.strip() for n in sections["name"].to_pylist()))),
    )


def validated(edition: str | None) -> bool:
    """Whether codes of this HS edition (None: HS 2022) are checked against a shipped code list."""
    return edition is None or edition.upper() in SHIPPED_EDITIONS


@functools.lru_cache(maxsize=65536)
def normalize_hs(value: str | int | None, listed: bool = True) -> HsCode:
    """One published commodity code -> HsCode (see the module docstring for the rules); `listed=False`:
    an HS-shaped code is accepted without the HS 2022 list (another edition)."""
    if value is None:
        return HsCode(None, None, None, None)
    text = str(value).strip()
    if not text:
        return HsCode(None, None, None, None)
    if text.upper() in _TOTAL_ALIASES:
        return HsCode(TOTAL, 0, None, None)
    digits = _SEPARATORS.sub("", text)
    if not (digits.isascii() and digits.isdigit()):
        return HsCode(None, None, None, UNKNOWN)
    if len(digits) % 2:
        digits = "0" + digits
    code = digits[:6]
    if listed and code not in _nomenclature().sections:
        return HsCode(None, None, None, UNKNOWN)
    return HsCode(code, len(code), code[:2], None)


def normalize_hs_array(values: ArrayLike, edition: str | None = None) -> HsColumns:
    """A string or dictionary column of commodity codes -> HsColumns (distinct values once, then gathers).
    `edition`: the HS edition of the codes (None: HS 2022); unless `validated(edition)`, shape only."""
    rows = (CODEBOOK if validated(edition) else SHAPE_CODEBOOK).rows(values)
    return HsColumns(code=rows.strings("code"), level=rows.plain("level"), chapter=rows.strings("chapter"),
                     reason=rows.strings("reason"))


CODEBOOK = Codebook(normalize_hs, strings=("code", "chapter", "reason"), plain={"level": pa.int8()})
SHAPE_CODEBOOK = Codebook(functools.partial(normalize_hs, listed=False), strings=("code", "chapter", "reason"),
                          plain={"level": pa.int8()})


def hs_section(code: str | None) -> str | None:
    """HS section (roman numeral, `I`..`XXI`) of a normalized code, "TOTAL" for TOTAL, None if unknown."""
    return _nomenclature().sections.get(code) if code is not None else None


def hs_description(code: str | None) -> str | None:
    """English description of a normalized code in HS 2022, None if unknown."""
    return _nomenclature().descriptions.get(code) if code is not None else None


def section_name(section: str) -> str | None:
    """Title of an HS section (`XVI` -> "Machinery and mechanical appliances; ..."), None if unknown."""
    return _nomenclature().section_names.get(section)


def hs_section_array(codes: ArrayLike) -> pa.Array:
    """Vectorized `hs_section` over a column of normalized codes (null where unknown or null)."""
    table = _nomenclature().table
    positions = pc.index_in(codes, value_set=table["hscode"].combine_chunks())
    return pc.take(table["section"].combine_chunks(), positions)
