"""`ioxhub lineage DATASET`: the upstream graph of a dataset as a tree (rich), or the same tree as JSON."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree


def print_lineage(tree: dict, console: Console | None = None) -> None:
    console = console or Console()
    root = Tree(_dataset_label(tree))
    _add_runs(root, tree)
    console.print(root)
    console.print(f"[dim]from {escape(tree.get('events_file', ''))}[/dim]")


def _dataset_label(ds: dict) -> str:
    label = f"[bold]{escape(ds['name'])}[/bold] [dim]{escape(ds['namespace'])}[/dim]"
    if "version" in ds:
        label += f" snapshot {escape(str(ds['version']))}"
    if not ds.get("written_by") and not ds["namespace"].startswith("file://"):
        label += " [yellow](no recorded run wrote it)[/yellow]"
    return label


def _run_label(run: dict) -> str:
    parts = [f"[cyan]{escape(run['job'])}[/cyan]", escape(run.get("time") or "")]
    if run.get("releases"):
        parts.append("release " + ", ".join(escape(r) for r in run["releases"]))
    if "rows" in run:
        parts.append(f"{run['rows']:,} rows")
    if run.get("refused"):
        refused = run["refused"]
        reasons = ", ".join(f"{escape(k)} {v:,}" for k, v in refused["by_reason"].items())
        parts.append(f"refused {refused['unit']}: {reasons}")
    if run.get("parent"):
        parts.append(f"in {escape(run['parent']['job'])}")
    if run.get("shown_above"):
        parts.append("[dim](inputs shown above)[/dim]")
    return " · ".join(parts)


def _add_runs(branch: Tree, ds: dict) -> None:
    for run in ds.get("written_by", []):
        node = branch.add(_run_label(run))
        for child in run.get("inputs", []):
            _add_runs(node.add(_dataset_label(child)), child)
