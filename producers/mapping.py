"""Column mapping: which source column (or constant) feeds each observation field.

`ColumnMapping.from_file(path)` (YAML or JSON), `from_dict`, `from_flags` (`--map`, `--const`, `--default`,
`--dim`) and `merged` (flags over a file); `resolve(columns, file, ...)` binds a mapping to a file's columns,
an unmapped field falling back to a column named by its SDMX concept (`SDMX_CONCEPTS`), by the field itself
or an alias, and settles the extra dimensions (`dimensions`, `auto` by default), the ACTION column and where
the commodity column goes (`commodity_classification`). `units:` translates ambiguous unit codes
(`PC: NUMBER`) for ingest (carried in the release manifest). A mapping that cannot be used is one
`MappingError` line. The file format and the fallbacks: docs/publishing.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ioxhub import yamlfile
from ioxhub.errors import IoxhubError, read_user_text
from ioxhub.harmonize.units import translation_problem
from producers.proposals import indicator_dimension, proposal
from producers.readers import formats

FIELDS = ("indicator", "ref_area", "counterpart_area", "commodity", "period", "value", "unit", "unit_mult", "obs_status")
REQUIRED = ("indicator", "ref_area", "period", "value")
STRING_FIELDS = tuple(f for f in FIELDS if f not in ("value", "unit_mult"))
SDMX_CONCEPTS = {
    "indicator": "INDICATOR",
    "ref_area": "REF_AREA",
    "counterpart_area": "COUNTERPART_AREA",
    "commodity": "COMMODITY",
    "period": "TIME_PERIOD",
    "value": "OBS_VALUE",
    "unit": "UNIT_MEASURE",
    "unit_mult": "UNIT_MULT",
    "obs_status": "OBS_STATUS",
}
# Other column names a field falls back to, after its SDMX concept and its own name: the ECB's UNIT
# attribute, Eurostat's `geo` dimension.
ALIASES = {"unit": ("UNIT",), "ref_area": ("geo", "GEO")}
META_KEYS = ("title", "licence", "source_url", "format")
AUTO = "auto"
EXTRA_KEYS = ("dimensions", "action", "commodity_classification")
COMMODITY_DIMENSION = "COMMODITY"      # the dimension a commodity column of another classification becomes
# Never extra dimensions under `auto`: the time dimension, and FREQ (the period says it: harmonized `freq`).
NOT_AUTO_DIMENSIONS = ("TIME_PERIOD", "FREQ")


def is_hs(classification: str | None) -> bool:
    """Whether a commodity classification id names an HS edition (HS, HS2022, HS2017, HS2012...)."""
    return classification is not None and classification.upper().startswith("HS")


class MappingError(IoxhubError, ValueError):
    """A column mapping that cannot be used; the message names the mapping source and the key."""


@dataclass(frozen=True)
class Source:
    """Where a field's values come from: a source column or a constant (exactly one)."""

    column: str | None = None
    const: str | None = None

    def describe(self) -> str:
        return f"column {self.column!r}" if self.column is not None else f"constant {self.const!r}"

    def canonical(self) -> dict[str, str]:
        return {"column": self.column} if self.column is not None else {"const": self.const or ""}


