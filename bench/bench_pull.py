"""The pull figure: one country out of a large curated panel, and how many bytes that reads.

`write_panel(settings, rows)` writes a panel-like table (the columns of the derivation's long panels)
through the derivation's own curated writer (`consumers.evidence.write_curated`: sorted by ref_area, then
indicator, period; one Parquet file with 64k-row row groups under the curated table's data/, one commit).
`pull_once` then pulls one country with `consumers.access.pull_table`, whose reader prunes row groups by
their min/max statistics.
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pycountry

from consumers.evidence import write_curated
from ioxhub.settings import Settings
from ioxhub.storage import ObjectStore
from ioxhub.tables import tables_for

NAME = "bench_indicator_panel"
YEARS = np.arange(2000, 2025)


def panel_table(rows: int) -> pa.Table:
    """~`rows` rows: 200 countries x 25 years x as many indicators as needed, sorted by country."""
    countries = sorted(c.alpha_3 for c in pycountry.countries)[:200]
    n_ind = max(1, rows // (len(countries) * len(YEARS)))
    c, i, y = (a.ravel() for a in np.meshgrid(np.arange(len(countries)), np.arange(n_ind), np.arange(len(YEARS)),
                                                indexing="ij"))
    n = len(c)
    rng = np.random.default_rng(0)
    names = pa.array([f"BENCH.INDICATOR_{k:05d}" for k in range(n_ind)])
    start = (YEARS[y] - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    return pa.table({
        "ref_area": pa.DictionaryArray.from_arrays(pa.array(c.astype(np.int32)), pa.array(countries)).cast(pa.string()),
        "indicator": pa.DictionaryArray.from_arrays(pa.array(i.astype(np.int32)), names).cast(pa.string()),
        "freq": pa.array(np.full(n, "A")),
        "period": pa.array(YEARS[y].astype(str)),
        "period_start": pa.array(start),
        "year": pa.array(YEARS[y].astype(np.int64)),
        "value": pa.array(np.round(np.exp(rng.normal(8, 1.5, n)), 3)),
        "unit": pa.array(np.full(n, "USD")),
        "org": pa.array(np.full(n, "WTO")),
        "dataset_id": pa.array(np.full(n, "BENCH")),
        "source_freq": pa.array(np.full(n, "A")),
        "source_level": pa.array(np.full(n, "total")),
        "n_obs": pa.array(np.ones(n, np.int64)),
        "coverage": pa.array(np.ones(n)),
    })


def write_panel(settings: Settings, rows: int) -> tuple[str, int]:
    table = panel_table(rows)
    written = write_curated(ObjectStore(settings), tables_for(settings), NAME, table,
                            {"kind": "curated", "publishers": ["WTO"], "rows": table.num_rows,
                             "schema_version": "curated/v1", "columns": [f"{f.name}:{f.type}" for f in table.schema]},
                            {"ioxhub.run_id": "bench"})
    return NAME, written["bytes"]


def pull_once(settings: Settings, name: str, country: str) -> dict:
    from consumers.access import pull_table

    started = time.perf_counter()
    result = pull_table(name, where=[f"ref_area={country}"], settings=settings)
    seconds = time.perf_counter() - started
    countries = set(result.table["ref_area"].to_pylist())
    if countries != {country}:
        raise SystemExit(f"pull of {country} returned {sorted(countries)[:5]}")
    return {"seconds": seconds, "rows": result.table.num_rows, "bytes_read": result.bytes_read,
            "dataset_bytes": result.dataset_bytes, "objects_read": result.objects_read}
