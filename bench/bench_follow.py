"""What the freshness and sustained-load benchmarks share: a `ioxhub ingest datasets --follow` child process
(its JSON Lines events timed as they arrive, its RSS sampled, stopped by SIGTERM), log-spread release
sizes, one CSV per release, percentiles. Method: docs/freshness.md.
"""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench_publish import MAPPING, build_csv

IOXHUB = str(Path(sys.executable).parent / "ioxhub")


def rss_mb(pid: int) -> float | None:
    """Resident set size of `pid` (psutil if installed, else /proc/PID/status), None once it is gone."""
    try:
        import psutil
    except ImportError:
        psutil = None
    try:
        if psutil is not None:
            return psutil.Process(pid).memory_info().rss / 2**20
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError) if psutil is None else (OSError, psutil.Error):
        return None
    return None


class FollowProcess:
    """`ioxhub ingest datasets --follow --json [--derive]` in `env`; `events` are (monotonic time, event)."""

    def __init__(self, env: dict[str, str], derive: bool, log_file: Path, rss_every: float = 0.5):
        """Its stderr goes to `log_file`, its events also to `log_file` with the suffix .jsonl."""
        args = [IOXHUB, "ingest", "datasets", "--follow", "--json"] + (["--derive"] if derive else [])
        self.log = open(log_file, "w")
        self.events_file = open(log_file.with_suffix(".jsonl"), "w")
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     stdin=subprocess.DEVNULL)
        self.events: list[tuple[float, dict]] = []
        self.rss: list[tuple[float, float]] = []
        self.started = time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._sampler = threading.Thread(target=self._sample, args=(rss_every,), daemon=True)
        self._sampler.start()

    def wait_ready(self, store, timeout: float = 60) -> float:
        """Wait until the process holds the ingest lease (its consumer is open); returns the seconds it took."""
        from ioxhub.ingest.lease import lease_key

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (store.get_json(lease_key("datasets")) or {}).get("expires_at", 0) > time.time():
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                raise SystemExit(f"the follow process ended with {self.proc.returncode}: see {self.log.name}")
            time.sleep(0.1)
        raise SystemExit(f"the follow process did not take the ingest lease within {timeout:g} s")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.append((time.monotonic(), json.loads(line)))
            self.events_file.write(f'{{"received": {time.monotonic() - self.started:.3f}, "line": {line.strip()}}}\n')
        self.events_file.close()

    def _sample(self, every: float) -> None:
        while self.proc.poll() is None:
            value = rss_mb(self.proc.pid)
            if value is not None:
                self.rss.append((time.monotonic(), value))
            time.sleep(every)

    def batches(self) -> list[tuple[float, dict]]:
        return [(t, e) for t, e in list(self.events) if e["event"] == "batch"]

    def consumed(self) -> int:
        return sum(e["events"]["consumed"] for _, e in self.batches())

    def stop(self, timeout: float = 120) -> tuple[int, dict]:
        """SIGTERM, wait; (exit code, the totals it printed last)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(10)
        self.log.close()
        last = self.events[-1][1] if self.events else {}
        return code, last if last.get("event") == "stopped" else {}


def release_sizes(n: int, low: int, high: int, rng: np.random.Generator) -> list[int]:
    """`n` sizes spread evenly on a log scale from `low` to `high` (both included), in random order."""
    sizes = [int(round(x)) for x in np.geomspace(low, high, n)] if n > 1 else [high]
    return [int(s) for s in rng.permutation(sizes)]


def write_release(path: Path, rows: int, seed: int) -> Path:
    build_csv(path, rows, seed=seed)
    return path


def publish_release(org: str, dataset: str, csv: Path, settings) -> tuple[int, int]:
    """Publish one CSV; (observations sent, events on the topic: chunks + manifest)."""
    from producers import publish_dataset

    sent = publish_dataset(org, dataset, [csv], MAPPING, settings=settings, progress=False)
    if sent.rows_rejected:
        raise SystemExit(f"publish rejected rows: {sent}")
    return sent.rows_sent, sent.chunks + 1


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of `values`; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    """'p50 1.23 s  p95 4.56 s  max 7.89 s (n=12)'."""
    if not values:
        return "no value"
    return (f"p50 {percentile(values, 50):.2f} s  p95 {percentile(values, 95):.2f} s  max {max(values):.2f} s "
            f"(n={len(values)})")
