"""Benchmark of the derivations on a synthetic harmonized observations table (default 10M rows).

    .venv/bin/python bench/bench_derive.py [--rows 10000000] [--repeat 1]

Prints seconds for the annual panel (long), its wide form, the quarterly panel, the impact of 20
instruments and the data coverage, plus the peak RSS. Workload: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from consumers.derive.coverage import data_coverage
from consumers.derive.impact import instrument_impact
from consumers.derive.panel import indicator_panel, panel_wide

YEARS = np.arange(2000, 2025)
N_COUNTRIES = 200


def _dict(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(names, pa.string()))


def _block(n_ind: int, first_ind: int, sub: int, rng: np.random.Generator, dims: int = 0) -> dict:
    """Full grid indicator x country x year x sub-period (x dims) as numpy arrays."""
    shape = [n_ind, N_COUNTRIES, len(YEARS), sub] + ([dims] if dims else [])
    idx = [a.ravel() for a in np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")]
    ind, c, y, s = idx[:4]
    step = 12 // sub
    start = (YEARS[y] - 1970).astype("datetime64[Y]").astype("datetime64[M]") + s * step
    end = (start + step).astype("datetime64[D]") - 1
    value = np.exp(rng.normal(8.0, 1.0, len(ind)))
    return {"ind": ind + first_ind, "c": c, "start": start.astype("datetime64[D]"), "end": end,
            "value": value, "freq": np.full(len(ind), {1: 0, 4: 1, 12: 2}[sub]), "dim": idx[4] if dims else None}


def build(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    per_monthly = N_COUNTRIES * len(YEARS) * 12
    n_monthly = max(1, int(rows * 0.72) // per_monthly)
    n_quarterly = max(1, int(rows * 0.08) // (N_COUNTRIES * len(YEARS) * 4))
    n_annual = max(1, int(rows * 0.10) // (N_COUNTRIES * len(YEARS)))
    blocks = [_block(n_monthly, 0, 12, rng), _block(n_quarterly, n_monthly, 4, rng),
              _block(n_annual, n_monthly + n_quarterly, 1, rng)]
    first = n_monthly + n_quarterly + n_annual
    hs = _block(2, first, 1, rng, dims=max(2, 80 * rows // 10_000_000))          # by HS chapter, no totals
    partners = _block(1, first + 2, 1, rng, dims=max(2, 40 * rows // 10_000_000))  # by partner, no totals
    blocks += [hs, partners]
    n_ind = first + 3
    cat = {k: np.concatenate([b[k] for b in blocks]) for k in ("ind", "c", "start", "end", "value", "freq")}
    n = len(cat["ind"])
    commodity = np.full(n, -1)
    partner = np.full(n, -1)
    off = n - len(hs["ind"]) - len(partners["ind"])
    commodity[off:off + len(hs["ind"])] = hs["dim"]
    partner[off + len(hs["ind"]):] = partners["dim"]
    countries = [f"C{i:03d}" for i in range(N_COUNTRIES)]
    units = np.where((np.arange(n_ind) % 3 == 0) & (np.arange(n_ind) < first), 1, 0)   # a third are rates (HOURS)
    org = np.arange(n_ind) % 7
    ind_names = [f"ORG{o}.IND{i:03d}" for i, o in enumerate(org)]
    mask = lambda a: pa.array(a.astype(np.int32), mask=a < 0)  # noqa: E731
    return pa.table({
        "org": _dict(org[cat["ind"]], [f"ORG{o}" for o in range(7)]),
        "dataset_id": _dict(org[cat["ind"]], [f"ORG{o}-DS" for o in range(7)]),
        "release_id": _dict(np.zeros(n, np.int32), ["r1"]),
        "schema_version": _dict(np.zeros(n, np.int32), ["dataset_chunk/v1"]),
        "indicator": _dict(cat["ind"], ind_names),
        "ref_area": _dict(cat["c"], countries),
        "counterpart_area": pa.DictionaryArray.from_arrays(mask(partner), pa.array(countries[:40])),
        "commodity": pa.DictionaryArray.from_arrays(mask(commodity), pa.array([f"{k + 1:02d}" for k in range(99)])),
        "freq": _dict(cat["freq"], ["A", "Q", "M"]),
        "period": _dict(np.zeros(n, np.int32), ["-"]),           # labels are not used by the derivations
        "period_start": pa.array(cat["start"], pa.date32()),
        "period_end": pa.array(cat["end"], pa.date32()),
        "value": pa.array(cat["value"]),
        "unit": _dict(units[cat["ind"]], ["USD", "HOURS"]),
        "published_at": pa.array(np.full(n, np.datetime64("2025-06-01T00:00:00", "ns")), pa.timestamp("ns", "UTC")),
    })


def _timed(label: str, fn, results: list):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    results.append((label, time.perf_counter() - t0, time.process_time() - c0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    obs = build(args.rows)
    print(f"built {obs.num_rows:,} observations in {time.perf_counter() - t0:.1f} s "
          f"({obs.nbytes / 1e6:.0f} MB in Arrow)")
    rng = np.random.default_rng(1)
    indicators = obs["indicator"].combine_chunks().dictionary.to_pylist()
    instruments = pd.DataFrame({"instrument_id": [f"INS{i:02d}" for i in range(20)],
                                "related_indicators": [list(rng.choice(indicators, 3, replace=False)) for _ in range(20)]})
    adoptions = pd.DataFrame([{"instrument_id": f"INS{i:02d}", "country": f"C{c:03d}",
                               "adoption_date": pd.Timestamp(int(rng.integers(2005, 2021)), 1, 1).date()}
                              for i in range(20) for c in rng.choice(N_COUNTRIES, 40, replace=False)])
    results: list[tuple[str, float, float]] = []
    annual = _timed("panel long, annual", lambda: indicator_panel(obs, "A"), results)
    wide = _timed("panel wide, annual", lambda: panel_wide(annual), results)
    quarterly = _timed("panel long, quarterly", lambda: indicator_panel(obs, "Q"), results)
    impact = _timed("impact (20 instruments x 3 indicators)", lambda: instrument_impact(annual, instruments, adoptions), results)
    coverage = _timed("coverage", lambda: data_coverage(obs), results)
    print(f"{'step':<42}{'wall s':>9}{'cpu s':>9}   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for label, secs, cpu in results:
        print(f"{label:<42}{secs:>9.2f}{cpu:>9.2f}")
    print(f"rows: annual long {len(annual):,}, wide {wide.shape[0]:,} x {wide.shape[1]:,}, quarterly {len(quarterly):,}, "
          f"impact did {len(impact.did):,}, event study {len(impact.event_study):,}, coverage {len(coverage.detail):,}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB "
          f"(the observations table alone: {obs.nbytes / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
