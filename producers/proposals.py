"""Zero-mapping publishing of SDMX files: the indicator fallback, and `--map` flags proposed when a field has no source.

Entry points: `indicator_dimension(dimensions, bound)` (the one series-key dimension that can be the
indicator, or None), `proposal(missing, columns, dimensions, attributes, bound)` (the sentence a
`MappingError` ends with: the file's dimensions and attributes and concrete flags). Rules:
docs/publishing.md ("Publishing SDMX without a mapping").
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

# Dimensions that describe how a series is observed rather than what it measures: never the indicator.
CONTEXT_DIMENSIONS = frozenset({"FREQ", "TIME_PERIOD", "TIME_FORMAT"})
# Words in a dimension id that make it a likely indicator, most telling first.
_INDICATOR_HINTS = ("INDICATOR", "SUBJECT", "ITEM", "SERIES", "MEASURE", "TYPE", "VARIABLE", "CONCEPT", "TRANSACTION",
                    "STO", "COMMODITY", "PRODUCT")
_HINTS = {
    "ref_area": ("REF_AREA", "AREA", "GEO", "COUNTRY", "REPORTER", "ECONOMY", "LOCATION"),
    "counterpart_area": ("COUNTERPART", "PARTNER"),
    "period": ("TIME_PERIOD", "PERIOD", "TIME", "DATE", "YEAR"),
    "value": ("OBS_VALUE", "VALUE"),
    "unit": ("UNIT_MEASURE", "UNIT"),
}


def indicator_dimension(dimensions: Sequence[str], bound: Mapping[str, str]) -> str | None:
    """The indicator when the file has no INDICATOR column: its only series-key dimension that is neither
    a context dimension (FREQ) nor the source of another field (`bound`: field -> column); else None."""
    used = set(bound.values())
    left = [d for d in dimensions if d.upper() not in CONTEXT_DIMENSIONS and d not in used]
    return left[0] if len(left) == 1 else None


def proposal(missing: Sequence[str], columns: Sequence[str], dimensions: Sequence[str], attributes: Sequence[str],
             bound: Mapping[str, str]) -> str:
    """What the file holds and the flags that would give each missing field a source."""
    flags, also = [], []
    for name in missing:
        options = _candidates(name, columns, dimensions, bound)
        if options:
            flags.append(f"--map {name}={options[0]}")
            if len(options) > 1:
                also.append(f"{name} could also be {', '.join(options[1:6])}")
        else:
            flags.append(f"--const {name}=VALUE")
    held = (f"the file's dimensions are {_names(dimensions)}, its attributes {_names(attributes)}" if dimensions
            else f"the file's columns are {_names(columns)}")
    return f"{held}; try {' '.join(flags)}" + (f" ({'; '.join(also)})" if also else "")


def _candidates(field: str, columns: Sequence[str], dimensions: Sequence[str], bound: Mapping[str, str]) -> list[str]:
    used = {c for f, c in bound.items() if f != "commodity"}   # a non-HS COMMODITY may be the indicator
    if field == "indicator":
        pool = [d for d in (dimensions or columns) if d.upper() not in CONTEXT_DIMENSIONS and d not in used]
        return sorted(pool, key=lambda d: (_rank(d, _INDICATOR_HINTS), pool.index(d)))
    hints = _HINTS.get(field, (field.upper(),))
    pool = [c for c in columns if c not in used and _rank(c, hints) < len(hints)]
    return sorted(pool, key=lambda c: (_rank(c, hints), columns.index(c)))


def _rank(name: str, hints: Sequence[str]) -> int:
    words = set(re.split(r"[^A-Z0-9]+", name.upper()))
    upper = name.upper()
    for i, hint in enumerate(hints):
        if upper == hint or hint in words:
            return i
    return len(hints)


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:30]) + (f" ... ({len(names)} in all)" if len(names) > 30 else "") if names else "(none)"
