"""Analyst access: list the catalog, and pull a dataset (filtered, projected, as of a snapshot).

`list_datasets()`; `pull(dataset, where, columns, as_of)` -> pandas; `pull_table(...)` -> `PullResult`
(the Arrow table and `bytes_read`); `plan_pull` + `iter_pull` (the web API's lazy pull); `write_pull(result,
fmt, out)`. The dataset's Iceberg table names the files of the snapshot asked for, pruned by partition and
column statistics; the files are then read over ranged GETs (row-group pruning, column projection), so a
filtered pull does not download the whole dataset: docs/evidence.md, docs/tables.md.
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
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyiceberg.expressions import (AlwaysTrue, And, BooleanExpression, EqualTo, GreaterThan, GreaterThanOrEqual, In,
                                   LessThan, LessThanOrEqual)
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from consumers.encode import csv_chunks, jsonl_chunks
from ioxhub.catalog import Catalog
from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings
from ioxhub.storage import ObjectStore
from ioxhub.tables import TableError, Tables, object_key

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
    dataset_bytes: int       # the size of all data files of that snapshot
    snapshot_id: int = 0     # the Iceberg snapshot id (`snapshot` is its sequence number)


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


def dataset_entry(name: str, settings: Settings | None = None, store: ObjectStore | None = None) -> dict:
    """The catalog entry of one dataset (with its snapshots kept); PullError naming the known ones if none."""
    catalog = Catalog(store or ObjectStore(settings))
    entry = catalog.dataset(name)
    if entry is None:
        known = ", ".join(d["name"] for d in catalog.datasets()) or "none yet"
        raise PullError(f"no dataset {name!r} in the catalog (known: {known})")
    return entry


def resolve(tables: Tables, table: Table, as_of: str | None) -> Snapshot:
    """The snapshot of `table` a pull as of `as_of` reads: a sequence number, a snapshot id or an ISO
    date/time (`Tables.resolve_as_of`; None: the current one); PullError when there is none."""
    try:
        snapshot = tables.resolve_as_of(table, as_of)
    except TableError as exc:
        message = str(exc)          # "as of 'x': ..." names the option as the CLI spells it
        raise PullError("--as-of" + message[len("as of"):] if message.startswith("as of ") else message) from None
    if snapshot is None:
        raise PullError(f"{'.'.join(table.name()[1:])} has no snapshot yet")
    return snapshot


def snapshot_of(entry: dict, as_of: str | None, store: ObjectStore) -> Snapshot:
    """The snapshot a pull of the catalog entry `entry` as of `as_of` reads (PullError when there is none)."""
    catalog = Catalog(store)
    table = catalog.table_of(entry["name"])
    if table is None:
        raise PullError(f"no dataset {entry['name']!r} in the catalog")
    return resolve(catalog.tables, table, as_of)


def _typed(value: str, field_type: pa.DataType) -> pa.Scalar:
    """The filter value as a scalar of the column's type (timestamps from ISO text, UTC when no zone is given)."""
    if pa.types.is_dictionary(field_type):
        field_type = field_type.value_type
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


_COMPARE = {"=": lambda a, b: a == b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            "<": lambda a, b: a < b, "!=": lambda a, b: a != b}


def _constant_keeps(value: str, filters: list[Filter]) -> bool:
    """Whether a column with one value in the whole dataset (a harmonized dataset's `org`, `dataset`) has
    rows the filters keep."""
    for f in filters:
        if f.op == "in" and value not in f.values or f.op != "in" and not _COMPARE[f.op](value, f.values[0]):
            return False
    return True


def _clause(f: Filter, value: str) -> str:
    return f"--where {f.column}{'=' if f.op == 'in' else f.op}{value!r}"


