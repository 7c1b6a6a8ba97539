"""Benchmark: publishing a CSV (read -> validate -> chunk -> Kafka) against parsing it with pyarrow alone.

    .venv/bin/python bench/bench_publish.py [--rows 1000000] [--repeat 3] [--bootstrap HOST:PORT]
                                            [--quick] [--memory-check]

Prints medians, observations/s, MB/s, peak RSS and the ratio baseline/publish (target >= 0.5);
`--memory-check` compares peak RSS at 10x the rows (target <= 1.2x). Method: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

COUNTRIES = ["ARG", "AUS", "AUT", "BEL", "BGD", "BRA", "CAN", "CHE", "CHL", "CHN", "COL", "CZE", "DEU", "DNK",
             "EGY", "ESP", "ETH", "FIN", "FRA", "GBR", "GHA", "GRC", "HUN", "IDN", "IND", "IRL", "ISR", "ITA",
             "JPN", "KEN", "KOR", "MAR", "MEX", "MYS", "NGA", "NLD", "NOR", "NZL", "PAK", "PER", "PHL", "POL",
             "PRT", "ROU", "RUS", "SAU", "SEN", "SGP", "SWE", "THA", "TUN", "TUR", "TZA", "UGA", "UKR", "USA",
             "VNM", "ZAF", "ZMB", "ZWE"]
INDICATORS = ["WTO.IMPORTS_USD", "WTO.EXPORTS_USD", "WCO.SEIZURES_KG", "UPU.ITEMS"]
PIECE = 500_000


def build_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Write `rows` observations, in pieces (bounded memory), deterministically."""
    from ioxhub.harmonize.hs import _nomenclature

    codes = [c for c in _nomenclature().table["hscode"].to_pylist() if len(c) == 6]
    hs6 = np.array(codes[::8])                                   # ~700 subheadings
    periods = np.array([f"{y}" for y in range(2015, 2026)] + [f"{y}-{m:02d}" for y in range(2015, 2026) for m in range(1, 13)])
    countries, indicators = np.array(COUNTRIES), np.array(INDICATORS)
    rng = np.random.default_rng(seed)
    schema = None
    with pacsv.CSVWriter(str(path), _schema(), write_options=pacsv.WriteOptions(quoting_style="none")) as writer:
        for start in range(0, rows, PIECE):
            n = min(PIECE, rows - start)
            table = pa.table({
                "INDICATOR": indicators[rng.integers(0, len(indicators), n)],
                "REPORTER": countries[rng.integers(0, len(countries), n)],
                "PARTNER": countries[rng.integers(0, len(countries), n)],
                "HS6": hs6[rng.integers(0, len(hs6), n)],
                "PERIOD": periods[rng.integers(0, len(periods), n)],
                "VALUE": np.round(rng.lognormal(9, 2, n), 2),
                "UNIT": np.array(["USD", "KG"])[rng.integers(0, 2, n)],
                "UNIT_MULT": rng.choice(np.array([0, 3], dtype=np.int64), n),
                "STATUS": np.array(["A", "E", "P"])[rng.integers(0, 3, n)],
            }, schema=schema or _schema())
            writer.write_table(table)


def _schema() -> pa.Schema:
    return pa.schema([("INDICATOR", pa.string()), ("REPORTER", pa.string()), ("PARTNER", pa.string()),
                      ("HS6", pa.string()), ("PERIOD", pa.string()), ("VALUE", pa.float64()),
                      ("UNIT", pa.string()), ("UNIT_MULT", pa.int64()), ("STATUS", pa.string())])


MAPPING = {"indicator": "INDICATOR", "ref_area": "REPORTER", "counterpart_area": "PARTNER", "commodity": "HS6",
           "period": "PERIOD", "value": "VALUE", "unit": "UNIT", "unit_mult": "UNIT_MULT", "obs_status": "STATUS"}


