"""Data coverage: who publishes what, for which countries and periods (the ecosystem's own measure).

`data_coverage(observations, countries=None)` -> `Coverage(detail, by_org)`: `detail` per org x dataset x
indicator x freq (counts, countries, periods, releases, `grid_share` of the country x period grid),
`by_org` per publisher. Columns and the country universe: docs/evidence.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from consumers.derive.frames import TableLike, arrow_table, codes, day_numbers, decode, epoch_ns, group_ids

COLUMNS = ("org", "dataset_id", "release_id", "indicator", "ref_area", "counterpart_area", "commodity", "freq",
           "period", "period_start", "period_end", "value", "unit", "published_at")
DETAIL_COLUMNS = ["org", "dataset_id", "indicator", "freq", "unit", "n_obs", "n_obs_with_value", "n_obs_totals",
                  "n_countries", "n_periods", "first_period", "last_period", "first_period_start",
                  "last_period_end", "grid_cells", "grid_share", "country_share", "n_releases",
                  "last_published_at"]
ORG_COLUMNS = ["org", "n_datasets", "n_indicators", "n_obs", "n_countries", "first_period_start",
               "last_period_end", "mean_grid_share", "country_share", "last_published_at"]


@dataclass(frozen=True)
class Coverage:
    detail: pd.DataFrame
    by_org: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"coverage": self.detail, "coverage_by_org": self.by_org}


def _span(first: np.ndarray, last: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Number of periods of `freq` from the period starting on day `first` to the one starting on `last`."""
    f, l = first.astype("datetime64[D]"), last.astype("datetime64[D]")
    years = l.astype("datetime64[Y]").astype(np.int64) - f.astype("datetime64[Y]").astype(np.int64)
    months = l.astype("datetime64[M]").astype(np.int64) - f.astype("datetime64[M]").astype(np.int64)
    days = last - first
    span = np.select([freq == "A", freq == "S", freq == "Q", freq == "M", freq == "W"],
                     [years, months // 6, months // 3, months, days // 7], days)
    return span + 1


def data_coverage(observations: TableLike, countries: Sequence[str] | None = None) -> Coverage:
    """Coverage per org x dataset x indicator x freq, and per org (see the module doc)."""
    t = arrow_table(observations, COLUMNS, "observations")
    org, org_d = codes(t["org"])
    ds, ds_d = codes(t["dataset_id"])
    ind, ind_d = codes(t["indicator"])
    fq, fq_d = codes(t["freq"])
    area, area_d = codes(t["ref_area"])
    unit, unit_d = codes(t["unit"])
    rel, _ = codes(t["release_id"])
    per, per_d = codes(t["period"])
    cp, _ = codes(t["counterpart_area"])
    cm, _ = codes(t["commodity"])
    ps, pe = day_numbers(t["period_start"]), day_numbers(t["period_end"])
    df = pd.DataFrame({
        "org": org, "ds": ds, "ind": ind, "fq": fq, "area": area, "unit": unit, "rel": rel, "ps": ps, "pe": pe,
        "pub": epoch_ns(t["published_at"]), "has_value": t["value"].is_valid().to_numpy(zero_copy_only=False),
        "total": (cp < 0) & (cm < 0),
    })
    df["key"], _ = group_ids(org + 1, ds + 1, ind + 1, fq + 1)
    df["cell"], _ = group_ids(df["key"].to_numpy(), area + 1, ps - (ps.min() if len(ps) else 0))
    g = df.groupby("key", sort=False)
    detail = pd.DataFrame({
        "row": g["ps"].idxmin(), "last_row": g["ps"].idxmax(), "n_obs": g.size(),
        "n_obs_with_value": g["has_value"].sum(), "n_obs_totals": g["total"].sum(),
        "n_countries": g["area"].nunique(), "n_periods": g["ps"].nunique(), "first": g["ps"].min(),
        "last_start": g["ps"].max(), "last_end": g["pe"].max(), "grid_cells": g["cell"].nunique(),
        "n_releases": g["rel"].nunique(), "pub": g["pub"].max(), "n_units": g["unit"].nunique(),
    })
    row, last_row = detail["row"].to_numpy(), detail["last_row"].to_numpy()
    n_universe = len(set(countries)) if countries is not None else len(np.unique(area[area >= 0]))
    freq = np.asarray(decode(fq[row], fq_d).to_pylist(), dtype=object)
    span = _span(detail["first"].to_numpy(), detail["last_start"].to_numpy(), freq)
    units = decode(unit[row], unit_d).to_pandas().astype(object)
    units[detail["n_units"].to_numpy() > 1] = "MIXED"
    out = pd.DataFrame({
        "org": decode(org[row], org_d).to_pandas(), "dataset_id": decode(ds[row], ds_d).to_pandas(),
        "indicator": decode(ind[row], ind_d).to_pandas(), "freq": freq, "unit": units.to_numpy(),
        "n_obs": detail["n_obs"].to_numpy(), "n_obs_with_value": detail["n_obs_with_value"].to_numpy(),
        "n_obs_totals": detail["n_obs_totals"].to_numpy(), "n_countries": detail["n_countries"].to_numpy(),
        "n_periods": detail["n_periods"].to_numpy(),
        "first_period": decode(per[row], per_d).to_pandas(), "last_period": decode(per[last_row], per_d).to_pandas(),
        "first_period_start": detail["first"].to_numpy().astype("datetime64[D]").astype("datetime64[s]"),
        "last_period_end": detail["last_end"].to_numpy().astype("datetime64[D]").astype("datetime64[s]"),
        "grid_cells": detail["grid_cells"].to_numpy(),
        "grid_share": detail["grid_cells"].to_numpy() / (max(n_universe, 1) * span),
        "country_share": detail["n_countries"].to_numpy() / max(n_universe, 1),
        "n_releases": detail["n_releases"].to_numpy(),
        "last_published_at": pd.to_datetime(detail["pub"].to_numpy(), unit="ns", utc=True),
    })
    for col in ("org", "dataset_id", "indicator", "freq", "unit", "first_period", "last_period"):
        out[col] = out[col].astype("str")
    out = out.sort_values(["org", "dataset_id", "indicator", "freq"], kind="stable").reset_index(drop=True)

    by = df.groupby("org", sort=False)
    per_org = pd.DataFrame({"org_code": by.size().index, "n_obs": by.size().to_numpy(),
                            "n_countries": by["area"].nunique().to_numpy(),
                            "first": by["ps"].min().to_numpy(), "last": by["pe"].max().to_numpy(),
                            "pub": by["pub"].max().to_numpy()})
    per_org["org"] = decode(per_org["org_code"].to_numpy(), org_d).to_pandas().astype("str")
    agg = out.groupby("org").agg(n_datasets=("dataset_id", "nunique"), n_indicators=("indicator", "nunique"),
                                 mean_grid_share=("grid_share", "mean"))
    per_org = per_org.join(agg, on="org")
    by_org = pd.DataFrame({
        "org": per_org["org"], "n_datasets": per_org["n_datasets"], "n_indicators": per_org["n_indicators"],
        "n_obs": per_org["n_obs"], "n_countries": per_org["n_countries"],
        "first_period_start": per_org["first"].to_numpy().astype("datetime64[D]").astype("datetime64[s]"),
        "last_period_end": per_org["last"].to_numpy().astype("datetime64[D]").astype("datetime64[s]"),
        "mean_grid_share": per_org["mean_grid_share"],
        "country_share": per_org["n_countries"] / max(n_universe, 1),
        "last_published_at": pd.to_datetime(per_org["pub"].to_numpy(), unit="ns", utc=True),
    }).sort_values("org", kind="stable").reset_index(drop=True)
    return Coverage(out[DETAIL_COLUMNS], by_org[ORG_COLUMNS])
