"""Instrument impact: did an indicator move in the countries that adopted an instrument?

`instrument_impact(panel, instruments, adoptions)` on the annual long panel (`panel.py`) -> `Impact`:
`country_changes` (each adopter's pre/post window means and its DiD), `did` (per instrument x indicator x
scale: the average effect on the adopters, standard error, interval, p-value, df, n) and `event_study`
(the effect by year relative to adoption). Estimator, scales and caveats: docs/method-impact.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ioxhub.errors import IoxhubError
from ioxhub.harmonize.units import unit_kind

from consumers.derive.frames import TableLike, frame
from consumers.derive.stats import t_pvalue, t_quantile

COUNTRY_COLUMNS = ["instrument_id", "indicator", "unit", "country", "adoption_date", "adoption_year",
                   "pre_start", "pre_end", "post_start", "post_end", "n_pre", "n_post", "pre_mean",
                   "post_mean", "change", "pct_change", "n_controls", "control_change", "did",
                   "did_log", "included"]
DID_COLUMNS = ["instrument_id", "indicator", "unit", "scale", "primary", "estimate", "se", "ci_low",
               "ci_high", "p_value", "df", "pct_estimate", "pct_ci_low", "pct_ci_high",
               "n_treated_countries", "n_control_countries", "n_cohorts", "n_obs", "pre_years",
               "post_years", "control", "note"]
EVENT_COLUMNS = ["instrument_id", "indicator", "unit", "scale", "primary", "rel_year", "estimate", "se",
                 "ci_low", "ci_high", "p_value", "n_treated", "n_controls", "reference"]

NEVER = 10**6        # adoption year of a never-adopter


@dataclass(frozen=True)
class Impact:
    """The three impact tables (pandas DataFrames; columns in COUNTRY/DID/EVENT_COLUMNS)."""

    country_changes: pd.DataFrame
    did: pd.DataFrame
    event_study: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"impact_country_changes": self.country_changes, "impact_did": self.did,
                "impact_event_study": self.event_study}


@dataclass(frozen=True)
class _Series:
    """One indicator as a country x year matrix."""

    countries: np.ndarray     # sorted ISO3
    years: np.ndarray         # consecutive
    values: np.ndarray        # float, NaN = missing
    unit: str

    def cols(self, first: int, last: int) -> np.ndarray:
        """Column positions of years first..last inside the matrix (years outside are dropped)."""
        lo, hi = max(first, int(self.years[0])), min(last, int(self.years[-1]))
        return np.arange(lo - self.years[0], hi - self.years[0] + 1) if lo <= hi else np.arange(0)


def _series(rows: pd.DataFrame) -> _Series:
    countries, ci = np.unique(rows["ref_area"].to_numpy(dtype=object).astype(str), return_inverse=True)
    year = rows["year"].to_numpy(np.int64)
    y0 = int(year.min())
    values = np.full((len(countries), int(year.max()) - y0 + 1), np.nan)
    values[ci, year - y0] = rows["value"].to_numpy(np.float64)
    units = rows["unit"].astype(str).unique()
    return _Series(countries, np.arange(y0, int(year.max()) + 1), values, units[0] if len(units) else "")


def _att(cohorts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_countries: int) -> dict:
    """ATT over cohorts of (adopter outcomes, control outcomes, control country indexes)."""
    n_t = sum(len(a) for a, _, _ in cohorts)
    d = np.concatenate([a - b.mean() for a, b, _ in cohorts]) if n_t else np.zeros(0)
    influence = np.zeros(n_countries)
    used = np.zeros(n_countries, bool)
    for a, b, c in cohorts:
        np.add.at(influence, c, (len(a) / n_t) * (b - b.mean()) / len(b))
        used[c] = True
    n_c = int(used.sum())
    est = float(d.mean()) if n_t else math.nan
    out = {"estimate": est, "se": math.nan, "df": math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "p_value": math.nan, "n_treated": n_t, "n_controls": n_c}
    if n_t < 2 or n_c < 2:
        return out
    v_t = float(((d - est) ** 2).sum() / (n_t * (n_t - 1)))
    v_c = float((influence ** 2).sum() * n_c / (n_c - 1))
    se = math.sqrt(v_t + v_c)
    denom = v_t ** 2 / (n_t - 1) + v_c ** 2 / (n_c - 1)
    df = (v_t + v_c) ** 2 / denom if denom > 0 else math.nan
    q = t_quantile(0.975, df)
    out.update(se=se, df=df, ci_low=est - q * se, ci_high=est + q * se,
               p_value=t_pvalue(est / se, df) if se > 0 else math.nan)
    return out


def _window_means(values: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    block = values[:, cols]
    n = np.isfinite(block).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(block, axis=1) / np.maximum(n, 1), np.nan)
    return mean, n


def _controls(adopt: np.ndarray, until: int, control: str) -> np.ndarray:
    return adopt == NEVER if control == "never" else adopt > until


@dataclass(frozen=True)
class _Window:
    """One cohort's collapsed 2x2 on one scale: every country's window means and who is compared."""

    pre_mean: np.ndarray
    post_mean: np.ndarray
    n_pre: np.ndarray
    n_post: np.ndarray
    treated: np.ndarray       # indexes of the cohort's adopters with enough data
    controls: np.ndarray      # indexes of its clean controls with enough data

    @property
    def delta(self) -> np.ndarray:
        return self.post_mean - self.pre_mean


def _window(series: _Series, v: np.ndarray, adopt: np.ndarray, g: int, *, pre: int, post: int,
            control: str, min_pre_obs: int, min_post_obs: int) -> _Window:
    pre_m, n_pre = _window_means(v, series.cols(g - pre, g - 1))
    post_m, n_post = _window_means(v, series.cols(g, g + post - 1))
    valid = (n_pre >= min_pre_obs) & (n_post >= min_post_obs)
    return _Window(pre_m, post_m, n_pre, n_post, np.flatnonzero((adopt == g) & valid),
                   np.flatnonzero(_controls(adopt, g + post - 1, control) & valid))


def _pct(att: dict, scale: str) -> dict:
    """The ATT fields plus their % reading on the log scale."""
    keys = ("estimate", "se", "ci_low", "ci_high", "p_value", "df")
    out = {k: att[k] for k in keys}
    for k, src in (("pct_estimate", "estimate"), ("pct_ci_low", "ci_low"), ("pct_ci_high", "ci_high")):
        out[k] = 100.0 * math.expm1(att[src]) if scale == "log" and not math.isnan(att[src]) else math.nan
    return out


def _event_study(series: _Series, v: np.ndarray, adopt: np.ndarray, cohorts: list[int],
                 window: tuple[int, int], control: str) -> list[dict]:
    rows = []
    for e in range(window[0], window[1] + 1):
        stacks, n_ref = [], 0
        for g in cohorts:
            c_base, c_e = series.cols(g - 1, g - 1), series.cols(g + e, g + e)
            if not len(c_base) or not len(c_e):
                continue
            diff = v[:, c_e[0]] - v[:, c_base[0]]
            ok = np.isfinite(diff)
            treated = np.flatnonzero((adopt == g) & ok)
            ctrl = np.flatnonzero(_controls(adopt, max(g - 1, g + e), control) & (adopt != g) & ok)
            n_ref += len(treated)
            if len(treated) and len(ctrl):
                stacks.append((diff[treated], diff[ctrl], ctrl))
        if e == -1:      # the reference year: 0 by construction
            rows.append({"rel_year": -1, "estimate": 0.0, "se": math.nan, "ci_low": math.nan,
                         "ci_high": math.nan, "p_value": math.nan, "n_treated": n_ref, "n_controls": 0,
                         "reference": True})
        elif stacks:
            att = _att(stacks, len(series.countries))
            rows.append({"rel_year": e, **{k: att[k] for k in ("estimate", "se", "ci_low", "ci_high", "p_value",
                                                                "n_treated", "n_controls")},
                         "reference": False})
    return rows


def _one(series: _Series, adopt: np.ndarray, adoption_dates: dict, *, instrument_id: str, indicator: str,
         pre: int, post: int, event_window: tuple[int, int], control: str, scale: str,
         min_pre_obs: int, min_post_obs: int) -> tuple[list[dict], list[dict], list[dict]]:
    """The three tables' rows for one instrument and one indicator."""
    y = series.values
    positive = bool(np.nanmin(y) > 0) if np.isfinite(y).any() else False
    if scale == "auto":
        kind = unit_kind(series.unit)
        primary = "log" if kind is not None and kind.scale == "log" and positive else "level"
    else:
        primary = "log" if scale == "log" and positive else "level"
    scales = {"level": y, **({"log": np.log(y)} if positive else {})}
    cohorts = sorted({int(g) for g in adopt if g != NEVER})
    base = {"instrument_id": instrument_id, "indicator": indicator, "unit": series.unit}
    opts = dict(pre=pre, post=post, control=control, min_pre_obs=min_pre_obs, min_post_obs=min_post_obs)
    windows = {s: {g: _window(series, v, adopt, g, **opts) for g in cohorts} for s, v in scales.items()}

    did_rows, event_rows = [], []
    for sname, v in scales.items():
        stacks = [(w.delta[w.treated], w.delta[w.controls], w.controls)
                  for w in windows[sname].values() if len(w.treated) and len(w.controls)]
        n_obs = sum(int((w.n_pre + w.n_post)[np.r_[w.treated, w.controls]].sum())
                    for w in windows[sname].values() if len(w.treated) and len(w.controls))
        att = _att(stacks, len(series.countries))
        note = ("ok" if not math.isnan(att["se"]) else
                "no adopting member" if not cohorts else
                "no adopter with data in both windows" if att["n_treated"] == 0 else
                "no clean control country with data" if att["n_controls"] == 0 else
                "fewer than 2 adopters or controls: no standard error")
        flags = {"scale": sname, "primary": sname == primary}
        did_rows.append({**base, **flags, **_pct(att, sname), "n_treated_countries": att["n_treated"],
                         "n_control_countries": att["n_controls"], "n_cohorts": len(stacks), "n_obs": n_obs,
                         "pre_years": pre, "post_years": post, "control": control, "note": note})
        event_rows += [{**base, **flags, **r} for r in _event_study(series, v, adopt, cohorts, event_window, control)]

    country_rows = []
    for g in cohorts:
        w = windows["level"][g]
        wl = windows.get("log", {}).get(g)
        usable = set(w.treated.tolist()) if len(w.controls) else set()
        c_change = float(w.delta[w.controls].mean()) if len(w.controls) else math.nan
        for i in np.flatnonzero(adopt == g):
            inc = int(i) in usable
            did_log = math.nan
            if wl is not None and inc and len(wl.controls):
                did_log = float(wl.delta[i] - wl.delta[wl.controls].mean())
            pre_m, post_m = float(w.pre_mean[i]), float(w.post_mean[i])
            country_rows.append({
                **base, "country": series.countries[i], "adoption_date": adoption_dates[series.countries[i]],
                "adoption_year": g, "pre_start": g - pre, "pre_end": g - 1, "post_start": g,
                "post_end": g + post - 1, "n_pre": int(w.n_pre[i]), "n_post": int(w.n_post[i]),
                "pre_mean": pre_m, "post_mean": post_m, "change": post_m - pre_m,
                "pct_change": 100.0 * (post_m / pre_m - 1.0) if pre_m > 0 else math.nan,
                "n_controls": len(w.controls), "control_change": c_change,
                "did": post_m - pre_m - c_change if inc else math.nan, "did_log": did_log, "included": inc})
    return country_rows, did_rows, event_rows


