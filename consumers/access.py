"""Analyst access: list the catalog, and pull a dataset (filtered, projected, as of a snapshot).

`list_datasets()`; `pull(dataset, where, columns, as_of)` -> pandas; `pull_table(...)` -> `PullResult`
(the Arrow table and `bytes_read`); `write_pull(result, fmt, out)`. Filters are pushed down (partition
pruning, row-group pruning over ranged GETs, column projection), so a filtered pull does not download the
whole dataset: docs/evidence.md.
"""
from __future__ import annotations

import datetime as dt
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from consumers.encode import csv_chunks, jsonl_chunks
from ioxhub.catalog import Catalog
from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings
from ioxhub.storage import ObjectEntry, ObjectStore
from ioxhub.table_files import live_files
from ioxhub.tables import TableError, object_key, tables_for

FORMATS = ("csv", "parquet", "json")
# pre_buffer: a row group's column chunks are fetched in coalesced ranged reads, then decoded without
# calling back into Python per chunk (concurrent pulls scale better: docs/api.md "Load").
PARQUET = pads.ParquetFileFormat(default_fragment_scan_options=pads.ParquetFragmentScanOptions(pre_buffer=True))


class PullError(IoxhubError):
    """The dataset, a column, a filter value or a snapshot the analyst asked for does not exist."""


@dataclass
class PullResult:
    table: pa.Table
    dataset: str
    snapshot: int
    objects_read: int
    bytes_read: int          # what was fetched from S3
    dataset_bytes: int       # the size of all objects of that snapshot


OPERATORS = (">=", "<=", "!=", ">", "<", "=")      # longest first: `year>=2015` is not `year>` = `=2015`
_CLAUSE = re.compile(r"^\s*([^=<>!\s]+)\s*(>=|<=|!=|>|<|=)(.*)$", re.S)
IN_PREFIX = "in:"


class Filter(NamedTuple):
    """One `where` clause: `column op value`; op "in" has several values (`COL=in:A,B,C`)."""
    column: str
    op: str               # one of OPERATORS, or "in"
    values: tuple[str, ...]


def parse_where(clauses: Sequence[str]) -> list[Filter]:
    """`COL=V`, `COL!=V`, `COL>=V`, `COL>V`, `COL<=V`, `COL<V`, `COL=in:V1,V2` -> Filters. Equalities and
    in-lists of one column are OR-ed (`ref_area=FRA` twice is `ref_area=in:FRA,...`); everything else AND-ed."""
    filters = []
    for clause in clauses:
        match = _CLAUSE.match(clause)
        if not match:
            raise PullError(f"--where {clause!r}: expected COLUMN=VALUE (or !=, >=, >, <=, <, COLUMN=in:V1,V2)")
        column, op, value = match.group(1), match.group(2), match.group(3)
        if op == "=" and value.startswith(IN_PREFIX):
            values = tuple(v for v in value[len(IN_PREFIX):].split(","))
            filters.append(Filter(column, "in", values))
        else:
            filters.append(Filter(column, op, (value,)))
    return filters


def list_datasets(settings: Settings | None = None, store: ObjectStore | None = None) -> list[dict]:
    return Catalog(store or ObjectStore(settings)).datasets()


