"""The indicator panel: country x period x indicator across IOs, one frequency per output.

`indicator_panel(observations, freq="A")` -> long form, one row per (indicator, ref_area, period), with
provenance columns (`LONG_COLUMNS`); `panel_wide(long)` -> wide form, one row per (ref_area, period), one
column per indicator. Finer observations are aggregated by their unit's kind, missing totals filled from
one breakdown, revisions and competing sources settled by publication time; the rules:
docs/method-impact.md. Vectorized: integer codes and numpy/pandas group-bys, no per-row Python.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from ioxhub.errors import IoxhubError
from ioxhub.harmonize.units import unit_kind

from consumers.derive.frames import TableLike, arrow_table, codes, day_numbers, decode, epoch_ns, group_ids, latest_per_group, string_rank

log = logging.getLogger(__name__)

FREQS = "ASQMWD"                   # coarse -> fine
PANEL_FREQS = "ASQM"               # frequencies a panel can be built at
LEVELS = ("total", "sum_commodities", "sum_partners", "sum_partners_commodities")

OBSERVATION_COLUMNS = ("org", "dataset_id", "release_id", "schema_version", "indicator", "ref_area",
                       "counterpart_area", "commodity", "freq", "period_start", "period_end", "value",
                       "unit", "published_at")

LONG_COLUMNS = ["indicator", "ref_area", "freq", "period", "period_start", "period_end", "year", "value",
                "unit", "org", "dataset_id", "release_id", "schema_version", "published_at", "source_freq",
                "source_level", "n_obs", "coverage", "n_sources"]


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


_AGGREGATION_CLASS = {"sum": 1, "mean": 2}


def _unit_class(units: pa.Array) -> np.ndarray:
    """Per dictionary entry, from the unit's kind: 1 summed (flow), 2 averaged (level), 0 no kind."""
    kinds = [unit_kind(u) for u in units.to_pylist()]
    return np.array([0 if k is None else _AGGREGATION_CLASS[k.aggregation] for k in kinds], dtype=np.int8)


_MONTHS = {"A": 12, "S": 6, "Q": 3, "M": 1}


