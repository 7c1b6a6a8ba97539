"""Harmonization rules: each a scalar function for one value and a vectorized one for a column.

- `countries`: areas -> code and area type (`harmonize_area`, `to_area_array`); countries only (`to_iso3`).
- `hs`: commodity codes -> HS 2022 code, level, chapter (`normalize_hs`, `normalize_hs_array`).
- `periods`: SDMX time periods -> freq, start, end, label (`parse_period`, `parse_period_array`).
- `units`: unit codes and multipliers -> canonical units and details (`canonical_unit`, `normalize_value(s)`, `unit_kind`).
- `columns`: the shared plumbing (wire string table -> dictionary column; `Codebook`). Docs: harmonization.md.
"""
