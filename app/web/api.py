"""The REST API under /api/v1: the catalog, a dataset's metadata, its rows (filtered, projected, as of a
snapshot, paged, streamed in csv | json | jsonl | parquet | sdmx-csv | sdmx-ml), and the objects of the zones
an identity may read. Rows come from `consumers.access` (the code `ioxhub pull` runs); responses small enough
are kept per snapshot in `consumers.response_cache` (ETag, 304, gzip on reuse). docs/api.md.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import itertools
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Iterator, Literal, NamedTuple

import pyarrow as pa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from app.web.auth import forbidden, require_identity
from consumers import sdmx_out
from consumers.access import PullError, PullPlan, iter_pull, parse_where, plan_pull, snapshot_of
from consumers.metadata import dataset_metadata, dataset_summary, dataset_zone
from consumers.response_cache import ResponseCache
from consumers.stream import MEDIA_TYPES, stream_pull
from ioxhub.apikeys import Identity, object_org
from ioxhub.catalog import Catalog
from ioxhub.storage import StorageError

router = APIRouter(tags=["datasets"])
# Examples in the OpenAPI document (the demo's datasets), for people and for schemathesis' examples phase.
Name = Annotated[str, Path(description="Dataset name (GET /api/v1/datasets)", examples=["indicator_panel_annual"])]
Zone = Annotated[str, Path(description="raw, quarantine, harmonized or curated", examples=["curated"])]
Auth = Annotated[Identity, Depends(require_identity)]
FORMATS = ("json", "jsonl", "csv", "parquet", "sdmx-csv", "sdmx-ml")
OBJECT_ZONES = ("raw", "quarantine", "harmonized", "curated")   # catalog/ (API key records) is not served
IMMUTABLE_AGE = 365 * 24 * 3600   # a response of a snapshot named by number, id or cursor never changes
GZIP_TAG = '-gzip"'                # the ETag of a body's gzip representation ends so
LATEST_AGE = 60                   # the latest snapshot: a browser asks again (If-None-Match) after a minute
SDMX_MEDIA = {"sdmx-csv": "application/vnd.sdmx.data+csv; version=2.0.0; charset=utf-8",
              "sdmx-ml": "application/vnd.sdmx.structurespecificdata+xml; version=2.1"}


class ApiError(HTTPException):
    """A request the API cannot serve as asked (400/404); the body names what is wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(status_code=status, detail=message)


def _catalog_entry(request: Request, name: str) -> dict[str, Any] | None:
    """The dataset's catalog entry, re-read when older than IOXHUB_WEB_CATALOG_CACHE_SECONDS."""
    state = request.app.state
    seconds = state.settings.web_catalog_cache_seconds
    if not seconds:
        return Catalog(state.store).dataset(name)
    with _CACHE_LOCK:
        entries = state.__dict__.setdefault("catalog_entries", {})    # name -> (read at, entry)
        found = entries.get(name)
    now = time.monotonic()
    if found is not None and now - found[0] < seconds:
        return found[1]
    entry = Catalog(state.store).dataset(name)
    with _CACHE_LOCK:
        if len(entries) > 10_000:           # unknown names sent in bulk must not grow it without end
            entries.clear()
        entries[name] = (now, entry)
    return entry


def _entry_for(request: Request, identity: Identity, name: str) -> dict[str, Any]:
    entry = _catalog_entry(request, name)
    if entry is None:
        raise ApiError(404, f"no dataset {name!r} in the catalog")
    if not identity.can_read(dataset_zone(entry), entry.get("org")):
        raise forbidden()
    return entry


@router.get("/datasets", summary="The datasets of the catalog the caller may read")
def datasets(request: Request, identity: Auth) -> list[dict[str, Any]]:
    entries = Catalog(request.app.state.store).datasets()
    return [dataset_summary(e) for e in entries if identity.can_read(dataset_zone(e), e.get("org"))]


