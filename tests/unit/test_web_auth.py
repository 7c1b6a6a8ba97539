"""Sign-in and refusals of the web application (app/web/auth.py, app/web/app.py) without servers: the key
store is a dict (tests/unit/test_apikeys.py's), the app is driven in-process by FastAPI's TestClient."""
from __future__ import annotations

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

from app.web.app import create_app
from app.web.auth import require_identity
from ioxhub.apikeys import Identity, KeyStore, create_key
from ioxhub.settings import Settings
from test_apikeys import DictStore


@pytest.fixture
def client_and_key():
    app = create_app(Settings(s3_access_key="unused", s3_secret_key="unused", web_s3_access_key="unused",
                              web_s3_secret_key="unused"))
    store = DictStore()
    app.state.keys = KeyStore(store, cache_seconds=0)
    key, _ = create_key(store, "jane", "org", "WCO")
    return TestClient(app, follow_redirects=False), key


def test_whoami_by_header_by_bearer_and_refusals_without_detail(client_and_key):
    client, key = client_and_key
    assert client.get("/api/v1/whoami", headers={"X-API-Key": key}).json() == {"name": "jane", "kind": "org", "org": "WCO"}
    assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    for headers in ({}, {"X-API-Key": key + "x"}, {"Authorization": f"Basic {key}"}, {"Authorization": "Bearer "}):
        refused = client.get("/api/v1/whoami", headers=headers)
        assert refused.status_code == 401 and refused.json() == {"error": "unauthorized"}
        assert refused.headers["www-authenticate"] == "Bearer"
    analyst_store = client.app.state.keys.store
    analyst, _ = create_key(analyst_store, "ana", "analyst")
    forbidden = client.get("/api/v1/objects/raw/org=WCO/x.avro", headers={"X-API-Key": analyst})
    assert forbidden.status_code == 403 and forbidden.json() == {"error": "forbidden"}


def test_login_sets_a_signed_session_and_follows_local_paths_only(client_and_key):
    client, key = client_and_key
    for target, expected in (("/datasets/x", "/datasets/x"), ("https://evil.example/", "/"), ("//evil.example", "/"),
                             ("/\\evil.example", "/")):
        response = client.post("/login", data={"key": key, "next": target})
        assert response.status_code == 303 and response.headers["location"] == expected
    cookie = response.cookies["ioxhub_session"]
    assert key.split("_", 2)[2] not in cookie and key not in cookie
    assert client.get("/api/v1/whoami", cookies={"ioxhub_session": cookie}).status_code == 200
    wrong = client.post("/login", data={"key": "nope"})
    assert wrong.status_code == 401 and "ioxhub_session" not in wrong.cookies


def test_a_page_without_a_session_redirects_to_login_an_api_call_gets_401(client_and_key):
    client, key = client_and_key

    @client.app.get("/some-page")                       # a portal page stands on require_identity the same way
    def some_page(identity: Identity = Depends(require_identity)) -> dict:
        return {"name": identity.name}

    page = client.get("/some-page", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/some-page"
    assert client.get("/some-page", headers={"X-API-Key": key}).json() == {"name": "jane"}
    api = client.get("/api/v1/whoami", headers={"Accept": "text/html"})
    assert api.status_code == 401                                    # the API answers 401 whatever it accepts
    assert client.get("/login").status_code == 200 and 'name="key"' in client.get("/login").text
