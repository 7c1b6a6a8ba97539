"""The impact estimator recovers the sample feeds' planted effects (producers/samples/effects.py).

The observations are rebuilt in harmonized form from the samples' own DGP with each feed's own random
stream and grid (`feeds.rng_for(seed, feed)`), so they are the values the sample files publish (before
their planted mess, which ingest quarantines), rescaled to canonical units as ingest does (ICAO's
tonnes to KG). Then: indicator panel (annual) -> instrument impact with the default windows (pre 3 years,
post = adoption year + 2), not-yet-adopted controls.

Proposed tolerance: the samples' documented absolute tolerance on the effect's scale (1 hour for the
clearance time, 0.03-0.05 in logs), which is 2-5 of this estimator's standard errors; and the 95 %
interval covers the planted value on the default seed.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from consumers.derive.impact import instrument_impact
from consumers.derive.panel import indicator_panel
from ioxhub.harmonize.units import normalize_values
from producers.samples import dgp as sample_dgp
from producers.samples.countries import ALPHA3
from producers.samples.effects import PLANTED_EFFECTS
from producers.samples.feeds import HAZWASTE_HEADINGS, grid, rng_for
from producers.samples.timeline import INSTRUMENTS

# indicator -> (feed name as the feed draws it, sub-periods per year, commodity breakdown)
FEEDS = {
    "WCO.ECOM_CLEARANCE_HOURS": ("wco-clearance", 4, None),
    "UPU.POSTAL_ECOM_ITEMS": ("upu-postal", 4, None),
    "WCO.HAZWASTE_SEIZURES": ("wco-hazwaste", 1, HAZWASTE_HEADINGS),
    "IMO.PORT_CALLS": ("imo-port-calls", 1, None),
}
ICAO = [i for i in sample_dgp.DGPS if i.startswith("ICAO.")]
FEEDS.update({i: ("icao-aircargo", 12, None) for i in ICAO})


def harmonized(indicator: str, seed: int) -> pd.DataFrame:
    feed, n_sub, headings = FEEDS[indicator]
    d = sample_dgp.DGPS[indicator]
    rng = rng_for(seed, feed)
    if headings:                                   # grid (country, heading, year), as the feed draws it
        c, h, y = grid(len(ALPHA3), len(headings), len(sample_dgp.YEARS))
        sub = np.zeros_like(c)
        values = sample_dgp.simulate(d, rng, c, sample_dgp.YEARS[y], dims=[h], dim_sizes=[len(headings)])
        values[rng.choice(np.flatnonzero(sample_dgp.YEARS[y] < 2025), size=4, replace=False)] = np.nan
        commodity = np.asarray(headings, dtype=object)[h]
    elif n_sub > 1:
        c, y, sub = grid(len(ALPHA3), len(sample_dgp.YEARS), n_sub)
        values = sample_dgp.simulate(d, rng, c, sample_dgp.YEARS[y], sub)
        commodity = None
    else:
        c, y = grid(len(ALPHA3), len(sample_dgp.YEARS))
        sub = np.zeros_like(c)
        values = sample_dgp.simulate(d, rng, c, sample_dgp.YEARS[y])
        commodity = None
    year = sample_dgp.YEARS[y]
    harmonized = normalize_values(values, pa.array([d.unit] * len(values)))   # as ingest does: "T" -> KG
    step = 12 // n_sub
    start = (year - 1970).astype("datetime64[Y]").astype("datetime64[M]") + sub * step
    end = (start + step).astype("datetime64[D]") - 1
    return pd.DataFrame({
        "org": indicator.split(".")[0], "dataset_id": feed, "release_id": "1", "schema_version": "dataset_chunk/v1",
        "indicator": indicator, "ref_area": np.asarray(ALPHA3)[c], "counterpart_area": None, "commodity": commodity,
        "freq": {1: "A", 4: "Q", 12: "M"}[n_sub], "period_start": start.astype("datetime64[D]"), "period_end": end,
        "value": harmonized.value, "unit": harmonized.unit.cast(pa.string()),
        "published_at": pd.Timestamp("2026-01-15", tz="UTC"),
    })


def timeline_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    instruments = pd.DataFrame({"instrument_id": [i.instrument_id for i in INSTRUMENTS],
                                "related_indicators": [list(i.related_indicators) for i in INSTRUMENTS]})
    adoptions = pd.DataFrame([{"instrument_id": i.instrument_id, "country": c, "adoption_date": dt.date(y, 1, 1)}
                              for i in INSTRUMENTS for c, y in i.adoptions.items()])
    return instruments, adoptions


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_effects_recovered_within_tolerance(seed):
    planted = [e for e in PLANTED_EFFECTS if e.indicator in FEEDS]
    assert {e.indicator for e in PLANTED_EFFECTS} <= set(FEEDS), "a planted indicator has no feed here"
    obs = pd.concat([harmonized(i, seed) for i in sorted({e.indicator for e in planted})], ignore_index=True)
    panel = indicator_panel(obs, "A")
    assert set(panel["year"]) == set(range(2015, 2026))
    did = instrument_impact(panel, *timeline_tables()).did
    for e in planted:
        d = did[(did.instrument_id == e.instrument_id) & (did.indicator == e.indicator) & did.primary].iloc[0]
        assert d.scale == e.scale, (e.indicator, d.scale)
        assert abs(d.estimate - e.effect) <= e.tolerance, (e.indicator, d.estimate, e.effect, d.se)
        assert d.n_treated_countries == len(e.adopters)
        if e.effect != 0.0:
            assert d.p_value < 0.001, (e.indicator, d.p_value)
        if seed == 0:                      # the demo's seed: the interval covers, the null is not significant
            assert d.ci_low <= e.effect <= d.ci_high, (e.indicator, d.ci_low, d.ci_high, e.effect)
            if e.effect == 0.0:
                assert d.p_value > 0.05
