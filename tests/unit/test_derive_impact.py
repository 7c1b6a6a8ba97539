"""Instrument impact: planted effects recovered, placebo null, flat pre-trends, per-country windows."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from derive_dgp import make_panel

from consumers.derive.impact import COUNTRY_COLUMNS, DID_COLUMNS, EVENT_COLUMNS, instrument_impact
from ioxhub.errors import IoxhubError

STAGGERED = {2013: 3, 2015: 4, 2017: 3, 2019: 2}


def instruments(**related):
    return pd.DataFrame({"instrument_id": list(related), "related_indicators": [list(v) for v in related.values()]})


def primary(impact, indicator):
    d = impact.did[(impact.did.indicator == indicator) & impact.did.primary]
    assert len(d) == 1
    return d.iloc[0]


def assert_recovers(d, truth):
    assert abs(d.estimate - truth) < 3 * d.se, (d.estimate, d.se)
    assert d.ci_low <= truth <= d.ci_high


@pytest.fixture(scope="module")
def world():
    """Hours fall by 3 (levels), items rise 20 % (logs), a placebo indicator moves by nothing."""
    h, ad = make_panel(0, indicator="X.H", unit="HOURS", effect=-3.0, scale="level", cohorts=STAGGERED)
    n, _ = make_panel(1, indicator="X.N", unit="NUMBER", effect=math.log(1.2), scale="log", cohorts=STAGGERED, noise=0.05)
    p, _ = make_panel(2, indicator="X.P", unit="NUMBER", effect=0.0, scale="log", cohorts=STAGGERED, noise=0.05)
    panel = pd.concat([h, n, p], ignore_index=True)
    adoptions = pd.concat([ad, ad.assign(instrument_id="PLACEBO")], ignore_index=True)
    impact = instrument_impact(panel, instruments(INS=["X.H", "X.N", "X.MISSING"], PLACEBO=["X.P"]), adoptions)
    return panel, adoptions, impact


def test_recovers_level_effect(world):
    _, _, impact = world
    assert list(impact.did.columns) == DID_COLUMNS
    d = primary(impact, "X.H")
    assert d.scale == "level" and d.note == "ok"
    assert_recovers(d, -3.0)
    assert d.p_value < 0.01
    assert (d.n_treated_countries, d.n_cohorts, d.control) == (12, 4, "not_yet")
    assert d.n_control_countries == 28 + 3 + 2     # never-adopters + the 2017 and 2019 cohorts while untreated


def test_recovers_log_effect_as_percent(world):
    _, _, impact = world
    d = primary(impact, "X.N")
    assert d.scale == "log"
    assert_recovers(d, math.log(1.2))
    assert d.pct_ci_low <= 20.0 <= d.pct_ci_high
    assert d.pct_estimate == pytest.approx(100 * math.expm1(d.estimate))
    level = impact.did[(impact.did.indicator == "X.N") & (impact.did.scale == "level")].iloc[0]
    assert not level.primary and level.estimate > 0 and math.isnan(level.pct_estimate)


def test_placebo_instrument_shows_nothing(world):
    _, _, impact = world
    d = primary(impact, "X.P")
    assert d.instrument_id == "PLACEBO"
    assert d.p_value > 0.05 and d.ci_low <= 0.0 <= d.ci_high


def test_event_study_flat_before_and_effect_after(world):
    _, _, impact = world
    assert list(impact.event_study.columns) == EVENT_COLUMNS
    es = impact.event_study[(impact.event_study.indicator == "X.H") & impact.event_study.primary].set_index("rel_year")
    assert list(es.index) == [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert es.loc[-1, "estimate"] == 0.0 and es.loc[-1, "reference"]
    for e in (-4, -3, -2):
        assert abs(es.loc[e, "estimate"]) < 3 * es.loc[e, "se"]
        assert es.loc[e, "ci_low"] <= 0.0 <= es.loc[e, "ci_high"]
    for e in (0, 1, 2, 3):
        assert es.loc[e, "ci_low"] <= -3.0 <= es.loc[e, "ci_high"] and es.loc[e, "ci_high"] < 0


def test_country_windows_by_hand(world):
    panel, _, impact = world
    cc = impact.country_changes
    assert list(cc.columns) == COUNTRY_COLUMNS
    c = cc[(cc.indicator == "X.H") & (cc.country == "C03")].iloc[0]        # adopted in 2015
    v = panel[panel.indicator == "X.H"].pivot(index="ref_area", columns="year", values="value")
    assert (c.adoption_year, c.pre_start, c.pre_end, c.post_start, c.post_end) == (2015, 2012, 2014, 2015, 2017)
    assert c.pre_mean == pytest.approx(v.loc["C03", [2012, 2013, 2014]].mean())
    assert c.post_mean == pytest.approx(v.loc["C03", [2015, 2016, 2017]].mean())
    controls = [f"C{i:02d}" for i in range(10, 40)]        # never (C12..) plus the 2019 cohort (C10, C11)
    ctrl = (v.loc[controls, [2015, 2016, 2017]].mean(axis=1) - v.loc[controls, [2012, 2013, 2014]].mean(axis=1)).mean()
    assert c.control_change == pytest.approx(ctrl) and c.n_controls == 30
    assert c.did == pytest.approx(c.change - ctrl) and c.included
    assert len(cc[cc.indicator == "X.H"]) == 12
    mean_did = cc[(cc.indicator == "X.H") & cc.included]["did"].mean()
    assert mean_did == pytest.approx(primary(impact, "X.H").estimate)


def test_missing_indicator_and_never_controls(world):
    panel, adoptions, impact = world
    missing = impact.did[impact.did.indicator == "X.MISSING"].iloc[0]
    assert missing.note == "indicator not in the panel" and missing.n_treated_countries == 0
    never = instrument_impact(panel, instruments(INS=["X.H"]), adoptions, control="never")
    d = primary(never, "X.H")
    assert d.n_control_countries == 28 and d.control == "never"
    assert_recovers(d, -3.0)


def test_one_adopter_gives_no_standard_error():
    panel, ad = make_panel(5, indicator="X.H", unit="HOURS", effect=-3.0, scale="level", cohorts={2015: 1})
    d = primary(instrument_impact(panel, instruments(INS=["X.H"]), ad), "X.H")
    assert d.n_treated_countries == 1 and math.isnan(d.se) and not math.isnan(d.estimate)
    assert d.note.startswith("fewer than 2")


def test_intervals_are_calibrated_over_seeds():
    """Over 40 independent worlds the 95 % interval covers the truth most of the time, and the placebo
    is rarely significant: the standard errors are neither too small nor absurdly large."""
    cover, false_pos, widths = 0, 0, []
    for seed in range(40):
        h, ad = make_panel(100 + seed, indicator="X.H", unit="HOURS", effect=-3.0, scale="level", cohorts=STAGGERED)
        p, _ = make_panel(200 + seed, indicator="X.P", unit="HOURS", effect=0.0, scale="level", cohorts=STAGGERED)
        imp = instrument_impact(pd.concat([h, p]), instruments(INS=["X.H", "X.P"]), ad, event_window=(-1, 0))
        d, z = primary(imp, "X.H"), primary(imp, "X.P")
        cover += d.ci_low <= -3.0 <= d.ci_high
        false_pos += z.p_value < 0.05
        widths.append(d.ci_high - d.ci_low)
    assert cover >= 34 and false_pos <= 5
    assert np.median(widths) < 2.0


def test_bad_options_are_named():
    panel, ad = make_panel(0, indicator="X.H", unit="HOURS", effect=0.0, scale="level", cohorts={2015: 2})
    with pytest.raises(IoxhubError, match="control must be"):
        instrument_impact(panel, instruments(INS=["X.H"]), ad, control="all")
    with pytest.raises(IoxhubError, match="annual panel"):
        instrument_impact(panel.assign(freq="Q"), instruments(INS=["X.H"]), ad)
