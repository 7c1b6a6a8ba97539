"""The web load figure: concurrent clients pulling one country each from a large curated panel over HTTP.

    .venv/bin/python bench/web_load.py                      # 10M-row panel, 50 clients x 4 requests, csv, both scenarios
    .venv/bin/python bench/web_load.py --rows 1000000 --format parquet --workers 2

A throwaway local stack (bench_stack.BenchStack), the panel of bench_pull.write_panel, an analyst API key;
then for each scenario a fresh `ioxhub serve` (uvicorn; so an empty response cache) on a free port and
`--clients` concurrent clients (`--client curl`, the default: one `curl --parallel` process, libcurl's C
event loop, so the load generator takes little of the two cores the server runs on; `--client httpx`:
asyncio in this Python process) each sending `--requests` GET
/api/v1/datasets/<panel>/rows?where=ref_area=<country> in turn. Scenarios: `same` (every request the same
country: the response cache's case) and `distinct` (every request another country: each a cold query).
Prints per scenario p50/p95/max latency (request sent -> last byte), throughput (requests/s, MB/s), the
cache hits (`X-Cache`) and the fraction of the panel's bytes the server read per computed pull (its `web
pull` log lines). Target: p95 <= 500 ms. Figures and where the time goes: docs/api.md "Load".
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_pull import panel_table, write_panel  # noqa: E402
from bench_stack import BenchStack  # noqa: E402
from ioxhub.stack import process  # noqa: E402

SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")
PULL_LOG = re.compile(r"web pull: (\S+) snapshot \d+: (\d+) rows, read (\d+) of (\d+) bytes")


def start_server(stack: BenchStack, port: int, log: Path, workers: int) -> subprocess.Popen:
    env = {**os.environ, **stack.env(), "IOXHUB_WEB_PORT": str(port)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "ioxhub"), "serve", "--port", str(port),
                                 "--workers", str(workers)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/schemas/subjects", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"ioxhub serve did not start:\n{log.read_text()[-3000:]}")


async def run_clients(base: str, key: str, name: str, countries: list[str], clients: int, requests: int,
                      fmt: str) -> tuple[list[float], int, int, list[float], list[float], float]:
    """Client i's r-th request pulls countries[(i * requests + r) % len(countries)]."""
    latencies: list[float] = []
    total_bytes = hits = 0
    server: list[float] = []
    firsts: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(i: int, http: httpx.AsyncClient) -> None:
        nonlocal total_bytes, hits
        for r in range(requests):
            country = countries[(i * requests + r) % len(countries)]
            started = time.perf_counter()
            # The bytes as they come on the wire (gzip when the server sends it, not decompressed here: the
            # client shares the server's cores, and the figure is the server's time to the last byte).
            async with http.stream("GET", f"{base}/api/v1/datasets/{name}/rows",
                                   params={"where": f"ref_area={country}", "format": fmt}) as response:
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
            latencies.append(time.perf_counter() - started)
            if r == 0:
                firsts.append(latencies[-1])
            if response.status_code != 200:
                raise SystemExit(f"{country}: HTTP {response.status_code}")
            total_bytes += size
            hits += response.headers.get("x-cache") == "hit"
            timing = SERVER_TIMING.search(response.headers.get("server-timing", ""))
            if timing:
                server.append(float(timing[1]) / 1000)

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=300, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        return latencies, total_bytes, hits, server, firsts, time.perf_counter() - started


