"""A subset of the SDMX REST API (v1.5, SDMX-ML 2.1) under /sdmx/rest, enough for SDMX clients (sdmx1's
`Client` with the hub added as a source) to find and read the hub's datasets:

    GET /sdmx/rest/dataflow[/{agency}[/{id}[/{version}]]]        dataflows with their DSDs and code lists
    GET /sdmx/rest/datastructure[/{agency}[/{id}[/{version}]]]   the same structures
    GET /sdmx/rest/data/{flow}[/{key}[/{provider}]]?startPeriod=&endPeriod=   observations

Structures are generated from each dataset's columns (consumers/sdmx_out.py), cached per dataset snapshot (id).
docs/api.md "SDMX".
"""
from __future__ import annotations

import threading
from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from app.web.api import ApiError
from app.web.auth import require_identity
from consumers import sdmx_out
from consumers.access import PullError, iter_pull, plan_pull
from consumers.metadata import dataset_zone
from ioxhub.apikeys import Identity
from ioxhub.catalog import Catalog

router = APIRouter(tags=["sdmx"])
Auth = Annotated[Identity, Depends(require_identity)]
Flow = Annotated[str, Path(examples=["INDICATOR_PANEL_ANNUAL"])]
STRUCTURE_MEDIA = "application/vnd.sdmx.structure+xml; version=2.1"
DATA_MEDIA = "application/vnd.sdmx.structurespecificdata+xml; version=2.1"
CSV_MEDIA = "application/vnd.sdmx.data+csv; version=2.0.0; charset=utf-8"


class StructureCache:
    """Generated structures by (dataset, snapshot id): reading a dataset's dimension columns is done once."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], sdmx_out.Structure] = {}
        self._lock = threading.Lock()

    def get(self, store, entry: dict) -> sdmx_out.Structure:
        key = (entry["name"], int(entry.get("snapshot_id") or 0))
        with self._lock:
            found = self._by_key.get(key)
        if found is not None:
            return found
        plan = plan_pull(entry["name"], (), None, None, store)
        if plan.schema is None or not sdmx_out.is_observational(plan.schema):
            raise sdmx_out.SdmxOutError(f"{entry['name']}: no SDMX form")
        dims = sdmx_out.dimension_columns(plan.schema)
        plan.columns = dims
        tables = list(iter_pull(plan, store))
        table = pa.concat_tables(tables) if tables else pa.schema([plan.schema.field(c) for c in dims]).empty_table()
        structure = sdmx_out.structure_of(entry["name"], table, entry.get("title"), schema=plan.schema)
        with self._lock:
            self._by_key = {k: v for k, v in self._by_key.items() if k[0] != key[0]}   # older snapshots out
            self._by_key[key] = structure
        return structure


def _readable(request: Request, identity: Identity) -> list[dict]:
    return [e for e in Catalog(request.app.state.store).datasets()
            if identity.can_read(dataset_zone(e), e.get("org")) and _may_be_observational(e)]


def _may_be_observational(entry: dict) -> bool:
    """From the catalog's column list alone: a `value` or floating-point column."""
    for text in entry.get("columns", []):
        name, _, kind = str(text).partition(":")
        if name == "value" or kind.startswith(("double", "float", "halffloat")):
            return True
    return False


def _structures(request: Request, identity: Identity, resource_id: str | None) -> list[sdmx_out.Structure]:
    store = request.app.state.store
    if resource_id and resource_id.lower() not in ("all", "latest"):
        by_name = {e["name"]: e for e in Catalog(store).datasets()}
        name = sdmx_out.dataset_of_flow(resource_id, list(by_name))
        entry = by_name.get(name) if name else None
        entries = [entry] if entry and identity.can_read(dataset_zone(entry), entry.get("org")) \
            and _may_be_observational(entry) else []
        if not entries:
            raise ApiError(404, f"no dataflow {resource_id!r}")
    else:
        entries = _readable(request, identity)
    out = []
    for entry in entries:
        try:
            out.append(request.app.state.structures.get(store, entry))
        except sdmx_out.SdmxOutError:
            continue
    return out


def _structure_response(request: Request, identity: Identity, agency: str | None, resource_id: str | None) -> Response:
    if agency not in (None, "all", sdmx_out.AGENCY):
        raise ApiError(404, f"no agency {agency!r} (this hub's structures are maintained by {sdmx_out.AGENCY})")
    structures = _structures(request, identity, resource_id)
    return Response(sdmx_out.to_sdmx_ml(sdmx_out.structure_message(structures)), media_type=STRUCTURE_MEDIA)


for resource in ("dataflow", "datastructure"):
    for suffix in ("", "/{agency}", "/{agency}/{resource_id}", "/{agency}/{resource_id}/{version}"):
        def structure(request: Request, identity: Auth, agency: str | None = None, resource_id: str | None = None,
                      version: str | None = None, references: str | None = None, detail: str | None = None) -> Response:
            return _structure_response(request, identity, agency, resource_id)
        router.add_api_route(f"/{resource}{suffix}", structure, methods=["GET"], response_class=Response,
                             summary=f"SDMX {resource}s (SDMX-ML 2.1 structure message)",
                             responses={200: {"content": {STRUCTURE_MEDIA: {}}}}, name=f"sdmx_{resource}{suffix.count('/')}")


def _data(request: Request, identity: Identity, flow: str, key: str, start: str | None, end: str | None,
          fmt: str | None) -> Response:
    settings = request.app.state.settings
    (structure,) = _structures(request, identity, flow) or [None]
    if structure is None:
        raise ApiError(404, f"no dataflow {flow!r}")
    try:
        filters = sdmx_out.key_filters(structure, key) + sdmx_out.period_filters(structure, start, end)
        plan = plan_pull(structure.name, filters, structure.columns, None, request.app.state.store)
    except (sdmx_out.SdmxOutError, PullError) as exc:
        raise ApiError(400, str(exc).replace("--where ", "")) from None
    tables = list(iter_pull(plan, request.app.state.store, 0, settings.web_sdmx_row_limit + 1))
    table = pa.concat_tables(tables) if tables else plan.schema.empty_table()
    if table.num_rows > settings.web_sdmx_row_limit:
        raise ApiError(413, f"more than {settings.web_sdmx_row_limit} observations: narrow the key or the periods")
    message = sdmx_out.data_message(structure, table)
    wants_csv = fmt == "csv" or (fmt is None and "csv" in request.headers.get("accept", ""))
    if wants_csv:
        return Response(sdmx_out.to_sdmx_csv(message), media_type=CSV_MEDIA)
    return Response(sdmx_out.to_sdmx_ml(message), media_type=DATA_MEDIA)


for suffix in ("", "/{key}", "/{key}/{provider}"):
    def data(request: Request, identity: Auth, flow: Flow, key: str = "", provider: str | None = None,
             startPeriod: str | None = None, endPeriod: str | None = None,
             format: Annotated[str | None, Query(pattern="^(csv|xml)$")] = None) -> Response:
        return _data(request, identity, flow, key, startPeriod, endPeriod, format)
    router.add_api_route(f"/data/{{flow}}{suffix}", data, methods=["GET"], response_class=Response,
                         summary="SDMX data (SDMX-ML 2.1 structure-specific, or SDMX-CSV with format=csv)",
                         responses={200: {"content": {DATA_MEDIA: {}, CSV_MEDIA: {}}}}, name=f"sdmx_data{suffix.count('/')}")