# ------------------------------------------------------------------------------------------ child processes
def child(kind: str, file: str, data_dir: str | None) -> None:
    if kind == "baseline":
        started = time.perf_counter()
        table = pacsv.read_csv(file)
        seconds = time.perf_counter() - started
        rows = table.num_rows
    else:
        from producers import publish_dataset
        from ioxhub.settings import get_settings
        settings = dataclasses.replace(get_settings(), data_dir=Path(data_dir))
        started = time.perf_counter()
        summary = publish_dataset("WTO", "BENCH-PUBLISH", [file], MAPPING, settings=settings)
        seconds = time.perf_counter() - started
        rows = summary.rows_sent
        assert summary.rows_rejected == 0 and summary.sent, summary
    print(json.dumps({"seconds": seconds, "rows": rows, "rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not getrusage: on Linux, ru_maxrss survives exec, so a child
    would report the parent's peak at fork time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, file: Path, bootstrap: str, data_dir: Path) -> dict:
    env = dict(os.environ, IOXHUB_KAFKA_BOOTSTRAP=bootstrap, IOXHUB_DATA_DIR=str(data_dir))
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(file), str(data_dir)],
                         env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ broker
def start_broker(work: Path):
    from ioxhub.settings import load_settings
    from ioxhub.stack import process, tansu

    port = process.free_ports(1)[0]
    settings = dataclasses.replace(load_settings({}), data_dir=work / "stack", kafka_bootstrap=f"127.0.0.1:{port}")
    tansu.start(settings, "memory")
    return settings


def measure(file: Path, rows: int, repeat: int, bootstrap: str, work: Path) -> tuple[dict, dict]:
    results: dict[str, list[dict]] = {"baseline": [], "publish": []}
    for i in range(repeat):                  # interleaved, so both see the same machine load
        for kind in ("baseline", "publish"):
            r = run_child(kind, file, bootstrap, work / f"data-{kind}-{i}")
            assert r["rows"] == rows, (kind, r)
            results[kind].append(r)
            print(f"  run {i + 1} {kind:8s} {r['seconds']:7.3f} s  peak RSS {r['rss_mb']:7.1f} MB", flush=True)
    return tuple({"seconds": statistics.median(x["seconds"] for x in rs), "rss_mb": max(x["rss_mb"] for x in rs),
                  "all": [round(x["seconds"], 3) for x in rs]} for rs in results.values())


def report(rows: int, size: int, base: dict, pub: dict) -> None:
    mb = size / 1e6
    print(f"\n{rows:,} observations, CSV {mb:,.1f} MB; medians of {len(base['all'])} runs")
    print(f"{'':22s}{'seconds':>9s}{'obs/s':>13s}{'MB/s':>9s}{'peak RSS MB':>13s}")
    for name, r in (("read_csv (baseline)", base), ("publish", pub)):
        print(f"{name:22s}{r['seconds']:9.3f}{rows / r['seconds']:13,.0f}{mb / r['seconds']:9.1f}{r['rss_mb']:13.1f}")
    ratio = base["seconds"] / pub["seconds"]
    print(f"ratio baseline/publish = {ratio:.2f}  (target >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bootstrap", help="use this broker instead of a throwaway tansu")
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 1 run")
    parser.add_argument("--memory-check", action="store_true", help="also publish 10x the rows and compare peak RSS")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "FILE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    if args.quick:
        args.rows, args.repeat = 200_000, 1
    with tempfile.TemporaryDirectory(prefix="ioxhub-bench-publish-") as tmp:
        work = Path(tmp)
        broker = None
        if args.bootstrap is None:
            broker = start_broker(work)
            args.bootstrap = broker.kafka_bootstrap
        try:
            sizes = [args.rows] + ([args.rows * 10] if args.memory_check else [])
            peaks = []
            for rows in sizes:
                file = work / f"trade-{rows}.csv"
                started = time.perf_counter()
                build_csv(file, rows)
                print(f"built {file.name}: {rows:,} rows, {file.stat().st_size / 1e6:,.1f} MB in "
                      f"{time.perf_counter() - started:.1f} s; broker {args.bootstrap}", flush=True)
                repeat = args.repeat if rows == args.rows else 1
                base, pub = measure(file, rows, repeat, args.bootstrap, work)
                report(rows, file.stat().st_size, base, pub)
                peaks.append(pub["rss_mb"])
                file.unlink()
            if args.memory_check:
                ratio = peaks[1] / peaks[0]
                print(f"\npublish peak RSS: {peaks[0]:.1f} MB at {sizes[0]:,} rows, {peaks[1]:.1f} MB at {sizes[1]:,} "
                      f"rows: {ratio:.2f}x (target <= 1.2x: {'met' if ratio <= 1.2 else 'NOT met'})")
        finally:
            if broker is not None:
                from ioxhub.stack import tansu
                tansu.stop(broker)


if __name__ == "__main__":
    main()