def _snapshot_location(entry: dict, as_of: str | None) -> tuple[int, str]:
    if as_of is None:
        return entry["snapshot"], entry["location"]
    snapshots = entry.get("snapshots", [])
    if as_of.isascii() and as_of.isdigit():
        wanted = [s for s in snapshots if s["snapshot"] == int(as_of)]
        if not wanted:
            raise PullError(f"{entry['name']} has no snapshot {as_of} (snapshots 1..{entry['snapshot']})")
    else:
        try:
            when = dt.datetime.fromisoformat(as_of)
        except ValueError:
            raise PullError(f"--as-of {as_of!r}: expected a snapshot number or an ISO date/time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc) if len(as_of) > 10 else \
                (when + dt.timedelta(days=1) - dt.timedelta(microseconds=1)).replace(tzinfo=dt.timezone.utc)
        wanted = [s for s in snapshots if dt.datetime.fromisoformat(s["created_at"]) <= when]
        if not wanted:
            raise PullError(f"{entry['name']} has no snapshot as of {as_of} (first: {snapshots[0]['created_at']})")
    chosen = wanted[-1]
    if entry.get("kind") != "curated" and chosen["snapshot"] != entry["snapshot"]:
        raise PullError(f"{entry['name']} is a harmonized dataset: only its current state is addressable "
                        "(its history per release is under harmonized/observation_history/)")
    return chosen["snapshot"], chosen["location"]


def snapshot_of(entry: dict, as_of: str | None) -> int:
    """The snapshot number a pull of `entry` as of `as_of` reads (PullError when there is none)."""
    return _snapshot_location(entry, as_of)[0]


def _partition_values(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("/")[:-1] if "=" in part)


def _typed(value: str, field_type: pa.DataType) -> pa.Scalar:
    """The filter value as a scalar of the column's type (timestamps from ISO text, UTC when no zone is given)."""
    if pa.types.is_string(field_type) or pa.types.is_large_string(field_type):
        return pa.scalar(value)
    if pa.types.is_timestamp(field_type):
        when = dt.datetime.fromisoformat(value)
        if field_type.tz is not None and when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return pa.scalar(when, field_type)
    if pa.types.is_boolean(field_type) and value.lower() in ("true", "false"):
        return pa.scalar(value.lower() == "true")
    return pa.scalar(value).cast(field_type)


_COMPARE = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
            "!=": lambda a, b: a != b}


def _partition_keeps(value: str, filters: list[Filter]) -> bool:
    """Whether a partition directory (`year=2015`) can hold rows the filters keep (numbers compare as numbers)."""
    def comparable(v: str):
        return int(v) if re.fullmatch(r"-?[0-9]+", v) else v
    eq = {v for f in filters if f.op in ("=", "in") for v in f.values}
    if eq and value not in eq and comparable(value) not in {comparable(v) for v in eq}:
        return False
    for f in filters:
        if f.op in _COMPARE:
            a, b = comparable(value), comparable(f.values[0])
            if type(a) is not type(b):
                a, b = str(a), str(b)
            if not _COMPARE[f.op](a, b):
                return False
    return True


