"""Fuzz the ingest's wire path: >= 100,000 mutated events through the per-record path of a run, counting
what each became and the escapes (exceptions; must be 0).

    .venv/bin/python bench/fuzz.py                      # 100,000 cases (~4 min on 2 cores)
    .venv/bin/python bench/fuzz.py --cases 5000 --seed 7 --save DIR   # DIR: each escaping input as JSON

Strategies and seeds: tests/unit/wirefuzz.py; method and last figures: docs/reliability.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from wirefuzz import cases, run_case, to_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="directory for the escaping inputs (JSON)")
    args = parser.parse_args(argv)

    outcomes: Counter = Counter()
    escapes: list[tuple[str, dict]] = []
    by_how: Counter = Counter()

    @seed(args.seed)
    @settings(max_examples=args.cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases())
    def fuzz(record):
        outcome = run_case(record)
        if outcome.escape is None:
            outcomes[outcome.reason] += 1
        else:
            error = outcome.escape.strip().splitlines()[-1]
            by_how[error.split(":")[0]] += 1
            escapes.append((error, to_json(record)))

    started = time.perf_counter()
    fuzz()
    seconds = time.perf_counter() - started
    total = sum(outcomes.values()) + len(escapes)
    print(f"fuzz: {total:,} cases in {seconds:.0f} s ({total / seconds:,.0f}/s), seed {args.seed}")
    print(f"escapes: {len(escapes)}" + (f"  {dict(by_how)}" if escapes else ""))
    print("outcomes: " + ", ".join(f"{reason} {n:,}" for reason, n in outcomes.most_common()))
    if args.save and escapes:
        args.save.mkdir(parents=True, exist_ok=True)
        for i, (error, doc) in enumerate(escapes):
            (args.save / f"escape-{i:04d}.json").write_text(json.dumps({"error": error, "record": doc}, indent=1))
        print(f"escaping inputs written to {args.save}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
