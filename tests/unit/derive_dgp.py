"""A tiny data-generating process with known planted effects, for the derive tests (not a test module).

y[c, t] = country effect + common year effect (trend + shocks) + effect * adopted(c, t) + noise,
on the level scale, or the same on log(y) for flow units. Staggered adoption: a few cohorts of adopters,
the rest never adopt. Returned as an annual long panel with the columns of `indicator_panel`.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def make_panel(seed: int, *, indicator: str, unit: str, effect: float, scale: str, cohorts: dict[int, int],
               n_countries: int = 40, years: tuple[int, int] = (2008, 2024), noise: float = 1.0,
               base: float = 50.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(annual long panel, adoptions of instrument "INS") with `effect` from each adopter's adoption year.

    `cohorts`: adoption year -> number of adopting countries (the first countries in code order).
    """
    rng = np.random.default_rng(seed)
    countries = np.array([f"C{i:02d}" for i in range(n_countries)])
    yrs = np.arange(years[0], years[1] + 1)
    adopt = np.full(n_countries, 10_000)
    k = 0
    for year, n in sorted(cohorts.items()):
        adopt[k:k + n] = year
        k += n
    fe = rng.normal(0.0, 5.0 * noise, n_countries)
    year_fx = 0.3 * noise * (yrs - yrs[0]) + rng.normal(0.0, noise, len(yrs))
    treated = (yrs[None, :] >= adopt[:, None]).astype(float)
    z = fe[:, None] + year_fx[None, :] + effect * treated + rng.normal(0.0, noise, (n_countries, len(yrs)))
    value = np.exp(np.log(base) + z) if scale == "log" else base + z
    c_idx, y_idx = np.meshgrid(np.arange(n_countries), np.arange(len(yrs)), indexing="ij")
    panel = pd.DataFrame({
        "indicator": indicator, "ref_area": countries[c_idx.ravel()], "freq": "A",
        "period": yrs[y_idx.ravel()].astype(str), "year": yrs[y_idx.ravel()], "value": value.ravel(),
        "unit": unit, "org": indicator.split(".")[0],
    })
    adoptions = pd.DataFrame({
        "instrument_id": "INS", "country": countries[adopt < 10_000],
        "adoption_date": [dt.date(int(y), 3, 1) for y in adopt[adopt < 10_000]], "version": "1",
    })
    return panel, adoptions


def observations(rows: list[dict]) -> pd.DataFrame:
    """Harmonized observations from short dicts: indicator, ref_area, freq, start, end, value, unit and
    optionally counterpart_area, commodity, published_at, release_id, dataset_id, period."""
    full = []
    for r in rows:
        start, end = dt.date.fromisoformat(r["start"]), dt.date.fromisoformat(r["end"])
        full.append({
            "org": r.get("org", r["indicator"].split(".")[0]), "dataset_id": r.get("dataset_id", "ds1"),
            "release_id": r.get("release_id", "rel1"), "schema_version": "dataset_chunk/v1",
            "indicator": r["indicator"], "ref_area": r["ref_area"], "counterpart_area": r.get("counterpart_area"),
            "commodity": r.get("commodity"), "freq": r["freq"], "period": r.get("period", r["start"]),
            "period_start": start, "period_end": end, "year": start.year, "value": r["value"], "unit": r["unit"],
            "obs_status": None, "published_at": pd.Timestamp(r.get("published_at", "2025-01-01"), tz="UTC"),
        })
    return pd.DataFrame(full)


def months(year: int, first: int = 1, last: int = 12) -> list[tuple[str, str]]:
    """(start, end) ISO dates of the months first..last of `year`."""
    out = []
    for m in range(first, last + 1):
        nxt = dt.date(year + (m == 12), m % 12 + 1, 1)
        out.append((dt.date(year, m, 1).isoformat(), (nxt - dt.timedelta(days=1)).isoformat()))
    return out