def _expression(filters: list[Filter], schema: pa.Schema) -> pads.Expression | None:
    by_column: dict[str, list] = {}
    terms = []
    for f in filters:
        if f.column not in schema.names:
            raise PullError(f"--where {f.column}{'=' if f.op == 'in' else f.op}...: no column {f.column!r} "
                            f"(columns: {', '.join(schema.names)})")
        field_type = schema.field(f.column).type
        typed = []
        for value in f.values:
            try:
                typed.append(_typed(value, field_type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, TypeError):
                raise PullError(f"--where {f.column}{'=' if f.op == 'in' else f.op}{value!r}: not a valid {field_type}") from None
        if f.op in ("=", "in"):
            by_column.setdefault(f.column, []).extend(typed)
        else:
            field = pads.field(f.column)
            terms.append({">=": field >= typed[0], "<=": field <= typed[0], ">": field > typed[0],
                          "<": field < typed[0], "!=": field != typed[0]}[f.op])
    for column, values in by_column.items():
        terms.insert(0, pads.field(column).isin(pa.array([v.as_py() for v in values], values[0].type)))
    expression = None
    for term in terms:
        expression = term if expression is None else expression & term
    return expression


@dataclass
class PullPlan:
    """What a pull will read: the snapshot, the objects left after partition pruning, the columns, the filters
    (checked against the data's schema before any row is read, so a bad request fails before streaming)."""
    dataset: str
    entry: dict
    snapshot: int
    keys: list[str]
    dataset_bytes: int
    columns: list[str]                 # the output columns, in order
    partition_filters: list[Filter]
    row_filters: list[Filter]
    schema: pa.Schema | None           # the output schema (None when no object is left)
    objects_read: int = 0
    rows: int = 0                      # rows returned so far
    handles: list = field(default_factory=list, repr=False)     # every object opened (what they fetched)
    probe: tuple[str, Any] | None = field(default=None, repr=False)   # the object whose footer gave the schema

    @property
    def bytes_read(self) -> int:
        return sum(h.bytes_read for h in self.handles)

    def open(self, store: ObjectStore, key: str):
        """The object `key`, reusing the one the schema was read from (its footer is fetched already)."""
        if self.probe is not None and self.probe[0] == key:
            handle, self.probe = self.probe[1], None
            handle.seek(0)
            return handle
        handle = store.open(key)
        self.handles.append(handle)
        return handle


def _filters(where: Sequence) -> list[Filter]:
    """Clauses as text (`parse_where`), Filters, or (column, value) pairs (equalities) -> Filters."""
    out = []
    for item in where:
        if isinstance(item, Filter):
            out.append(item)
        elif isinstance(item, str):
            out.extend(parse_where([item]))
        else:
            column, value = item
            out.append(Filter(column, "=", (value,)))
    return out


def _table_objects(entry: dict, as_of: str | None, store: ObjectStore) -> tuple[int, list[ObjectEntry]]:
    """The data files of a table's snapshot as of `as_of` (a minimal bridge from the Iceberg tables to
    the object reader below)."""
    tables = tables_for(store.settings)
    table = tables.load(*entry["table"].split(".", 1))
    try:
        snapshot = tables.resolve_as_of(table, as_of)
    except TableError as exc:
        raise PullError(str(exc)) from None
    files = live_files(table, snapshot) if snapshot is not None else []
    return (snapshot.sequence_number if snapshot else 0,
            sorted((ObjectEntry(object_key(f.file_path, store.bucket), f.file_size_in_bytes, None) for f in files),
                   key=lambda e: e.key))


def plan_pull(dataset: str, where: Sequence[str] | Sequence[Filter] = (), columns: Sequence[str] | None = None,
              as_of: str | None = None, store: ObjectStore | None = None, settings: Settings | None = None,
              entry: dict | None = None) -> PullPlan:
    """Resolve a pull: dataset, snapshot, objects (partition pruning), columns and filters (checked).
    `entry`: the dataset's catalog entry when the caller has read it already."""
    store = store or ObjectStore(settings)
    entry = entry if entry is not None else Catalog(store).dataset(dataset)
    if entry is None:
        known = ", ".join(d["name"] for d in Catalog(store).datasets()) or "none yet"
        raise PullError(f"no dataset {dataset!r} in the catalog (known: {known})")
    filters = _filters(where)
    if "table" in entry:
        snapshot, entries = _table_objects(entry, as_of, store)
    else:
        snapshot, location = _snapshot_location(entry, as_of)
        entries = sorted((e for e in store.entries(location) if e.key.endswith(".parquet")), key=lambda e: e.key)
    keys = [e.key for e in entries]
    partitions = _partition_values(keys[0]) if keys else {}
    partition_filters = [f for f in filters if f.column in partitions]
    row_filters = [f for f in filters if f.column not in partitions]
    selected = [k for k in keys if all(_partition_keeps(_partition_values(k).get(c, ""),
                                                        [f for f in partition_filters if f.column == c])
                                       for c in {f.column for f in partition_filters})]
    plan = PullPlan(dataset, entry, snapshot, selected, sum(e.size for e in entries), [], partition_filters,
                    row_filters, None)
    if not keys:
        plan.columns = list(columns or [])
        return plan
    probe = selected[0] if selected else keys[0]
    handle = plan.open(store, probe)
    physical = pq.read_schema(pa.PythonFile(handle, mode="r"))
    plan.probe = (probe, handle)
    full = pa.schema(list(physical) + [pa.field(n, pa.string()) for n in partitions if n not in physical.names])
    want = list(columns) if columns else physical.names      # path columns (org=, year=) only when asked for
    missing = [c for c in want if c not in full.names]
    if missing:
        raise PullError(f"no column(s) {', '.join(missing)} in {dataset} (columns: {', '.join(full.names)})")
    _expression(row_filters, physical)                       # checks the row filters' columns and values
    plan.columns, plan.schema = want, pa.schema([full.field(c) for c in want])
    return plan


def iter_pull(plan: PullPlan, store: ObjectStore, offset: int = 0, limit: int | None = None,
              batch_rows: int = 64 * 1024) -> Iterator[pa.Table]:
    """The rows of a plan as tables of at most `batch_rows`, lazily (row groups are fetched as they are
    needed, so stopping early reads less); `offset` rows skipped, at most `limit` returned. Counts what
    crossed the network in `plan.bytes_read`."""
    skip, left = offset, limit
    for key in plan.keys:
        if left is not None and left <= 0:
            return
        with plan.open(store, key) as handle:
            fragment = PARQUET.make_fragment(pa.PythonFile(handle, mode="r"))
            schema = fragment.physical_schema
            partitions = _partition_values(key)
            plan.objects_read += 1
            for batch in fragment.to_batches(columns=[c for c in plan.columns if c in schema.names],
                                             filter=_expression(plan.row_filters, schema), batch_size=batch_rows):
                table = pa.Table.from_batches([batch])
                if skip:
                    dropped = min(skip, table.num_rows)
                    table, skip = table.slice(dropped), skip - dropped
                if left is not None:
                    table = table.slice(0, left)
                    left -= table.num_rows
                if not table.num_rows:
                    if left is not None and left <= 0:
                        break
                    continue
                for name, value in partitions.items():
                    if name in plan.columns and name not in table.column_names:
                        table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
                plan.rows += table.num_rows
                yield table.select(plan.columns)
                if left is not None and left <= 0:
                    break


def pull_table(dataset: str, where: Sequence[str] | Sequence[Filter] = (), columns: Sequence[str] | None = None,
               as_of: str | None = None, settings: Settings | None = None, store: ObjectStore | None = None) -> PullResult:
    store = store or ObjectStore(settings)
    plan = plan_pull(dataset, where, columns, as_of, store)
    tables = list(iter_pull(plan, store))
    if tables:
        result = pa.concat_tables(tables, promote_options="default")
    else:       # no row: the columns still, when some object was left to read (as a CSV header says)
        result = plan.schema.empty_table() if plan.keys and plan.schema is not None else pa.table({})
    return PullResult(result, dataset, plan.snapshot, plan.objects_read, plan.bytes_read, plan.dataset_bytes)


def pull(dataset: str, where: Sequence[str] = (), columns: Sequence[str] | None = None, as_of: str | None = None,
         settings: Settings | None = None) -> pd.DataFrame:
    """A dataset of the catalog as a pandas DataFrame (the Python API for analysts)."""
    return pull_table(dataset, where, columns, as_of, settings).table.to_pandas()


def write_pull(result: PullResult, fmt: str, out: Path | None) -> Path | None:
    """Write a pull as csv, parquet or json (JSON Lines) to `out`, or CSV/JSON to stdout when out is None.
    csv and json are `consumers.encode`'s, the encodings the HTTP API streams."""
    if fmt not in FORMATS:
        raise PullError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if out is None and fmt == "parquet":
        raise PullError("--format parquet needs -o FILE")
    if fmt == "parquet":
        pq.write_table(result.table, out)
        return out
    chunks = csv_chunks([result.table], result.table.schema) if fmt == "csv" else jsonl_chunks([result.table])
    if out is None:
        for chunk in chunks:
            sys.stdout.write(chunk.decode())
        sys.stdout.flush()
        return None
    with open(out, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
    return out