@router.get("/datasets/{name}", summary="A dataset's description: columns, snapshots, provenance")
def dataset(request: Request, identity: Auth, name: Name) -> dict[str, Any]:
    _entry_for(request, identity, name)
    found = dataset_metadata(name, request.app.state.store)
    if found is None:
        raise ApiError(404, f"no dataset {name!r} in the catalog")
    return found


def encode_cursor(snapshot_id: int, offset: int) -> str:
    """A page's cursor: the snapshot id it pins (an id, unlike a number, names one snapshot for good) and
    the offset of the next row."""
    return base64.urlsafe_b64encode(json.dumps({"s": snapshot_id, "o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        snapshot, offset = doc["s"], doc["o"]
        if not (isinstance(snapshot, int) and isinstance(offset, int) and snapshot >= 1 and offset >= 0):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, f"cursor {cursor[:40]!r}: not a cursor this API gave") from None
    return snapshot, offset


def _plan(request: Request, entry: dict, where: list[str], columns: str | None, as_of: str | None) -> PullPlan:
    try:
        return plan_pull(entry["name"], where, [c for c in columns.split(",") if c] if columns else None, as_of,
                         request.app.state.store, entry=entry)
    except PullError as exc:
        raise ApiError(400, _api_words(exc)) from None


def _api_words(exc: PullError) -> str:
    return str(exc).replace("--where ", "where ").replace("--as-of ", "as_of ")


@dataclass
class Body:
    """A response computed whole (small enough to keep in the response cache). Its gzip encoding is made
    once, when the body is first served again from the cache (so a miss pays no compression)."""
    content: bytes
    media_type: str
    headers: dict[str, str]
    _gzipped: bytes | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def gzip(self) -> bytes:
        with self._lock:
            if self._gzipped is None:
                self._gzipped = gzip.compress(self.content, compresslevel=1, mtime=0)
            return self._gzipped


class Streamed(NamedTuple):
    """A response too large to keep: its first chunks, already encoded, then the rest as it is read."""
    chunks: Iterator[bytes]
    media_type: str
    headers: dict[str, str]


_CACHE_LOCK = threading.Lock()
# Responses encoded at once: more threads than cores only share the cores (and the GIL) finer, so each
# request takes longer without more throughput (docs/api.md "Load"); the others wait their turn.
COMPUTING = threading.BoundedSemaphore(2 * (os.cpu_count() or 1))


def response_cache(request: Request) -> ResponseCache:
    """The server's response cache (one per application, `IOXHUB_WEB_CACHE_MB`)."""
    state = request.app.state
    with _CACHE_LOCK:
        if getattr(state, "response_cache", None) is None:
            most = int(state.settings.web_cache_mb * 1_000_000)
            state.response_cache = ResponseCache(most, most // 8)
        return state.response_cache


def _whole_or_streamed(chunks: Iterator[bytes], bound: int, media_type: str, headers: dict) -> Body | Streamed:
    """Encode up to `bound` bytes (in this worker thread, off the event loop); all of it: a Body to keep."""
    head, size = [], 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > bound:
            return Streamed(itertools.chain(head, chunks), media_type, headers)
    return Body(b"".join(head), media_type, headers)


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        if coding == "gzip":
            q = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def _cache_key(entry: dict, snapshot_id: int, where: list[str], columns: str | None, fmt: str, limit: int,
               offset: int) -> tuple:
    """Everything a rows response depends on: a snapshot (by id) never changes, so neither does its response."""
    try:
        filters = tuple(sorted(parse_where(where)))
    except PullError as exc:
        raise ApiError(400, _api_words(exc)) from None
    return ("rows", entry["name"], snapshot_id, filters, columns, fmt, limit, offset)


def _etag(key: tuple) -> str:
    return '"' + hashlib.sha256(repr(key).encode()).hexdigest()[:32] + '"'


@router.get("/datasets/{name}/rows", summary="A dataset's rows: filtered, projected, as of a snapshot, paged, streamed",
            response_class=Response,
            responses={200: {"content": {"application/json": {}, "text/csv": {}, "application/x-ndjson": {},
                                         "application/vnd.apache.parquet": {}, SDMX_MEDIA["sdmx-csv"]: {},
                                         SDMX_MEDIA["sdmx-ml"]: {}}},
                       304: {"description": "Not modified (If-None-Match named this response's ETag)"}})
def rows(request: Request, identity: Auth, name: Name,
         where: Annotated[list[str], Query(description="COL=V, COL!=V, COL>=V, COL>V, COL<=V, COL<V or COL=in:V1,V2; "
                                                       "repeat the parameter to combine (same column: OR for =/in, else AND)",
                                           examples=[["ref_area=FRA", "year>=2015"]])] = [],
         columns: Annotated[str | None, Query(description="Comma-separated column names (default: all)")] = None,
         as_of: Annotated[str | None, Query(description="Snapshot number, snapshot id or ISO date/time (default: latest)")] = None,
         limit: Annotated[int | None, Query(ge=1, description="Most rows to return (at most the server's row limit)")] = None,
         offset: Annotated[int, Query(ge=0, description="Rows to skip")] = 0,
         cursor: Annotated[str | None, Query(description="The next_cursor of a previous page (pins its snapshot id)")] = None,
         format: Annotated[Literal["json", "jsonl", "csv", "parquet", "sdmx-csv", "sdmx-ml"], Query()] = "json") -> Response:
    started = time.perf_counter()
    settings = request.app.state.settings
    entry = _entry_for(request, identity, name)          # authorized first: the cache is looked up after
    pinned = cursor is not None or (as_of is not None and as_of.isascii() and as_of.isdigit())
    if cursor is not None:
        snapshot_id, offset = decode_cursor(cursor)
        as_of = str(snapshot_id)
    sdmx = format.startswith("sdmx")
    most = settings.web_sdmx_row_limit if sdmx else settings.web_row_limit
    if limit is not None and limit > most:
        raise ApiError(400, f"limit {limit}: above the server's row limit for {format} ({most}); page with cursor")
    limit = limit or most
    store = request.app.state.store
    if cursor is None and as_of is None:
        snapshot_id = entry["snapshot_id"]          # the current one (as of the catalog entry's reading)
    elif cursor is None:
        try:
            snapshot_id = snapshot_of(entry, as_of, store).snapshot_id
        except PullError as exc:
            raise ApiError(400, _api_words(exc)) from None
    key = _cache_key(entry, snapshot_id, where, columns, format, limit, offset)
    validators = {"ETag": _etag(key), "Cache-Control": f"private, max-age={IMMUTABLE_AGE if pinned else LATEST_AGE}"}
    presented = {tag.strip().removeprefix("W/").replace(GZIP_TAG, '"')         # either representation
                 for tag in request.headers.get("if-none-match", "").split(",")}
    if validators["ETag"] in presented:
        return Response(status_code=304, headers=validators)
    cache = response_cache(request)

    def compute() -> Body | Streamed:
        with COMPUTING:
            return _compute()

    def _compute() -> Body | Streamed:
        plan = _plan(request, entry, where, columns, str(snapshot_id))   # the snapshot of the key, even if a newer came
        headers = {"X-Snapshot": str(plan.snapshot), "X-Snapshot-Id": str(plan.snapshot_id), "X-Row-Limit": str(most)}
        if sdmx:
            return _sdmx_rows(entry, plan, store, format, offset, limit, headers)
        if format != "json":
            headers["X-Next-Cursor"] = encode_cursor(plan.snapshot_id, offset + limit)   # an empty or short page ends
        if format in ("parquet", "csv"):
            headers["Content-Disposition"] = f'attachment; filename="{name}.{format}"'

        def next_cursor(count: int) -> str | None:
            return encode_cursor(plan.snapshot_id, offset + count) if count >= limit else None
        return _whole_or_streamed(stream_pull(plan, store, format, offset, limit, next_cursor), cache.item_max_bytes,
                                  MEDIA_TYPES[format], headers)

    found, hit = cache.get_or_compute(key, compute, lambda r: len(r.content) if isinstance(r, Body) else None)
    headers = {**found.headers, **validators, "X-Cache": "hit" if hit else "miss",
               # the time in the handler (a streamed response: up to its first bytes), for load analysis
               "Server-Timing": f"app;dur={(time.perf_counter() - started) * 1000:.1f}"}
    if isinstance(found, Body):
        if hit and format != "parquet" and _accepts_gzip(request):
            return Response(found.gzip(), media_type=found.media_type,
                            headers={**headers, "ETag": validators["ETag"][:-1] + GZIP_TAG,
                                     "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Response(found.content, media_type=found.media_type, headers={**headers, "Vary": "Accept-Encoding"})
    return StreamingResponse(found.chunks, media_type=found.media_type, headers=headers)


def _sdmx_rows(entry: dict, plan: PullPlan, store, fmt: str, offset: int, limit: int, headers: dict) -> Body:
    tables = list(iter_pull(plan, store, offset, limit))
    table = pa.concat_tables(tables) if tables else (plan.schema.empty_table() if plan.schema is not None else pa.table({}))
    try:
        structure = sdmx_out.structure_of(plan.dataset, table, entry.get("title"))
    except sdmx_out.SdmxOutError as exc:
        raise ApiError(400, str(exc)) from None
    message = sdmx_out.data_message(structure, table)
    body = sdmx_out.to_sdmx_csv(message).encode() if fmt == "sdmx-csv" else sdmx_out.to_sdmx_ml(message)
    return Body(body, SDMX_MEDIA[fmt], headers)


# --- objects of the zones ----------------------------------------------------------------------------------

def _check_zone(identity: Identity, zone: str) -> None:
    if zone not in OBJECT_ZONES:
        raise ApiError(404, f"no zone {zone!r} here (zones: {', '.join(OBJECT_ZONES)})")
    if not (identity.can_read(zone) or identity.can_read(zone, identity.org)):
        raise forbidden()


@router.get("/objects/{zone}", summary="The objects of a zone the caller may read (an org key: its own in raw/ and quarantine/)")
def objects(request: Request, identity: Auth, zone: Zone,
            prefix: Annotated[str, Query(description="Key prefix inside the zone")] = "",
            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
    _check_zone(identity, zone)
    store = request.app.state.store
    out, truncated = [], False
    for entry in store.entries(f"{zone}/{prefix}"):
        if not identity.can_read(zone, object_org(entry.key)):
            continue
        if len(out) == limit:
            truncated = True
            break
        out.append({"key": entry.key, "size": entry.size,
                    "modified": entry.modified.isoformat() if entry.modified else None})
    return {"zone": zone, "objects": out, "truncated": truncated}


@router.get("/objects/{zone}/{key:path}", summary="One object's bytes (streamed)", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def object_bytes(request: Request, identity: Auth, zone: Zone,
                 key: Annotated[str, Path(examples=["tables/curated/indicator_panel_annual/metadata/"])]) -> Response:
    _check_zone(identity, zone)
    full = f"{zone}/{key}"
    if ".." in key.split("/") or not identity.can_read(zone, object_org(full)):
        raise forbidden()
    store = request.app.state.store
    try:
        size = store.size(full)
    except StorageError:          # a key the S3 server refuses as a name
        size = None
    if size is None:
        raise ApiError(404, f"no object {full!r}")

    def chunks():
        with store.open(full) as handle:
            while chunk := handle.read(1 << 20):
                yield chunk
    return StreamingResponse(chunks(), media_type="application/octet-stream",
                             headers={"Content-Disposition": f'attachment; filename="{full.rsplit("/", 1)[-1]}"'})


@router.get("/whoami", summary="The caller's identity (name, kind, org)")
def whoami(identity: Auth) -> dict[str, Any]:
    return {"name": identity.name, "kind": identity.kind, "org": identity.org}

