"""Datasets of the catalog as SDMX: a data structure (DSD) generated from a table's columns, code lists from
its values, data messages, and their SDMX-ML 2.1 / SDMX-CSV encodings (sdmx1's own writers).

Entry points: `flow_id(name)` / `dataset_of_flow(flow, names)` (dataset names <-> SDMX ids), `structure_of(name,
table)` -> `Structure` (which columns are dimensions, the time dimension, the measure, attributes),
`structure_message(structures)`, `data_message(structure, table)`, `to_sdmx_ml(message)`, `to_sdmx_csv(message)`,
`key_filters(structure, key)` and `period_filters(structure, start, end)` (the REST key and periods as pull
filters). How columns are mapped, and the limits: docs/api.md "SDMX".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sdmx
from sdmx import message as sdmx_message
from sdmx.model import common as sdmx_common
from sdmx.model import v21

from consumers.access import Filter
from ioxhub.errors import IoxhubError

AGENCY = "IOXHUB"
VERSION = "1.0"
# Columns that identify an observation, in key order, when a table has them; every other column but the time
# and the measure is an attribute.
# (org and dataset_id, where a table has them, say where a value came from: attributes.)
DIMENSION_COLUMNS = ("freq", "indicator", "ref_area", "counterpart_area", "commodity", "instrument_id")
TIME_COLUMNS = ("period", "year")
MEASURE_COLUMNS = ("value",)
MISSING_CODE = "_Z"            # SDMX's "not applicable" code, for a missing dimension value
_ID_BAD = re.compile(r"[^A-Za-z0-9_@$-]")


class SdmxOutError(IoxhubError):
    """A dataset cannot be expressed as SDMX (no measure column), or a key does not fit its structure."""


def sdmx_id(text: str) -> str:
    """`text` as an SDMX identifier (letters, digits, _ @ $ -; anything else becomes `_`)."""
    return _ID_BAD.sub("_", text) or "_"


def flow_id(name: str) -> str:
    return sdmx_id(name.replace(".", "__")).upper()


def dataset_of_flow(flow: str, names: list[str]) -> str | None:
    """The dataset name whose flow id is `flow` (ids are upper case; matching ignores case)."""
    wanted = flow.upper()
    return next((n for n in names if flow_id(n) == wanted), None)


@dataclass
class Structure:
    """How one dataset maps onto SDMX: ids, the dimension columns (key order), time, measure, attributes,
    and each dimension's code list (code id -> the column value)."""
    name: str
    flow: str
    title: str
    dimensions: list[str]
    time: str | None
    measure: str
    attributes: list[str]
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    dsd: v21.DataStructureDefinition | None = None
    dataflow: v21.DataflowDefinition | None = None
    codelists: list[sdmx_common.Codelist] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return self.dimensions + ([self.time] if self.time else []) + [self.measure] + self.attributes


def _code(value) -> str:
    return MISSING_CODE if value is None else sdmx_id(str(value))


def is_observational(schema: pa.Schema) -> bool:
    """Whether a table of this schema has an SDMX form (a measure column)."""
    return _measure(schema) is not None


def _measure(schema: pa.Schema) -> str | None:
    return next((c for c in MEASURE_COLUMNS if c in schema.names), None) or next(
        (f.name for f in schema if pa.types.is_floating(f.type)), None)


def dimension_columns(schema: pa.Schema) -> list[str]:
    return [c for c in DIMENSION_COLUMNS if c in schema.names]


def structure_of(name: str, table: pa.Table, title: str | None = None, schema: pa.Schema | None = None) -> Structure:
    """The generated structure of dataset `name`: its columns from `schema` (default: the table's), the code
    lists from the dimension columns' values in `table` (pass the whole dataset's dimension columns for
    complete code lists, or the rows of one message for a message of its own)."""
    schema = schema or table.schema
    names = schema.names
    measure = _measure(schema)
    if measure is None:
        raise SdmxOutError(f"{name}: no measure column (a 'value' column or any floating-point column), "
                           "so it has no SDMX form")
    time = next((c for c in TIME_COLUMNS if c in names), None)
    dimensions = dimension_columns(schema)
    attributes = [c for c in names if c not in dimensions and c not in (time, measure)]
    st = Structure(name, flow_id(name), title or name, dimensions, time, measure, attributes)
    agency = sdmx_common.Agency(id=AGENCY)
    dsd = v21.DataStructureDefinition(id=st.flow, name=st.title, maintainer=agency, version=VERSION)
    for position, column in enumerate(dimensions):
        values = pc.unique(table.column(column)).to_pylist()
        codes = {_code(v): ("" if v is None else str(v)) for v in values}
        st.codes[column] = dict(sorted(codes.items()))
        cl = sdmx_common.Codelist(id=f"CL_{sdmx_id(column).upper()}", name=column, maintainer=agency, version=VERSION)
        for code_id, value in st.codes[column].items():
            cl.append(sdmx_common.Code(id=code_id, name=value or "not applicable"))
        st.codelists.append(cl)
        dim = v21.Dimension(id=sdmx_id(column).upper(), order=position,
                            local_representation=sdmx_common.Representation(enumerated=cl))
        dsd.dimensions.append(dim)
    if time:
        dsd.dimensions.append(v21.TimeDimension(id="TIME_PERIOD", order=len(dimensions)))
    dsd.measures.append(v21.PrimaryMeasure(id="OBS_VALUE"))
    for column in attributes:
        dsd.attributes.append(v21.DataAttribute(id=sdmx_id(column).upper(),
                                                related_to=v21.PrimaryMeasureRelationship()))
    st.dsd = dsd
    st.dataflow = v21.DataflowDefinition(id=st.flow, name=st.title, maintainer=agency, version=VERSION, structure=dsd)
    return st


