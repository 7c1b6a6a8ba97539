"""The portal's pages (server-rendered HTML, Jinja2 templates in templates/, CSS in static/).

`router`: `/` the catalog (search and filters as GET parameters), `/datasets/{name}` a dataset (coverage
heatmap, snapshots and as-of, a series chart, preview, downloads through the API, provenance),
`/instruments/{id}` an instrument (compendium entry, history, adopters, impact with its event study and
pre-trend check), `/static/...`; `templates` also renders the sign-in form app.web.auth serves. Every page
needs a signed-in identity (`app.web.auth.require_identity`; app.web.app redirects a page without one to
/login). Data comes through consumers.metadata (as the API's), consumers.views and consumers.access only,
read with the server's read-only storage identity. Pages and choices: docs/portal.md.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from app.web import charts
from app.web.auth import require_identity
from consumers import metadata, views
from consumers.access import PullError, pull_table
from ioxhub.apikeys import Identity
from ioxhub.catalog import Catalog
from ioxhub.storage import ObjectStore

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["cell"] = views.cell
router = APIRouter(include_in_schema=False)
Auth = Annotated[Identity, Depends(require_identity)]

DOWNLOAD_FORMATS = (("csv", "CSV"), ("parquet", "Parquet"), ("json", "JSON"), ("sdmx-csv", "SDMX-CSV"),
                    ("sdmx-ml", "SDMX-ML"))
MAX_LINES = 6        # series drawn at once (the palette)
DEFAULT_LINES = 4    # countries picked when the analyst has picked none


def _store(request: Request) -> ObjectStore:
    """The bucket as the server reads it (the read-only `web` identity, app.web.app.web_store)."""
    return request.app.state.store


def _render(request: Request, name: str, context: dict, started: float, status: int = 200) -> HTMLResponse:
    context = {**context, "build_ms": round((time.perf_counter() - started) * 1000)}
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Server-Timing"] = f"build;dur={context['build_ms']}"
    return response


def _readable(identity: Identity, entries: list[dict]) -> list[dict]:
    return [e for e in entries if identity.can_read(metadata.dataset_zone(e), e.get("org"))]


# ------------------------------------------------------------------------------------------------ static
@router.get("/static/{name}")
def static(name: str):
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR.resolve() or not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, headers={"Cache-Control": "max-age=3600"})


# ------------------------------------------------------------------------------------------------ catalog
@router.get("/", response_class=HTMLResponse)
def catalog_page(request: Request, identity: Auth, q: str = "", org: str = "", indicator: str = "",
                 country: str = "", instrument: str = "", licence: str = ""):
    started = time.perf_counter()
    store = _store(request)
    filters = views.CatalogFilters(q.strip(), org, indicator, country, instrument, licence)
    instruments = views.instruments(store)
    related = {i["instrument_id"]: list(i["related_indicators"] or []) for i in instruments}
    view = views.catalog_view(_readable(identity, Catalog(store).datasets()), filters, related)
    return _render(request, "catalog.html", {"identity": identity, "filters": filters, "view": view,
                                             "instruments": instruments}, started)


# ------------------------------------------------------------------------------------------------ dataset
@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, identity: Auth, name: str, as_of: str = "", indicator: str = "",
                 ref_area: list[str] = Query(default=[]), instrument_id: str = "", scale: str = "",
                 commodity: str = "", counterpart_area: str = "", unit: str = ""):
    started = time.perf_counter()
    store = _store(request)
    entry = Catalog(store).dataset(name)
    if entry is None or not identity.can_read(metadata.dataset_zone(entry), entry.get("org")):
        return _render(request, "error.html", {"identity": identity, "title": "No such dataset",
                                               "message": f"There is no dataset {name!r} you may read."}, started, 404)
    names = metadata.column_names(entry)
    dims = [c for c in views.SERIES_DIMENSIONS if c in names]
    time_col, value_col, country_col = views.time_column(names), views.value_column(names), views.country_column(names)
    as_of = as_of.strip() or None
    try:
        overview = pull_table(name, columns=list(dict.fromkeys([*dims, *([country_col] if country_col else []),
                                                                 *([time_col] if time_col else [])])) or None,
                              as_of=as_of, store=store)
    except PullError as exc:
        return _render(request, "error.html", {"identity": identity, "title": "Cannot read this snapshot",
                                               "message": str(exc)}, started, 400)
    choices = views.dimension_values(overview.table, dims)

    # The analyst's picks (defaults: the first indicator, a few countries): they filter the chart, the
    # preview and the downloads alike.
    picked = {"indicator": indicator, "instrument_id": instrument_id, "scale": scale, "commodity": commodity,
              "counterpart_area": counterpart_area, "unit": unit}
    if "indicator" in choices and not indicator and choices["indicator"]:
        picked["indicator"] = choices["indicator"][0]
    if "instrument_id" in choices and not instrument_id and choices["instrument_id"]:
        picked["instrument_id"] = choices["instrument_id"][0]
    countries = [c for c in ref_area if c in choices.get("ref_area", [])][:MAX_LINES]
    if "ref_area" in choices and not countries:      # a few countries that have rows for the picks
        countries = views.values_where(overview.table, "ref_area",
                                       {c: v for c, v in picked.items() if c in dims})[:DEFAULT_LINES]
    where = [(c, v) for c, v in picked.items() if v and c in dims] + [("ref_area", c) for c in countries]
    rows = pull_table(name, where=where, as_of=as_of, store=store)

    chart, note = None, ""
    by = "ref_area" if "ref_area" in dims else next((d for d in dims if not picked.get(d)), None)
    if time_col and value_col and by and rows.table.num_rows:
        points = rows.table.select(list(dict.fromkeys([by, time_col]))).to_pandas()
        if len(points.drop_duplicates()) < len(points):
            note = ("Several rows share a point (dimensions left at 'all'): pick them to see one series each; "
                    "the chart joins every row's value.")
        unit_text = ", ".join(views.dimension_values(rows.table, ["unit"]).get("unit", [])[:2])
        title = " / ".join(v for k, v in picked.items() if v and k in dims) or name
        chart = charts.line_chart("series-chart", views.series(rows.table, by, time_col, value_col), title, time_col,
                                  f"{value_col} ({unit_text})" if unit_text else value_col)
    grid = views.coverage_grid(overview.table, country_col, time_col) if country_col and time_col else None
    heatmap = charts.heatmap("coverage-chart", grid.countries, grid.years, grid.counts,
                             f"Observations by country and year (snapshot {overview.snapshot})") if grid else None
    head, preview = views.preview(rows.table)
    query = [(k, v) for k, v in where]
    downloads = [(label, f"/api/v1/datasets/{name}/rows?" + urlencode(
        [("format", fmt)] + [("where", f"{c}={v}") for c, v in query] + ([("as_of", as_of)] if as_of else [])))
        for fmt, label in DOWNLOAD_FORMATS]
    return _render(request, "dataset.html", {
        "identity": identity, "entry": entry, "meta": metadata.describe(entry, store),
        "snapshot": overview.snapshot, "as_of": as_of or "", "dims": dims, "choices": choices, "picked": picked,
        "countries": countries, "chart": chart, "chart_note": note, "heatmap": heatmap, "grid": grid,
        "head": head, "preview": preview, "rows_total": rows.table.num_rows, "downloads": downloads,
        "filters_text": ", ".join(f"{c}={v}" for c, v in where),
    }, started)


# ------------------------------------------------------------------------------------------------ instrument
@router.get("/instruments/{instrument_id}", response_class=HTMLResponse)
def instrument_page(request: Request, identity: Auth, instrument_id: str):
    started = time.perf_counter()
    store = _store(request)
    view = views.instrument_view(instrument_id, store)
    if view is None:
        known = ", ".join(i["instrument_id"] for i in views.instruments(store)) or "none yet"
        return _render(request, "error.html", {"identity": identity, "title": "No such instrument",
                                               "message": f"No instrument {instrument_id!r} (known: {known})."},
                       started, 404)
    plots = {}
    for d in view.did:
        rows = view.event_study.get(d["indicator"], [])
        pct = d["scale"] == "log"
        plots[d["indicator"]] = charts.event_study_chart(
            f"event-{len(plots)}", rows, f"{d['indicator']}: effect by year relative to adoption",
            "effect (log points x 100)" if pct else f"effect ({d['unit']})", 100.0 if pct else 1.0)
    timeline = charts.adopters_timeline("adopters-chart", view.adoptions, "Adopting members over time")
    return _render(request, "instrument.html", {"identity": identity, "view": view, "entry": view.entry,
                                                "plots": plots, "timeline": timeline, "isnan": _isnan}, started)


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