def run_curl(base: str, key: str, name: str, countries: list[str], clients: int, requests: int, fmt: str,
             tmp: Path) -> tuple[list[float], int, int, list[float], list[float], float]:
    """The same requests as `run_clients`, sent by one `curl --parallel --parallel-max CLIENTS` (at most
    CLIENTS in flight, the next sent when one ends, as CLIENTS clients sending one after the other)."""
    config = tmp / "curl.config"
    lines = [f'header = "Authorization: Bearer {key}"', 'header = "Accept-Encoding: gzip"']
    for i in range(clients * requests):
        country = countries[i % len(countries)]
        lines += [f'url = "{base}/api/v1/datasets/{name}/rows?where=ref_area%3D{country}&format={fmt}"',
                  'output = "/dev/null"']
    config.write_text("\n".join(lines) + "\n")
    write_out = "%{time_total} %{http_code} %{size_download} [%header{x-cache}] [%header{server-timing}]\n"
    started = time.perf_counter()
    done = subprocess.run(["curl", "--silent", "--parallel", "--parallel-immediate", "--parallel-max", str(clients),
                           "--write-out", write_out, "--config", str(config)], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    latencies: list[float] = []
    total_bytes = hits = 0
    server: list[float] = []
    for line in done.stdout.splitlines():
        total, status, size, rest = line.split(" ", 3)
        if status != "200":
            raise SystemExit(f"HTTP {status}: {line}")
        latencies.append(float(total))
        total_bytes += int(size)
        hits += "[hit]" in rest
        timing = SERVER_TIMING.search(rest)
        if timing:
            server.append(float(timing[1]) / 1000)
    if len(latencies) != clients * requests:
        raise SystemExit(f"curl answered {len(latencies)} of {clients * requests} requests: {done.stderr[-2000:]}")
    return latencies, total_bytes, hits, server, [], seconds


def scenario(stack: BenchStack, tmp: Path, key: str, name: str, countries: list[str], label: str,
             args: argparse.Namespace) -> None:
    port = process.free_ports(1)[0]
    log = tmp / f"serve-{label}.log"
    proc = start_server(stack, port, log, args.workers)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(run_clients(base, key, name, ["ZZZ"], 2, 1, args.format))     # warm-up: no country's rows
        if args.client == "curl":
            latencies, total_bytes, hits, server, firsts, seconds = run_curl(
                base, key, name, countries, args.clients, args.requests, args.format, tmp)
        else:
            latencies, total_bytes, hits, server, firsts, seconds = asyncio.run(
                run_clients(base, key, name, countries, args.clients, args.requests, args.format))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    pulls = [(int(m[2]), int(m[3]), int(m[4])) for m in PULL_LOG.finditer(log.read_text()) if int(m[2])]
    n = len(latencies)
    q = statistics.quantiles(latencies, n=100)
    fractions = [read / whole for _, read, whole in pulls if whole]
    print(f"[{label}] {args.clients} clients ({args.client}) x {args.requests} requests ({n} pulls of one country, "
          f"{len(set(countries[:n]))} distinct, format {args.format}, {args.workers} server process(es)) in {seconds:.1f} s")
    print(f"[{label}] latency: p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
          f"(target p95 <= 500 ms: {'met' if q[94] <= 0.5 else 'NOT met'})")
    print(f"[{label}] throughput: {n / seconds:.1f} requests/s, {total_bytes / seconds / 1e6:.1f} MB/s on the wire; "
          f"cache hits {hits} of {n}; pulls computed {len(pulls)}, {statistics.mean(r for r, _, _ in pulls):.0f} rows each")
    later = sorted(set(latencies) - set(firsts)) if args.requests > 1 and firsts else []
    if later:
        print(f"[{label}] the {len(firsts)} first requests (all at once): p50 {statistics.median(firsts) * 1000:.0f} ms, "
              f"max {max(firsts) * 1000:.0f} ms; the later ones: p50 {statistics.median(later) * 1000:.0f} ms, "
              f"p95 {statistics.quantiles(later, n=100)[94] * 1000:.0f} ms")
    if server:
        sq = statistics.quantiles(server, n=100)
        print(f"[{label}] time in the handler (Server-Timing): p50 {sq[49] * 1000:.0f} ms, p95 {sq[94] * 1000:.0f} ms, "
              f"max {max(server) * 1000:.0f} ms; "
              f"sum {sum(server):.1f} s over {seconds:.1f} s wall (the rest of a latency: waiting for a thread, "
              f"the event loop, sending)")
    print(f"[{label}] bytes read per computed pull: {statistics.mean(fractions) * 100:.2f}% of the panel "
          f"(max {max(fractions) * 100:.2f}%)")


def breakdown(stack: BenchStack, name: str, countries: list[str], fmt: str) -> None:
    """Where one cold pull's time goes: the steps of the rows endpoint timed in-process, one pull at a time."""
    from app.web.app import web_store
    from consumers.access import iter_pull, plan_pull
    from ioxhub.catalog import Catalog

    store = web_store(stack.settings)
    steps: dict[str, list[float]] = {"catalog entry": [], "plan (list, footer)": [], "read (ranged GETs, decode, filter)": [],
                                     f"encode {fmt}": []}
    for i, country in enumerate(countries[:23]):
        t0 = time.perf_counter()
        entry = Catalog(store).dataset(name)
        t1 = time.perf_counter()
        plan = plan_pull(name, [f"ref_area={country}"], None, None, store, entry=entry)
        t2 = time.perf_counter()
        tables = list(iter_pull(plan, store))
        t3 = time.perf_counter()
        for _ in _encode(tables, plan, fmt):
            pass
        t4 = time.perf_counter()
        if i >= 3:                                               # the first ones warm connections up
            for values, seconds in zip(steps.values(), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                values.append(seconds)
    print("one cold pull, in-process, medians of 20: " + ", ".join(
        f"{step} {statistics.median(v) * 1000:.0f} ms" for step, v in steps.items()))


def _encode(tables, plan, fmt: str):
    from consumers.encode import csv_chunks, jsonl_chunks
    return csv_chunks(iter(tables), plan.schema) if fmt == "csv" else jsonl_chunks(iter(tables))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=4, help="Requests per client (one after the other).")
    parser.add_argument("--format", default="csv", choices=["csv", "json", "jsonl", "parquet"])
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of `ioxhub serve`.")
    parser.add_argument("--client", default="curl", choices=["curl", "httpx"],
                        help="The load generator: one curl --parallel process (C), or httpx/asyncio in this process.")
    parser.add_argument("--scenario", default="both", choices=["same", "distinct", "both", "none"])
    parser.add_argument("--breakdown", action="store_true", help="Also time the steps of one cold pull in-process.")
    args = parser.parse_args()

    from ioxhub.apikeys import create_key
    from ioxhub.storage import ObjectStore

    with tempfile.TemporaryDirectory(prefix="ioxhub-web-load-") as tmp:
        stack = BenchStack(Path(tmp) / "data")
        stack.up()
        try:
            started = time.perf_counter()
            name, size = write_panel(stack.settings, args.rows)
            print(f"panel: {args.rows / 1e6:g}M rows, {size / 1e6:.1f} MB ({time.perf_counter() - started:.0f} s to write); "
                  f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            countries = sorted(set(panel_table(10_000)["ref_area"].to_pylist()))
            key, _ = create_key(ObjectStore(stack.settings), "bench", "analyst")
            if args.breakdown:
                breakdown(stack, name, countries, args.format if args.format in ("csv", "jsonl") else "csv")
            for label in {"both": ("same", "distinct"), "none": ()}.get(args.scenario, (args.scenario,)):
                scenario(stack, Path(tmp), key, name, countries[:1] if label == "same" else countries, label, args)
                print(f"[{label}] load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            stack.down()


if __name__ == "__main__":
    main()
