"""`ioxhub publish ...` on a terminal: run a publish and print its closing summary (rich)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from ioxhub.producers.mapping import ColumnMapping
from ioxhub.producers.publish import PublishSummary, publish_dataset, publish_policy


def run_publish_dataset(org: str, dataset_id: str, files: Sequence[str], *, fmt: str | None,
                        mapping_file: str | None, maps: Sequence[str], consts: Sequence[str],
                        defaults: Sequence[str], strict: bool, rejects: str | None,
                        release_id: str | None) -> int:
    """Publish one release from the CLI options; print the summary; return the exit code (0 or 1)."""
    mapping = ColumnMapping.from_file(mapping_file) if mapping_file else None
    if maps or consts or defaults:
        flags = ColumnMapping.from_flags(maps, consts, defaults)
        if mapping is None:
            beside = Path(files[0]).with_name(Path(files[0]).name + ".mapping.yaml") if files else None
            mapping = ColumnMapping.from_file(beside) if beside is not None and beside.is_file() else None
        mapping = flags if mapping is None else mapping.merged(flags)
    summary = publish_dataset(org, dataset_id, files, mapping, fmt=fmt, strict=strict, rejects_path=rejects,
                              release_id=release_id)
    print_summary(summary)
    return summary.exit_code


def run_publish_policy(org: str, file: str, *, strict: bool, rejects: str | None) -> int:
    summary = publish_policy(org, file, strict=strict, rejects_path=rejects)
    print_summary(summary)
    return summary.exit_code


def print_summary(summary: PublishSummary, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    what = f"{summary.org}/{summary.dataset_id}" if summary.kind == "dataset" else summary.org
    table.add_row(summary.kind, what)
    table.add_row("topic", summary.topic)
    if summary.release_id:
        table.add_row("release", summary.release_id)
    if summary.mapping:
        table.add_row("mapping", summary.mapping)
    table.add_row("rows read", f"{summary.rows_read:,}")
    table.add_row("sent", f"{summary.rows_sent:,}" + (f" in {summary.chunks:,} chunk(s) + manifest" if summary.chunks else ""))
    table.add_row("rejected", f"{summary.rows_rejected:,}" + (f" -> {summary.rejects_path}" if summary.rejects_path else ""))
    table.add_row("bytes", f"{summary.bytes_read:,} read, {summary.bytes_sent:,} sent" if summary.kind == "dataset"
                  else f"{summary.bytes_sent:,} sent")
    rate = f" ({summary.rows_read / summary.seconds:,.0f} rows/s)" if summary.seconds and summary.rows_read > 10_000 else ""
    table.add_row("seconds", f"{summary.seconds:.2f}{rate}")
    table.add_row("signed", summary.signed_by or "no (no key under <data_dir>/keys/" + summary.org + "/)")
    console.print(table)
    for reason, count in summary.rejected_by_reason.items():
        console.print(f"  [yellow]{count:,}[/] rejected: {reason}")
    for ex in summary.reject_examples[:5]:
        console.print(f"  e.g. {ex['file']} line {ex['line']}: {ex['field'] or 'row'} = {ex['value']!r}: {ex['reason']}")
    for note in summary.notes:
        console.print(f"  [bold]note:[/] {note}")
    if not summary.sent:
        console.print("[red]nothing was sent[/]")