def _typed_values(f: Filter, schema: pa.Schema) -> list[pa.Scalar]:
    if f.column not in schema.names:
        raise PullError(f"--where {f.column}{'=' if f.op == 'in' else f.op}...: no column {f.column!r} "
                        f"(columns: {', '.join(schema.names)})")
    field_type = schema.field(f.column).type
    typed = []
    for value in f.values:
        try:
            typed.append(_typed(value, field_type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, TypeError):
            shown = field_type.value_type if pa.types.is_dictionary(field_type) else field_type
            raise PullError(f"{_clause(f, value)}: not a valid {shown}") from None
    return typed


def _expression(filters: list[Filter], schema: pa.Schema) -> pads.Expression | None:
    """The row filter of `filters` over a file's columns (same column `=`/in: OR; the rest AND)."""
    by_column: dict[str, list] = {}
    terms = []
    for f in filters:
        typed = _typed_values(f, schema)
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


def _prune_expression(filters: list[Filter], schema: pa.Schema) -> BooleanExpression:
    """The same filters as an Iceberg expression over the table's schema, for partition and file pruning
    (`!=` prunes nothing: a file's min/max rarely excludes one value, and a null-aware != would be wrong)."""
    by_column: dict[str, set] = {}
    terms: list[BooleanExpression] = []
    for f in filters:
        values = [v.as_py() for v in _typed_values(f, schema)]
        if f.op in ("=", "in"):
            by_column.setdefault(f.column, set()).update(values)
        elif f.op != "!=":
            terms.append({">=": GreaterThanOrEqual, "<=": LessThanOrEqual, ">": GreaterThan,
                          "<": LessThan}[f.op](f.column, values[0]))
    terms += [EqualTo(c, next(iter(vs))) if len(vs) == 1 else In(c, vs) for c, vs in by_column.items()]
    return And(*terms) if len(terms) > 1 else terms[0] if terms else AlwaysTrue()


def _year_filters(filters: list[Filter]) -> list[Filter]:
    """Filters on a harmonized dataset's `year` (the calendar year of period_start) as filters on
    period_start, which the table is partitioned by: `year>=2015` is `period_start>=2015-01-01`."""
    out = []
    for f in filters:
        try:
            years = [int(v) for v in f.values]
        except ValueError:
            raise PullError(f"{_clause(f, next(v for v in f.values if not v.lstrip('-').isdigit()))}: "
                            "not a valid year") from None
        first = [f"{y:04d}-01-01" for y in years]
        after = [f"{y + 1:04d}-01-01" for y in years]
        if f.op == ">=":
            out.append(Filter("period_start", ">=", (first[0],)))
        elif f.op == ">":
            out.append(Filter("period_start", ">=", (after[0],)))
        elif f.op == "<":
            out.append(Filter("period_start", "<", (first[0],)))
        elif f.op == "<=":
            out.append(Filter("period_start", "<", (after[0],)))
        elif f.op == "=" or f.op == "in" and len(years) == 1:
            out += [Filter("period_start", ">=", (first[0],)), Filter("period_start", "<", (after[0],))]
        else:        # several years or !=: kept as the row filter of the year column
            out.append(f)
    return out


def _added_columns(entry: dict, schema: pa.Schema) -> dict[str, str | None]:
    """The columns a harmonized dataset's pull adds to its files' (as its partition folders used to give
    them): `org` and `dataset` (one value each) and `year` (of period_start; None: computed per row)."""
    if entry.get("kind") != "harmonized" or not entry.get("org") or "period_start" not in schema.names:
        return {}
    added = {"org": entry["org"], "dataset": entry.get("dataset_id"), "year": None}
    return {k: v for k, v in added.items() if k not in schema.names}


@dataclass
class PullPlan:
    """What a pull will read: the snapshot, the table's files left after Iceberg's partition and statistics
    pruning, the columns, the filters (checked against the data's schema before any row is read, so a bad
    request fails before streaming)."""
    dataset: str
    entry: dict
    snapshot: int                      # the table's sequence number of the snapshot read
    keys: list[str]                    # bucket keys of the data files, in partition order
    dataset_bytes: int
    columns: list[str]                 # the output columns, in order
    added_filters: list[Filter]        # filters on the added columns org / dataset / year (by rows)
    row_filters: list[Filter]
    schema: pa.Schema | None           # the output schema (None when no file is left)
    snapshot_id: int = 0
    added: dict[str, str | None] = field(default_factory=dict)   # harmonized: org, dataset, year (_added_columns)
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


def _partition_order(data_file: DataFile) -> tuple:
    return tuple((v is None, v if v is not None else 0) for v in data_file.partition), data_file.file_path


def _total_bytes(tables: Tables, table: Table, snapshot: Snapshot) -> int:
    """The size of every data file of the snapshot (its summary says; a scan when it does not)."""
    summary = snapshot.summary.additional_properties if snapshot.summary else {}
    if "total-files-size" in summary:
        return int(summary["total-files-size"])
    return sum(f.file_size_in_bytes for f in tables.data_files(table, snapshot))


def plan_pull(dataset: str, where: Sequence[str] | Sequence[Filter] = (), columns: Sequence[str] | None = None,
              as_of: str | None = None, store: ObjectStore | None = None, settings: Settings | None = None,
              entry: dict | None = None) -> PullPlan:
    """Resolve a pull: dataset, snapshot, files (Iceberg's pruning), columns and filters (checked).
    `entry`: the dataset's catalog entry when the caller has read it already."""
    store = store or ObjectStore(settings)
    catalog = Catalog(store)
    table = catalog.table_of(dataset)
    if table is None or table.current_snapshot() is None:
        dataset_entry(dataset, store=store)                   # raises, naming the datasets there are
    entry = entry if entry is not None else catalog.describe(table)
    snapshot = resolve(catalog.tables, table, as_of)
    iceberg_schema = table.schemas()[snapshot.schema_id].as_arrow() if snapshot.schema_id is not None \
        else table.schema().as_arrow()
    filters = _filters(where)
    added = _added_columns(entry, iceberg_schema)
    added_filters = [f for f in filters if f.column in added]
    row_filters = [f for f in filters if f.column not in added]
    year_filters = _year_filters([f for f in added_filters if f.column == "year"])
    row_filters += [f for f in year_filters if f.column != "year"]
    added_filters = [f for f in added_filters if f.column != "year"] + [f for f in year_filters if f.column == "year"]
    row_filter = _prune_expression(row_filters, iceberg_schema)

    tables = catalog.tables
    keep = all(_constant_keeps(str(added[f.column]), [f]) for f in added_filters if added.get(f.column) is not None)
    files = sorted(tables.data_files(table, snapshot, row_filter), key=_partition_order) if keep else []
    keys = [object_key(f.file_path, store.settings.bucket) for f in files]
    plan = PullPlan(dataset, entry, snapshot.sequence_number or 0, keys, _total_bytes(tables, table, snapshot), [],
                    added_filters, row_filters, None, snapshot.snapshot_id, added)
    if keys:
        handle = plan.open(store, keys[0])
        physical = pq.read_schema(pa.PythonFile(handle, mode="r"))
        plan.probe = (keys[0], handle)
    else:
        physical = iceberg_schema
    full = pa.schema(list(physical) + [pa.field(n, pa.string()) for n in added if n not in physical.names])
    want = list(columns) if columns else physical.names      # the added columns (org, year) only when asked for
    missing = [c for c in want if c not in full.names]
    if missing:
        raise PullError(f"no column(s) {', '.join(missing)} in {dataset} (columns: {', '.join(full.names)})")
    _expression(row_filters, physical)                       # checks the row filters' columns and values
    plan.columns, plan.schema = want, pa.schema([full.field(c) for c in want])
    return plan


def _with_added(table: pa.Table, plan: PullPlan) -> pa.Table:
    """The batch with the added columns the plan outputs or filters on (org, dataset, year as text)."""
    for name, value in plan.added.items():
        if name in table.column_names or not (name in plan.columns or any(f.column == name for f in plan.added_filters)):
            continue
        if value is None:
            column = pc.cast(pc.year(table["period_start"]), pa.string())
        else:
            column = pa.array([value] * table.num_rows, pa.string())
        table = table.append_column(name, column)
    return table


def iter_pull(plan: PullPlan, store: ObjectStore, offset: int = 0, limit: int | None = None,
              batch_rows: int = 64 * 1024) -> Iterator[pa.Table]:
    """The rows of a plan as tables of at most `batch_rows`, lazily (row groups are fetched as they are
    needed, so stopping early reads less); `offset` rows skipped, at most `limit` returned. Counts what
    crossed the network in `plan.bytes_read`."""
    skip, left = offset, limit
    year_filters = [f for f in plan.added_filters if f.column == "year"]
    for key in plan.keys:
        if left is not None and left <= 0:
            return
        with plan.open(store, key) as handle:
            fragment = PARQUET.make_fragment(pa.PythonFile(handle, mode="r"))
            schema = fragment.physical_schema
            plan.objects_read += 1
            wanted = [c for c in plan.columns if c in schema.names]
            if plan.added.get("year", "") is None and "year" not in schema.names and "period_start" not in wanted \
                    and ("year" in plan.columns or year_filters):
                wanted.append("period_start")
            for batch in fragment.to_batches(columns=wanted, filter=_expression(plan.row_filters, schema),
                                             batch_size=batch_rows):
                table = _with_added(pa.Table.from_batches([batch]), plan)
                if year_filters:
                    table = table.filter(_expression(year_filters, table.schema))
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
    return PullResult(result, dataset, plan.snapshot, plan.objects_read, plan.bytes_read, plan.dataset_bytes,
                      plan.snapshot_id)


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