@dataclass(frozen=True)
class ColumnMapping:
    """A validated mapping. `resolve()` binds it to a file's columns (fallbacks, existence checks)."""

    fields: dict[str, Source] = field(default_factory=dict)
    attributes: dict[str, Source] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)      # unit translations: source code -> canonical code
    title: str | None = None
    licence: str | None = None
    source_url: str | None = None
    format: str | None = None
    dimensions: dict[str, str] | str | None = None     # name -> column, AUTO, or None (not said: AUTO)
    action: str | None = None                          # the SDMX ACTION column (default: the reader's)
    commodity_classification: str | None = None        # HS2022, HS2017, HS2012, another id; None: by shape
    commodity_decided: bool = True                     # False: HS or not is settled on the data (`dimensions.py`)
    note: str | None = None                            # what settling it decided, for the publish summary
    origin: str = "mapping"

    # ------------------------------------------------------------------------------------ building
    @classmethod
    def from_file(cls, path: str | Path) -> "ColumnMapping":
        path = Path(path)
        text = read_user_text(path, MappingError, "mapping file")
        if path.suffix.lower() != ".json":
            data = yamlfile.load(text, path, MappingError)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise MappingError(f"mapping file {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data if data is not None else {}, origin=f"mapping file {path}")

    @classmethod
    def from_dict(cls, data: Any, origin: str = "mapping") -> "ColumnMapping":
        if not isinstance(data, Mapping):
            raise MappingError(f"{origin}: expected a mapping of field -> column, got {type(data).__name__}")
        allowed = set(FIELDS) | {"attributes", "defaults", "units"} | set(META_KEYS) | set(EXTRA_KEYS)
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise MappingError(f"{origin}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(FIELDS)}, attributes, defaults, units, {', '.join(META_KEYS)}, {', '.join(EXTRA_KEYS)})")
        fields = {name: _source(data[name], f"{origin}: {name}") for name in FIELDS if name in data and data[name] is not None}
        attributes = _attributes(data.get("attributes"), origin)
        defaults = _defaults(data.get("defaults"), origin)
        units = _units(data.get("units"), origin)
        meta = {}
        for key in META_KEYS:
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise MappingError(f"{origin}: {key} must be a string, got {value!r}")
            meta[key] = value
        if meta["format"] is not None and meta["format"] not in formats():
            raise MappingError(f"{origin}: format {meta['format']!r} is not one of {', '.join(formats())}")
        for key in ("action", "commodity_classification"):
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise MappingError(f"{origin}: {key} must be a non-empty string, got {value!r}")
        return cls(fields=fields, attributes=attributes, defaults=defaults, units=units, origin=origin,
                   dimensions=_dimensions(data.get("dimensions"), origin), action=data.get("action"),
                   commodity_classification=(data.get("commodity_classification") or "").strip().upper() or None, **meta)

    @classmethod
    def from_flags(cls, maps: Iterable[str] = (), consts: Iterable[str] = (), defaults: Iterable[str] = (),
                   dims: Iterable[str] = ()) -> "ColumnMapping":
        """From `--map k=COL`, `--const k=V` and `--default k=V` flags (k = a field or attributes.NAME), and
        `--dim COL` (an extra dimension, or `auto`)."""
        data: dict[str, Any] = {"attributes": {}, "defaults": {}}
        dims = list(dims)
        if dims:
            data["dimensions"] = AUTO if dims == [AUTO] else dims
        for flag, items, as_const in (("--map", maps, False), ("--const", consts, True)):
            for item in items:
                key, value = _split_flag(flag, item)
                target = data["attributes"] if key.startswith("attributes.") else data
                name = key.removeprefix("attributes.")
                if name in target:
                    raise MappingError(f"{flag} {item}: {key} is mapped twice")
                target[name] = {"const": value} if as_const else value
        for item in defaults:
            key, value = _split_flag("--default", item)
            data["defaults"][key] = value
        return cls.from_dict(data, origin="--map/--const flags")

    def merged(self, other: "ColumnMapping") -> "ColumnMapping":
        """This mapping with `other`'s entries on top (flags override a mapping file)."""
        return replace(
            self,
            fields={**self.fields, **other.fields},
            attributes={**self.attributes, **other.attributes},
            defaults={**self.defaults, **other.defaults},
            units={**self.units, **other.units},
            **{k: getattr(other, k) or getattr(self, k) for k in META_KEYS + EXTRA_KEYS},
            origin=self.origin if not (other.fields or other.attributes or other.defaults or other.dimensions)
            else f"{self.origin} + {other.origin}",
        )

    # ------------------------------------------------------------------------------------ using
    def resolve(self, columns: Sequence[str], file: str, file_dimensions: Sequence[str] = (),
                file_attributes: Sequence[str] = (), action_column: str | None = None) -> "ColumnMapping":
        """Bind to a file's columns: apply the fallbacks, check required fields and that columns exist;
        settle the extra dimensions (`auto`: the file's `file_dimensions` not mapped to anything else),
        the ACTION column (the mapping's, else the reader's `action_column`) and the commodity column.
        `file_dimensions`/`file_attributes` (SDMX formats) also feed the indicator fallback and the flags
        proposed when a required field has no source."""
        present = set(columns)
        fields = dict(self.fields)
        mapped = {s.column for s in fields.values() if s.column is not None}    # a column mapped to a field
        for name in FIELDS:                                                      # is no other field's fallback
            if name in fields:
                continue
            for candidate in (SDMX_CONCEPTS[name], name, *ALIASES.get(name, ())):
                if candidate in present and candidate not in mapped:
                    fields[name] = Source(column=candidate)
                    break
        if "indicator" not in fields and file_dimensions:
            found = indicator_dimension(file_dimensions, {k: v.column for k, v in fields.items() if v.column is not None})
            if found is not None:
                fields["indicator"] = Source(column=found)
        missing = [name for name in REQUIRED if name not in fields]
        if missing:
            bound = {k: v.column for k, v in fields.items() if v.column is not None}
            raise MappingError(
                f"{file}: no source for required field(s) {', '.join(missing)} ({self.origin}); "
                f"{proposal(missing, list(columns), list(file_dimensions), list(file_attributes), bound)}")
        action = self.action or action_column
        explicit = self.dimensions if isinstance(self.dimensions, dict) else {}
        absent = [(what, src.column) for what, src in [*fields.items(), *((f"attributes.{k}", v) for k, v in self.attributes.items()),
                                                       *((f"dimensions.{k}", Source(column=c)) for k, c in explicit.items()),
                                                       *((("action", Source(column=self.action)),) if self.action else ())]
                  if src.column is not None and src.column not in present]
        if absent:
            what = ", ".join(f"{name} -> {col!r}" for name, col in absent)
            raise MappingError(f"{file}: mapped column(s) not in the file: {what} ({self.origin}); the file's columns are: {_list(columns)}")
        dimensions = dict(explicit)
        commodity = fields.get("commodity")
        decided = True
        if commodity is not None and commodity.column is not None and self.commodity_classification is not None \
                and not is_hs(self.commodity_classification):
            del fields["commodity"]                 # another classification: kept as a dimension
            dimensions[COMMODITY_DIMENSION] = commodity.column
        elif commodity is not None and commodity.column is not None and self.commodity_classification is None:
            decided = False                         # HS or not: settled on the codes (dimensions.decide_commodity)
        if self.dimensions in (None, AUTO):
            taken = {s.column for s in [*fields.values(), *self.attributes.values()]} | set(dimensions.values()) | {action}
            for name in file_dimensions:
                if name in present and name not in taken and name not in NOT_AUTO_DIMENSIONS and name not in dimensions:
                    dimensions[name] = name
        return replace(self, fields=fields, dimensions=dimensions, action=action, commodity_decided=decided)

    def noted(self, note: str) -> "ColumnMapping":
        return replace(self, note=note)

    def with_commodity_hs(self) -> "ColumnMapping":
        """This resolved mapping with its commodity column settled as HS codes."""
        return replace(self, commodity_decided=True)

    def commodity_as_dimension(self) -> "ColumnMapping":
        """This resolved mapping with its commodity column kept as the dimension COMMODITY instead."""
        fields = dict(self.fields)
        column = fields.pop("commodity").column
        return replace(self, fields=fields, dimensions={**self.extra_dimensions, COMMODITY_DIMENSION: column},
                       commodity_decided=True)

    @property
    def extra_dimensions(self) -> dict[str, str]:
        """Dimension name -> source column, once resolved (empty before)."""
        return self.dimensions if isinstance(self.dimensions, dict) else {}

    def source_columns(self) -> list[str]:
        """Source columns this mapping reads, in a stable order, without duplicates."""
        cols = [s.column for s in [*self.fields.values(), *self.attributes.values()] if s.column is not None]
        cols += list(self.extra_dimensions.values()) + ([self.action] if self.action else [])
        return list(dict.fromkeys(cols))

    def canonical(self) -> dict[str, Any]:
        """A JSON-able, order-independent description (part of the release id)."""
        canonical = {
            "fields": {k: v.canonical() for k, v in sorted(self.fields.items())},
            "attributes": {k: v.canonical() for k, v in sorted(self.attributes.items())},
            "defaults": dict(sorted(self.defaults.items())),
            **({"dimensions": self.dimensions if isinstance(self.dimensions, str) else dict(sorted(self.dimensions.items()))}
               if self.dimensions else {}),
            **{k: getattr(self, k) for k in ("action", "commodity_classification") if getattr(self, k) is not None},
        }
        if self.units:      # absent when empty: release ids of mappings without translations are unchanged
            canonical["units"] = dict(sorted(self.units.items()))
        return canonical


def _source(value: Any, where: str) -> Source:
    if isinstance(value, str):
        if not value:
            raise MappingError(f"{where}: empty column name")
        return Source(column=value)
    if isinstance(value, Mapping):
        if set(value) != {"const"}:
            raise MappingError(f"{where}: expected a column name or {{const: VALUE}}, got {dict(value)!r}")
        const = value["const"]
        if isinstance(const, bool) or not isinstance(const, (str, int, float)):
            raise MappingError(f"{where}: const must be a string or a number, got {const!r}")
        return Source(const=str(const))
    raise MappingError(f"{where}: expected a column name or {{const: VALUE}}, got {value!r}")


def _attributes(value: Any, origin: str) -> dict[str, Source]:
    if value is None:
        return {}
    if isinstance(value, list):
        if not all(isinstance(v, str) and v for v in value):
            raise MappingError(f"{origin}: attributes as a list must hold column names, got {value!r}")
        return {v: Source(column=v) for v in value}
    if isinstance(value, Mapping):
        return {str(k): _source(v, f"{origin}: attributes.{k}") for k, v in value.items()}
    raise MappingError(f"{origin}: attributes must be a mapping name -> column or a list of columns, got {value!r}")


def _dimensions(value: Any, origin: str) -> dict[str, str] | str | None:
    """`dimensions:` as given: `auto`, a list of columns (each its own name), or a mapping name -> column."""
    if value is None or value == AUTO:
        return value
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return {v: v for v in value}
    if isinstance(value, Mapping) and all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()):
        return dict(value)
    raise MappingError(f"{origin}: dimensions must be 'auto', a list of columns or a mapping name -> column, got {value!r}")


