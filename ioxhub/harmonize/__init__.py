"""Harmonization rules: each a scalar function for one value and a vectorized one for a column.

- `countries`: reference areas -> ISO 3166 alpha-3 (`to_iso3`, `to_iso3_array`).
- `hs`: commodity codes -> HS 2022 code, level, chapter (`normalize_hs`, `normalize_hs_array`).
- `periods`: SDMX time periods -> freq, start, end, label (`parse_period`, `parse_period_array`).
- `units`: units and multipliers -> canonical units (`canonical_unit`, `normalize_value(s)`, `unit_kind`).
- `columns`: the shared plumbing (wire string table -> dictionary column; `Codebook`). Docs: harmonization.md.
"""
