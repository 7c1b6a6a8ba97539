"""Harmonization rules: each a scalar function for one value and a vectorized one for a column.

- `countries`: reference areas -> ISO 3166 alpha-3 (`to_iso3`, `to_iso3_array`).
- `hs`: commodity codes -> HS 2022 code, level, chapter (`normalize_hs`, `normalize_hs_array`).
- `periods`: SDMX time periods -> freq, start, end, label (`parse_period`, `parse_period_array`).
- `units`: units and multipliers -> canonical units (`canonical_unit`, `normalize_value(s)`), and the
  kind of each canonical unit, flow or level (`unit_kind`).
- `columns`: the shared plumbing (wire string table -> dictionary column; `Codebook`: each distinct
  value harmonized once per process, results gathered to the rows).

Vectorized rules take string or dictionary columns (`columns.wire_column` builds one from a chunk) and
return Arrow arrays: strings as dictionary<int32, string>, numbers and dates plain. The cost per
observation is a numpy/Arrow gather, never a Python call.
Values that cannot be harmonized come back null with a reason string (e.g. "unknown-country"); absent
input comes back null without a reason. All functions are pure; code lists are loaded once and cached.
"""
