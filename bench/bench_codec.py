"""Wire-format micro-benchmark: decode the hub's dataset chunks vs the same observations as rows.

    .venv/bin/python bench/bench_codec.py [--observations 1000000] [--chunk 10000] [--repeat 3]

The hub layout (`schemas/dataset_chunk`) decoded with `ioxhub.contracts.codec.decode`, against one Avro
record per observation decoded with `fastavro.schemaless_reader`; a third line decodes the hub's bodies
with bare fastavro. Medians of interleaved runs, one core; method: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time
from typing import Callable

import fastavro
import numpy as np

from ioxhub.contracts import codec
from ioxhub.contracts.registry import get_registry

ROW_SCHEMA = fastavro.parse_schema({
    "type": "record", "name": "RowChunk", "namespace": "bench", "fields": [
        {"name": "org", "type": "string"}, {"name": "dataset_id", "type": "string"},
        {"name": "observations", "type": {"type": "array", "items": {
            "type": "record", "name": "Observation", "fields": [
                {"name": "indicator", "type": "string"}, {"name": "ref_area", "type": "string"},
                {"name": "counterpart_area", "type": ["null", "string"]},
                {"name": "commodity", "type": ["null", "string"]}, {"name": "period", "type": "string"},
                {"name": "value", "type": ["null", "double"]}, {"name": "unit", "type": "string"},
                {"name": "unit_mult", "type": "int"}, {"name": "obs_status", "type": ["null", "string"]},
                {"name": "source_file", "type": "string"}, {"name": "source_line", "type": "int"}]}}}]})

COUNTRIES = ["FRA", "DEU", "USA", "CHN", "BRA", "IND", "NGA", "KEN", "JPN", "MEX", "ZAF", "EGY", "IDN", "TUR",
             "ARG", "CAN", "AUS", "GBR", "ITA", "ESP", "KOR", "VNM", "PAK", "BGD", "ETH", "PHL", "COL", "MAR",
             "PER", "CHL"]


def workload(n: int, chunk: int, seed: int = 7) -> list[dict]:
    """Deterministic columnar chunks: 30 countries x partners, HS 4-digit codes, yearly/quarterly periods."""
    rng = np.random.default_rng(seed)
    hs = [f"{h:04d}" for h in rng.choice(np.arange(100, 9700), 400, replace=False)]
    periods = [f"{y}" for y in range(2015, 2026)] + [f"{y}-Q{q}" for y in range(2015, 2026) for q in range(1, 5)]
    chunks = []
    for seq, start in enumerate(range(0, n, chunk)):
        m = min(chunk, n - start)
        strings = ["TRADE_VALUE", *COUNTRIES, *hs, *periods, "USD", "A", "E", "flows.csv"]
        c0, h0, p0 = 1, 1 + len(COUNTRIES), 1 + len(COUNTRIES) + len(hs)
        u0 = p0 + len(periods)
        value = rng.lognormal(10, 2, m)
        missing = np.flatnonzero(rng.random(m) < 0.02)
        value[missing] = 0.0
        chunks.append(dict(
            event_id=f"e{seq}", org="WTO", dataset_id="trade-flows", release_id="r1", chunk_seq=seq,
            chunk_count=None, produced_at=0, licence=None, source_url=None, strings=strings,
            indicator=[0] * m, ref_area=(c0 + rng.integers(0, len(COUNTRIES), m)).tolist(),
            counterpart_area=(c0 + rng.integers(0, len(COUNTRIES), m)).tolist(),
            commodity=(h0 + rng.integers(0, len(hs), m)).tolist(), period=(p0 + rng.integers(0, len(periods), m)).tolist(),
            value=value.tolist(), missing_values=missing.tolist(), unit=[u0] * m, unit_mult=[6] * m,
            obs_status=np.where(rng.random(m) < 0.1, u0 + 2, u0 + 1).tolist(), attributes=[],
            source_file=[u0 + 3] * m, source_line=list(range(start + 2, start + m + 2))))
    return chunks


def as_rows(c: dict) -> dict:
    s = c["strings"]
    missing = set(c["missing_values"])
    obs = [dict(indicator=s[c["indicator"][i]], ref_area=s[c["ref_area"][i]],
                counterpart_area=s[c["counterpart_area"][i]] if c["counterpart_area"][i] >= 0 else None,
                commodity=s[c["commodity"][i]] if c["commodity"][i] >= 0 else None, period=s[c["period"][i]],
                value=None if i in missing else c["value"][i], unit=s[c["unit"][i]], unit_mult=c["unit_mult"][i],
                obs_status=s[c["obs_status"][i]] if c["obs_status"][i] >= 0 else None,
                source_file=s[c["source_file"][i]], source_line=c["source_line"][i])
           for i in range(len(c["indicator"]))]
    return dict(org=c["org"], dataset_id=c["dataset_id"], observations=obs)


def row_encode(rows: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, ROW_SCHEMA, rows)
    return buf.getvalue()


def row_decode(value: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(value), ROW_SCHEMA, return_record_name=False)


def timed(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each function; repetitions are interleaved so a busy machine skews all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observations", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=10_000, help="observations per Kafka message")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.observations

    get_registry()  # load once, outside the timings
    chunks = workload(n, args.chunk)
    rows = [as_rows(c) for c in chunks]

    hub_values = [codec.encode("dataset_chunk", c) for c in chunks]
    row_values = [row_encode(r) for r in rows]
    writer = get_registry().latest("dataset_chunk").parsed
    t = timed({
        "hub_enc": lambda: [codec.encode("dataset_chunk", c) for c in chunks],
        "row_enc": lambda: [row_encode(r) for r in rows],
        "hub_dec": lambda: [codec.decode(v) for v in hub_values],
        "bare_dec": lambda: [fastavro.schemaless_reader(io.BytesIO(v[10:]), writer, None) for v in hub_values],
        "row_dec": lambda: [row_decode(v) for v in row_values],
    }, args.repeat)
    t_hub_enc, t_row_enc, t_hub_dec, t_bare_dec, t_row_dec = (
        t[k] for k in ("hub_enc", "row_enc", "hub_dec", "bare_dec", "row_dec"))
    assert sum(len(codec.decode(v).record["value"]) for v in hub_values) == n

    hub_bytes, row_bytes = sum(map(len, hub_values)), sum(map(len, row_values))
    print(f"{n:,} observations, {len(chunks)} messages of {args.chunk:,}, median of {args.repeat}, fastavro {fastavro.__version__}")
    print(f"{'layout':<34}{'bytes/obs':>10}{'encode obs/s':>15}{'decode obs/s':>15}")
    print(f"{'row (array of records), fastavro':<34}{row_bytes / n:>10.1f}{n / t_row_enc:>15,.0f}{n / t_row_dec:>15,.0f}")
    print(f"{'hub dataset_chunk, codec':<34}{hub_bytes / n:>10.1f}{n / t_hub_enc:>15,.0f}{n / t_hub_dec:>15,.0f}")
    print(f"{'hub dataset_chunk, bare fastavro':<34}{'':>10}{'':>15}{n / t_bare_dec:>15,.0f}"
          f"   (codec framing+lookup overhead: {100 * (t_hub_dec / t_bare_dec - 1):+.0f}%)")
    ratio = t_row_dec / t_hub_dec
    print(f"decode speed-up hub / row: {ratio:.1f}x (target >= 3x: {'met' if ratio >= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
