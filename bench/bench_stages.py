"""Where publishing's CPU goes: each stage of `publish_dataset` alone, in this process.

    .venv/bin/python bench/bench_stages.py [--scale 21] [--repeat 5]

The bulk WTO CSV of `bench/run.py` through the streaming reader, validation, chunk encoding and signing
(no broker), warm, best of --repeat; wall and CPU time per stage (CPU above wall: more than one core).
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path


def timed(repeat: int, fn):
    best = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        figures = (time.perf_counter() - wall, time.process_time() - cpu)
        best = figures if best is None or figures[0] < best[0] else best
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=21)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from run import BULK_DATASET, build_workload

    from app.demo import ensure_keys
    from producers import publish
    from producers.chunks import ChunkBuilder, ReleaseInfo
    from producers.dimensions import KeyTracker, decide_commodity
    from producers.mapping import ColumnMapping
    from producers.readers import open_source
    from producers.release_id import compute_release_id
    from producers.validate import validate_batch
    from ioxhub.settings import get_settings
    from ioxhub.keys import load_signer

    with tempfile.TemporaryDirectory(prefix="ioxhub-bench-stages-") as tmp:
        csv, mapping_file, rows = build_workload(Path(tmp) / "samples", args.scale)
        publish.warm_up()
        mapping = ColumnMapping.from_file(mapping_file)
        src = open_source(csv, mapping.format)
        resolved = mapping.resolve(src.columns, src.name)
        settings = dataclasses.replace(get_settings(), data_dir=Path(tmp) / "data")
        ensure_keys(["WTO"], settings)
        signer = load_signer("WTO", settings=settings)
        info = ReleaseInfo("WTO", BULK_DATASET, "0" * 32, 0)

        def encode():
            builder = ChunkBuilder(info)
            chunks = [c for v in checked for c in builder.add(v.observations)]
            return chunks + list(builder.finish())

        stages = []
        batches, t = timed(args.repeat, lambda: list(src.batches(resolved.source_columns(), publish.value_column(resolved))))
        stages.append(("read (streaming CSV reader)", t))
        checked, t = timed(args.repeat, lambda: [validate_batch(b, resolved, csv.name) for b in batches])
        stages.append(("validate", t))
        _, t = timed(args.repeat, lambda: decide_commodity(resolved, batches[0].table))
        stages.append(("commodity decided (first batch)", t))

        def track():
            with KeyTracker() as keys:
                for v in checked:
                    keys.add(v.observations)
                return keys.repeated()
        _, t = timed(args.repeat, track)
        stages.append(("repeated keys (KeyTracker)", t))
        chunks, t = timed(args.repeat, encode)
        stages.append((f"encode ({len(chunks)} chunks, manifest checksum)", t))
        _, t = timed(args.repeat, lambda: [signer.sign(c.value, [], "ioxhub.wto.datasets") for c in chunks])
        stages.append(("sign (BLAKE3 digest + Ed25519)", t))
        _, t = timed(args.repeat, lambda: compute_release_id("WTO", BULK_DATASET, [src], mapping, (1, 1)))
        stages.append(("release id (BLAKE3 of the file)", t))
    print(f"{rows:,} observations, best of {args.repeat}")
    print(f"{'stage':48s}{'wall s':>9s}{'CPU s':>9s}")
    for name, (wall, cpu) in stages:
        print(f"{name:48s}{wall:9.3f}{cpu:9.3f}")


if __name__ == "__main__":
    main()
