"""Sign-in for the portal (a minimal stand-in until the API's own auth lands; same names and cookie).

`require_identity(request) -> Identity` (FastAPI dependency: 401 without a valid key); `router` holds
`POST /login` (form field `key`: sets the HttpOnly cookie `ioxhub_session`) and `POST /logout`.
A key arrives as `Authorization: Bearer`, `X-API-Key` or the session cookie.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from ioxhub import apikeys
from ioxhub.settings import get_settings

COOKIE = "ioxhub_session"
ANALYST_ZONES = ("curated", "harmonized", "catalog")
router = APIRouter()


@dataclass(frozen=True)
class Identity:
    name: str
    kind: str                 # "analyst" | "org"
    org: str | None = None

    def can_read(self, zone: str, org: str | None = None) -> bool:
        if zone in ANALYST_ZONES:
            return True
        return self.kind == "org" and zone in ("raw", "quarantine") and org == self.org


def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key") or request.cookies.get(COOKIE)


def identify(key: str | None) -> Identity | None:
    record = apikeys.verify(key, get_settings()) if key else None
    return Identity(record["name"], record["kind"], record.get("org")) if record else None


def require_identity(request: Request) -> Identity:
    identity = identify(_key(request))
    if identity is None:
        raise HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    return identity


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login", include_in_schema=False)
def login(key: str = Form(""), next: str = Form("/")):
    if identify(key.strip()) is None:
        return RedirectResponse(f"/login?error=1&next={quote(_safe_next(next))}", status_code=303)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, key.strip(), httponly=True, samesite="lax")
    return response


@router.post("/logout", include_in_schema=False)
def logout():
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
