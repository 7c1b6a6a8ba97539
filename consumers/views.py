"""What the web portal shows, as plain data: the catalog filtered, a dataset's rows shaped for its charts,
an instrument's page. (A dataset's description, columns, snapshots and provenance: consumers.metadata, shared
with the API.)

`catalog_view(datasets, filters, related_indicators)` filters catalog entries; `coverage_grid` and
`series` shape pulled rows for the heatmap and the line chart; `instruments(store)` lists the compendium;
`instrument_view(id, store)` gathers an instrument's entry, history, adopters and impact from the curated
datasets; `pretrend_check` says in words what the event study's pre-adoption years show. Data is read
only through consumers.access (`pull_table`) and the catalog, as `ioxhub pull` reads it. docs/portal.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from consumers.access import PullError, pull_table
from consumers.metadata import column_names, dataset_zone, description
from consumers.report import format_effect
from ioxhub.storage import ObjectStore

# Dimensions an analyst may pick a series by, in the order offered; the x and y columns of a series.
SERIES_DIMENSIONS = ("indicator", "ref_area", "commodity", "counterpart_area", "instrument_id", "scale", "unit")
TIME_COLUMNS = ("period_start", "year", "rel_year", "adoption_date", "effective_date")
VALUE_COLUMNS = ("value", "estimate", "pct_estimate")
PREVIEW_ROWS = 50
COUNTRY_COLUMNS = ("ref_area", "country")


# ------------------------------------------------------------------------------------------------ catalog
@dataclass
class CatalogFilters:
    q: str = ""
    org: str = ""
    indicator: str = ""
    country: str = ""
    instrument: str = ""
    licence: str = ""

    def active(self) -> bool:
        return any(vars(self).values())


@dataclass
class CatalogView:
    datasets: list[dict]
    choices: dict[str, list[str]] = field(default_factory=dict)   # filter name -> values to offer


def _indicators(entry: dict) -> set[str]:
    return set((entry.get("coverage") or {}).get("indicators") or [])


def _countries(entry: dict) -> set[str]:
    return set((entry.get("coverage") or {}).get("countries") or [])


def catalog_view(datasets: list[dict], filters: CatalogFilters, instruments: dict[str, list[str]]) -> CatalogView:
    """The entries matching every filter (text: name, title, description, publishers, indicators).

    `instruments` maps an instrument id to its related indicators: a dataset belongs to an instrument when
    it holds one of them, or when it is a curated dataset about instruments (it has an instrument_id column)."""
    def instrument_match(entry: dict) -> bool:
        if "instrument_id" in column_names(entry):
            return True
        return bool(_indicators(entry) & set(instruments.get(filters.instrument, [])))

    words = filters.q.lower().split()
    out = []
    for entry in datasets:
        text = " ".join([entry["name"], description(entry), " ".join(entry.get("publishers", [])),
                         " ".join(sorted(_indicators(entry))), entry.get("licence") or ""]).lower()
        if words and not all(w in text for w in words):
            continue
        if filters.org and filters.org not in entry.get("publishers", []):
            continue
        if filters.indicator and filters.indicator not in _indicators(entry):
            continue
        if filters.country and filters.country not in _countries(entry):
            continue
        if filters.licence and (entry.get("licence") or "unspecified") != filters.licence:
            continue
        if filters.instrument and not instrument_match(entry):
            continue
        out.append({**entry, "zone": dataset_zone(entry), "description": description(entry)})
    choices = {
        "org": sorted({p for d in datasets for p in d.get("publishers", [])}),
        "indicator": sorted({i for d in datasets for i in _indicators(d)}),
        "country": sorted({c for d in datasets for c in _countries(d)}),
        "instrument": sorted(instruments),
        "licence": sorted({d.get("licence") or "unspecified" for d in datasets}),
    }
    return CatalogView(out, choices)


def instruments(store: ObjectStore) -> list[dict]:
    """Every instrument of the curated compendium (id, title, org, adopters, related indicators), by id;
    empty before the first derivation."""
    try:
        table = pull_table("instruments_compendium", columns=["instrument_id", "title", "org", "n_adopting_members",
                                                              "related_indicators"], store=store).table
    except PullError:
        return []
    return sorted(table.to_pylist(), key=lambda r: r["instrument_id"])


def time_column(names: Iterable[str]) -> str | None:
    return next((c for c in TIME_COLUMNS if c in names), None)


def value_column(names: Iterable[str]) -> str | None:
    return next((c for c in VALUE_COLUMNS if c in names), None)


def country_column(names: Iterable[str]) -> str | None:
    return next((c for c in COUNTRY_COLUMNS if c in names), None)


@dataclass
class Grid:
    """Observations counted by country x year (the coverage heatmap)."""
    countries: list[str]
    years: list[int]
    counts: dict[tuple[str, int], int]

    @property
    def max(self) -> int:
        return max(self.counts.values(), default=0)


def coverage_grid(table: pa.Table, country: str, time: str) -> Grid:
    frame = table.select([country, time]).to_pandas()
    if frame.empty:
        return Grid([], [], {})
    years = frame[time]
    if not pd.api.types.is_integer_dtype(years):
        years = pd.to_datetime(years).dt.year
    counts = frame.assign(_y=years.astype(int)).groupby([country, "_y"]).size()
    cells = {(str(c), int(y)): int(n) for (c, y), n in counts.items()}
    return Grid(sorted({c for c, _ in cells}), list(range(min(y for _, y in cells), max(y for _, y in cells) + 1)), cells)


def dimension_values(table: pa.Table, names: Iterable[str]) -> dict[str, list[str]]:
    return {c: sorted({str(v) for v in table.column(c).to_pylist() if v is not None})
            for c in names if c in table.column_names}


def values_where(table: pa.Table, column: str, picked: dict[str, str]) -> list[str]:
    """The distinct values of `column` in the rows that match every pick (column -> value) the table has."""
    for name, value in picked.items():
        if value and name in table.column_names:
            table = table.filter(pc.equal(table[name].cast(pa.string()), value))
    return dimension_values(table, [column]).get(column, [])


def series(table: pa.Table, by: str, time: str, value: str) -> dict[str, list[tuple[float, float]]]:
    """The rows as lines: label (the value of `by`) -> sorted (x, y) points (x a year, fractional within it)."""
    frame = table.select([c for c in dict.fromkeys([by, time, value])]).to_pandas().dropna(subset=[value])
    x = frame[time]
    if not pd.api.types.is_numeric_dtype(x):
        when = pd.to_datetime(x)
        x = when.dt.year + (when.dt.dayofyear - 1) / 366.0
    frame = frame.assign(_x=x.astype(float))
    return {str(label): sorted(zip(group["_x"].tolist(), group[value].astype(float).tolist()))
            for label, group in frame.groupby(by, sort=True)}


def preview(table: pa.Table, rows: int = PREVIEW_ROWS) -> tuple[list[str], list[list[str]]]:
    head = table.slice(0, rows).to_pylist()
    return table.column_names, [[cell(v) for v in row.values()] for row in head]


def cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x) for x in v)
    return str(v)


# ------------------------------------------------------------------------------------------------ instrument
@dataclass
class InstrumentView:
    instrument_id: str
    entry: dict                   # the compendium row
    history: list[dict]
    adoptions: list[dict]         # country, adoption_date, version; by date
    did: list[dict]               # primary-scale estimates, one per related indicator
    event_study: dict[str, list[dict]]   # indicator -> rows by rel_year (primary scale)
    pretrend: dict[str, str]      # indicator -> the pre-trend check in words


def _rows(name: str, instrument_id: str, store: ObjectStore, column: str = "instrument_id") -> pd.DataFrame:
    try:
        return pull_table(name, where=[(column, instrument_id)], store=store).table.to_pandas()
    except PullError:
        return pd.DataFrame()


def instrument_view(instrument_id: str, store: ObjectStore) -> InstrumentView | None:
    entry = _rows("instruments_compendium", instrument_id, store)
    if entry.empty:
        return None
    history = _rows("instrument_history", instrument_id, store)
    adoptions = _rows("instrument_adoptions", instrument_id, store)
    did = _rows("impact_did", instrument_id, store)
    events = _rows("impact_event_study", instrument_id, store)
    if not did.empty:
        did = did[did["primary"]]
        did = did.assign(effect=[format_effect(r) for _, r in did.iterrows()])
    event_study, pretrend = {}, {}
    if not events.empty:
        for indicator, rows in events[events["primary"]].groupby("indicator", sort=True):
            rows = rows.sort_values("rel_year")
            event_study[str(indicator)] = rows.to_dict("records")
            pretrend[str(indicator)] = pretrend_check(rows)
    if not adoptions.empty:
        adoptions = adoptions.sort_values(["adoption_date", "country"])
    return InstrumentView(instrument_id, entry.iloc[0].to_dict(),
                          history.sort_values("seq").to_dict("records") if not history.empty else [],
                          adoptions.to_dict("records"), did.to_dict("records") if not did.empty else [],
                          event_study, pretrend)


def pretrend_check(rows: pd.DataFrame, level: float = 0.05) -> str:
    """The pre-trend check in words: do the event study's pre-adoption estimates (years -2 and before; -1 is
    the reference) stay near 0? Under parallel trends none should differ from 0 at the 5 % level."""
    pre = rows[(rows["rel_year"] <= -2) & rows["estimate"].notna()]
    if pre.empty:
        return "No pre-adoption years to check parallel trends against: read the estimate with caution."
    significant = pre[(pre["ci_low"] > 0) | (pre["ci_high"] < 0)] if pre["ci_low"].notna().any() else pre.iloc[0:0]
    years = f"years {int(pre['rel_year'].min())} to {int(pre['rel_year'].max())}" if len(pre) > 1 \
        else f"year {int(pre['rel_year'].iloc[0])}"
    if pre["ci_low"].isna().all():
        return (f"The pre-adoption estimates ({years}) have no confidence interval (too few adopters or "
                "controls): parallel trends cannot be checked.")
    if significant.empty:
        return (f"Pre-trend check passed: none of the {len(pre)} pre-adoption estimates ({years}) differs from 0 "
                f"at the {level:.0%} level, so adopters and controls moved alike before adoption, as the "
                "method assumes.")
    listed = ", ".join(str(int(y)) for y in significant["rel_year"])
    return (f"Pre-trend check failed: {len(significant)} of the {len(pre)} pre-adoption estimates ({years}) "
            f"differ from 0 at the {level:.0%} level (year {listed}): adopters and controls already moved apart "
            "before adoption, so the estimate may be biased; read it with caution.")