def _ordinal_start(ordinals: np.ndarray, freq: str) -> np.ndarray:
    """First day (days since epoch) of the target periods numbered `ordinals` (see `_periods`)."""
    return (ordinals * _MONTHS[freq]).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _periods(ps: np.ndarray, freq: str, freq_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(target period ordinal, position inside it) of each source period starting on day `ps`.

    Ordinal: months since 1970-01 // months per target period. Position: month offset for S/Q/M
    sources, 12 + day offset for W/D sources, so key ranges stay small and the two never collide.
    One calendar conversion (days -> months) for the whole column.
    """
    months = ps.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    tord = months // _MONTHS[freq]
    sub = months - tord * _MONTHS[freq]
    day_based = freq_rank + FREQS.index(freq) > FREQS.index("M")
    if day_based.any():
        sub = np.where(day_based, 12 + ps - _ordinal_start(tord, freq), sub)
    return tord, sub


def _aggregate(series: np.ndarray, n_series: int, use: np.ndarray, value: np.ndarray, ps: np.ndarray,
               pe: np.ndarray, n_src: np.ndarray, fields: dict) -> dict:
    """Per series: sum, count and covered days of the used, present values, observations used, and
    the `fields` of its latest published used row."""
    present = use & ~np.isnan(value)             # missing sub-periods add nothing and cover nothing
    out = {
        "sums": np.bincount(series, weights=np.where(present, value, 0.0), minlength=n_series),
        "counts": np.bincount(series, weights=present, minlength=n_series),
        "covered": np.bincount(series, weights=np.where(present, pe - ps + 1, 0).astype(np.float64),
                               minlength=n_series),
        "n_obs": np.bincount(series, weights=np.where(use, n_src, 0.0), minlength=n_series),
    }
    pick = latest_per_group(series, n_series, np.where(use, fields["pub"], np.iinfo(np.int64).min), fields["tb"])
    out.update({k: v[pick] for k, v in fields.items()})
    return out


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
    col = {name: codes(t[name]) for name in ("freq", "unit", "counterpart_area", "commodity", "org", "dataset_id",
                                             "indicator", "ref_area", "release_id", "schema_version")}
    freq_code, freq_dict = col["freq"]
    freq_pos = np.array([FREQS.find(f) if isinstance(f, str) else -1 for f in freq_dict.to_pylist()] + [-1], np.int64)
    freq_rank = freq_pos[freq_code] - FREQS.index(freq)           # code -1 (null) hits the trailing -1
    unit_code, unit_dict = col["unit"]
    unit_cls = np.append(_unit_class(unit_dict), 0)[unit_code]
    cm_dict = col["commodity"][1]
    cm_len = np.array([len(c) for c in cm_dict.to_pylist()] + [0], np.int64)[col["commodity"][0]]
    level = (col["counterpart_area"][0] >= 0).astype(np.int64) * 2 + (col["commodity"][0] >= 0)

    keep = (freq_rank >= 0) & ((freq_rank == 0) | (unit_cls > 0)) & ((level == 0) | (unit_cls == 1))
    if breakdown == "totals":
        keep &= level == 0
    unknown = np.unique(unit_code[(freq_rank > 0) & (unit_cls == 0) & (unit_code >= 0)])
    if len(unknown):
        log.warning("indicator panel: units %s have no aggregation rule; their sub-%s observations are not used",
                    sorted(unit_dict.take(pa.array(unknown)).to_pylist()), freq)
    rows = None if keep.all() else np.flatnonzero(keep)

    def kept(a: np.ndarray) -> np.ndarray:
        return a if rows is None else a[rows]

    org, ds, ind, area = (kept(col[c][0]) for c in ("org", "dataset_id", "indicator", "ref_area"))
    if (area < 0).any() or (ind < 0).any():
        raise IoxhubError("observations: indicator and ref_area must not be null")
    ps, pe = kept(day_numbers(t["period_start"])), kept(day_numbers(t["period_end"]))
    pub = kept(epoch_ns(t["published_at"]))
    value = kept(t["value"].to_numpy(zero_copy_only=False).astype(np.float64, copy=False))   # null -> NaN
    freq_rank, unit_cls, level, cm_len = (kept(a) for a in (freq_rank, unit_cls, level, cm_len))
    cp, cm, unit = (kept(col[c][0]) for c in ("counterpart_area", "commodity", "unit"))
    row_of = np.arange(t.num_rows) if rows is None else rows       # back to the input row (provenance)
    tord, sub = _periods(ps, freq, freq_rank)
    # Ties in published_at go to the greater (dataset_id, release_id), whatever the input order.
    n_rel = len(col["release_id"][1]) + 1
    tb = kept(string_rank(col["dataset_id"][0], col["dataset_id"][1]) * n_rel
              + string_rank(col["release_id"][0], col["release_id"][1]))

    # One source level per series and target period: native before aggregated, coarse before fine,
    # total before breakdowns, coarsest HS level first. A series is then all totals or all breakdowns.
    series, n_series = group_ids(org + 1, ds + 1, ind, area, unit + 1, tord - (tord.min() if len(tord) else 0))
    rank = freq_rank * 1000 + level * 100 + cm_len
    best = np.full(n_series, np.iinfo(np.int64).max)
    np.minimum.at(best, series, rank)
    sel = rank == best[series]
    if not sel.all():
        sel = np.flatnonzero(sel)
        series, sub, ps, pe, pub, value, level, freq_rank, unit_cls, cp, cm, row_of, tord, tb = (
            a[sel] for a in (series, sub, ps, pe, pub, value, level, freq_rank, unit_cls, cp, cm, row_of, tord, tb))
    fields = {"cls": unit_cls, "level": level, "rank": freq_rank, "tord": tord, "pub": pub, "src": row_of, "tb": tb}

    # Totals, aggregated in place (masks, not copies). Revisions: the latest published per sub-period.
    use = level == 0
    cell, n_cell = group_ids(series, sub)
    if n_cell < len(cell):
        per_cell = np.bincount(cell, weights=use, minlength=n_cell)
        if (per_cell > 1).any():
            latest = latest_per_group(cell, n_cell, np.where(use, pub, np.iinfo(np.int64).min), tb,
                                      np.nan_to_num(value, nan=-np.inf))
            chosen = np.zeros(len(cell), bool)
            chosen[latest[per_cell > 0]] = True
            use &= chosen
    g = _aggregate(series, n_series, use, value, ps, pe, np.ones(len(series)), fields)

    # Breakdowns (flow units only by construction): latest per cell, summed per sub-period, then
    # aggregated like totals; their series are disjoint from the totals' series.
    bd = np.flatnonzero(level > 0)
    if len(bd):
        b = {"series": series[bd], "sub": sub[bd], "ps": ps[bd], "pe": pe[bd], "value": value[bd],
             **{k: v[bd] for k, v in fields.items()}}
        bcell, n_bcell = group_ids(b["series"], b["sub"], cp[bd] + 1, cm[bd] + 1)
        if n_bcell < len(bcell):
            keep_b = latest_per_group(bcell, n_bcell, b["pub"], b["tb"], np.nan_to_num(b["value"], nan=-np.inf))
            b = {k: v[keep_b] for k, v in b.items()}
        period, n_period = group_ids(b["series"], b["sub"])
        missing = np.isnan(b["value"])
        # A sum with a missing cell is not a total: it becomes missing.
        sums = np.where(np.bincount(period, weights=missing, minlength=n_period) > 0, np.nan,
                        np.bincount(period, weights=np.where(missing, 0.0, b["value"]), minlength=n_period))
        n_cells = np.bincount(period, minlength=n_period).astype(np.float64)
        one = latest_per_group(period, n_period, b["pub"], b["tb"])
        b = {k: v[one] for k, v in b.items()}
        bs, n_bs = group_ids(b["series"])
        gb = _aggregate(bs, n_bs, np.ones(n_period, bool), sums, b["ps"], b["pe"], n_cells,
                        {k: b[k] for k in fields})
        at = np.zeros(n_bs, np.int64)
        at[bs] = b["series"]
        for k in g:
            g[k][at] = gb[k]

    g_start = _ordinal_start(g["tord"], freq)
    g_end = _ordinal_start(g["tord"] + 1, freq) - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        g_value = np.where(g["counts"] == 0, np.nan,
                           np.where(g["cls"] == 2, g["sums"] / np.maximum(g["counts"], 1), g["sums"]))
        coverage = np.where(g["rank"] == 0, 1.0, np.minimum(g["covered"] / (g_end - g_start + 1), 1.0))
    ok = np.flatnonzero((coverage >= min_coverage) & (g["counts"] > 0))
    g_value, g_start, g_end, coverage, n_obs, src, g_level, g_pub, g_tord, g_tb = (
        a[ok] for a in (g_value, g_start, g_end, coverage, g["n_obs"].astype(np.int64), g["src"], g["level"],
                        g["pub"], g["tord"], g["tb"]))

    # Competing sources for one indicator, country and period: the most recently published wins.
    ind_code, area_code = col["indicator"][0][src], col["ref_area"][0][src]
    key, n_keys = group_ids(ind_code, area_code, g_tord - (g_tord.min() if len(g_tord) else 0))
    n_sources = np.bincount(key, minlength=n_keys)[key]
    if n_keys < len(key):
        win = latest_per_group(key, n_keys, g_pub, g_tb)
        g_value, g_start, g_end, coverage, n_obs, src, g_level, g_pub, n_sources, ind_code, area_code = (
            a[win] for a in (g_value, g_start, g_end, coverage, n_obs, src, g_level, g_pub, n_sources,
                             ind_code, area_code))
    # Deterministic order: by indicator id, country code, period.
    ind_rank = np.argsort(np.argsort(np.asarray(col["indicator"][1].to_pylist(), dtype=object)))
    area_rank = np.argsort(np.argsort(np.asarray(col["ref_area"][1].to_pylist(), dtype=object)))
    order = np.lexsort((g_start, area_rank[area_code], ind_rank[ind_code]))
    src, start = src[order], g_start[order]

    def strings(name: str) -> pd.Series:
        c, d = col[name]
        return decode(c[src], d).to_pandas().astype("str")

    result = pd.DataFrame({
        "indicator": strings("indicator"), "ref_area": strings("ref_area"), "freq": freq,
        "period": pd.array(period_labels(start, freq), dtype="str"),
        "period_start": start.astype("datetime64[D]").astype("datetime64[s]"),
        "period_end": g_end[order].astype("datetime64[D]").astype("datetime64[s]"),
        "year": start.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970,
        "value": g_value[order], "unit": strings("unit"), "org": strings("org"), "dataset_id": strings("dataset_id"),
        "release_id": strings("release_id"), "schema_version": strings("schema_version"),
        "published_at": pd.to_datetime(g_pub[order], unit="ns", utc=True),
        "source_freq": decode(freq_code[src], freq_dict).to_pandas().astype("str"),
        "source_level": pd.array(np.asarray(LEVELS, dtype=object)[g_level[order]], dtype="str"),
        "n_obs": n_obs[order], "coverage": coverage[order], "n_sources": n_sources[order],
    })
    return result[LONG_COLUMNS]


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
