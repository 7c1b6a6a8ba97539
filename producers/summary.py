"""What a publish returns and raises: `PublishSummary`, `PublishError`; `finish_rejects` fills in the rejects."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ioxhub.errors import IoxhubError
from producers.rejects import RejectsWriter


class PublishError(IoxhubError):
    """Publishing could not complete (broker unreachable, topic missing, a send failed)."""


@dataclass
class PublishSummary:
    """What a publish did; `exit_code` is 1 when anything was rejected, else 0."""

    kind: str                           # "dataset" or "policy"
    org: str
    topic: str
    files: list[str]
    dataset_id: str | None = None
    release_id: str | None = None
    mapping: str | None = None
    rows_read: int = 0
    rows_sent: int = 0
    rows_rejected: int = 0
    chunks: int = 0
    bytes_read: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    sent: bool = False
    strict: bool = False
    rejects_path: Path | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    reject_examples: list[dict] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    signed_by: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # sent, but worth a look (e.g. repeated keys)
    repeated_keys: int = 0              # rows sent whose observation key an earlier row of the release has

    @property
    def exit_code(self) -> int:
        return 1 if self.rows_rejected else 0


def default_rejects_path(first_file: Path) -> Path:
    """`<file>.rejects.csv` beside the (first) input file."""
    return first_file.with_name(first_file.name + ".rejects.csv")


def finish_rejects(summary: PublishSummary, rejected: RejectsWriter) -> None:
    """Copy the rejects' counts and examples into the summary (no rejects path when nothing was rejected)."""
    summary.rows_rejected = rejected.rows
    summary.rejected_by_reason = dict(rejected.by_reason.most_common())
    summary.reject_examples = rejected.examples
    if not rejected.rows:
        summary.rejects_path = None
