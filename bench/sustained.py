"""Benchmark: sustained load, seven orgs publishing continuously while `ioxhub ingest datasets --follow` runs.

    .venv/bin/python bench/sustained.py                 # 10 minutes of publishing
    .venv/bin/python bench/sustained.py --minutes 2     # shorter

Each org publishes, one after the other, releases of log-uniform sizes (--min-obs to --max-obs), each a
dataset of its own (or, with --datasets N, one of N datasets per org, revised in turn), pausing a random time (exponential,
mean --pause s) between two; all seeded. Prints the observations/s published and harmonized while
publishing, the time for the follow process to consume every published event after publishing stops
(lag back to 0; target <= 30 s), and the follow process's peak RSS in the first and the last minute of
publishing (target last <= 1.2x first). Method: docs/freshness.md.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_follow import FollowProcess, publish_release, write_release  # noqa: E402
from bench_stack import BenchStack  # noqa: E402

ORGS = ["WCO", "WHO", "ICAO", "WTO", "IMO", "UPU", "ICC"]


class Publisher(threading.Thread):
    """One org publishing until `stop`: (observations, events) of each release, with when it returned."""

    def __init__(self, org: str, args, settings, work: Path, stop: threading.Event, seed: int):
        super().__init__(daemon=True, name=f"publish-{org}")
        self.org, self.args, self.settings, self.work, self.stop = org, args, settings, work, stop
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.sent: list[tuple[float, int, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            i = 0
            while not self.stop.is_set():
                rows = int(np.exp(self.rng.uniform(np.log(self.args.min_obs), np.log(self.args.max_obs))))
                dataset = (f"load_{self.rng.integers(self.args.datasets):02d}" if self.args.datasets
                           else f"load_{i:05d}")
                csv = write_release(self.work / f"{self.org}-{i}.csv", rows, seed=self.seed * 100_000 + i)
                obs, events = publish_release(self.org, dataset, csv, self.settings)
                csv.unlink()
                self.sent.append((time.monotonic(), obs, events))
                i += 1
                self.stop.wait(self.rng.exponential(self.args.pause))
        except BaseException as exc:       # reported by main()
            self.error = exc


def peak(samples: list[tuple[float, float]], start: float, end: float) -> float:
    values = [v for t, v in samples if start <= t <= end]
    return max(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--min-obs", type=int, default=1_000)
    ap.add_argument("--max-obs", type=int, default=50_000)
    ap.add_argument("--datasets", type=int, default=0, help="datasets per org, revised in turn "
                    "(default 0: each release a dataset of its own)")
    ap.add_argument("--pause", type=float, default=2.0, help="mean seconds an org waits between two releases")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    args = ap.parse_args()

    from ioxhub.storage import ObjectStore

    work = Path(tempfile.mkdtemp(prefix="ioxhub-sustained-"))
    print(f"sustained bench: {len(ORGS)} orgs publishing for {args.minutes:g} min, releases of "
          f"{args.min_obs:,}-{args.max_obs:,} observations (log-uniform), mean pause {args.pause:g} s, "
          f"{f'{args.datasets} datasets per org' if args.datasets else 'a dataset per release'}, seed {args.seed}; in {work}", flush=True)
    stack = BenchStack(work / "data")
    follower = None
    try:
        settings = stack.up()
        follower = FollowProcess(stack.env(), derive=False, log_file=work / "follow.log")
        print(f"follow process ready after {follower.wait_ready(ObjectStore(settings)):.1f} s", flush=True)
        stop = threading.Event()
        publishers = [Publisher(org, args, settings, work, stop, seed=args.seed * 10 + k) for k, org in enumerate(ORGS)]
        began = time.monotonic()
        for p in publishers:
            p.start()
        end = began + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(30.0, max(0.0, end - time.monotonic())))
            print(f"  {time.monotonic() - began:6.0f} s: published {sum(len(p.sent) for p in publishers)} releases, "
                  f"follow consumed {follower.consumed():,} events", flush=True)
        stop.set()
        for p in publishers:
            p.join()
        stopped = time.monotonic()
        errors = [p.error for p in publishers if p.error]
        if errors:
            raise SystemExit(f"a publisher failed: {errors[0]!r}")
        events = sum(e for p in publishers for _, _, e in p.sent)
        observations = sum(o for p in publishers for _, o, _ in p.sent)
        deadline = stopped + args.drain_timeout
        while follower.consumed() < events and time.monotonic() < deadline:
            time.sleep(0.1)
        caught_up = next((t for t, _ in _running_consumed(follower) if _ >= events), None)
        code, totals = follower.stop()

        window = stopped - began
        harmonized_in_window = sum(e.get("observations_harmonized", 0) for t, e in follower.batches() if t <= stopped)
        harmonized = sum(e.get("observations_harmonized", 0) for _, e in follower.batches())
        print(f"\npublished {sum(len(p.sent) for p in publishers)} releases, {observations:,} observations, "
              f"{events:,} events in {window:.0f} s: {observations / window:,.0f} observations/s offered")
        print(f"harmonized while publishing: {harmonized_in_window:,} observations, "
              f"{harmonized_in_window / window:,.0f} observations/s sustained "
              f"(in all {harmonized:,} harmonized of {observations:,} published)")
        if caught_up is None:
            print(f"lag NOT back to 0 within {args.drain_timeout:g} s: consumed {follower.consumed():,} of {events:,}")
        else:
            drain = max(0.0, caught_up - stopped)
            print(f"lag back to 0 (every published event consumed and committed) {drain:.1f} s after publishing "
                  f"stopped; target <= 30 s: {'met' if drain <= 30 else 'NOT met'}")
        first, last = peak(follower.rss, began, began + 60), peak(follower.rss, stopped - 60, stopped)
        print(f"follow process peak RSS: first minute {first:.0f} MB, last minute {last:.0f} MB, ratio "
              f"{last / first:.2f}; target <= 1.2: {'met' if last / first <= 1.2 else 'NOT met'} "
              f"({len(follower.rss)} samples every 0.5 s)")
        print(f"follow process: exit {code}; totals {totals}")
    finally:
        if follower is not None and follower.proc.poll() is None:
            follower.proc.kill()
        stack.down()
        shutil.rmtree(work / "data", ignore_errors=True)   # the hub's objects; the logs stay in `work`


def _running_consumed(follower: FollowProcess):
    """(time, events consumed so far) after each batch."""
    total = 0
    for t, e in follower.batches():
        total += e["events"]["consumed"]
        yield t, total


if __name__ == "__main__":
    main()
