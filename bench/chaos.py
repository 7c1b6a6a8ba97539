"""Faults, measured: SIGKILL the ingest, the broker or the S3 server at random; is anything lost or doubled?

    .venv/bin/python bench/chaos.py                      # 20 trials, >= 1M observations each
    .venv/bin/python bench/chaos.py --trials 3 --quick   # a fast look (~122k observations)
    .venv/bin/python bench/chaos.py --seed 7 --targets ingest,broker

Method (a trial, its kills, the comparison with a fault-free reference by `chaos_state`): docs/chaos.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TARGETS = ("ingest", "broker", "s3")
FULL_SCALE, QUICK_SCALE = 21, 2.1       # bulk WTO CSV: 47,850 observations per unit (1,004,850 at 21)
BATCH_SIZES = (None, 12, 4)             # records per ingest run (None: the setting's default); a chunk
                                        # holds up to ~24k observations, so small batches split releases
RUN_TIMEOUT_S = 300                      # any one ingest or derive run
MAX_FAULT_RUNS = 30                      # most ingest runs while faults are pending
CLEAN_RUNS = 40                          # most runs of the clean rerun before giving up


# ------------------------------------------------------------------------------------------ children
def child(kind: str, args: list[str]) -> dict:
    """What runs in a subprocess: one ingest (the function `ioxhub ingest` and the DAGs call) or derive."""
    if kind == "ingest":
        from ioxhub.ingest.run import ingest
        counts = ingest(args[0], max_records=int(args[2]) if len(args) > 2 else None, run_id=args[1])
        return {"consumed": counts["events"]["consumed"], "events": counts["events"]}
    if kind == "derive":
        from consumers.evidence import derive_evidence
        return {"changed": derive_evidence(run_id=args[0])["changed"]}
    raise SystemExit(f"unknown child {kind}")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ------------------------------------------------------------------------------------------ the hub
class Hub:
    """One empty throwaway hub with a durable broker: `up()`, `kill(target)`, `restart(target)`, `down()`."""

    def __init__(self, data_dir: Path, **child_env: str):
        self.data_dir = data_dir
        self.child_env = child_env          # extra IOXHUB_* settings of the ingest/derive runs
        self.settings = None
        self.children: list[subprocess.Popen] = []
        self._saved_env: dict[str, str] | None = None

    def up(self) -> None:
        from app.demo import ensure_keys
        from ioxhub.orgs import load_orgs
        from ioxhub.provision.apply import provision
        from ioxhub.settings import reset_settings_cache
        from ioxhub.stack import local

        self._saved_env = dict(os.environ)   # restored by down(): this process works for one hub at a time
        self.settings = local.up_on_free_ports(local.isolated_env(self.data_dir), broker_storage="s3")
        os.environ.update(self.env())
        reset_settings_cache()
        provision(self.settings)
        ensure_keys([o.id for o in load_orgs(self.settings.orgs_file).orgs], self.settings)

    def env(self, **extra: str) -> dict[str, str]:
        from bench_stack import CHILD_FIELDS

        from ioxhub.settings import env_name
        from ioxhub.stack import local

        env = local.isolated_env(self.data_dir)
        env.update({env_name(n): str(getattr(self.settings, n)) for n in CHILD_FIELDS
                    if getattr(self.settings, n) is not None})
        env.update(self.child_env)
        env.update(extra)
        return env

    def store(self):
        from ioxhub.storage import ObjectStore
        return ObjectStore(self.settings)

    # --- subprocesses -------------------------------------------------------------------------------
    def start_child(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, __file__, "--child", *args], env=self.env(), text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.children.append(proc)
        return proc

    def finish_child(self, proc: subprocess.Popen, timeout: float = RUN_TIMEOUT_S) -> tuple[int, dict | str]:
        """Wait for a child (killing it past `timeout`); (exit code, its JSON result or its last error line)."""
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=30)
            err = f"killed after {timeout:.0f} s\n{err}"
        self.children.remove(proc)
        if proc.returncode == 0:
            return 0, json.loads(out.strip().splitlines()[-1])
        lines = [ln for ln in (err or "").strip().splitlines() if ln.strip()]
        return proc.returncode, lines[-1][:240] if lines else "(no output)"

    def run_child(self, *args: str) -> dict:
        code, result = self.finish_child(self.start_child(*args))
        if code != 0:
            raise RuntimeError(f"{' '.join(args)} failed (exit {code}): {result}")
        return result

    # --- faults -------------------------------------------------------------------------------------
    def server_pid(self, name: str) -> int:
        from ioxhub.stack import process
        record = process.read_record(self.data_dir, name)
        if record is None:
            raise RuntimeError(f"{name} has no pid record")
        return record.pid

    def kill_server(self, target: str) -> None:
        import psutil
        pid = self.server_pid(_service(target))
        os.kill(pid, signal.SIGKILL)
        try:
            psutil.Process(pid).wait(timeout=10)     # reaps it (the stack started it from this process)
        except psutil.NoSuchProcess:
            pass

    def restart(self, target: str) -> list[str]:
        """Start again what was killed (the stack's own stop/start: records, leftovers, readiness);
        returns what had to be restarted besides it."""
        from ioxhub.stack import seaweedfs, tansu

        collateral = []
        if target == "s3":
            seaweedfs.stop(self.settings)          # the dead record, its Unix sockets
            seaweedfs.start(self.settings)
            try:
                _bounded(lambda: tansu.probe(self.settings), 20)
            except Exception:
                collateral.append("broker")
        if target == "broker" or collateral:
            tansu.stop(self.settings)
            tansu.start(self.settings, "s3", seaweedfs.load_or_create_secrets(self.settings))
        return collateral

    def down(self) -> None:
        """Stop every child and server of this hub, whatever state the faults left them in."""
        from ioxhub.stack import local
        for proc in list(self.children):
            proc.kill()
            proc.communicate(timeout=30)
            self.children.remove(proc)
        try:
            if self.settings is not None:
                local.down(self.settings)
        finally:
            self.settings = None
            _kill_leftovers(self.data_dir, os.environ.get("IOXHUB_KAFKA_BOOTSTRAP"))
            if self._saved_env is not None:
                from ioxhub.settings import reset_settings_cache
                os.environ.clear()
                os.environ.update(self._saved_env)
                reset_settings_cache()
                self._saved_env = None


def _kill_leftovers(data_dir: Path, bootstrap: str | None) -> None:
    """SIGKILL any server of this hub that `stack down` left running: its SeaweedFS names the data
    directory, its tansu the listener. Seen: a server restarted after a kill can be recorded with an
    empty command line, and `stop` then leaves it running."""
    import psutil

    marks = [f"-dir={data_dir}/"] + ([f"tcp://{bootstrap}"] if bootstrap else [])
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if proc.pid != os.getpid() and any(m in line for m in marks) and (" server " in line or " broker " in line):
            log(f"stack down left pid {proc.pid} ({' '.join(proc.info['cmdline'][:2])}) running: killed")
            try:
                proc.kill()
                proc.wait(timeout=10)
            except psutil.NoSuchProcess:
                pass


def _service(target: str) -> str:
    return {"broker": "tansu", "s3": "seaweedfs"}[target]


def _bounded(call, seconds: float, interval: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            call()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


# ------------------------------------------------------------------------------------------ workload
@dataclass
class Workload:
    dir: Path
    files: list
    observations: int


def build_workload(out: Path, scale: float) -> Workload:
    from producers.samples import generate
    manifest = generate(out, scale=scale)
    return Workload(out, manifest.files, sum(f.rows for f in manifest.datasets()))


def publish_all(hub: Hub, work: Workload) -> list[dict]:
    """Publish every sample file (as `ioxhub demo` does); one dict per file for the accounting."""
    from producers import publish_dataset, publish_policy
    from producers.mapping import ColumnMapping

    published = []
    for f in work.files:
        path = work.dir / f.path
        if f.kind == "dataset":
            s = publish_dataset(f.org, f.dataset_id, [path], ColumnMapping.from_file(work.dir / f.mapping),
                                rejects_path=hub.data_dir / "rejects" / (path.name + ".csv"),
                                settings=hub.settings, progress=False)
        else:
            s = publish_policy(f.org, path, settings=hub.settings)
        published.append({"kind": f.kind, "org": f.org, "dataset_id": f.dataset_id, "release_id": s.release_id,
                          "event_ids": list(s.event_ids), "rows_sent": s.rows_sent})
    return published


# ------------------------------------------------------------------------------------------ a trial
@dataclass
class Fault:
    target: str
    at: float        # seconds after an ingest run starts
    downtime: float  # servers: seconds before the restart


@dataclass
class TrialResult:
    number: int
    seconds: float = 0.0
    kills: Counter = field(default_factory=Counter)
    collateral: Counter = field(default_factory=Counter)
    runs: int = 0
    failed_runs: int = 0
    idle_kills: int = 0              # kills after the workload was consumed (still must change nothing)
    batch: int | None = None
    lost: int = 0
    duplicated: int = 0
    mismatches: list[str] = field(default_factory=list)
    unaccounted: int = 0
    problems: list[str] = field(default_factory=list)
    published_events: int = 0
    observations: int = 0
    log: list[str] = field(default_factory=list)    # one line per ingest run: id, exit, what it read

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.mismatches or self.unaccounted or self.problems)


def plan(rng: random.Random, targets: tuple[str, ...], ingest_seconds: float) -> tuple[int | None, list[Fault]]:
    batch = rng.choice(BATCH_SIZES)
    faults = [Fault(rng.choice(targets), rng.uniform(0.8, max(1.5, 0.75 * ingest_seconds)), rng.uniform(0.2, 3.0))
              for _ in range(rng.randint(1, 3))]
    return batch, faults


def run_trial(number: int, work: Workload, root: Path, faults: list[Fault], batch: int | None,
              reference=None, **child_env: str) -> tuple[TrialResult, dict, float]:
    """One trial on an empty hub; returns (result, the hub's tables, seconds of the first ingest run)."""
    from chaos_state import account, compare, snapshot

    res = TrialResult(number, batch=batch)
    started = time.monotonic()
    hub = Hub(root / f"trial-{number:02d}", **child_env)
    try:
        hub.up()
        published = publish_all(hub, work)
        res.published_events = sum(len(p["event_ids"]) for p in published)
        res.observations = sum(p["rows_sent"] for p in published)
        limit = [str(batch)] if batch else []
        first_run = 0.0
        retry = random.Random(f"{number}-{faults}")     # where a fault that missed its run lands next
        pending = list(faults)
        at = pending[0].at if pending else 0.0
        work_left = True
        while pending and res.runs < MAX_FAULT_RUNS:
            fault = pending[0]
            res.runs += 1
            t0 = time.monotonic()
            proc = hub.start_child("ingest", "datasets", f"t{number}-r{res.runs}", *limit)
            try:
                proc.wait(timeout=at)
            except subprocess.TimeoutExpired:
                pass
            # A fault lands in a running ingest; once the workload is consumed, in whatever runs.
            hit = proc.poll() is None or not work_left
            if hit and fault.target == "ingest":
                proc.send_signal(signal.SIGKILL)
            elif hit:
                hub.kill_server(fault.target)
                time.sleep(fault.downtime)
                for other in hub.restart(fault.target):
                    res.collateral[other] += 1
            code, out = hub.finish_child(proc)
            took = time.monotonic() - t0
            res.log.append(f"run {res.runs} ({fault.target}@{at:.1f}s, {'hit' if hit else 'missed'}): "
                           f"exit {code} after {took:.1f} s, {out['events'] if code == 0 else out}")
            first_run = first_run or took
            res.failed_runs += code != 0
            if code == 0 and not out["consumed"]:
                work_left = False
            if hit:
                res.kills[fault.target] += 1
                res.idle_kills += not work_left
                pending.pop(0)
                at = pending[0].at if pending else 0.0
            else:                                        # the run ended first: aim inside a run of its length
                at = retry.uniform(0.5, max(0.8, took))
        t0 = time.monotonic()
        res.runs += clean_rerun(hub, number, "datasets", limit, res.log)
        first_run = first_run or time.monotonic() - t0
        res.runs += clean_rerun(hub, number, "policies", [], res.log)
        hub.run_child("derive", f"t{number}-derive")
        tables = snapshot(hub.store())
        acc = account(hub.store(), published)
        res.unaccounted, res.problems = acc.unaccounted, acc.problems
        if reference is not None:
            diff = compare(reference, tables)
            res.lost, res.duplicated, res.mismatches = diff.lost, diff.duplicated, diff.mismatches
    finally:
        hub.down()
    res.seconds = time.monotonic() - started
    return res, tables, first_run


def unread(settings, kind: str, idle_s: float = 3.0) -> dict:
    """Records of the `kind` topics after the ingest group's committed offsets, read by a consumer of its
    own until `idle_s` of silence (end offsets under-report on tansu): {partition: (committed, unread)}."""
    from kafka.structs import TopicPartition

    from ioxhub.kafka import make_consumer
    from ioxhub.orgs import load_orgs

    group = make_consumer(f"{settings.consumer_group}-{kind}", settings)
    fresh = make_consumer(None, settings)
    try:
        parts = [TopicPartition(getattr(o, kind).name, p) for o in load_orgs(settings.orgs_file).orgs
                 for p in sorted(fresh.partitions_for_topic(getattr(o, kind).name) or ())]
        committed = {tp: group.committed(tp) for tp in parts}
        fresh.assign(parts)
        for tp in parts:
            if committed[tp] is None:
                fresh.seek_to_beginning(tp)
            else:
                fresh.seek(tp, committed[tp])
        seen: Counter = Counter()
        idle = time.monotonic()
        while time.monotonic() - idle < idle_s:
            for tp, recs in fresh.poll(timeout_ms=300).items():
                seen[tp] += len(recs)
                idle = time.monotonic()
        return {f"{tp.topic}[{tp.partition}]": (committed[tp], seen[tp]) for tp in parts if seen[tp]}
    finally:
        group.close()
        fresh.close()


def clean_rerun(hub: Hub, number: int, kind: str, limit: list[str], runs_log: list[str]) -> int:
    """Ingest runs without faults until nothing is left after the committed offsets (a run that reads
    nothing is not enough: right after a restart a run can end idle before the broker serves it)."""
    for i in range(1, CLEAN_RUNS + 1):
        result = hub.run_child("ingest", kind, f"t{number}-{kind}-clean{i}", *limit)
        runs_log.append(f"clean {kind} {i}: {result['events']}")
        if result["consumed"] == 0:
            left = unread(hub.settings, kind)
            if not left:
                return i
            runs_log.append(f"  read nothing, but unread after the committed offsets: {left}")
    raise RuntimeError(f"{kind}: records still unread after {CLEAN_RUNS} clean runs")


# ------------------------------------------------------------------------------------------ report
def report(results: list[TrialResult], seconds: float) -> str:
    lines = [f"{'trial':>5} {'sent':>9} {'batch':>5} {'kills (ingest/broker/s3)':>24} {'runs':>4} {'failed':>6} "
             f"{'lost':>4} {'dup':>4} {'mism':>4} {'unacc':>5} {'seconds':>7}"]
    for r in results:
        kills = "/".join(str(r.kills[t]) for t in TARGETS)
        lines.append(f"{r.number:>5} {r.observations:>9,} {r.batch or '-':>5} {kills:>24} {r.runs:>4} {r.failed_runs:>6} "
                     f"{r.lost:>4} {r.duplicated:>4} {len(r.mismatches):>4} {r.unaccounted:>5} {r.seconds:>7.1f}")
        lines += [f"        {m}" for m in r.mismatches + r.problems]
    kills = sum((r.kills for r in results), Counter())
    collateral = sum((r.collateral for r in results), Counter())
    per = [r.seconds for r in results]
    lines += [
        f"trials: {len(results)}",
        f"kills by target: " + ", ".join(f"{t} {kills[t]}" for t in TARGETS) + f" (total {sum(kills.values())}, {sum(r.idle_kills for r in results)} of them after the workload "
        f"was consumed)"
        + (f"; also restarted: " + ", ".join(f"{t} {n}" for t, n in collateral.items()) if collateral else ""),
        f"lost: {sum(r.lost for r in results)}",
        f"duplicated: {sum(r.duplicated for r in results)}",
        f"mismatches: {sum(len(r.mismatches) for r in results)}",
        f"unaccounted events: {sum(r.unaccounted for r in results)} "
        f"(other problems: {sum(len(r.problems) for r in results)})",
        f"time per trial: median {sorted(per)[len(per) // 2]:.1f} s, max {max(per):.1f} s; "
        f"total {seconds / 60:.1f} min" if per else f"total {seconds / 60:.1f} min",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"bulk scale {QUICK_SCALE} instead of {FULL_SCALE}")
    parser.add_argument("--targets", default=",".join(TARGETS), help="what may be killed (comma-separated)")
    parser.add_argument("--json", type=Path, help="also write every trial (with its runs) to this file")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1:])))
        return 0
    targets = tuple(t for t in args.targets.split(",") if t)
    if args.trials < 1 or not targets or set(targets) - set(TARGETS):
        parser.error(f"--trials must be >= 1 and --targets a subset of {','.join(TARGETS)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # finally-blocks stop the servers
    started = time.monotonic()
    rng = random.Random(args.seed)
    results: list[TrialResult] = []
    with tempfile.TemporaryDirectory(prefix="ioxhub-chaos-") as tmp:
        root = Path(tmp)
        work = build_workload(root / "samples", QUICK_SCALE if args.quick else FULL_SCALE)
        log(f"workload: {len(work.files)} files, {work.observations:,} observation rows; seed {args.seed}")
        ref, reference, ingest_s = run_trial(0, work, root, [], None)
        if not ref.clean:
            print(report([ref], time.monotonic() - started))
            raise SystemExit("the reference trial itself is not clean")
        log(f"reference: {ref.runs} ingest runs, first {ingest_s:.1f} s, {ref.seconds:.1f} s in all, "
            f"{len(reference)} tables")
        for n in range(1, args.trials + 1):
            batch, faults = plan(rng, targets, ingest_s)
            log(f"trial {n}: batch {batch or 'default'}, faults " +
                ", ".join(f"{f.target}@{f.at:.1f}s" for f in faults))
            res, _, _ = run_trial(n, work, root, faults, batch, reference)
            results.append(res)
            log(f"trial {n}: {'ok' if res.clean else 'NOT CLEAN'} in {res.seconds:.1f} s "
                f"(kills {dict(res.kills)}, {res.runs} runs, lost {res.lost}, duplicated {res.duplicated}, "
                f"mismatches {len(res.mismatches)}, unaccounted {res.unaccounted})")
    print(report(results, time.monotonic() - started), flush=True)
    if args.json:
        args.json.write_text(json.dumps([{**r.__dict__, "kills": dict(r.kills), "collateral": dict(r.collateral)}
                                         for r in [ref, *results]], indent=1, default=str))
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
