"""The planted effects: what the impact estimators must recover from the sample feeds.

`PLANTED_EFFECTS` is derived from the policy timeline (`timeline.INSTRUMENTS`), the source the policy files
are written from, so adopters and years always agree with the published policy updates. Each effect has a
scale (``"level"``: y += effect from the adoption year on; ``"log"``: y *= exp(effect)) and a `tolerance`
within which an estimate must land (an effect of 0.0 is a planted absence of effect; tests/unit/test_samples.py
checks them). How the tolerances were measured: docs/sample-feeds.md ("Planted effects").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from producers.samples.timeline import BY_ID


@dataclass(frozen=True)
class PlantedEffect:
    instrument_id: str
    indicator: str
    effect: float
    scale: str                      # "level" | "log"
    unit: str                       # unit of the indicator (of the effect too when scale == "level")
    adopters: Mapping[str, int]     # alpha-3 -> adoption year (effect from 1 January of that year)
    tolerance: float                # absolute, on `scale`

    @property
    def percent(self) -> float | None:
        """The multiplicative effect as a percentage change (log scale only)."""
        return 100.0 * math.expm1(self.effect) if self.scale == "log" else None

    def as_dict(self) -> dict:
        return {"instrument_id": self.instrument_id, "indicator": self.indicator, "effect": self.effect,
                "scale": self.scale, "percent": self.percent, "unit": self.unit,
                "adopters": dict(self.adopters), "tolerance": self.tolerance}


def _effect(instrument_id: str, indicator: str, effect: float, scale: str, unit: str, tolerance: float) -> PlantedEffect:
    instrument = BY_ID[instrument_id]
    assert indicator in instrument.related_indicators, (instrument_id, indicator)
    return PlantedEffect(instrument_id, indicator, effect, scale, unit, dict(instrument.adoptions), tolerance)


PLANTED_EFFECTS: tuple[PlantedEffect, ...] = (
    # Clearance of e-commerce consignments gets 12 hours faster after a country adopts the framework ...
    _effect("WCO-FOS-ECOM", "WCO.ECOM_CLEARANCE_HOURS", -12.0, "level", "HOURS", tolerance=1.0),
    # ... and its postal e-commerce items rise by 20 %.
    _effect("WCO-FOS-ECOM", "UPU.POSTAL_ECOM_ITEMS", math.log(1.20), "log", "NUMBER", tolerance=0.03),
    # Border enforcement guidance on the Basel Convention: +50 % seizures of hazardous waste (KG).
    _effect("WCO-BASEL-HAZWASTE", "WCO.HAZWASTE_SEIZURES", math.log(1.50), "log", "KG", tolerance=0.05),
    # ICAO guidelines on vaccines as air cargo: +30 % tonnes of vaccines flown.
    _effect("ICAO-VACCINE-AIRCARGO", "ICAO.AIR_CARGO_VACCINES", math.log(1.30), "log", "T", tolerance=0.05),
    # Adopted by 15 members in 2019-2023, but NO effect on port calls (a planted absence of effect).
    _effect("IMO-FAL-2016-AMEND", "IMO.PORT_CALLS", 0.0, "log", "NUMBER", tolerance=0.03),
)


def effects_for(indicator: str) -> list[PlantedEffect]:
    return [e for e in PLANTED_EFFECTS if e.indicator == indicator]


def post_adoption(effect: PlantedEffect, country: np.ndarray, year: np.ndarray) -> np.ndarray:
    """1.0 where `country` (alpha-3 strings) had adopted by `year`, else 0.0 (vectorized)."""
    uniq, inverse = np.unique(country, return_inverse=True)
    first = np.array([effect.adopters.get(c, 10_000) for c in uniq])
    return (year >= first[inverse]).astype(float)
