"""Data coverage counts per org x dataset x indicator x freq and per org."""
from __future__ import annotations

from derive_dgp import months, observations

from consumers.derive.coverage import DETAIL_COLUMNS, ORG_COLUMNS, data_coverage


def test_counts_periods_and_grid_share():
    rows = []
    for c in ("FRA", "DEU"):                                          # W.KG: 2 countries x 2020..2024, 2022 missing for DEU
        for y in (2020, 2021, 2022, 2023, 2024):
            if (c, y) != ("DEU", 2022):
                rows.append({"indicator": "W.KG", "ref_area": c, "freq": "A", "start": f"{y}-01-01",
                             "end": f"{y}-12-31", "value": 1.0, "unit": "KG", "period": str(y),
                             "release_id": f"r{y % 2}"})
    rows.append({"indicator": "W.KG", "ref_area": "FRA", "counterpart_area": "DEU", "freq": "A", "start": "2024-01-01",
                 "end": "2024-12-31", "value": None, "unit": "KG", "period": "2024"})
    for s, e in months(2024, 1, 6):                                    # W.H monthly, ITA only
        rows.append({"indicator": "W.H", "ref_area": "ITA", "freq": "M", "start": s, "end": e, "value": 2.0,
                     "unit": "HOURS", "period": s[:7]})
    rows.append({"indicator": "U.N", "ref_area": "FRA", "freq": "A", "start": "2024-01-01", "end": "2024-12-31",
                 "value": 3.0, "unit": "NUMBER", "period": "2024", "published_at": "2025-03-01"})
    cov = data_coverage(observations(rows))
    d = cov.detail
    assert list(d.columns) == DETAIL_COLUMNS and list(cov.by_org.columns) == ORG_COLUMNS
    assert d[["org", "indicator", "freq"]].values.tolist() == [["U", "U.N", "A"], ["W", "W.H", "M"], ["W", "W.KG", "A"]]
    kg = d[d.indicator == "W.KG"].iloc[0]
    assert (kg.n_obs, kg.n_obs_with_value, kg.n_obs_totals) == (10, 9, 9)
    assert (kg.n_countries, kg.n_periods, kg.first_period, kg.last_period) == (2, 5, "2020", "2024")
    assert kg.grid_cells == 9 and kg.grid_share == 9 / (3 * 5)        # universe: FRA, DEU, ITA
    assert kg.n_releases == 3 and kg.country_share == 2 / 3
    h = d[d.indicator == "W.H"].iloc[0]
    assert (h.n_periods, h.first_period, h.last_period, h.grid_share) == (6, "2024-01", "2024-06", 6 / (3 * 6))
    assert str(h.last_period_end.date()) == "2024-06-30"
    org = cov.by_org.set_index("org")
    assert org.loc["W", ["n_datasets", "n_indicators", "n_obs", "n_countries"]].tolist() == [1, 2, 16, 3]
    assert org.loc["W", "mean_grid_share"] == (9 / 15 + 6 / 18) / 2
    assert str(org.loc["U", "last_published_at"]) == "2025-03-01 00:00:00+00:00"
    universe = data_coverage(observations(rows), countries=[f"C{i}" for i in range(10)]).detail
    assert universe[universe.indicator == "W.KG"].iloc[0].grid_share == 9 / (10 * 5)
