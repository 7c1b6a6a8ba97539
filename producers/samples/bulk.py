"""The large feed: WTO imports by HS 6-digit subheading, reporter x partner x year, streamed to CSV.

Comtrade-like columns, ISO 3166 *numeric* codes (3-digit, zero-padded strings: a reader that infers
integers turns "036" into 36). Rows = 9,570 (30 reporters x 29 partners x 11 years) per subheading and
``round(5 * scale)`` subheadings (HS 2022 order), so scale 1 = 47,850 rows, scale 21 = ~1.0M, scale 209
= ~10.0M. Written in batches of subheadings with pyarrow: memory is bounded by one batch whatever the
scale; the noise of each subheading has its own seeded stream, so the bytes do not depend on batching.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ioxhub.errors import IoxhubError

from producers.samples.countries import ALPHA3, codes
from producers.samples.dgp import DGPS, YEARS, draw_fixed_effects, values
from producers.samples.feeds import LICENCE, rng_for, write_mapping
from producers.samples.manifest import SampleFile

ROWS_PER_CODE = len(ALPHA3) * (len(ALPHA3) - 1) * len(YEARS)
CODES_PER_SCALE = 5
BATCH_CODES = 50          # ~480k rows per write
COLUMNS = ("ReporterCode", "PartnerCode", "CmdCode", "Period", "FlowCode", "PrimaryValue")


@lru_cache(maxsize=1)
def hs6_codes() -> tuple[str, ...]:
    """HS 2022 six-digit subheadings, in code-list order."""
    with resources.files("ioxhub").joinpath("data/hs/harmonized-system.csv").open(encoding="utf-8") as fh:
        return tuple(r["hscode"] for r in csv.DictReader(fh) if r["level"] == "6")


def n_codes(scale: float) -> int:
    n = max(1, round(CODES_PER_SCALE * scale))
    if n > len(hs6_codes()):
        raise IoxhubError(f"--scale {scale} asks for {n} HS subheadings; at most {len(hs6_codes())} exist "
                          f"(scale <= {len(hs6_codes()) / CODES_PER_SCALE:g}, {len(hs6_codes()) * ROWS_PER_CODE:,} rows)")
    return n


def wto_imports_bulk(out: Path, seed: int, scale: float, progress=None) -> list[SampleFile]:
    """Write the bulk file; `progress(rows_written, rows_total)` is called after each batch."""
    dgp = DGPS["WTO.IMPORTS_USD"]
    k_total = n_codes(scale)
    cmd = hs6_codes()[:k_total]
    rep, par = np.meshgrid(np.arange(len(ALPHA3)), np.arange(len(ALPHA3)), indexing="ij")
    rep, par = rep.ravel(), par.ravel()
    rep, par = rep[rep != par], par[rep != par]
    # one block per subheading: years outer, then pairs
    year = np.repeat(YEARS, len(rep))
    rep_b, par_b = np.tile(rep, len(YEARS)), np.tile(par, len(YEARS))
    fe = draw_fixed_effects(dgp, rng_for(seed, "wto-imports"), [len(ALPHA3), k_total])
    numeric = pa.array(codes("numeric"), pa.string())
    rep_col = pa.DictionaryArray.from_arrays(pa.array(rep_b.astype(np.int32)), numeric)
    par_col = pa.DictionaryArray.from_arrays(pa.array(par_b.astype(np.int32)), numeric)
    year_col = pa.array(year.astype(np.int32))
    flow_col = pa.array(np.full(ROWS_PER_CODE, "M"))

    rel = "wto/imports_hs6_bulk.csv"
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("ReporterCode", rep_col.type), ("PartnerCode", par_col.type), ("CmdCode", pa.string()),
                        ("Period", pa.int32()), ("FlowCode", pa.string()), ("PrimaryValue", pa.int64())])
    written = 0
    with pacsv.CSVWriter(str(path), schema, write_options=pacsv.WriteOptions(quoting_style="needed")) as writer:
        for first in range(0, k_total, BATCH_CODES):
            batch = []
            for k in range(first, min(first + BATCH_CODES, k_total)):
                noise = rng_for(seed, "wto-imports", 1 + k).normal(0.0, dgp.noise_sd, ROWS_PER_CODE)
                vals = values(dgp, fe, noise, rep_b, year, dims=[par_b, np.full(ROWS_PER_CODE, k)])
                batch.append(pa.record_batch([rep_col, par_col, pa.array(np.full(ROWS_PER_CODE, cmd[k])), year_col,
                                              flow_col, pa.array(vals.astype(np.int64))], schema=schema))
            writer.write_table(pa.Table.from_batches(batch, schema))
            written += ROWS_PER_CODE * len(batch)
            if progress:
                progress(written, k_total * ROWS_PER_CODE)
    mapping = {"title": "WTO imports by HS subheading (bulk)", "indicator": {"const": dgp.indicator},
               "ref_area": "ReporterCode", "counterpart_area": "PartnerCode", "commodity": "CmdCode",
               "period": "Period", "value": "PrimaryValue", "unit": {"const": "USD"},
               "attributes": {"FLOW": "FlowCode"}}
    name = write_mapping(path, {"format": "csv", **mapping, "licence": LICENCE})
    n = k_total * ROWS_PER_CODE
    return [SampleFile(path=rel, kind="dataset", org="WTO", format="csv", dataset_id="WTO-IMPORTS-HS6",
                       mapping=f"wto/{name}", indicators=[dgp.indicator], rows=n, good=n,
                       description=f"Imports by HS 6-digit subheading (USD), reporter x partner (ISO numeric), "
                       f"annual, {k_total} subheadings (scale {scale:g}); clean, sized for benchmarks")]
