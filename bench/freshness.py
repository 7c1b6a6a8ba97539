"""Benchmark: freshness, the time from `publish` returning to a release's rows being readable in harmonized/
and to the curated datasets that depend on it being updated.

    .venv/bin/python bench/freshness.py --path follow                 # `ioxhub ingest datasets --follow --derive`
    .venv/bin/python bench/freshness.py --path airflow --releases 3 --max-obs 10000   # Airflow standalone (~10 min)

Releases of log-spread sizes (--min-obs to --max-obs observations) from several orgs at random intervals
(exponential, mean --interval s; all seeded) on a throwaway local stack. A watcher lists the catalog's harmonized tables
and reads the last derivation's inputs every 0.1 s: a release is harmonized when its dataset's catalog entry
appears, curated when a derivation lists it among its inputs. Prints p50/p95/max per path, and what the
5-minute schedule gives on the same workload (computed, see the output). Method: docs/freshness.md.
"""
from __future__ import annotations

import argparse
import shutil
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_follow import FollowProcess, percentile, publish_release, release_sizes, spread, write_release  # noqa: E402
from bench_stack import BenchStack  # noqa: E402

ORGS = ["WCO", "WHO", "ICAO", "WTO", "IMO", "UPU", "ICC"]
TICK = 300.0                  # the ingest DAGs' schedule: every 5 minutes
WATCH_EVERY = 0.1
AIRFLOW_SETTLE = 35.0         # seconds for the DAG processor to parse dags/ (refresh interval 30 s)


@dataclass
class Release:
    org: str
    dataset: str
    rows: int
    csv: Path
    gap: float                       # seconds waited before publishing it
    events: int = 0
    published: float | None = None   # monotonic, when publish returned
    published_wall: float | None = None
    harmonized: float | None = None
    curated: float | None = None

    @property
    def name(self) -> str:
        return f"{self.org}.{self.dataset}"


class Watcher(threading.Thread):
    """Polls the catalog: when each release's harmonized entry appears and when a derivation read it."""

    def __init__(self, store, releases: list[Release]):
        super().__init__(daemon=True)
        self.store, self.releases, self.done = store, releases, threading.Event()

    def run(self) -> None:
        from consumers.evidence import last_derivation
        from ioxhub.catalog import Catalog

        while not self.done.is_set():
            now = time.monotonic()
            waiting = [r for r in self.releases if r.published is not None and r.harmonized is None]
            if waiting:
                names = {d["name"] for d in Catalog(self.store).datasets() if d.get("kind") == "harmonized"}
                for r in waiting:
                    if r.name in names:
                        r.harmonized = now
            if any(r.harmonized is not None and r.curated is None for r in self.releases):
                last = last_derivation(self.store.settings) or {}
                inputs = last.get("inputs", {}) if last.get("complete") else {}
                for r in self.releases:
                    if r.harmonized is not None and r.curated is None and r.name in inputs:
                        r.curated = now
            self.done.wait(WATCH_EVERY)


def plan(args, work: Path) -> list[Release]:
    rng = np.random.default_rng(args.seed)
    sizes = release_sizes(args.releases, args.min_obs, args.max_obs, rng)
    orgs = rng.choice(ORGS[:args.orgs], len(sizes))
    gaps = rng.exponential(args.interval, len(sizes))
    releases = []
    for i, (rows, org, gap) in enumerate(zip(sizes, orgs, gaps)):
        csv = write_release(work / f"release-{i:03d}.csv", rows, seed=args.seed * 1000 + i)
        releases.append(Release(str(org), f"fresh_{i:03d}", rows, csv, float(gap)))
    return releases


def start_airflow(stack: BenchStack):
    """`ioxhub stack up --airflow`'s code path on the bench stack (free port, DAGs unpaused at creation)."""
    from ioxhub.settings import get_settings, reset_settings_cache
    from ioxhub.stack import local, process

    os.environ["IOXHUB_AIRFLOW_PORT"] = str(process.free_ports(1)[0])
    os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    reset_settings_cache()
    return local.up(get_settings(), with_airflow=True).settings


