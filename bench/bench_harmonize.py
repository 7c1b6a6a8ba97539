"""Harmonization micro-benchmark: 1M dictionary-encoded observations through every rule.

    .venv/bin/python bench/bench_harmonize.py [--observations 1000000] [--chunk 10000] [--repeat 3]

Baseline, same run: each observation through the scalar functions. Medians of --repeat runs, rates per
CPU second; workload and method: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import pyarrow as pa
import pycountry

from ioxhub.harmonize import countries, hs, periods, units
from ioxhub.harmonize.columns import wire_column

COUNTRIES = ["FRA", "DEU", "USA", "CHN", "BRA", "IND", "NGA", "KEN", "JPN", "MEX", "ZAF", "EGY", "IDN", "TUR",
             "ARG", "CAN", "AUS", "GBR", "ITA", "ESP", "KOR", "VNM", "PAK", "BGD", "ETH", "PHL", "COL", "MAR",
             "PER", "CHL"]
WIRE = ("ref_area", "counterpart_area", "commodity", "period", "unit")
UNITS = [("USD", 0), ("thousand USD", 0), ("USD", 6), ("KG", 0), ("T", 0), ("thousand KG", 0), ("KGM", 3)]


def _spellings(rng: np.random.Generator) -> list[str]:
    out = []
    for code in COUNTRIES:
        c = pycountry.countries.get(alpha_3=code)
        out += [c.alpha_3, c.alpha_2, c.numeric.lstrip("0"), c.name, getattr(c, "common_name", c.name).upper()]
    return out + ["Atlantis", "W00"]  # unknown, aggregate


def workload(n: int, chunk: int, seed: int = 7) -> list[dict]:
    """Deterministic decoded chunks (string table + index lists), ~1% invalid values per column."""
    rng = np.random.default_rng(seed)
    listed = [c for c in hs._nomenclature().table["hscode"].to_pylist() if len(c) == 6]
    hs6 = [str(c) for c in rng.choice(listed, 400, replace=False)]
    commodity = [f"{c[:4]}.{c[4:]}" for c in hs6[:200]] + [c.lstrip("0") for c in hs6[200:]] + ["9899.99"]
    period = ([f"{y}" for y in range(2015, 2026)] + [f"{y}-Q{q}" for y in range(2015, 2026) for q in range(1, 5)]
              + [f"{y}-M{m:02d}" for y in range(2020, 2026) for m in range(1, 13)] + ["2024-Q5"])
    area = _spellings(rng)
    unit_names = [u for u, _ in UNITS] + ["lbs"]
    chunks = []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        strings = ["TRADE_VALUE", *area, *commodity, *period, *unit_names]
        a0, h0 = 1, 1 + len(area)
        p0 = h0 + len(commodity)
        u0 = p0 + len(period)

        def pick(base: int, count: int, invalid_last: bool) -> np.ndarray:
            idx = rng.integers(0, count - invalid_last, m)
            if invalid_last:  # ~1% invalid: the last entry of the block
                idx[rng.random(m) < 0.01] = count - 1
            return base + idx

        unit_choice = rng.integers(0, len(UNITS), m)
        unit_idx = u0 + unit_choice
        unit_idx[rng.random(m) < 0.01] = u0 + len(UNITS)  # "lbs": unknown
        value = rng.lognormal(10, 2, m)
        missing = np.flatnonzero(rng.random(m) < 0.02)
        value[missing] = 0.0
        counterpart = pick(a0, len(area), True)
        counterpart[rng.random(m) < 0.05] = -1  # absent partner
        chunks.append(dict(
            strings=strings, ref_area=pick(a0, len(area) - 1, True).tolist(), counterpart_area=counterpart.tolist(),
            commodity=pick(h0, len(commodity), True).tolist(), period=pick(p0, len(period), True).tolist(),
            value=value.tolist(), missing_values=missing.tolist(), unit=unit_idx.tolist(),
            unit_mult=np.array([UNITS[u][1] for u in unit_choice]).tolist()))
    return chunks


def harmonize_chunk(rec: dict) -> dict[str, pa.Array]:
    """The vectorized path ingest takes for one decoded chunk."""
    strings = pa.array(rec["strings"], pa.string())
    ref = countries.to_area_array(wire_column(strings, rec["ref_area"]))
    partner = countries.to_area_array(wire_column(strings, rec["counterpart_area"]))
    code = hs.normalize_hs_array(wire_column(strings, rec["commodity"]))
    period = periods.parse_period_array(wire_column(strings, rec["period"]))
    value = np.asarray(rec["value"], np.float64)
    mask = np.zeros(len(value), bool)
    mask[rec["missing_values"]] = True
    values = units.normalize_values(pa.array(value, mask=mask), wire_column(strings, rec["unit"]),
                                    np.asarray(rec["unit_mult"], np.int64))
    return dict(ref_area=ref.value, counterpart_area=partner.value, commodity=code.code, hs_level=code.level,
                freq=period.freq, period_start=period.start, period_end=period.end, period=period.label,
                value=values.value, unit=values.unit, ref_reason=ref.reason, partner_reason=partner.reason,
                hs_reason=code.reason, period_reason=period.reason, unit_reason=values.reason)


def per_observation(rec: dict) -> list[tuple]:
    """Baseline: every observation through the scalar functions."""
    s = rec["strings"]
    missing = set(rec["missing_values"])
    out = []
    for i in range(len(rec["ref_area"])):
        cp = rec["counterpart_area"][i]
        out.append((countries.harmonize_area(s[rec["ref_area"][i]]),
                    countries.harmonize_area(s[cp] if cp >= 0 else None),
                    hs.normalize_hs(s[rec["commodity"][i]]), periods.parse_period(s[rec["period"][i]]),
                    units.normalize_value(None if i in missing else rec["value"][i], s[rec["unit"][i]],
                                          rec["unit_mult"][i])))
    return out


def clear_caches() -> None:
    """As in a fresh ingest process: no scalar results cached, empty codebooks (code lists stay loaded)."""
    for rule in (countries, hs, periods, units):
        rule.CODEBOOK.reset()
    countries.AREA_CODEBOOK.reset()
    for fn in (countries.harmonize_area, countries.harmonize_country, hs.normalize_hs, periods.parse_period, units.canonical_unit):
        fn.cache_clear()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process) of `repeat` runs from cleared caches."""
    wall, cpu = [], []
    for _ in range(repeat):
        clear_caches()
        t, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observations", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=10_000, help="observations per chunk (Kafka message)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-observations", type=int, default=100_000)
    args = ap.parse_args()
    n = args.observations

    t = time.perf_counter()
    countries._tables(), countries._other_areas(), hs._nomenclature(), units._base_units()
    t_load = time.perf_counter() - t
    chunks = workload(n, args.chunk)

    results = [harmonize_chunk(c) for c in chunks]
    invalid = {k: sum(r[k].null_count for r in results) for k in results[0] if k.endswith("_reason")}
    invalid = {k: sum(len(r[k]) for r in results) - v for k, v in invalid.items()}

    def rule(fn: Callable[[dict], object]) -> tuple[float, float]:
        return timed(lambda: [fn(c) for c in chunks], args.repeat)

    strings = {id(c): pa.array(c["strings"], pa.string()) for c in chunks}
    rows = [
        ("wire -> dictionary columns (x5)", rule(lambda c: [wire_column(strings[id(c)], c[k]) for k in WIRE])),
        ("areas (ref + partner)", rule(lambda c: [countries.to_area_array(wire_column(strings[id(c)], c[k]))
                                                      for k in ("ref_area", "counterpart_area")])),
        ("hs", rule(lambda c: hs.normalize_hs_array(wire_column(strings[id(c)], c["commodity"])))),
        ("periods", rule(lambda c: periods.parse_period_array(wire_column(strings[id(c)], c["period"])))),
        ("units + values", rule(lambda c: units.normalize_values(
            pa.array(np.asarray(c["value"], np.float64)), wire_column(strings[id(c)], c["unit"]),
            np.asarray(c["unit_mult"], np.int64)))),
    ]
    t_all = rule(harmonize_chunk)

    base_chunks = chunks[: max(1, args.baseline_observations // args.chunk)]
    base_n = sum(len(c["ref_area"]) for c in base_chunks)
    t_base = timed(lambda: [per_observation(c) for c in base_chunks], args.repeat)

    print(f"{n:,} observations, {len(chunks)} chunks of {args.chunk:,}, median of {args.repeat}; "
          f"code lists loaded once in {t_load * 1000:.0f} ms")
    print(f"{'step':<34}{'wall s':>8}{'CPU s':>8}{'observations/CPU s':>20}")
    for name, (wall, cpu) in rows + [("all rules, from the wire", t_all)]:
        print(f"{name:<34}{wall:>8.3f}{cpu:>8.3f}{n / cpu:>20,.0f}")
    base_wall, base_cpu = (t * n / base_n for t in t_base)
    print(f"{'baseline: per observation, scalar':<34}{base_wall:>8.3f}{base_cpu:>8.3f}{n / base_cpu:>20,.0f}"
          f"   (run on {base_n:,}, scaled)")
    print(f"vectorized / per-observation speed-up (CPU): {base_cpu / t_all[1]:.1f}x")
    print("invalid values found: " + ", ".join(f"{k.removesuffix('_reason')} {v:,}" for k, v in invalid.items()))


if __name__ == "__main__":
    main()
