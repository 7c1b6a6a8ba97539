"""Content checks of decoded events: what the Avro schemas cannot say.

A record can decode and be signed by a trusted org and still be nonsense (columns of unequal length,
string-table indexes past the table, a chunk_seq past chunk_count, a negative count...). The ingest runs
`check_event(decoded)` on every decoded event before it uses it; a `ContentError` names a
machine-readable reason and the field, and the event is quarantined with it (see docs/reliability.md).
Vectorized: a handful of numpy reductions per chunk column, never a Python call per observation.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np

from ioxhub.contracts import codec
from ioxhub.errors import IoxhubError
from ioxhub.names import InvalidName, check_id, check_org

# Reasons (the dead-letter `reason` of an event refused for its content).
UNEQUAL_COLUMNS = "unequal-columns"
INDEX_OUT_OF_RANGE = "index-out-of-range"
EMPTY_STRING_TABLE = "empty-string-table"
BAD_MISSING_POSITION = "bad-missing-position"
INT_OVERFLOW = "int-overflow"
NON_FINITE_VALUE = "non-finite-value"
BAD_CHUNK_SEQ = "bad-chunk-seq"
BAD_MANIFEST = "bad-manifest"
BAD_POLICY = "bad-policy"
BAD_NAME = "bad-name"

INDEX_COLUMNS = ("indicator", "ref_area", "counterpart_area", "commodity", "period", "unit", "obs_status",
                 "source_file")
ROW_COLUMNS = INDEX_COLUMNS + ("value", "unit_mult", "source_line")
INT32 = (-(1 << 31), (1 << 31) - 1)
CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")
DATES = (dt.date(1800, 1, 1), dt.date(2200, 12, 31))


class ContentError(IoxhubError, ValueError):
    """A decoded event whose content is unusable: `reason` (machine-readable) and `detail` (which field)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_event(decoded: codec.Decoded) -> None:
    """Raise ContentError when a decoded event's content is unusable (events of other types pass)."""
    check = _CHECKS.get(decoded.name)
    if check is not None:
        check(decoded.record)


def check_chunk(record: dict[str, Any]) -> None:
    """A dataset chunk: sequence numbers, equal column lengths, indexes within the string table,
    missing positions within the chunk, finite values, ints within int32."""
    _check_ids(record)
    seq, count = record["chunk_seq"], record.get("chunk_count")
    if not isinstance(seq, int) or seq < 0 or (count is not None and not 0 <= seq < count):
        raise ContentError(BAD_CHUNK_SEQ, f"chunk_seq {seq} with chunk_count {count}")
    n = len(record["indicator"])
    lengths = {name: len(record[name]) for name in ROW_COLUMNS}
    lengths.update({f"attributes[{a['name']}]": len(a["values"]) for a in record["attributes"]})
    bad = {name: size for name, size in lengths.items() if size != n}
    if bad:
        shown = ", ".join(f"{k} has {v}" for k, v in sorted(bad.items()))
        raise ContentError(UNEQUAL_COLUMNS, f"indicator has {n} values, {shown}")
    strings = len(record["strings"])
    if n and not strings:
        raise ContentError(EMPTY_STRING_TABLE, f"{n} observations and an empty string table")
    columns = [(name, record[name]) for name in INDEX_COLUMNS] + \
              [(f"attributes[{a['name']}]", a["values"]) for a in record["attributes"]]
    for name, column in columns:
        low, high = _bounds(name, column)
        if low < -1 or high >= strings:
            shown = low if low < -1 else high
            raise ContentError(INDEX_OUT_OF_RANGE,
                               f"field {name}: string index {shown} outside -1..{strings - 1}")
    for name in ("unit_mult", "source_line"):
        _bounds(name, record[name])
    missing = record["missing_values"]
    low, high = _bounds("missing_values", missing)
    if len(missing) and (low < 0 or high >= n):
        raise ContentError(BAD_MISSING_POSITION,
                           f"field missing_values: position {low if low < 0 else high} outside 0..{n - 1}")
    values = np.asarray(record["value"], dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        listed = np.zeros(n, dtype=bool)
        if len(missing):
            listed[np.asarray(missing, dtype=np.int64)] = True
        bad_positions = np.flatnonzero(~finite & ~listed)
        if len(bad_positions):
            first = int(bad_positions[0])
            raise ContentError(NON_FINITE_VALUE, f"field value: {len(bad_positions)} non-finite value(s) "
                                                 f"(e.g. {values[first]} at position {first})")


def check_manifest(record: dict[str, Any]) -> None:
    """A release manifest: counts that can be true and a checksum of the published form."""
    _check_ids(record)
    count, observations = record["chunk_count"], record["observation_count"]
    if count < 0 or observations < 0 or record["rejected_at_source"] < 0:
        raise ContentError(BAD_MANIFEST, f"negative count (chunk_count {count}, observation_count {observations}, "
                                         f"rejected_at_source {record['rejected_at_source']})")
    if count == 0 and observations:
        raise ContentError(BAD_MANIFEST, f"chunk_count 0 with observation_count {observations}")
    if not CHECKSUM.fullmatch(record["checksum"]):
        raise ContentError(BAD_MANIFEST, f"field checksum: {record['checksum'][:80]!r} is not sha256:<64 hex digits>")


def check_policy(record: dict[str, Any]) -> None:
    """A policy update: names that become keys, a date in a plausible range, a title and a version."""
    try:
        for partner in record["partner_orgs"]:
            check_org(partner, "partner_orgs entry")
    except InvalidName as exc:
        raise ContentError(BAD_NAME, str(exc)) from None
    date = record["effective_date"]
    if not DATES[0] <= date <= DATES[1]:
        raise ContentError(BAD_POLICY, f"field effective_date: {date} outside {DATES[0]}..{DATES[1]}")
    for name in ("title", "version"):
        if not record[name].strip():
            raise ContentError(BAD_POLICY, f"field {name} is empty")


def _check_ids(record: dict[str, Any]) -> None:
    """The ids that become object keys: no path tricks, no control characters (checked first, so nothing
    is looked up under a bad name)."""
    try:
        for name in ("dataset_id", "release_id", "event_id"):
            check_id(record[name], name)
    except InvalidName as exc:
        raise ContentError(BAD_NAME, str(exc)) from None


def _bounds(name: str, column) -> tuple[int, int]:
    """(min, max) of an int column (0, -1 when empty); ContentError when a value does not fit int32."""
    if not len(column):
        return 0, -1
    if isinstance(column, np.ndarray):
        return int(column.min()), int(column.max())
    low, high = min(column), max(column)      # fastavro lists: Python ints, possibly beyond int32
    if low < INT32[0] or high > INT32[1]:
        raise ContentError(INT_OVERFLOW, f"field {name}: {low if low < INT32[0] else high} does not fit an Avro int")
    return low, high


_CHECKS = {"dataset_chunk": check_chunk, "release_manifest": check_manifest, "policy_update": check_policy}