def _defaults(value: Any, origin: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MappingError(f"{origin}: defaults must be a mapping field -> value, got {value!r}")
    out = {}
    for key, v in value.items():
        if key not in FIELDS or key == "value":
            raise MappingError(f"{origin}: defaults.{key}: not a field that takes a default (fields: {', '.join(f for f in FIELDS if f != 'value')})")
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise MappingError(f"{origin}: defaults.{key} must be a string or a number, got {v!r}")
        out[key] = str(v)
    return out


def _units(value: Any, origin: str) -> dict[str, str]:
    """`units:` -> {source code (trimmed, upper case): canonical code (upper case)}, each checked."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MappingError(f"{origin}: units must be a mapping source code -> canonical unit code, got {value!r}")
    out: dict[str, str] = {}
    for key, target in value.items():
        if isinstance(target, bool) or not isinstance(target, (str, int)) or isinstance(key, bool):
            raise MappingError(f"{origin}: units.{key} must be a unit code, got {target!r}")
        source, target = str(key).strip().upper(), str(target).strip().upper()
        problem = translation_problem(source, target)
        if problem is not None:
            raise MappingError(f"{origin}: units.{key}: {problem}")
        if out.get(source, target) != target:
            raise MappingError(f"{origin}: units.{key}: {source!r} is translated twice ({out[source]!r} and {target!r})")
        out[source] = target
    return out


def _split_flag(flag: str, item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise MappingError(f"{flag} {item!r}: expected FIELD=VALUE (fields: {', '.join(FIELDS)}, or attributes.NAME)")
    if key not in FIELDS and not (key.startswith("attributes.") and len(key) > len("attributes.")):
        raise MappingError(f"{flag} {item!r}: unknown field {key!r} (fields: {', '.join(FIELDS)}, or attributes.NAME)")
    return key, value


def _list(columns: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in list(columns)[:30])
    return shown + (f" ... ({len(columns)} in all)" if len(columns) > 30 else "")
