"""The data generating process of every sample indicator: simple, explicit, vectorized.

Country and dimension fixed effects, a common trend, year shocks and seasons, the planted effects after
adoption and normal noise, on a log or level scale; no country-specific trends, so a difference-in-differences
against never-adopters recovers the planted effects. `simulate(dgp, rng, country, year, ...)`, `values`;
parameters in `DGPS`. The formula: docs/sample-feeds.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from producers.samples.countries import ALPHA3
from producers.samples.effects import effects_for, post_adoption

FIRST_YEAR, LAST_YEAR = 2015, 2025
YEARS = np.arange(FIRST_YEAR, LAST_YEAR + 1)


@dataclass(frozen=True)
class Dgp:
    indicator: str
    unit: str
    scale: str                                  # "log" | "level"
    base_mean: float                            # mean of the country fixed effects
    base_sd: float                              # their spread
    trend: float                                # per year, common
    noise_sd: float
    year_shocks: Mapping[int, float] = field(default_factory=dict)   # common to all countries
    season: tuple[float, ...] = ()              # per quarter (4) or month (12)
    dim_sds: tuple[float, ...] = ()             # spread of each extra dimension's fixed effects
    decimals: int = 0                           # rounding of the published value


_Q_SEASON_POSTAL = (-0.05, -0.08, -0.04, 0.17)
_M_SEASON = (-0.04, -0.06, 0.0, 0.01, 0.02, 0.0, -0.03, -0.05, 0.02, 0.04, 0.05, 0.04)

DGPS: dict[str, Dgp] = {d.indicator: d for d in (
    Dgp("WCO.ECOM_CLEARANCE_HOURS", "HOURS", "level", 72.0, 15.0, -0.8, 2.0,
        {2020: 6.0, 2021: 3.0}, (0.0, -1.0, -2.0, 5.0), decimals=1),
    Dgp("WCO.HAZWASTE_SEIZURES", "KG", "log", np.log(40_000), 0.9, 0.03, 0.10,
        {2020: -0.20}, dim_sds=(0.6,)),
    Dgp("UPU.POSTAL_ECOM_ITEMS", "NUMBER", "log", np.log(3e6), 1.0, 0.07, 0.05,
        {2020: 0.20, 2021: 0.12}, _Q_SEASON_POSTAL),
    Dgp("ICAO.AIR_CARGO_VACCINES", "T", "log", np.log(250), 0.8, 0.04, 0.08,
        {2020: 0.30, 2021: 0.90, 2022: 0.45}, _M_SEASON, decimals=3),
    Dgp("WHO.VACCINE_SHIPMENTS_DOSES", "DOSES", "log", np.log(2e6), 0.9, 0.03, 0.10,
        {2021: 1.20, 2022: 0.60}, _M_SEASON),
    Dgp("WHO.MEDICINE_SHIPMENTS_USD", "USD", "log", np.log(5e7), 1.0, 0.05, 0.08,
        {2020: 0.25}, _M_SEASON, decimals=2),
    Dgp("IMO.PORT_CALLS", "NUMBER", "log", np.log(15_000), 0.8, 0.02, 0.04,
        {2020: -0.15, 2021: -0.05}),
    Dgp("WTO.EXPORTS_USD", "USD", "log", np.log(2e9), 1.0, 0.04, 0.15,
        {2020: -0.08}, dim_sds=(0.7, 0.9)),
    Dgp("WTO.IMPORTS_USD", "USD", "log", np.log(3e7), 1.0, 0.04, 0.30,
        {2020: -0.08}, dim_sds=(0.8, 1.2)),
)}


@dataclass(frozen=True)
class FixedEffects:
    country: np.ndarray                 # by position in countries.ALPHA3
    dims: tuple[np.ndarray, ...]        # one array per extra dimension, by level index


def draw_fixed_effects(dgp: Dgp, rng: np.random.Generator, dim_sizes: Sequence[int] = ()) -> FixedEffects:
    country = rng.normal(dgp.base_mean, dgp.base_sd, len(ALPHA3))
    dims = tuple(rng.normal(0.0, sd, n) for sd, n in zip(dgp.dim_sds, dim_sizes, strict=True))
    return FixedEffects(country, dims)


def values(dgp: Dgp, fe: FixedEffects, noise: np.ndarray, country: np.ndarray, year: np.ndarray,
           sub: np.ndarray | None = None, dims: Sequence[np.ndarray] = ()) -> np.ndarray:
    """The published values for observations given as parallel arrays (country = index into ALPHA3,
    sub = 0-based quarter/month, dims = level indexes of the extra dimensions), rounded."""
    x = fe.country[country] + dgp.trend * (year - FIRST_YEAR) + noise
    shocks = np.zeros(LAST_YEAR - FIRST_YEAR + 1)
    for y, s in dgp.year_shocks.items():
        if FIRST_YEAR <= y <= LAST_YEAR:
            shocks[y - FIRST_YEAR] = s
    x += shocks[year - FIRST_YEAR]
    if dgp.season:
        x += np.asarray(dgp.season)[sub]
    for level, fes in zip(dims, fe.dims, strict=True):
        x += fes[level]
    alpha3 = np.asarray(ALPHA3)[country]
    for eff in effects_for(dgp.indicator):
        x += eff.effect * post_adoption(eff, alpha3, year)
    y = np.exp(x) if dgp.scale == "log" else np.maximum(x, 1.0)
    return np.round(y, dgp.decimals)


def simulate(dgp: Dgp, rng: np.random.Generator, country: np.ndarray, year: np.ndarray,
             sub: np.ndarray | None = None, dims: Sequence[np.ndarray] = (), dim_sizes: Sequence[int] = ()) -> np.ndarray:
    """Draw the fixed effects then the noise from `rng` (in that order) and return the values."""
    fe = draw_fixed_effects(dgp, rng, dim_sizes)
    return values(dgp, fe, rng.normal(0.0, dgp.noise_sd, len(country)), country, year, sub, dims)