def _related(instruments: TableLike) -> dict[str, list[str]]:
    """instrument_id -> related indicators (union over the rows given, first-seen order)."""
    df = frame(instruments, ["instrument_id", "related_indicators"], "instruments")
    out: dict[str, list[str]] = {}
    for iid, inds in zip(df["instrument_id"], df["related_indicators"]):
        acc = out.setdefault(str(iid), [])
        for ind in ([] if inds is None else list(inds)):
            if ind not in acc:
                acc.append(str(ind))
    return dict(sorted(out.items()))


def instrument_impact(panel: TableLike, instruments: TableLike, adoptions: TableLike, *, pre: int = 3,
                      post: int = 3, event_window: tuple[int, int] = (-4, 4), control: str = "not_yet",
                      scale: str = "auto", min_pre_obs: int = 2, min_post_obs: int = 2) -> Impact:
    """Impact of every instrument on each of its related indicators (see the module doc).

    `panel`: the annual long panel (indicator, ref_area, year, value, unit; freq "A").
    `instruments`: instrument_id, related_indicators (the compendium, or instrument versions: the
    union of the rows' related indicators is used). `adoptions`: instrument_id, country, adoption_date.
    Windows: pre = `pre` years before the adoption year, post = adoption year .. + `post` - 1; a country
    counts when it has at least `min_pre_obs` / `min_post_obs` observed years in them.
    """
    if pre < 1 or post < 1:
        raise IoxhubError(f"impact: pre and post windows must be at least 1 year (got pre={pre}, post={post})")
    if control not in ("not_yet", "never"):
        raise IoxhubError(f"impact: control must be 'not_yet' or 'never', got {control!r}")
    if scale not in ("auto", "level", "log"):
        raise IoxhubError(f"impact: scale must be 'auto', 'level' or 'log', got {scale!r}")
    if event_window[0] > -1 or event_window[1] < 0:
        raise IoxhubError(f"impact: event_window must span -1..0 at least, got {event_window}")
    p = frame(panel, ["indicator", "ref_area", "year", "value", "unit"], "panel")
    if "freq" in p.columns and set(p["freq"].unique()) - {"A"}:
        raise IoxhubError(f"impact: needs the annual panel, got frequencies {sorted(set(p['freq'].unique()))}")
    p = p[p["value"].notna()]
    ad = frame(adoptions, ["instrument_id", "country", "adoption_date"], "adoptions")
    ad["adoption_date"] = pd.to_datetime(ad["adoption_date"])
    ad = ad.sort_values(["instrument_id", "country", "adoption_date"]).drop_duplicates(["instrument_id", "country"])
    by_instrument = {iid: dict(zip(g["country"].astype(str), g["adoption_date"].dt.date))
                     for iid, g in ad.groupby("instrument_id", sort=True)}
    positions = p.groupby("indicator", sort=False).indices
    cache: dict[str, _Series] = {}

    countries, dids, events = [], [], []
    for iid, indicators in _related(instruments).items():
        dates = by_instrument.get(iid, {})
        for ind in indicators:
            if ind not in positions:
                dids.append({"instrument_id": iid, "indicator": ind, "scale": "level", "primary": True,
                             "n_treated_countries": 0, "n_control_countries": 0, "n_cohorts": 0, "n_obs": 0,
                             "pre_years": pre, "post_years": post, "control": control,
                             "note": "indicator not in the panel"})
                continue
            if ind not in cache:
                cache[ind] = _series(p.iloc[positions[ind]])
            series = cache[ind]
            adopt = np.array([dates[c].year if c in dates else NEVER for c in series.countries], np.int64)
            c, d, e = _one(series, adopt, dates, instrument_id=iid, indicator=ind, pre=pre, post=post,
                           event_window=event_window, control=control, scale=scale,
                           min_pre_obs=min_pre_obs, min_post_obs=min_post_obs)
            countries += c
            dids += d
            events += e
    return Impact(pd.DataFrame(countries, columns=COUNTRY_COLUMNS),
                  pd.DataFrame(dids, columns=DID_COLUMNS),
                  pd.DataFrame(events, columns=EVENT_COLUMNS))
