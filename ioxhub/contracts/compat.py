"""Schema evolution rules of the registry, checked by `ioxhub schemas check`.

BACKWARD_TRANSITIVE (Apache Avro's own checker, `avro.compatibility`, subclassed only to attach each problem
to its field) plus no removal of a field without a default. `check_registry(registry)` -> (pairs checked,
`Incompatibility` list); `check_pair(reader, writer)`, `version_pairs(registry)`. Each incompatibility names
the schema, the writer -> reader versions, the field path and why. Rules and rationale: docs/contracts.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ioxhub.contracts.registry import Registry, SchemaFileError, SchemaVersion
from ioxhub.errors import IoxhubError

try:
    import avro.errors
    import avro.schema
    from avro.compatibility import (CompatibleResult, ReaderWriterCompatibilityChecker, SchemaCompatibilityResult,
                                    SchemaCompatibilityType, SchemaIncompatibilityType as Kind,
                                    lookup_writer_field, merge)
except ImportError:  # pragma: no cover - depends on the installation
    raise IoxhubError("the schema compatibility check needs the Apache Avro library: pip install avro==1.12.2") from None

REMOVED_WITHOUT_DEFAULT = "removed_without_default"

_WHY = {
    Kind.reader_field_missing_default_value.value:
        "added without a default: data written by v{w} has no value for it (give it a default, "
        "e.g. type [\"null\", ...] with \"default\": null)",
    Kind.type_mismatch.value:
        "type changed in a way Avro cannot resolve ({msg}); only int->long->float->double, "
        "string<->bytes and widening into a union are readable",
    Kind.missing_enum_symbols.value:
        "enum symbols {msg} that v{w} may write are missing in v{r}, whose enum has no default symbol",
    Kind.missing_union_branch.value:
        "v{w} may write a type v{r}'s union cannot read ({msg})",
    Kind.name_mismatch.value:
        "named type renamed ({msg}); keep the name or list the old full name in \"aliases\"",
    Kind.fixed_size_mismatch.value:
        "fixed size changed ({msg})",
    REMOVED_WITHOUT_DEFAULT:
        "removed in v{r} although it has no default in v{w}: readers still on v{w} could not read new data "
        "(keep it: a field can only be dropped if it has a default in every older version)",
}


@dataclass(frozen=True)
class Incompatibility:
    """One reason why `reader_version` of `name` cannot stand beside `writer_version`."""

    name: str
    writer_version: int
    reader_version: int
    field: str          # dotted path of record fields ("attributes.values"), "(schema)" for the root
    kind: str           # an avro SchemaIncompatibilityType value, or "removed_without_default"
    message: str        # the checker's own words

    @property
    def why(self) -> str:
        return _WHY[self.kind].format(w=self.writer_version, r=self.reader_version, msg=self.message)

    def __str__(self) -> str:
        return f"{self.name} v{self.writer_version} -> v{self.reader_version}: field {self.field}: {self.why}"


class _FieldChecker(ReaderWriterCompatibilityChecker):
    """Apache Avro's checker, recording each problem against the record field where it arises.

    The library merges all problems of a schema pair into one result (sets of messages and index-based
    locations); overriding its record-field step gives one problem per field, with the field's name.
    """

    def __init__(self) -> None:
        super().__init__()
        self.path: list[str] = []
        self.problems: list[tuple[str, str, str]] = []   # (field path, kind, message)

    def _record(self, kind: str, message: str) -> None:
        self.problems.append((".".join(self.path) or "(schema)", kind, message))

    def check_reader_writer_record_fields(self, reader, writer, location) -> SchemaCompatibilityResult:
        result = CompatibleResult
        for i, reader_field in enumerate(reader.fields):
            self.path.append(reader_field.name)
            before = len(self.problems)
            writer_field = lookup_writer_field(writer_schema=writer, reader_field=reader_field)
            if writer_field is None:
                if reader_field.has_default:
                    field_result = CompatibleResult
                else:
                    field_result = SchemaCompatibilityResult(SchemaCompatibilityType.incompatible,
                                                             [Kind.reader_field_missing_default_value],
                                                             {reader_field.name})
            else:
                field_result = self.get_compatibility(reader_field.type, writer_field.type, "type",
                                                      location + ["fields", str(i)])
            if field_result.compatibility is SchemaCompatibilityType.incompatible and len(self.problems) == before:
                for kind in dict.fromkeys(field_result.incompatibilities):
                    self._record(kind.value, "; ".join(sorted(field_result.messages)))
            result = merge(result, field_result)
            self.path.pop()
        for writer_field in writer.fields:   # rule 2: no removal of a field without default
            if not writer_field.has_default and not any(
                    rf.name == writer_field.name or writer_field.name in (rf.props.get("aliases") or ())
                    for rf in reader.fields):
                self.path.append(writer_field.name)
                self._record(REMOVED_WITHOUT_DEFAULT, writer_field.name)
                self.path.pop()
                result = merge(result, SchemaCompatibilityResult(SchemaCompatibilityType.incompatible,
                                                                 [Kind.reader_field_missing_default_value]))
        return result


def _avro_schema(sv: SchemaVersion) -> avro.schema.Schema:
    try:
        return avro.schema.parse(sv.path.read_text(encoding="utf-8"))
    except (avro.errors.AvroException, ValueError, TypeError) as exc:
        raise SchemaFileError(f"{sv.path}: the Apache Avro library refuses this schema ({exc})") from None


def check_pair(reader: SchemaVersion, writer: SchemaVersion) -> list[Incompatibility]:
    """Why `reader` cannot read data written with `writer` (or drops a required field of it); [] if fine."""
    checker = _FieldChecker()
    result = checker.get_compatibility(_avro_schema(reader), _avro_schema(writer))
    problems = list(checker.problems)
    if result.compatibility is SchemaCompatibilityType.incompatible and not problems:   # e.g. root renamed
        problems = [("(schema)", kind.value, "; ".join(sorted(result.messages)))
                    for kind in dict.fromkeys(result.incompatibilities)]
    return [Incompatibility(reader.name, writer.version, reader.version, f, kind, msg) for f, kind, msg in problems]


def version_pairs(registry: Registry) -> Iterator[tuple[SchemaVersion, SchemaVersion]]:
    """Every (reader, writer) pair the rule covers: each version against every older one."""
    for name in registry.names():
        versions = registry.versions(name)
        for j, reader in enumerate(versions):
            for writer in versions[:j]:
                yield reader, writer


def check_registry(registry: Registry) -> tuple[int, list[Incompatibility]]:
    """(pairs checked, incompatibilities) over the whole registry."""
    pairs = 0
    problems: list[Incompatibility] = []
    for reader, writer in version_pairs(registry):
        pairs += 1
        problems.extend(check_pair(reader, writer))
    return pairs, problems


__all__ = ["Incompatibility", "check_pair", "check_registry", "version_pairs"]
