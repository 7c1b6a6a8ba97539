"""The indicator panel: country x period x indicator across IOs, one frequency per output.

`indicator_panel(observations, freq="A")` -> long form, one row per (indicator, ref_area, period);
`panel_wide(long)` -> wide form, one row per (ref_area, period), one column per indicator.

Rules (all vectorized: integer codes + numpy/pandas group-bys, no per-row Python):

- **Frequency.** The output has exactly one frequency, `freq` in A, S, Q, M. Observations published at
  that frequency are used as they are. Where a series (org, dataset, indicator, country) has no native
  observation for a target period, finer observations (S, Q, M, W, D) are aggregated into it, from the
  coarsest finer frequency available; a sub-period belongs to the target period holding its
  `period_start` (so a week straddling 31 December counts in the year it starts). Coarser observations
  than `freq` are never split (an annual figure does not make a monthly panel).
- **Aggregation by unit.** Flow units (`FLOW_UNITS`: KG, T, USD, NUMBER, DOSES, TEU...) are summed over
  sub-periods; rate and level units (`RATE_UNITS`: HOURS, DAYS, PERCENT...) are averaged (plain mean of
  the sub-period values). An aggregated value is kept only when its sub-periods cover at least
  `min_coverage` (default 0.95) of the target period's days (a year with 11 of 12 months is dropped,
  since its sum would look like a fall). Units in neither set are never aggregated (native rows only).
- **Breakdowns.** A country's total is the observation with no counterpart and no commodity. Where a
  series has no total for a period, `breakdown="fill"` (default) derives one by summing one disjoint
  breakdown, flow units only: the commodity breakdown at its coarsest HS level (no partner), else the
  partner breakdown (no commodity), else partner x commodity at the coarsest HS level. Summing one level
  only avoids double counting across HS levels or across the two dimensions; a breakdown that does not
  cover all partners/commodities gives a partial total (flagged by `source_level`). `breakdown="totals"`
  uses published totals only.
- **Missing values.** Observations with a null value still take part in choosing the source and in
  revisions (a revision to null withdraws a value), but the panel never holds a null: a breakdown sum
  with a missing cell is missing (not a smaller total), missing sub-periods cover no days (so the
  `min_coverage` rule decides), and a missing native value leaves the period out.
- **Revisions and sources.** Repeated observations of one series and period keep the latest
  `published_at`. If two datasets give the same indicator for the same country and period, the most
  recently published one wins (`n_sources` says how many competed).

Provenance columns: org (publisher), dataset_id, release_id, schema_version, published_at (of the most
recently published contributing observation), unit, source_freq, source_level, n_obs, coverage.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from ioxhub.errors import IoxhubError

from .frames import TableLike, arrow_table, codes, day_numbers, decode, epoch_ns, group_ids

log = logging.getLogger(__name__)

#: Units whose values add up over time and over partners/commodities.
FLOW_UNITS = frozenset({"KG", "T", "TONNES", "USD", "EUR", "NUMBER", "DOSES", "TEU", "ITEMS", "FLIGHTS",
                        "PASSENGERS", "CONTAINERS", "CALLS", "SHIPMENTS", "DECLARATIONS"})
#: Units of rates, durations and levels: averaged over time, never summed.
RATE_UNITS = frozenset({"HOURS", "DAYS", "MINUTES", "PERCENT", "RATIO", "INDEX", "SCORE", "USD_PER_KG"})

FREQS = "ASQMWD"                   # coarse -> fine
PANEL_FREQS = "ASQM"               # frequencies a panel can be built at
LEVELS = ("total", "sum_commodities", "sum_partners", "sum_partners_commodities")

OBSERVATION_COLUMNS = ("org", "dataset_id", "release_id", "schema_version", "indicator", "ref_area",
                       "counterpart_area", "commodity", "freq", "period_start", "period_end", "value",
                       "unit", "published_at")

LONG_COLUMNS = ["indicator", "ref_area", "freq", "period", "period_start", "period_end", "year", "value",
                "unit", "org", "dataset_id", "release_id", "schema_version", "published_at", "source_freq",
                "source_level", "n_obs", "coverage", "n_sources"]


def _target_start(days: np.ndarray, freq: str) -> np.ndarray:
    """First day (days since epoch) of the `freq` period holding each day."""
    d = days.astype("datetime64[D]")
    if freq == "A":
        return d.astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    months = d.astype("datetime64[M]").astype(np.int64)
    step = {"S": 6, "Q": 3, "M": 1}[freq]
    return (months - months % step).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _next_start(starts: np.ndarray, freq: str) -> np.ndarray:
    d = starts.astype("datetime64[D]")
    if freq == "A":
        return (d.astype("datetime64[Y]") + 1).astype("datetime64[D]").astype(np.int64)
    step = {"S": 6, "Q": 3, "M": 1}[freq]
    return (d.astype("datetime64[M]") + step).astype("datetime64[D]").astype(np.int64)


def period_labels(starts: np.ndarray, freq: str) -> np.ndarray:
    """SDMX-style labels ("2024", "2024-S1", "2024-Q1", "2024-03") for period start days (unique-wise)."""
    uniq, inverse = np.unique(starts, return_inverse=True)
    d = uniq.astype("datetime64[D]")
    years = d.astype("datetime64[Y]").astype(np.int64) + 1970
    months = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    if freq == "A":
        labels = [f"{y}" for y in years]
    elif freq == "S":
        labels = [f"{y}-S{(m - 1) // 6 + 1}" for y, m in zip(years, months)]
    elif freq == "Q":
        labels = [f"{y}-Q{(m - 1) // 3 + 1}" for y, m in zip(years, months)]
    else:
        labels = [f"{y}-{m:02d}" for y, m in zip(years, months)]
    return np.asarray(labels, dtype=object)[inverse]


def _unit_class(units: pa.Array) -> np.ndarray:
    """Per dictionary entry: 1 flow, 2 rate, 0 unknown."""
    names = units.to_pylist()
    return np.array([1 if u in FLOW_UNITS else 2 if u in RATE_UNITS else 0 for u in names], dtype=np.int8)


def _first_per_group(gid: np.ndarray, n: int, order_key: np.ndarray) -> np.ndarray:
    """Row index of the max `order_key` in each group (ties: the later row)."""
    order = np.lexsort((order_key, gid))
    last = np.r_[np.flatnonzero(np.diff(gid[order])), len(order) - 1] if len(order) else order
    return order[last]


def indicator_panel(observations: TableLike, freq: str = "A", *, breakdown: str = "fill",
                    min_coverage: float = 0.95) -> pd.DataFrame:
    """The long indicator panel at one frequency (see the module doc for the rules).

    Columns: `LONG_COLUMNS`; rows sorted by indicator, ref_area, period_start.
    """
    if freq not in PANEL_FREQS:
        raise IoxhubError(f"indicator panel: freq must be one of {', '.join(PANEL_FREQS)}, got {freq!r}")
    if breakdown not in ("fill", "totals"):
        raise IoxhubError(f"indicator panel: breakdown must be 'fill' or 'totals', got {breakdown!r}")
    t = arrow_table(observations, OBSERVATION_COLUMNS, "observations")

    freq_code, freq_dict = codes(t["freq"])
    freq_pos = np.array([FREQS.find(f) if isinstance(f, str) else -1 for f in freq_dict.to_pylist()], np.int64)
    src_pos = np.where(freq_code >= 0, freq_pos[freq_code], -1)
    target_pos = FREQS.index(freq)
    unit_code, unit_dict = codes(t["unit"])
    unit_cls = np.where(unit_code >= 0, _unit_class(unit_dict)[unit_code], 0)
    cp_code, cp_dict = codes(t["counterpart_area"])
    cm_code, cm_dict = codes(t["commodity"])
    cm_len_dict = np.array([len(c) for c in cm_dict.to_pylist()] or [0], np.int64)
    level = (cp_code >= 0).astype(np.int64) * 2 + (cm_code >= 0)

    freq_rank = src_pos - target_pos
    keep = (freq_rank >= 0) & ((freq_rank == 0) | (unit_cls > 0)) & ((level == 0) | (unit_cls == 1))
    if breakdown == "totals":
        keep &= level == 0
    dropped_units = sorted({unit_dict[int(u)].as_py() for u in np.unique(unit_code[(freq_rank > 0) & (unit_cls == 0)])
                            if u >= 0})
    if dropped_units:
        log.warning("indicator panel: units %s have no aggregation rule; their sub-%s observations are not used",
                    dropped_units, freq)
    rows = np.flatnonzero(keep)
    t = t.take(pa.array(rows))
    freq_rank, unit_code, unit_cls, cp_code, cm_code, level = (
        a[rows] for a in (freq_rank, unit_code, unit_cls, cp_code, cm_code, level))
    cm_len = np.where(cm_code >= 0, cm_len_dict[np.maximum(cm_code, 0)], 0)

    org, org_dict = codes(t["org"])
    ds, ds_dict = codes(t["dataset_id"])
    ind, ind_dict = codes(t["indicator"])
    area, area_dict = codes(t["ref_area"])
    if (area < 0).any() or (ind < 0).any():
        raise IoxhubError("observations: indicator and ref_area must not be null")
    ps = day_numbers(t["period_start"])
    pe = day_numbers(t["period_end"])
    pub = epoch_ns(t["published_at"])
    value = t["value"].to_numpy(zero_copy_only=False).astype(np.float64, copy=False)   # null -> NaN
    tstart = _target_start(ps, freq)

    # One source level per series and target period: native before aggregated, coarse before fine,
    # total before breakdowns, coarsest HS level first.
    series, n_series = group_ids(org, ds, ind, area, unit_code + 1, tstart - tstart.min() if len(tstart) else tstart)
    rank = freq_rank * 1000 + level * 100 + cm_len
    best = pd.Series(rank).groupby(series, sort=False).transform("min").to_numpy()
    sel = np.flatnonzero(rank == best)
    if len(sel) < len(rank):
        series, n_series = series[sel], n_series
        rank = rank[sel]
        ps, pe, pub, value, level, freq_rank, cp_code, cm_code, unit_cls = (
            a[sel] for a in (ps, pe, pub, value, level, freq_rank, cp_code, cm_code, unit_cls))
        row_of = sel
    else:
        row_of = np.arange(len(rank))

    # Revisions: one observation per series, source period and breakdown cell (latest published).
    cell, n_cell = group_ids(series, ps - ps.min() if len(ps) else ps, cp_code + 1, cm_code + 1)
    if n_cell < len(cell):
        pick = _first_per_group(cell, n_cell, pub)
        series, ps, pe, pub, value, level, freq_rank, unit_cls, row_of = (
            a[pick] for a in (series, ps, pe, pub, value, level, freq_rank, unit_cls, row_of))

    # Breakdowns -> one value per series and source period (sum; flow units only by construction).
    if (level > 0).any():
        sub, n_sub = group_ids(series, ps - ps.min())
        missing = np.isnan(value)
        # A sum with a missing cell is not a total: it becomes missing.
        value = np.where(np.bincount(sub, weights=missing, minlength=n_sub) > 0, np.nan,
                         np.bincount(sub, weights=np.where(missing, 0.0, value), minlength=n_sub))
        n_src = np.bincount(sub, minlength=n_sub)
        pick = _first_per_group(sub, n_sub, pub)     # latest published cell; other fields are constant
        series, ps, pe, pub, level, freq_rank, unit_cls, row_of = (
            a[pick] for a in (series, ps, pe, pub, level, freq_rank, unit_cls, row_of))
    else:
        n_src = np.ones(len(series), np.int64)

    # Sub-periods -> the target period.
    gid, n_groups = group_ids(series)
    present = ~np.isnan(value)               # missing sub-periods add nothing and cover nothing
    sums = np.bincount(gid, weights=np.where(present, value, 0.0), minlength=n_groups)
    counts = np.bincount(gid, weights=present, minlength=n_groups)
    covered = np.bincount(gid, weights=np.where(present, pe - ps + 1, 0).astype(np.float64), minlength=n_groups)
    n_obs = np.bincount(gid, weights=n_src, minlength=n_groups).astype(np.int64)
    pick = _first_per_group(gid, n_groups, pub)
    src_row = row_of[pick]
    g_cls, g_level, g_rank = unit_cls[pick], level[pick], freq_rank[pick]
    with np.errstate(invalid="ignore", divide="ignore"):
        g_value = np.where(counts == 0, np.nan, np.where(g_cls == 2, sums / counts, sums))
    g_start = tstart[src_row]
    g_end = _next_start(g_start, freq) - 1
    coverage = np.where(g_rank == 0, 1.0, np.minimum(covered / (g_end - g_start + 1), 1.0))
    ok = (coverage >= min_coverage) & (counts > 0)
    if not ok.all():
        g_value, g_start, g_end, coverage, n_obs, src_row, g_level, pub_g = (
            a[ok] for a in (g_value, g_start, g_end, coverage, n_obs, src_row, g_level, pub[pick]))
    else:
        pub_g = pub[pick]

    out = pd.DataFrame({
        "ind": ind[src_row], "area": area[src_row], "start": g_start, "pub": pub_g, "row": src_row,
        "value": g_value, "end": g_end, "coverage": coverage, "n_obs": n_obs, "level": g_level,
    })
    # Competing sources for the same indicator, country and period: the most recently published wins.
    out = out.sort_values(["ind", "area", "start", "pub"], kind="stable")
    n_sources = out.groupby(["ind", "area", "start"], sort=False)["pub"].transform("size").to_numpy()
    last = ~out.duplicated(["ind", "area", "start"], keep="last").to_numpy()
    out, n_sources = out[last], n_sources[last]
    # Deterministic order: by indicator id, country code, period.
    ind_names = np.asarray(ind_dict.to_pylist(), dtype=object)
    area_names = np.asarray(area_dict.to_pylist(), dtype=object)
    order = np.lexsort((out["start"].to_numpy(), np.argsort(np.argsort(area_names))[out["area"].to_numpy()],
                        np.argsort(np.argsort(ind_names))[out["ind"].to_numpy()]))
    out, n_sources = out.iloc[order], n_sources[order]
    src = out["row"].to_numpy()
    start = out["start"].to_numpy()

    result = pd.DataFrame({
        "indicator": pd.array(ind_names[out["ind"].to_numpy()], dtype="str"),
        "ref_area": pd.array(area_names[out["area"].to_numpy()], dtype="str"),
        "freq": freq,
        "period": pd.array(period_labels(start, freq), dtype="str"),
        "period_start": start.astype("datetime64[D]").astype("datetime64[s]"),
        "period_end": out["end"].to_numpy().astype("datetime64[D]").astype("datetime64[s]"),
        "year": (start.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970),
        "value": out["value"].to_numpy(),
        "unit": decode(unit_code[src], unit_dict).to_pandas(),
        "org": decode(org[src], org_dict).to_pandas(),
        "dataset_id": decode(ds[src], ds_dict).to_pandas(),
        "release_id": t["release_id"].take(pa.array(src)).to_pandas(),
        "schema_version": t["schema_version"].take(pa.array(src)).to_pandas(),
        "published_at": pd.to_datetime(out["pub"].to_numpy(), unit="ns", utc=True),
        "source_freq": decode(np.asarray(freq_code)[rows][src], freq_dict).to_pandas(),
        "source_level": np.asarray(LEVELS, dtype=object)[out["level"].to_numpy()],
        "n_obs": out["n_obs"].to_numpy(),
        "coverage": out["coverage"].to_numpy(),
        "n_sources": n_sources,
    })
    for col in ("unit", "org", "dataset_id", "release_id", "schema_version", "source_freq", "source_level"):
        result[col] = result[col].astype("str")
    return result.reset_index(drop=True)[LONG_COLUMNS]


def panel_wide(long: pd.DataFrame) -> pd.DataFrame:
    """One row per (ref_area, period), one float column per indicator (named by its id), sorted.

    Provenance and units stay in the long form; the wide form is for analysis tools that want columns.
    """
    for col in ("indicator", "ref_area", "freq", "period", "period_start", "year", "value"):
        if col not in long.columns:
            raise IoxhubError(f"panel_wide: the long panel has no column {col}")
    freqs = long["freq"].unique()
    if len(freqs) > 1:
        raise IoxhubError(f"panel_wide: one frequency per output, the long panel mixes {sorted(freqs)}")
    wide = long.pivot(index=["ref_area", "freq", "period", "period_start", "year"], columns="indicator",
                      values="value")
    wide = wide.reindex(columns=sorted(wide.columns)).sort_index()
    wide.columns.name = None
    return wide.reset_index()
