"""`ioxhub publish ...` on a terminal: `run_publish_dataset`, `run_publish_policy` run a publish with a
progress bar on stderr (when it is a terminal) and print the closing summary (rich)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from producers.mapping import ColumnMapping
from producers.publish import PublishProgress, publish_dataset, publish_policy
from producers.summary import PublishSummary


def run_publish_dataset(org: str, dataset_id: str, files: Sequence[str], *, fmt: str | None,
                        mapping_file: str | None, maps: Sequence[str], consts: Sequence[str],
                        defaults: Sequence[str], strict: bool, rejects: str | None,
                        release_id: str | None, structure: str | None = None, dims: Sequence[str] = ()) -> int:
    """Publish one release from the CLI options; print the summary; return the exit code (0 or 1)."""
    mapping = ColumnMapping.from_file(mapping_file) if mapping_file else None
    if maps or consts or defaults or dims:
        flags = ColumnMapping.from_flags(maps, consts, defaults, dims)
        if mapping is None:
            beside = Path(files[0]).with_name(Path(files[0]).name + ".mapping.yaml") if files else None
            mapping = ColumnMapping.from_file(beside) if beside is not None and beside.is_file() else None
        mapping = flags if mapping is None else mapping.merged(flags)
    with progress_bar() as progress:
        summary = publish_dataset(org, dataset_id, files, mapping, fmt=fmt, strict=strict, rejects_path=rejects,
                                  release_id=release_id, structure=structure, progress=progress)
    print_summary(summary)
    return summary.exit_code


def run_publish_policy(org: str, file: str, *, strict: bool, rejects: str | None) -> int:
    summary = publish_policy(org, file, strict=strict, rejects_path=rejects)
    print_summary(summary)
    return summary.exit_code


@contextmanager
def progress_bar(console: Console | None = None) -> Iterator[Callable[[PublishProgress], None] | None]:
    """A `progress` callback drawing a bar over the bytes read (file name, speed, time left) on
    stderr, removed at the end; None when stderr is not a terminal."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("publishing", total=None)

        def show(p: PublishProgress) -> None:
            bar.update(task, description=p.file, completed=p.done, total=p.total)

        yield show


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
    for warning in summary.warnings:
        console.print(f"  [yellow bold]warning:[/] {warning}")
    if not summary.sent:
        console.print("[red]nothing was sent[/]")
