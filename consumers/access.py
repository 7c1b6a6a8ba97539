"""Analyst access: list the catalog, and pull a dataset (filtered, projected, as of a snapshot).

`list_datasets()`; `pull(dataset, where, columns, as_of)` -> pandas; `pull_table(...)` -> `PullResult`
(the Arrow table and `bytes_read`); `write_pull(result, fmt, out)`. Filters are pushed down (partition
pruning, row-group pruning over ranged GETs, column projection), so a filtered pull does not download the
whole dataset: docs/evidence.md.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ioxhub.catalog import Catalog
from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings
from ioxhub.storage import ObjectStore

FORMATS = ("csv", "parquet", "json")


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


def parse_where(clauses: Sequence[str]) -> list[tuple[str, str]]:
    """`COL=VALUE` strings -> pairs (several values of one column are OR-ed, columns AND-ed)."""
    pairs = []
    for clause in clauses:
        column, sep, value = clause.partition("=")
        if not sep or not column.strip():
            raise PullError(f"--where {clause!r}: expected COLUMN=VALUE")
        pairs.append((column.strip(), value))
    return pairs


def list_datasets(settings: Settings | None = None, store: ObjectStore | None = None) -> list[dict]:
    return Catalog(store or ObjectStore(settings)).datasets()


def _snapshot_location(entry: dict, as_of: str | None) -> tuple[int, str]:
    if as_of is None:
        return entry["snapshot"], entry["location"]
    snapshots = entry.get("snapshots", [])
    if as_of.isdigit():
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


def _partition_values(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("/")[:-1] if "=" in part)


def _typed(value: str, field_type: pa.DataType) -> pa.Scalar:
    """The filter value as a scalar of the column's type (timestamps from ISO text, UTC when no zone is given)."""
    if pa.types.is_string(field_type):
        return pa.scalar(value)
    if pa.types.is_timestamp(field_type):
        when = dt.datetime.fromisoformat(value)
        if field_type.tz is not None and when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return pa.scalar(when, field_type)
    return pa.scalar(value).cast(field_type)


def _expression(where: list[tuple[str, str]], schema: pa.Schema) -> pads.Expression | None:
    by_column: dict[str, list] = {}
    for column, value in where:
        if column not in schema.names:
            raise PullError(f"--where {column}=...: no column {column!r} (columns: {', '.join(schema.names)})")
        field_type = schema.field(column).type
        try:
            typed = _typed(value, field_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            raise PullError(f"--where {column}={value!r}: not a valid {field_type}") from None
        by_column.setdefault(column, []).append(typed)
    expression = None
    for column, values in by_column.items():
        term = pads.field(column).isin(pa.array([v.as_py() for v in values], values[0].type))
        expression = term if expression is None else expression & term
    return expression


def pull_table(dataset: str, where: Sequence[str] | list[tuple[str, str]] = (), columns: Sequence[str] | None = None,
               as_of: str | None = None, settings: Settings | None = None, store: ObjectStore | None = None) -> PullResult:
    store = store or ObjectStore(settings)
    entry = Catalog(store).dataset(dataset)
    if entry is None:
        known = ", ".join(d["name"] for d in Catalog(store).datasets()) or "none yet"
        raise PullError(f"no dataset {dataset!r} in the catalog (known: {known})")
    snapshot, location = _snapshot_location(entry, as_of)
    pairs = parse_where(where) if where and isinstance(next(iter(where)), str) else list(where)

    keys = sorted(k for k in store.list(location) if k.endswith(".parquet"))
    sizes = {k: store.size(k) or 0 for k in keys}
    partition_filters = [(c, v) for c, v in pairs if keys and c in _partition_values(keys[0])]
    row_filters = [(c, v) for c, v in pairs if (c, v) not in partition_filters]
    selected = [k for k in keys if all(_partition_values(k).get(c) in {v for cc, v in partition_filters if cc == c}
                                       for c, _ in partition_filters)]
    tables, bytes_read = [], 0
    for key in selected:
        with store.open(key) as handle:
            fragment = pads.ParquetFileFormat().make_fragment(pa.PythonFile(handle, mode="r"))
            schema = fragment.physical_schema
            want = list(columns) if columns else schema.names
            missing = [c for c in want if c not in schema.names and c not in _partition_values(key)]
            if missing:
                raise PullError(f"no column(s) {', '.join(missing)} in {dataset} (columns: {', '.join(schema.names)})")
            table = fragment.to_table(columns=[c for c in want if c in schema.names],
                                      filter=_expression(row_filters, schema))
            for name, value in _partition_values(key).items():
                if name in want:
                    table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
            tables.append(table.select([c for c in want if c in table.column_names]))
            bytes_read += handle.bytes_read
    result = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    return PullResult(result, dataset, snapshot, len(selected), bytes_read, sum(sizes.values()))


def pull(dataset: str, where: Sequence[str] = (), columns: Sequence[str] | None = None, as_of: str | None = None,
         settings: Settings | None = None) -> pd.DataFrame:
    """A dataset of the catalog as a pandas DataFrame (the Python API for analysts)."""
    return pull_table(dataset, where, columns, as_of, settings).table.to_pandas()


def write_pull(result: PullResult, fmt: str, out: Path | None) -> Path | None:
    """Write a pull as csv, parquet or json (JSON Lines) to `out`, or CSV/JSON to stdout when out is None."""
    if fmt not in FORMATS:
        raise PullError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    frame = result.table.to_pandas() if fmt != "parquet" else None
    if out is None:
        if fmt == "parquet":
            raise PullError("--format parquet needs -o FILE")
        import sys
        (frame.to_csv(sys.stdout, index=False) if fmt == "csv" else
         frame.to_json(sys.stdout, orient="records", lines=True, date_format="iso"))
        return None
    if fmt == "parquet":
        pq.write_table(result.table, out)
    elif fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_json(out, orient="records", lines=True, date_format="iso")
    return out
