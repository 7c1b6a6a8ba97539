"""Who a request is from: an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`) or the portal's
session cookie `ioxhub_session` (a signed token naming the key id, set by `POST /login`, cleared by
`POST /logout`). `require_identity` is the dependency every protected route uses; `forbidden()` the 403.

Refusals carry no detail (401 for a missing, malformed, unknown, wrong or revoked key; 403 for a key that may
not read what it asked), and no key, secret or token is logged. Method: docs/api.md "Authentication".
"""
from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request, Security
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import APIKeyHeader, HTTPBearer

from ioxhub.apikeys import Identity, session_key_id, sign_session

SESSION_COOKIE = "ioxhub_session"
UNAUTHORIZED = {"error": "unauthorized"}
FORBIDDEN = {"error": "forbidden"}

router = APIRouter(tags=["auth"])
# Declared for the OpenAPI document (its security schemes); the key is read from the request below.
BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", description="Authorization: Bearer <API key>")
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey", description="X-API-Key: <API key>")


class AuthRefused(HTTPException):
    """A 401/403 whose body is fixed (no detail of why)."""


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key")


def identify(request: Request) -> Identity | None:
    """The identity of the request's key or session, or None."""
    state = request.app.state
    key = _presented_key(request)
    if key is not None:
        return state.keys.identify(key)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        key_id = session_key_id(state.session_secret, token)
        return state.keys.identity_of_id(key_id) if key_id else None
    return None


def require_identity(request: Request, _bearer=Security(BEARER), _api_key=Security(API_KEY_HEADER)) -> Identity:
    """The FastAPI dependency of every protected route: the caller's Identity, or a 401 (a key in either
    header, or the session cookie)."""
    identity = identify(request)
    if identity is None:
        raise AuthRefused(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    request.state.identity = identity
    return identity


def forbidden() -> AuthRefused:
    return AuthRefused(status_code=403)


def _safe_next(target: str | None) -> str:
    """Only a local path (never another host) is followed after sign-in."""
    return target if target and target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _login_page(request: Request, status: int, failed: bool, target: str) -> Response:
    """The portal's sign-in form (templates/login.html), with the refusal message after a wrong key."""
    return request.app.state.templates.TemplateResponse(request, "login.html", {"error": failed, "next": target},
                                                        status_code=status)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_page(request, 200, False, _safe_next(next))


@router.post("/login", include_in_schema=False)
def login(request: Request, key: str = Form(""), next: str = Form("/")) -> Response:
    state = request.app.state
    identity = state.keys.identify(key)
    if identity is None:
        return _login_page(request, 401, True, _safe_next(next))
    token = sign_session(state.session_secret, identity.key_id, int(state.settings.web_session_hours * 3600))
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(state.settings.web_session_hours * 3600),
                        httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout", include_in_schema=False)
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
