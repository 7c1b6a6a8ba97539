"""Evidence datasets derived from the harmonized zone: pure functions, tables in, tables out.

- `instruments_compendium(instrument_versions, adoptions)`, `instrument_history(instrument_versions)`
- `indicator_panel(observations, freq="A")` (long), `panel_wide(long)`
- `instrument_impact(annual_panel, instruments, adoptions)` -> `Impact(country_changes, did, event_study)`
- `data_coverage(observations, countries=None)` -> `Coverage(detail, by_org)`
Inputs: pandas or pyarrow; outputs: pandas with fixed column and row order. Methods: docs/evidence.md.
"""
from consumers.derive.compendium import COMPENDIUM_COLUMNS, HISTORY_COLUMNS, instrument_history, instruments_compendium
from consumers.derive.coverage import Coverage, data_coverage
from consumers.derive.impact import COUNTRY_COLUMNS, DID_COLUMNS, EVENT_COLUMNS, Impact, instrument_impact
from consumers.derive.panel import LONG_COLUMNS, indicator_panel, panel_wide

__all__ = [
    "COMPENDIUM_COLUMNS", "HISTORY_COLUMNS", "instrument_history", "instruments_compendium",
    "Coverage", "data_coverage",
    "COUNTRY_COLUMNS", "DID_COLUMNS", "EVENT_COLUMNS", "Impact", "instrument_impact",
    "LONG_COLUMNS", "indicator_panel", "panel_wide",
]
