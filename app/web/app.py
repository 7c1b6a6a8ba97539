"""The web application `ioxhub serve` runs (a minimal stand-in until the API lands: same entry point).

`create_app(settings)` -> FastAPI: the portal's pages (`app.web.portal.router`), sign-in
(`app.web.auth.router`), and `GET /api/v1/datasets/{name}/rows?format=&where=&columns=&as_of=` (the
portal's download buttons), which writes the pull with consumers.access as `ioxhub pull` does.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import Response

from app.web import auth, portal
from consumers.access import FORMATS, PullError, pull_table, write_pull
from consumers.views import zone
from ioxhub.catalog import Catalog
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore

MEDIA = {"csv": "text/csv", "json": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="ioxhub", version="1")
    app.state.settings = settings

    @app.get("/api/v1/datasets/{name}/rows")
    def rows(name: str, format: str = "csv", where: list[str] = Query(default=[]), columns: str = "",
             as_of: str | None = None, identity: auth.Identity = Depends(auth.require_identity)):
        if format not in FORMATS:
            raise HTTPException(400, f"format: one of {', '.join(FORMATS)}")
        store = ObjectStore(settings)
        entry = Catalog(store).dataset(name)
        if entry is not None and not identity.can_read(zone(entry), entry.get("org")):
            raise HTTPException(403, "forbidden")
        try:
            result = pull_table(name, where, [c for c in columns.split(",") if c] or None, as_of, store=store)
            with tempfile.TemporaryDirectory() as tmp:
                out = write_pull(result, format, Path(tmp) / f"rows.{format}")
                body = out.read_bytes()
        except PullError as exc:
            raise HTTPException(400, str(exc)) from None
        return Response(body, media_type=MEDIA[format],
                        headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'})

    app.include_router(auth.router)
    app.include_router(portal.router)
    return app
