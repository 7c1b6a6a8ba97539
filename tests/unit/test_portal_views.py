"""The portal's pure logic: the pre-trend check in words, catalog filters, coverage grid and series shaping
(consumers/views.py), and the hand-built SVG charts (app/web/charts.py)."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pandas as pd
import pyarrow as pa
import pytest

from app.web import charts
from consumers import views

SVG = "{http://www.w3.org/2000/svg}"


def event_rows(pre: list[tuple[int, float, float, float]]) -> pd.DataFrame:
    rows = [{"rel_year": y, "estimate": e, "ci_low": lo, "ci_high": hi} for y, e, lo, hi in pre]
    rows += [{"rel_year": -1, "estimate": 0.0, "ci_low": math.nan, "ci_high": math.nan},
             {"rel_year": 0, "estimate": 5.0, "ci_low": 4.0, "ci_high": 6.0}]
    return pd.DataFrame(rows)


def test_pretrend_passes_when_every_pre_interval_holds_zero():
    text = views.pretrend_check(event_rows([(-3, 0.2, -0.5, 0.9), (-2, -0.1, -0.8, 0.6)]))
    assert text.startswith("Pre-trend check passed") and "none of the 2" in text and "years -3 to -2" in text


def test_pretrend_fails_and_names_the_years_whose_interval_excludes_zero():
    text = views.pretrend_check(event_rows([(-4, 0.1, -0.3, 0.5), (-3, 1.5, 0.4, 2.6), (-2, -2.0, -3.0, -1.0)]))
    assert text.startswith("Pre-trend check failed") and "2 of the 3" in text and "year -3, -2" in text


def test_pretrend_without_pre_years_or_intervals_says_it_cannot_check():
    assert "No pre-adoption years" in views.pretrend_check(event_rows([]))
    assert "cannot be checked" in views.pretrend_check(event_rows([(-2, 0.3, math.nan, math.nan)]))


ENTRIES = [
    {"name": "WCO.SEIZURES", "kind": "harmonized", "table": "harmonized.wco__s",
     "org": "WCO", "publishers": ["WCO"], "licence": "CC-BY-4.0", "title": "Hazardous waste seizures",
     "coverage": {"indicators": ["WCO.SEIZ"], "countries": ["FRA", "DEU"]}, "columns": ["indicator:string"]},
    {"name": "WHO.SHIPMENTS", "kind": "harmonized", "table": "harmonized.who__m",
     "org": "WHO", "publishers": ["WHO"], "licence": None, "title": "Medical shipments",
     "coverage": {"indicators": ["WHO.MED"], "countries": ["KEN"]}, "columns": ["indicator:string"]},
    {"name": "impact_did", "kind": "curated", "table": "curated.impact_did",
     "publishers": ["WCO", "WHO"], "coverage": {}, "columns": ["instrument_id:string", "estimate:double"]},
]


@pytest.mark.parametrize("filters, expected", [
    (views.CatalogFilters(), ["WCO.SEIZURES", "WHO.SHIPMENTS", "impact_did"]),
    (views.CatalogFilters(q="waste seizures"), ["WCO.SEIZURES"]),
    (views.CatalogFilters(q="difference-in-differences"), ["impact_did"]),
    (views.CatalogFilters(org="WHO"), ["WHO.SHIPMENTS", "impact_did"]),
    (views.CatalogFilters(indicator="WCO.SEIZ"), ["WCO.SEIZURES"]),
    (views.CatalogFilters(country="KEN"), ["WHO.SHIPMENTS"]),
    (views.CatalogFilters(licence="unspecified"), ["WHO.SHIPMENTS", "impact_did"]),
    (views.CatalogFilters(instrument="WCO-X"), ["WCO.SEIZURES", "impact_did"]),
    (views.CatalogFilters(q="nothing-like-this"), []),
])
def test_catalog_filters(filters, expected):
    view = views.catalog_view(ENTRIES, filters, {"WCO-X": ["WCO.SEIZ"]})
    assert [d["name"] for d in view.datasets] == expected
    assert view.choices["org"] == ["WCO", "WHO"] and view.choices["licence"] == ["CC-BY-4.0", "unspecified"]
    assert all(d["zone"] in ("harmonized", "curated") for d in view.datasets)


def test_coverage_grid_counts_rows_per_country_and_year_with_gaps():
    table = pa.table({"ref_area": ["FRA", "FRA", "FRA", "DEU"],
                      "period_start": pd.to_datetime(["2019-01-01", "2019-07-01", "2021-01-01", "2020-01-01"])})
    grid = views.coverage_grid(table, "ref_area", "period_start")
    assert grid.countries == ["DEU", "FRA"] and grid.years == [2019, 2020, 2021]
    assert grid.counts == {("FRA", 2019): 2, ("FRA", 2021): 1, ("DEU", 2020): 1} and grid.max == 2


def test_series_are_sorted_points_by_label():
    table = pa.table({"ref_area": ["FRA", "DEU", "FRA"], "year": [2021, 2020, 2020], "value": [2.0, 5.0, 1.0]})
    assert views.series(table, "ref_area", "year", "value") == {"DEU": [(2020.0, 5.0)],
                                                                "FRA": [(2020.0, 1.0), (2021.0, 2.0)]}


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def test_line_chart_is_an_accessible_svg_with_one_path_per_series_and_escaped_text():
    svg = parse(charts.line_chart("c1", {"FRA": [(2020, 1.0), (2021, 3.0)], "<b>": [(2020, 2.0), (2021, 2.5)]},
                                  "A & B", "year", "value"))
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "c1-title c1-desc"
    assert svg.find(f"{SVG}title").text == "A & B" and "FRA: 2 points" in svg.find(f"{SVG}desc").text
    assert len(svg.findall(f"{SVG}path")) == 2
    assert "<b>" in [t.text for t in svg.iter(f"{SVG}text")]


def test_event_study_chart_draws_the_band_through_the_reference_year():
    rows = [{"rel_year": y, "estimate": e, "ci_low": lo, "ci_high": hi, "reference": y == -1}
            for y, e, lo, hi in [(-2, 0.1, -0.4, 0.6), (-1, 0.0, math.nan, math.nan), (0, 0.2, 0.1, 0.3)]]
    svg = parse(charts.event_study_chart("e", rows, "t", "effect", scale=100.0))
    band = next(p for p in svg.iter(f"{SVG}path") if p.get("class") == "band")
    assert band.get("d").count("L") == 5          # 3 upper + 3 lower points, closed
    assert len([c for c in svg.iter(f"{SVG}circle")]) == 3
    assert "95 % interval 10 to 30" in "".join(c.find(f"{SVG}title").text for c in svg.iter(f"{SVG}circle"))


def test_heatmap_shades_cells_by_count_and_describes_the_grid():
    svg = parse(charts.heatmap("h", ["DEU", "FRA"], [2019, 2020], {("FRA", 2019): 4, ("DEU", 2020): 1}, "cov"))
    cells = {r.find(f"{SVG}title").text: r.get("fill") for r in svg.iter(f"{SVG}rect")}
    assert cells["FRA 2020: 0 observations"] == "#f2f2f2" and cells["FRA 2019: 4 observations"].endswith(",1.00)")
    assert "2 of 4 country-years" in svg.find(f"{SVG}desc").text


@pytest.mark.parametrize("lo, hi", [(0, 1), (-3.2, 17.5), (2015, 2025), (5, 5), (1e6, 9.3e6)])
def test_nice_ticks_cover_the_range_in_round_steps(lo, hi):
    ticks = charts.nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 12
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1


def test_default_countries_are_those_with_rows_for_the_picks():
    table = pa.table({"indicator": ["A", "A", "B", "B"], "ref_area": ["AAA", "ABW", "FRA", "DEU"]})
    assert views.values_where(table, "ref_area", {"indicator": "B"}) == ["DEU", "FRA"]
    assert views.values_where(table, "ref_area", {"indicator": "B", "scale": None, "absent": "x"}) == ["DEU", "FRA"]
    assert views.values_where(table, "ref_area", {}) == ["AAA", "ABW", "DEU", "FRA"]
