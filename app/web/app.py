"""The web application: `create_app(settings)` -> FastAPI, served by `ioxhub serve` (uvicorn).

It reads the bucket with the read-only `web` storage identity (`IOXHUB_WEB_S3_ACCESS_KEY`, or the keys
`ioxhub provision` generated; the hub's own keys otherwise, with a warning) and checks every request's API
key or session itself (app/web/auth.py). Routers: api (/api/v1), sdmx (/sdmx/rest), schemas (/schemas),
auth (/login, /logout), the portal's pages (app/web/portal.py). docs/api.md.
"""
from __future__ import annotations

import dataclasses
import logging
import secrets
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.web import api, auth, portal, schemas, sdmx
from ioxhub.apikeys import KeyStore
from ioxhub.errors import IoxhubError
from ioxhub.s3 import make_client
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore, StorageError

log = logging.getLogger("ioxhub.web")
API_PREFIXES = ("/api/", "/sdmx/", "/schemas/", "/openapi.json", "/docs")


def web_store(settings: Settings) -> ObjectStore:
    """The bucket as the web application reads it: the read-only `web` identity when its keys are known."""
    access, secret = settings.web_s3_access_key, settings.web_s3_secret_key
    if not (access and secret):
        log.warning("web: no read-only S3 keys (IOXHUB_WEB_S3_ACCESS_KEY / ioxhub provision): reading with the hub's keys")
        access, secret = settings.s3_access_key, settings.s3_secret_key
    # The settings carry the same keys, so the Iceberg catalog (`ioxhub.tables`) reads as this identity too.
    settings = dataclasses.replace(settings, s3_access_key=access, s3_secret_key=secret)
    return ObjectStore(settings, client=make_client(settings, access_key=access, secret_key=secret, pool_size=64))


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(API_PREFIXES) and "text/html" in request.headers.get("accept", "")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="ioxhub", version="1",
                  description="The data exchange hub over HTTP: the catalog, datasets (rows in csv, json, parquet, "
                              "SDMX), SDMX REST, the event contracts. Authenticate with `Authorization: Bearer <key>` "
                              "or `X-API-Key: <key>` (keys: `ioxhub apikeys create`).")
    app.state.settings = settings
    app.state.store = web_store(settings)
    app.state.keys = KeyStore(app.state.store, settings.web_key_cache_seconds)
    app.state.session_secret = (settings.web_session_secret or secrets.token_hex(32)).encode()
    app.state.structures = sdmx.StructureCache()
    app.state.templates = portal.templates          # the sign-in page (auth.py) is one of the portal's

    app.include_router(api.router, prefix="/api/v1")
    app.include_router(sdmx.router, prefix="/sdmx/rest")
    app.include_router(schemas.router, prefix="/schemas")
    app.include_router(auth.router)
    app.include_router(portal.router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, auth.AuthRefused) or exc.status_code in (401, 403):
            if exc.status_code == 401 and _is_page(request):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?next=" + quote(target, safe="/"), status_code=303)
            body = auth.UNAUTHORIZED if exc.status_code == 401 else auth.FORBIDDEN
            return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
        message = exc.detail if isinstance(exc.detail, str) else "not found" if exc.status_code == 404 else "error"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(StorageError)
    async def storage_down(request: Request, exc: StorageError) -> Response:
        log.error("web: %s", exc)
        return JSONResponse({"error": "storage unavailable"}, status_code=503)

    @app.exception_handler(IoxhubError)
    async def hub_error(request: Request, exc: IoxhubError) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    return app


def settings_for_web(settings: Settings, host: str | None, port: int | None) -> Settings:
    """The settings with the command line's host/port in force."""
    return dataclasses.replace(settings, **{k: v for k, v in (("web_host", host), ("web_port", port)) if v is not None})
