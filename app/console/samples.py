"""`ioxhub samples generate`: generate with a progress bar on the bulk file, then a table of the files."""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from producers.samples.generate import generate
from producers.samples.manifest import SampleManifest


def generate_and_report(out_dir: Path, seed: int, scale: float, console: Console | None = None) -> SampleManifest:
    console = console or Console(width=160)
    start = time.perf_counter()
    with Progress(TextColumn("writing feeds"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("bulk", total=None)
        manifest = generate(out_dir, seed=seed, scale=scale,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    seconds = time.perf_counter() - start
    table = Table(title=f"sample feeds in {out_dir} (seed {seed}, scale {scale:g})")
    for col in ("file", "org", "format", "rows", "good", "dups", "bad", "note"):
        table.add_column(col, justify="right" if col in ("rows", "good", "dups", "bad") else "left")
    for f in manifest.files:
        note = f"revises {f.revision_of}: {f.revised_values} values" if f.revision_of else \
            (f"{f.missing_values} missing values" if f.missing_values else "")
        table.add_row(f.path, f.org, f.format, f"{f.rows:,}", f"{f.good:,}", str(f.duplicates), str(len(f.bad)), note)
    console.print(table)
    t = manifest.totals()
    console.print(f"{t['files']} files, {t['rows']:,} data rows ({t['good']:,} good, {t['duplicates']} duplicates, "
                  f"{t['bad']} bad), {t['policy_updates']} policy updates in {seconds:.1f} s; "
                  f"manifest: {Path(out_dir) / 'manifest.json'}")
    return manifest
