"""The hub's benchmark: every speed and memory target as a ratio against a baseline of the same run.

    .venv/bin/python bench/run.py            # full: 1M observations, medians of 3, memory at 10M, demo
    .venv/bin/python bench/run.py --quick    # 100k observations, 1 repetition, memory at 1M, no demo

Figures publish, wire, ingest, memory, pull and demo, each in a fresh process on a throwaway local stack;
what each measures, its baseline and target: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BULK_DATASET = "WTO-IMPORTS-HS6"
ROWS_PER_SCALE = 47_850


@dataclass
class Mode:
    scale: float          # 1x workload
    big_scale: float      # memory check
    panel_rows: int
    repeat: int
    demo: bool


FULL = Mode(scale=21, big_scale=209, panel_rows=10_000_000, repeat=3, demo=True)
QUICK = Mode(scale=2.1, big_scale=21, panel_rows=1_000_000, repeat=1, demo=False)


@dataclass
class Figure:
    name: str
    measured: str
    baseline: str
    ratio: float
    target: str
    met: bool
    rss: str = ""
    note: str = ""


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    raw: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ children
def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM); not getrusage: ru_maxrss survives exec (a child would report the
    parent's peak at fork time)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(kind: str, args: list[str]) -> dict:
    if kind == "parse":
        import pyarrow.csv as pacsv
        started = time.perf_counter()
        rows = pacsv.read_csv(args[0]).num_rows
        return {"seconds": time.perf_counter() - started, "rows": rows}
    if kind in ("publish", "publish-parsed"):
        from producers import publish_dataset
        from producers.mapping import ColumnMapping
        from ioxhub.settings import get_settings
        file, mapping = args
        settings = get_settings()
        mapping = ColumnMapping.from_file(Path(mapping))
        read = parsed_before_the_timer(Path(file), mapping) if kind == "publish-parsed" else None
        started = time.perf_counter()
        s = publish_dataset("WTO", BULK_DATASET, [Path(file)], mapping, settings=settings, read_batches=read)
        seconds = time.perf_counter() - started
        if s.rows_rejected or not s.chunks:
            raise SystemExit(f"publish rejected rows or sent nothing: {s}")
        return {"seconds": seconds, "rows": s.rows_sent, "records": s.chunks + 1}
    if kind == "ingest":
        from ioxhub.ingest.run import ingest
        from ioxhub.settings import get_settings
        settings = get_settings()
        started = time.perf_counter()
        counts = ingest("datasets", settings, max_records=int(args[0]), idle_ms=5000, run_id="bench")
        return {"seconds": time.perf_counter() - started, "counts": counts}
    if kind == "decode":
        return decode_child(int(args[0]), int(args[1]))
    raise SystemExit(f"unknown child {kind}")


def parsed_before_the_timer(file: Path, mapping):
    """Diagnostic (not a target): a `read_batches` for `publish_dataset` handing out batches parsed here,
    so the figure is what publishing costs beyond parsing the CSV."""
    from producers.publish import source_batches
    from producers.readers import open_source

    src = open_source(file, mapping.format)
    parsed = list(source_batches([src], [mapping.resolve(src.columns, src.name)]))
    return lambda sources, resolved: iter(parsed)


def consume_all(records: int) -> list:
    """Every record of the dataset topics (untimed), as the ingest consumer would get them."""
    from kafka.structs import TopicPartition

    from ioxhub.kafka import make_consumer
    from ioxhub.orgs import load_orgs

    consumer = make_consumer(None, max_poll_records=5000)
    try:
        parts = [TopicPartition(o.datasets.name, p) for o in load_orgs().orgs
                 for p in sorted(consumer.partitions_for_topic(o.datasets.name) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list = []
        deadline = time.monotonic() + 300
        while len(out) < records and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=500).values():
                out.extend(recs)
        if len(out) != records:
            raise SystemExit(f"consumed {len(out)} records, expected {records}")
        return out
    finally:
        consumer.close()


def decode_child(records: int, repeat: int) -> dict:
    """Decode-only baseline (ingest) and wire comparison: the same consumed records, decoded by the codec
    (as the ingest would) and, re-laid out as one Avro record per observation, by fastavro."""
    from bench_codec import as_rows, row_decode, row_encode

    from ioxhub.contracts import codec
    from ioxhub.contracts.registry import get_registry

    get_registry()
    values = [r.value for r in consume_all(records)]
    decoded = [codec.decode(v) for v in values]
    chunks = [d.record for d in decoded if d.name == "dataset_chunk"]
    observations = sum(len(c["indicator"]) for c in chunks)
    row_values = [row_encode(as_rows(c)) for c in chunks]
    del decoded, chunks
    hub, row = [], []
    for _ in range(repeat):            # interleaved
        started = time.perf_counter()
        for v in values:
            codec.decode(v)
        hub.append(time.perf_counter() - started)
        started = time.perf_counter()
        for v in row_values:
            row_decode(v)
        row.append(time.perf_counter() - started)
    return {"hub_seconds": hub, "row_seconds": row, "observations": observations,
            "hub_bytes": sum(map(len, values)), "row_bytes": sum(map(len, row_values))}


def run_child(kind: str, args: list[str], env: dict[str, str], timeout: float = 1800) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"bench child {kind} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ workload
def build_workload(out: Path, scale: float) -> tuple[Path, Path, int]:
    """The bulk WTO CSV at `scale` (and the other sample feeds, unused): (csv, mapping, rows)."""
    from producers.samples import generate

    manifest = generate(out, scale=scale)
    bulk = next(f for f in manifest.files if f.dataset_id == BULK_DATASET)
    return out / bulk.path, out / bulk.mapping, bulk.rows


def wipe_bucket(settings) -> None:
    """Remove every object of the hub bucket and its tables from the local Iceberg catalog (an empty hub
    before each ingest repetition)."""
    from minio.deleteobjects import DeleteObject

    from ioxhub.s3 import make_client

    (settings.data_dir / "iceberg" / "catalog.db").unlink(missing_ok=True)

    client = make_client(settings, admin=True)
    names = [DeleteObject(o.object_name) for o in client.list_objects(settings.bucket, recursive=True)]
    for error in client.remove_objects(settings.bucket, names):
        raise SystemExit(f"could not remove {error.name}: {error}")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ------------------------------------------------------------------------------------------ figures
def publish_figure(mode: Mode, stack, csv: Path, mapping: Path, rows: int, res: Results) -> dict:
    """Parse vs publish, interleaved, on a broker of its own (so the hub's topics stay clean).

    One untimed round of both first: the first read of a file just written was always the slowest
    repetition (0.17-0.28 s against 0.10-0.17 s), which biased the baseline."""
    parse, publish = [], []
    with stack.side_broker() as bootstrap:
        env = stack.env(IOXHUB_KAFKA_BOOTSTRAP=bootstrap)
        run_child("parse", [csv], env)
        run_child("publish", [csv, mapping], env)
        for i in range(mode.repeat):
            p = run_child("parse", [csv], env)
            q = run_child("publish", [csv, mapping], env)
            assert p["rows"] == rows and q["rows"] == rows, (p, q)
            parse.append(p)
            publish.append(q)
            log(f"publish rep {i + 1}: parse {p['seconds']:.3f} s ({p['rss_mb']:.0f} MB), "
                f"publish {q['seconds']:.3f} s ({q['rss_mb']:.0f} MB)")
        parsed = [run_child("publish-parsed", [csv, mapping], env) for _ in range(mode.repeat)]
    t_parse, t_pub = median([p["seconds"] for p in parse]), median([q["seconds"] for q in publish])
    t_parsed = median([q["seconds"] for q in parsed])
    ratio = t_parse / t_pub
    rss = max(q["rss_mb"] for q in publish)
    res.figures.append(Figure(
        "publish (CSV -> validated -> Kafka)", f"{t_pub:.2f} s ({rows / t_pub / 1e6:.2f}M obs/s)",
        f"read_csv {t_parse:.2f} s", ratio, ">= 0.5", ratio >= 0.5, f"{rss:.0f} MB",
        note=f"the same publish with the CSV parsed before the timer takes {t_parsed:.2f} s "
             f"({t_parsed / t_parse:.1f}x read_csv): what publishing costs beyond parsing"))
    res.raw["publish"] = {"parse": parse, "publish": publish, "publish_parsed": parsed}
    return {"rss_mb": rss}


def wire_and_ingest_figures(mode: Mode, stack, csv: Path, mapping: Path, rows: int, res: Results) -> dict:
    env = stack.env()
    pub = run_child("publish", [csv, mapping], env)
    records = pub["records"]
    log(f"published {rows:,} observations in {records} records to the hub's broker")
    dec = run_child("decode", [records, mode.repeat], env, timeout=3600)
    t_hub, t_row = median(dec["hub_seconds"]), median(dec["row_seconds"])
    log(f"decode: hub {dec['hub_seconds']} s, row layout {dec['row_seconds']} s")
    n = dec["observations"]
    res.figures.append(Figure(
        "wire (decode hub chunks vs row layout)", f"{t_hub:.3f} s ({n / t_hub / 1e6:.2f}M obs/s, "
        f"{dec['hub_bytes'] / n:.1f} B/obs)", f"rows {t_row:.3f} s ({dec['row_bytes'] / n:.1f} B/obs)",
        t_row / t_hub, ">= 3", t_row / t_hub >= 3))
    ingest = []
    for i in range(mode.repeat):
        wipe_bucket(stack.settings)
        r = run_child("ingest", [records], stack.env(IOXHUB_CONSUMER_GROUP=f"bench-ingest-{i}"))
        check_ingest(r["counts"], rows, records)
        ingest.append(r)
        log(f"ingest rep {i + 1}: {r['seconds']:.3f} s ({r['rss_mb']:.0f} MB)")
    t_ing = median([r["seconds"] for r in ingest])
    rss = max(r["rss_mb"] for r in ingest)
    res.figures.append(Figure(
        "ingest (Kafka -> harmonized Parquet on S3)", f"{t_ing:.2f} s ({rows / t_ing / 1e6:.2f}M obs/s)",
        f"decode-only {t_hub:.2f} s", t_hub / t_ing, ">= 0.6", t_hub / t_ing >= 0.6, f"{rss:.0f} MB"))
    res.raw.update(decode=dec, ingest=ingest)
    return {"rss_mb": rss}


def check_ingest(counts: dict, rows: int, records: int) -> None:
    e = counts["events"]
    if e["consumed"] != records or e["applied"] != records or counts["observations_harmonized"] != rows:
        raise SystemExit(f"ingest did not apply the whole workload ({rows} rows, {records} records): {counts}")


def memory_figures(mode: Mode, stack, work: Path, peaks: dict, res: Results) -> None:
    csv, mapping, rows = build_workload(work / "samples-big", mode.big_scale)
    log(f"memory workload: {rows:,} observations")
    stack.reset_broker()
    wipe_bucket(stack.settings)
    pub = run_child("publish", [csv, mapping], stack.env())
    log(f"publish {rows:,}: {pub['seconds']:.2f} s, {pub['rss_mb']:.0f} MB")
    ing = run_child("ingest", [pub["records"]], stack.env(IOXHUB_CONSUMER_GROUP="bench-ingest-big"), timeout=3600)
    check_ingest(ing["counts"], rows, pub["records"])
    log(f"ingest {rows:,}: {ing['seconds']:.2f} s, {ing['rss_mb']:.0f} MB")
    csv.unlink()
    for name, big, small in (("publish", pub, peaks["publish"]), ("ingest", ing, peaks["ingest"])):
        ratio = big["rss_mb"] / small["rss_mb"]
        res.figures.append(Figure(
            f"memory: {name} peak RSS at {rows / 1e6:.1f}M obs", f"{big['rss_mb']:.0f} MB ({big['seconds']:.1f} s)",
            f"{small['rss_mb']:.0f} MB at {rows / 10 / 1e6:.1f}M obs", ratio, "<= 1.2", ratio <= 1.2))
    res.raw["memory"] = {"publish": pub, "ingest": ing}


def pull_figure(mode: Mode, stack, res: Results) -> None:
    from bench_pull import pull_once, write_panel

    started = time.perf_counter()
    name, size = write_panel(stack.settings, mode.panel_rows)
    log(f"panel {name}: {mode.panel_rows:,} rows, {size / 1e6:.1f} MB written in {time.perf_counter() - started:.1f} s")
    r = pull_once(stack.settings, name, "FRA")
    share = r["bytes_read"] / r["dataset_bytes"]
    res.figures.append(Figure(
        f"pull one country of a {mode.panel_rows / 1e6:.0f}M-row panel", f"{r['bytes_read'] / 1e6:.2f} MB read, "
        f"{r['rows']:,} rows, {r['seconds']:.2f} s", f"dataset {r['dataset_bytes'] / 1e6:.1f} MB", share,
        "<= 0.10", share <= 0.10))
    res.raw["pull"] = r


def demo_figure(stack, work: Path, res: Results) -> None:
    from bench_stack import demo_env, stop_stack_of

    data_dir = work / "demo"
    env = demo_env(data_dir)
    log("ioxhub demo ...")
    started = time.perf_counter()
    try:
        done = subprocess.run([str(Path(sys.executable).with_name("ioxhub")), "demo"], env=env, capture_output=True,
                              text=True, timeout=900, stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
    finally:
        stop_stack_of(env)
    if done.returncode != 0:
        raise SystemExit(f"ioxhub demo failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    res.figures.append(Figure("main job: ioxhub demo end to end", f"{seconds:.0f} s", "target 180 s", seconds / 180,
                              "<= 1.0", seconds <= 180))
    res.raw["demo"] = {"seconds": seconds, "stdout_tail": done.stdout[-2000:]}


# ------------------------------------------------------------------------------------------ report
def print_table(res: Results, mode_name: str, seconds: float) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ioxhub benchmark ({mode_name}, {seconds / 60:.1f} min)", box=box.MARKDOWN)
    for col in ("figure", "measured", "baseline", "ratio", "target", "met", "peak RSS"):
        table.add_column(col)
    for f in res.figures:
        table.add_row(f.name, f.measured, f.baseline, f"{f.ratio:.2f}", f.target, "met" if f.met else "NOT met", f.rss)
    console = Console(width=200)
    console.print(table)
    for f in res.figures:
        if f.note:
            console.print(f"- {f.name}: {f.note}", highlight=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k observations, 1 repetition, no demo")
    parser.add_argument("--only", default="publish,wire,ingest,memory,pull,demo",
                        help="comma-separated figures to measure (memory needs publish and ingest)")
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = child(args.child[0], args.child[1:])
        out["rss_mb"] = peak_rss_mb()
        print(json.dumps(out, default=str))
        return
    from bench_stack import BenchStack

    mode = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    started = time.perf_counter()
    res = Results()
    with tempfile.TemporaryDirectory(prefix="ioxhub-bench-") as tmp:
        work = Path(tmp)
        stack = BenchStack(work / "stack")
        log("starting a throwaway stack (SeaweedFS + tansu memory broker) ...")
        stack.up()
        try:
            csv, mapping, rows = build_workload(work / "samples", mode.scale)
            log(f"workload: {rows:,} observations, {csv.stat().st_size / 1e6:.1f} MB CSV")
            peaks = {}
            if "publish" in only:
                peaks["publish"] = publish_figure(mode, stack, csv, mapping, rows, res)
            if {"wire", "ingest"} & only:
                peaks["ingest"] = wire_and_ingest_figures(mode, stack, csv, mapping, rows, res)
            if "memory" in only and len(peaks) == 2:
                memory_figures(mode, stack, work, peaks, res)
            if "pull" in only:
                pull_figure(mode, stack, res)
        finally:
            stack.down()
        if "demo" in only and mode.demo:
            demo_figure(stack, work, res)
    seconds = time.perf_counter() - started
    print_table(res, "quick" if args.quick else "full", seconds)
    if args.json:
        args.json.write_text(json.dumps({"mode": "quick" if args.quick else "full", "seconds": seconds,
                                         "figures": [f.__dict__ for f in res.figures], "raw": res.raw},
                                        indent=1, default=str))


if __name__ == "__main__":
    main()