def five_minute_model(releases: list[Release], attr: str) -> list[float]:
    """What the 5-minute schedule gives on this workload: wait from each publish to the next tick (ticks at
    multiples of 300 s of the wall clock, as Airflow's interval schedule) plus the measured processing time
    of this run (its publish -> harmonized/curated time), assuming the run at that tick sees the release."""
    out = []
    for r in releases:
        measured = getattr(r, attr)
        if measured is None:
            continue
        wait = TICK - (r.published_wall % TICK)
        out.append(wait + (measured - r.published))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", choices=["follow", "airflow"], required=True)
    ap.add_argument("--releases", type=int, default=24)
    ap.add_argument("--min-obs", type=int, default=100)
    ap.add_argument("--max-obs", type=int, default=1_000_000)
    ap.add_argument("--orgs", type=int, default=5, help="how many orgs publish (up to 7)")
    ap.add_argument("--interval", type=float, default=6.0, help="mean seconds between two releases")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=None, help="seconds to wait after the last publish "
                    "(default: 120 follow, 700 airflow)")
    args = ap.parse_args()
    timeout = args.timeout or (120.0 if args.path == "follow" else 700.0)

    from ioxhub.storage import ObjectStore

    work = Path(tempfile.mkdtemp(prefix="ioxhub-freshness-"))
    print(f"freshness bench: path {args.path}, {args.releases} releases of {args.min_obs:,}-{args.max_obs:,} "
          f"observations (log-spread), {args.orgs} orgs, mean interval {args.interval:g} s, seed {args.seed}; in {work}")
    releases = plan(args, work)
    stack = BenchStack(work / "data")
    follower = None
    try:
        settings = stack.up()
        if args.path == "follow":
            follower = FollowProcess(stack.env(), derive=True, log_file=work / "follow.log")
        else:
            print("starting Airflow standalone (stack up --airflow) ...", flush=True)
            settings = start_airflow(stack)
        store = ObjectStore(settings)
        if follower is not None:
            print(f"follow process ready (holds the ingest lease) after {follower.wait_ready(store):.1f} s")
        else:
            time.sleep(AIRFLOW_SETTLE)
        watcher = Watcher(store, releases)
        watcher.start()
        for r in releases:
            time.sleep(r.gap)
            _, r.events = publish_release(r.org, r.dataset, r.csv, settings)
            r.published, r.published_wall = time.monotonic(), time.time()
            print(f"  published {r.name}: {r.rows:,} observations", flush=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(r.curated is None for r in releases):
            time.sleep(0.5)
        watcher.done.set()
        watcher.join()
        if follower is not None:
            code, totals = follower.stop()
            events = sum(r.events for r in releases)
            print(f"follow process: exit {code}; consumed {totals.get('consumed')} of {events} events published, "
                  f"applied {totals.get('applied')}, {totals.get('batches')} batches, "
                  f"{totals.get('derivations')} derivations")
        report(args, releases)
    finally:
        if follower is not None and follower.proc.poll() is None:
            follower.proc.kill()
        stack.down()
        shutil.rmtree(work / "data", ignore_errors=True)   # the hub's objects; the logs stay in `work`
        for r in releases:
            r.csv.unlink(missing_ok=True)


def report(args, releases: list[Release]) -> None:
    print(f"\n{'release':<18} {'observations':>12} {'to harmonized':>14} {'to curated':>11}")
    for r in sorted(releases, key=lambda r: r.rows):
        h = f"{r.harmonized - r.published:.2f} s" if r.harmonized else "never"
        c = f"{r.curated - r.published:.2f} s" if r.curated else "never"
        print(f"{r.name:<18} {r.rows:>12,} {h:>14} {c:>11}")
    to_h = [r.harmonized - r.published for r in releases if r.harmonized]
    to_c = [r.curated - r.published for r in releases if r.curated]
    small = [r.harmonized - r.published for r in releases if r.harmonized and r.rows <= 100_000]
    missing = sum(1 for r in releases if r.curated is None)
    print(f"\npath {args.path}: publish -> harmonized  {spread(to_h)}")
    print(f"path {args.path}: publish -> curated     {spread(to_c)}")
    print(f"path {args.path}: publish -> harmonized, releases up to 100k observations  {spread(small)}")
    if missing:
        print(f"NOT all releases arrived: {missing} never reached curated/ within the wait")
    if args.path == "follow":
        met = percentile(small, 95) <= 5.0
        print(f"target follow p95 <= 5 s to harmonized (up to 100k observations): {'met' if met else 'NOT met'}")
    else:
        print(f"targets Airflow p95 <= 30 s to harmonized: {'met' if percentile(to_h, 95) <= 30 else 'NOT met'}; "
              f"<= 60 s to curated: {'met' if percentile(to_c, 95) <= 60 else 'NOT met'}")
    print("\nthe 5-minute schedule on the same workload (computed, not run: each release waits for the next "
          "5-minute tick of the wall clock, then takes the processing time measured above):")
    print(f"  publish -> harmonized  {spread(five_minute_model(releases, 'harmonized'))}")
    print(f"  publish -> curated     {spread(five_minute_model(releases, 'curated'))}")


if __name__ == "__main__":
    main()