def structure_message(structures: list[Structure]) -> sdmx_message.StructureMessage:
    msg = sdmx_message.StructureMessage()
    for st in structures:
        msg.add(st.dataflow)
        msg.add(st.dsd)
        for cl in st.codelists:
            msg.add(cl)
    return msg


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def data_message(st: Structure, table: pa.Table) -> sdmx_message.DataMessage:
    """The rows of `table` (all of `st.columns`) as a data message of generic observations."""
    dsd = st.dsd
    dims = [dsd.dimensions.get(sdmx_id(c).upper()) for c in st.dimensions]
    time_dim = dsd.dimensions.get("TIME_PERIOD") if st.time else None
    attrs = [dsd.attributes.get(sdmx_id(c).upper()) for c in st.attributes]
    columns = {c: table.column(c).to_pylist() for c in st.columns}
    observations = []
    for i in range(table.num_rows):
        values = {d: _code(columns[c][i]) for d, c in zip(dims, st.dimensions)}
        if time_dim is not None:
            values[time_dim] = _text(columns[st.time][i])
        key = v21.Key(**{d.id: v for d, v in values.items()}, described_by=dsd.dimensions)
        measure = columns[st.measure][i]
        attached = {a.id: v21.AttributeValue(value=_text(columns[c][i]), value_for=a)
                    for a, c in zip(attrs, st.attributes) if columns[c][i] is not None}
        observations.append(v21.Observation(dimension=key, value=measure if measure is not None else float("nan"),
                                            value_for=dsd.measures[0], attached_attribute=attached))
    ds = v21.GenericDataSet(structured_by=dsd, described_by=st.dataflow)
    ds.add_obs(observations)
    msg = sdmx_message.DataMessage(dataflow=st.dataflow)
    msg.data.append(ds)
    return msg


def to_sdmx_ml(msg) -> bytes:
    return sdmx.to_xml(msg, pretty_print=False)


def to_sdmx_csv(msg: sdmx_message.DataMessage) -> str:
    """SDMX-CSV 2.0 by sdmx1's writer, one row an observation, attributes included. (`sdmx.to_csv(...,
    rtype=str)` returns pandas' text rendering, not CSV, in sdmx1 2.28: take the frame and write it.)"""
    frame = sdmx.to_csv(msg.data[0], rtype=pd.DataFrame, attributes="o")
    return frame.to_csv(index=False)


def key_filters(st: Structure, key: str) -> list[Filter]:
    """An SDMX REST key (`A.FRA+DEU..`, dimension values in DSD order, `+` for or, empty for any) as pull
    filters on the dimension columns."""
    if key in ("", "all", "ALL"):
        return []
    parts = key.split(".")
    if len(parts) != len(st.dimensions):
        raise SdmxOutError(f"key {key!r}: {len(parts)} part(s), the structure of {st.flow} has "
                           f"{len(st.dimensions)} dimension(s) ({'.'.join(sdmx_id(d).upper() for d in st.dimensions)})")
    filters = []
    for column, part in zip(st.dimensions, parts):
        if not part:
            continue
        values = []
        for code in part.split("+"):
            if code not in st.codes[column]:
                raise SdmxOutError(f"key {key!r}: no code {code!r} for dimension {sdmx_id(column).upper()}")
            values.append(st.codes[column][code])
        filters.append(Filter(column, "in", tuple(values)))
    return filters


def period_filters(st: Structure, start: str | None, end: str | None) -> list[Filter]:
    """startPeriod/endPeriod as filters on the time column: a period starting with the end period is still
    in (`endPeriod=2016` keeps `2016-Q4`), as SDMX means it."""
    if st.time is None or not (start or end):
        return []
    filters = []
    if st.time == "year":
        for bound, op in ((start, ">="), (end, "<=")):
            if bound:
                if not (bound[:4].isascii() and bound[:4].isdigit() and len(bound) >= 4):
                    raise SdmxOutError(f"period {bound!r}: expected a period starting with a year (2015, 2015-Q1, 2015-03)")
                filters.append(Filter("year", op, (bound[:4],)))
        return filters
    if start:
        filters.append(Filter(st.time, ">=", (start,)))
    if end:
        filters.append(Filter(st.time, "<", (end + "~",)))   # "~" sorts after every period character
    return filters
