"""The event contracts over HTTP, read-only, in the shapes of the Confluent Schema Registry REST API, so
Kafka tooling that speaks to a schema registry can read them:

    GET /schemas/subjects                                 ["dataset_chunk", ...]
    GET /schemas/subjects/{subject}/versions              [1, 2]
    GET /schemas/subjects/{subject}/versions/{v|latest}   {"subject", "version", "id", "schemaType", "schema"}
    GET /schemas/schemas/ids/{id}                         {"schema", "schemaType"}

Subjects are the schema names of schemas/<name>/; ids are the registry's Confluent ids (from each version's
Avro fingerprint: ioxhub/contracts/registry.py). Public: they are the partner contract, no data. docs/api.md.
"""
from __future__ import annotations

import json
from typing import Any

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from ioxhub.contracts.registry import SchemaVersion, UnknownSchema, get_registry

router = APIRouter(tags=["schemas"])
Subject = Annotated[str, Path(examples=["dataset_chunk"])]


def _not_found(code: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=404)


def _registry(request: Request):
    return get_registry(request.app.state.settings.schemas_dir)


def _version_doc(v: SchemaVersion) -> dict[str, Any]:
    return {"subject": v.name, "version": v.version, "id": v.confluent_id, "schemaType": "AVRO",
            "schema": json.dumps(v.schema, separators=(",", ":"))}


@router.get("/subjects", summary="The schema subjects (event contract names)")
def subjects(request: Request) -> list[str]:
    return _registry(request).names()


@router.get("/subjects/{subject}/versions", summary="The versions of a subject", response_model=None)
def versions(request: Request, subject: Subject) -> list[int] | JSONResponse:
    try:
        return [v.version for v in _registry(request).versions(subject)]
    except UnknownSchema:
        return _not_found(40401, "Subject not found")


@router.get("/subjects/{subject}/versions/{version}", summary="One version of a subject (a number or latest)",
            response_model=None)
def version(request: Request, subject: Subject, version: Annotated[str, Path(examples=["latest", "1"])]) -> dict[str, Any] | JSONResponse:
    registry = _registry(request)
    try:
        versions = registry.versions(subject)
    except UnknownSchema:
        return _not_found(40401, "Subject not found")
    if version == "latest":
        return _version_doc(versions[-1])
    if not (version.isascii() and version.isdigit()) or not 1 <= int(version) <= len(versions):
        return _not_found(40402, "Version not found")
    return _version_doc(versions[int(version) - 1])


@router.get("/schemas/ids/{schema_id}", summary="A schema by its id", response_model=None)
def by_id(request: Request, schema_id: int) -> dict[str, Any] | JSONResponse:
    try:
        v = _registry(request).by_confluent_id(schema_id)
    except UnknownSchema:
        return _not_found(40403, "Schema not found")
    return {"schema": json.dumps(v.schema, separators=(",", ":")), "schemaType": "AVRO"}
