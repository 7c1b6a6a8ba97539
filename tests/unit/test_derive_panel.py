"""Indicator panel: one frequency per output, unit-aware aggregation, breakdowns, revisions, wide form."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from derive_dgp import months, observations

from consumers.derive.panel import LONG_COLUMNS, indicator_panel, panel_wide
from ioxhub.errors import IoxhubError


def monthly(indicator, area, year, unit, values, first=1, **kw):
    return [{"indicator": indicator, "ref_area": area, "freq": "M", "start": s, "end": e, "value": v, "unit": unit, **kw}
            for (s, e), v in zip(months(year, first, first + len(values) - 1), values)]


def annual(indicator, area, year, unit, value, **kw):
    return {"indicator": indicator, "ref_area": area, "freq": "A", "start": f"{year}-01-01", "end": f"{year}-12-31",
            "value": value, "unit": unit, **kw}


def row(panel, indicator, area, period):
    hit = panel[(panel.indicator == indicator) & (panel.ref_area == area) & (panel.period == period)]
    assert len(hit) <= 1
    return None if hit.empty else hit.iloc[0]


def test_flows_sum_rates_average_to_annual():
    obs = observations(monthly("W.KG", "FRA", 2024, "KG", list(range(1, 13)))
                       + monthly("W.H", "FRA", 2024, "HOURS", list(range(1, 13))))
    p = indicator_panel(obs, "A")
    assert list(p.columns) == LONG_COLUMNS
    assert set(p["freq"]) == {"A"}
    kg, h = row(p, "W.KG", "FRA", "2024"), row(p, "W.H", "FRA", "2024")
    assert kg.value == 78.0 and kg.n_obs == 12 and kg.source_freq == "M" and kg.coverage == 1.0
    assert h.value == 6.5 and h.unit == "HOURS"
    assert str(kg.period_start.date()) == "2024-01-01" and str(kg.period_end.date()) == "2024-12-31"


def test_quarterly_and_semester_panels_from_months():
    obs = observations(monthly("W.KG", "FRA", 2024, "KG", [1.0] * 12) + monthly("W.H", "FRA", 2024, "HOURS", list(range(1, 13))))
    q = indicator_panel(obs, "Q")
    assert q[q.indicator == "W.KG"]["period"].tolist() == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    assert q[q.indicator == "W.KG"]["value"].tolist() == [3.0] * 4
    assert q[q.indicator == "W.H"]["value"].tolist() == [2.0, 5.0, 8.0, 11.0]
    s = indicator_panel(obs, "S")
    assert s[s.indicator == "W.KG"]["period"].tolist() == ["2024-S1", "2024-S2"]
    m = indicator_panel(obs, "M")
    assert m["period"].iloc[:3].tolist() == ["2024-01", "2024-02", "2024-03"] and len(m) == 24


def test_incomplete_years_dropped_unless_allowed():
    obs = observations(monthly("W.KG", "DEU", 2024, "KG", [1.0] * 11))
    assert indicator_panel(obs, "A").empty
    p = indicator_panel(obs, "A", min_coverage=0.9)
    assert p.value.tolist() == [11.0] and p.coverage.iloc[0] == pytest.approx(335 / 366)


def test_native_frequency_preferred_and_coarser_never_split():
    obs = observations(monthly("W.KG", "FRA", 2024, "KG", [1.0] * 12) + [annual("W.KG", "FRA", 2024, "KG", 100.0),
                                                                        annual("W.KG", "FRA", 2023, "KG", 50.0)])
    p = indicator_panel(obs, "A")
    assert row(p, "W.KG", "FRA", "2024").value == 100.0 and row(p, "W.KG", "FRA", "2024").source_freq == "A"
    q = indicator_panel(obs, "Q")
    assert set(q.year) == {2024} and len(q) == 4          # the annual figures do not enter a quarterly panel


def test_weeks_belong_to_the_period_they_start_in():
    weeks = [{"indicator": "W.N", "ref_area": "FRA", "freq": "W", "start": s, "end": e, "value": 1.0, "unit": "NUMBER"}
             for s, e in (("2024-01-22", "2024-01-28"), ("2024-01-29", "2024-02-04"), ("2024-02-05", "2024-02-11"))]
    m = indicator_panel(observations(weeks), "M", min_coverage=0.0)
    assert m.set_index("period")["value"].to_dict() == {"2024-01": 2.0, "2024-02": 1.0}


def test_breakdowns_fill_missing_totals_at_one_level():
    obs = observations([
        annual("W.KG", "FRA", 2024, "KG", 1000.0),                                   # total published
        annual("W.KG", "FRA", 2024, "KG", 400.0, counterpart_area="DEU"),
        annual("W.KG", "DEU", 2024, "KG", 30.0, commodity="01"),                     # HS2 + HS4: only HS2 summed
        annual("W.KG", "DEU", 2024, "KG", 70.0, commodity="02"),
        annual("W.KG", "DEU", 2024, "KG", 25.0, commodity="0101"),
        annual("W.KG", "DEU", 2024, "KG", 999.0, counterpart_area="FRA", commodity="01"),
        annual("W.KG", "ITA", 2024, "KG", 5.0, counterpart_area="FRA"),             # partners only
        annual("W.KG", "ITA", 2024, "KG", 6.0, counterpart_area="DEU"),
        annual("W.H", "ITA", 2024, "HOURS", 6.0, counterpart_area="DEU"),           # a rate: never summed
    ])
    p = indicator_panel(obs, "A")
    assert (row(p, "W.KG", "FRA", "2024").value, row(p, "W.KG", "FRA", "2024").source_level) == (1000.0, "total")
    deu = row(p, "W.KG", "DEU", "2024")
    assert (deu.value, deu.source_level, deu.n_obs) == (100.0, "sum_commodities", 2)
    ita = row(p, "W.KG", "ITA", "2024")
    assert (ita.value, ita.source_level) == (11.0, "sum_partners")
    assert row(p, "W.H", "ITA", "2024") is None
    totals = indicator_panel(obs, "A", breakdown="totals")
    assert totals[["indicator", "ref_area"]].values.tolist() == [["W.KG", "FRA"]]


def test_monthly_breakdowns_sum_then_aggregate():
    obs = observations(monthly("W.KG", "FRA", 2024, "KG", [1.0] * 12, counterpart_area="DEU")
                       + monthly("W.KG", "FRA", 2024, "KG", [2.0] * 12, counterpart_area="ITA"))
    r = indicator_panel(obs, "A").iloc[0]
    assert (r.value, r.n_obs, r.coverage, r.source_level) == (36.0, 24, 1.0, "sum_partners")


def test_revisions_and_competing_sources_keep_the_latest():
    obs = observations([
        annual("W.KG", "FRA", 2024, "KG", 1.0, release_id="r1", published_at="2025-01-01"),
        annual("W.KG", "FRA", 2024, "KG", 2.0, release_id="r2", published_at="2025-06-01"),
        annual("W.KG", "FRA", 2024, "KG", 3.0, release_id="r0", published_at="2024-06-01"),
        annual("W.KG", "DEU", 2024, "KG", 10.0, dataset_id="old", published_at="2025-01-01"),
        annual("W.KG", "DEU", 2024, "KG", 20.0, dataset_id="new", published_at="2025-02-01"),
    ])
    p = indicator_panel(obs, "A")
    fra, deu = row(p, "W.KG", "FRA", "2024"), row(p, "W.KG", "DEU", "2024")
    assert (fra.value, fra.release_id, fra.n_sources) == (2.0, "r2", 1)
    assert (deu.value, deu.dataset_id, deu.n_sources) == (20.0, "new", 2)
    assert str(deu.published_at) == "2025-02-01 00:00:00+00:00"


def test_wide_form_and_arrow_input_with_dictionaries():
    rng = np.random.default_rng(1)
    rows = [annual(ind, c, y, "KG", float(rng.integers(1, 100)))
            for ind in ("B.X", "A.Y") for c in ("FRA", "DEU", "ITA") for y in (2022, 2023, 2024)][:-1]
    obs = observations(rows)
    long = indicator_panel(obs, "A")
    assert long[["indicator", "ref_area", "year"]].values.tolist()[:2] == [["A.Y", "DEU", 2022], ["A.Y", "DEU", 2023]]
    table = pa.Table.from_pandas(obs.sample(frac=1.0, random_state=2), preserve_index=False)
    table = table.set_column(table.schema.get_field_index("indicator"), "indicator", table["indicator"].dictionary_encode())
    pd.testing.assert_frame_equal(indicator_panel(table, "A"), long)
    wide = panel_wide(long)
    assert list(wide.columns) == ["ref_area", "freq", "period", "period_start", "year", "A.Y", "B.X"]
    assert len(wide) == 9
    cell = wide[(wide.ref_area == "DEU") & (wide.year == 2023)]["B.X"].iloc[0]
    assert cell == row(long, "B.X", "DEU", "2023").value
    assert np.isnan(wide[(wide.ref_area == "ITA") & (wide.year == 2024)]["A.Y"].iloc[0])


def test_one_frequency_per_output_is_enforced():
    obs = observations([annual("W.KG", "FRA", 2024, "KG", 1.0)])
    with pytest.raises(IoxhubError, match="freq must be one of"):
        indicator_panel(obs, "W")
    mixed = pd.concat([indicator_panel(obs, "A"), indicator_panel(observations(monthly("W.KG", "FRA", 2024, "KG", [1.0])), "M")])
    with pytest.raises(IoxhubError, match="one frequency per output"):
        panel_wide(mixed)
    with pytest.raises(IoxhubError, match="observations: missing column.*unit"):
        indicator_panel(obs.drop(columns=["unit"]), "A")


def test_missing_values_never_become_smaller_totals():
    obs = observations([
        annual("W.KG", "DEU", 2024, "KG", 30.0, commodity="01"),
        annual("W.KG", "DEU", 2024, "KG", None, commodity="02"),                   # a missing cell
        annual("W.KG", "DEU", 2023, "KG", 30.0, commodity="01"),
        annual("W.KG", "DEU", 2023, "KG", 40.0, commodity="02"),
        annual("W.KG", "FRA", 2024, "KG", None),                                    # a missing total
    ] + monthly("W.H", "ITA", 2024, "HOURS", [1.0] * 11 + [None]))
    p = indicator_panel(obs, "A")
    assert p[["ref_area", "year", "value"]].values.tolist() == [["DEU", 2023, 70.0]]
    assert p["value"].notna().all()
    loose = indicator_panel(obs, "A", min_coverage=0.9)
    assert row(loose, "W.H", "ITA", "2024").value == 1.0 and row(loose, "W.H", "ITA", "2024").n_obs == 12


def test_row_order_never_changes_the_panel():
    """Ties in published_at (same day, two releases or datasets) resolve the same way in any row order."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(3000):
        y, m = int(rng.integers(2020, 2023)), int(rng.integers(1, 13))
        (s, e), = months(y, m, m)
        rows.append({"indicator": str(rng.choice(["W.KG", "W.H"])), "ref_area": str(rng.choice(["FRA", "DEU"])),
                     "freq": "M", "start": s, "end": e, "value": float(i), "unit": "KG",
                     "dataset_id": str(rng.choice(["d1", "d2"])), "release_id": str(rng.choice(["r1", "r2"])),
                     "counterpart_area": rng.choice([None, "USA"]),
                     "published_at": str(rng.choice(["2025-01-01", "2025-01-02"]))})
    obs = observations(rows)
    expect = indicator_panel(obs, "A", min_coverage=0.0)
    assert (expect["n_sources"] == 2).any()
    for seed in range(3):
        shuffled = obs.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        pd.testing.assert_frame_equal(indicator_panel(shuffled, "A", min_coverage=0.0), expect)
