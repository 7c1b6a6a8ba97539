"""The web application on a real uvicorn (`ioxhub serve`) against the real SeaweedFS, with the sample feeds
published, ingested and derived:

- rows over HTTP are what `ioxhub pull` gives (csv byte for byte, jsonl, parquet), with ranges, in-lists,
  projection, paging by cursor (one snapshot throughout) and the row limit;
- dataset metadata: columns, snapshots, provenance (releases and org of a harmonized dataset, the inputs of
  a curated one);
- access control: analyst / org / other org / missing / wrong / revoked key x zones, bodies without detail;
  the portal's sign-in cookie; no key in the server's log;
- SDMX: sdmx1's own Client reads dataflows, structures and data (string and dict keys, periods);
- schemas in Confluent Schema Registry shapes;
- schemathesis against /openapi.json with a valid key: no 5xx.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sdmx

from consumers.access import pull_table
from consumers.sdmx_out import flow_id, sdmx_id
from consumers.evidence import derive_evidence
from sample_hub import ORGS, feed_samples
from ioxhub.apikeys import create_key, object_org, revoke_key
from ioxhub.catalog import Catalog
from ioxhub.contracts.registry import get_registry
from ioxhub.stack import process
from ioxhub.storage import ObjectStore

pytestmark = pytest.mark.integration
PANEL = "indicator_panel_annual"
IOXHUB = [os.path.join(os.path.dirname(sys.executable), "ioxhub")]


@pytest.fixture(scope="module")
def data(provisioned_settings, tmp_path_factory):
    """The sample feeds through the hub (no Airflow: the same functions its DAGs call)."""
    return feed_samples(provisioned_settings, tmp_path_factory.mktemp("samples"), derivations=1)


@pytest.fixture(scope="module")
def quarantined_org(data) -> str:
    """An org with refused rows in quarantine/ (the sample feeds have bad rows)."""
    key = next(ObjectStore(data).list("quarantine/observations/"))
    return key.split("org=", 1)[1].split("/", 1)[0]


@pytest.fixture(scope="module")
def keys(data, quarantined_org):
    store = ObjectStore(data)
    other = next(o for o in ORGS if o != quarantined_org)
    return {"analyst": create_key(store, "test-analyst", "analyst")[0],
            "org": create_key(store, "test-org", "org", quarantined_org)[0],
            "other": create_key(store, "test-other-org", "org", other)[0]}


@pytest.fixture(scope="module")
def server(data, keys, tmp_path_factory):
    """`ioxhub serve` on a free port (read-only web identity from the provisioned secrets)."""
    port = process.free_ports(1)[0]
    log = tmp_path_factory.mktemp("web") / "serve.log"
    env = {**os.environ, "IOXHUB_WEB_KEY_CACHE_SECONDS": "0.5", "IOXHUB_WEB_ROW_LIMIT": "5000",
           "IOXHUB_WEB_SDMX_ROW_LIMIT": "1000"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([*IOXHUB, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/schemas/subjects", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield base, log
    proc.terminate()
    proc.wait(timeout=20)


def get(server, path, key=None, **kw):
    headers = kw.pop("headers", {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.get(server[0] + path, headers=headers, timeout=120, **kw)


def cli(*args) -> str:
    done = subprocess.run([*IOXHUB, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- rows ----------------------------------------------------------------------------------------------

def test_rows_are_what_ioxhub_pull_gives(server, keys):
    key = keys["analyst"]
    params = {"where": "ref_area=FRA", "format": "csv"}
    response = get(server, f"/api/v1/datasets/{PANEL}/rows", key, params=params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.text == cli("pull", PANEL, "--where", "ref_area=FRA", "--format", "csv")
    jsonl = get(server, f"/api/v1/datasets/{PANEL}/rows", key, params={**params, "format": "jsonl"}).text
    assert jsonl == cli("pull", PANEL, "--where", "ref_area=FRA", "--format", "json")
    expected = pull_table(PANEL, ["ref_area=FRA"]).table
    parquet = pq.read_table(io.BytesIO(get(server, f"/api/v1/datasets/{PANEL}/rows", key,
                                           params={**params, "format": "parquet"}).content))
    assert parquet.equals(expected) and expected.num_rows > 0
    doc = get(server, f"/api/v1/datasets/{PANEL}/rows", key, params={"where": "ref_area=FRA"}).json()
    assert doc["count"] == expected.num_rows == len(doc["rows"]) and doc["next_cursor"] is None
    assert doc["snapshot"] == Catalog(ObjectStore()).dataset(PANEL)["snapshot"]


def test_responses_are_cached_after_authorization_with_etags(server, keys):
    path = f"/api/v1/datasets/{PANEL}/rows"
    params = [("where", "year>=2010"), ("where", "ref_area=in:DEU,ITA"), ("columns", "ref_area,year,value"),
              ("format", "csv")]
    first = get(server, path, keys["analyst"], params=params)
    again = get(server, path, keys["org"], params=params[::-1])       # another key, the filters in another order
    assert first.status_code == again.status_code == 200 and first.headers["x-cache"] == "miss"
    assert again.headers["x-cache"] == "hit" and again.content == first.content and first.content.count(b"\n") > 1
    assert again.headers["content-encoding"] == "gzip" and "content-encoding" not in first.headers   # hits: gzip
    plain = get(server, path, keys["analyst"], params=params, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == first.content
    etag = first.headers["etag"]
    assert again.headers["etag"] == etag[:-1] + '-gzip"' and first.headers["cache-control"] == "private, max-age=60"
    assert first.text == cli("pull", PANEL, "--where", "year>=2010", "--where", "ref_area=in:DEU,ITA",
                             "--columns", "ref_area,year,value", "--format", "csv")
    for tag in (etag, again.headers["etag"], f'"other", W/{etag}'):
        not_modified = get(server, path, keys["analyst"], params=params, headers={"If-None-Match": tag})
        assert not_modified.status_code == 304 and not_modified.content == b"" and not_modified.headers["etag"] == etag
    pinned = get(server, path, keys["analyst"], params=params + [("as_of", first.headers["x-snapshot"])])
    assert pinned.content == first.content and pinned.headers["cache-control"] == "private, max-age=31536000"
    other = get(server, path, keys["analyst"], params=params[:-1] + [("format", "jsonl")])
    assert other.headers["x-cache"] == "miss" and other.headers["etag"] != etag
    assert get(server, path, keys["analyst"], params=params, headers={"If-None-Match": '"other"'}).status_code == 200

    # the cache is looked up only after the caller is authorized: no key, a wrong or a revoked key get 401 only
    store = ObjectStore()
    temp, record = create_key(store, f"temp-{uuid.uuid4().hex[:6]}", "analyst")
    assert get(server, path, temp, params=params).headers["x-cache"] == "hit"
    revoke_key(store, record["id"])
    time.sleep(1.0)
    for key, headers in ((None, {}), (keys["analyst"] + "x", {}), (temp, {}), (temp, {"If-None-Match": etag})):
        refused = get(server, path, key, params=params, headers=headers)
        assert refused.status_code == 401 and refused.json() == {"error": "unauthorized"}
        assert "etag" not in refused.headers and "x-cache" not in refused.headers


def test_ranges_in_lists_and_columns(server, keys):
    full = pull_table(PANEL).table.to_pandas()
    got = get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"],
              params=[("where", "ref_area=in:FRA,DEU"), ("where", "year>=2015"), ("where", "year<2020"),
                      ("columns", "ref_area,year,value"), ("format", "csv")])
    frame = pd.read_csv(io.StringIO(got.text))
    want = full[full.ref_area.isin(["FRA", "DEU"]) & (full.year >= 2015) & (full.year < 2020)][["ref_area", "year", "value"]]
    assert list(frame.columns) == ["ref_area", "year", "value"] and len(frame) == len(want) > 0
    assert sorted(frame.itertuples(index=False)) == sorted(want.itertuples(index=False))
    bad = get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"], params={"where": "year>=soon"})
    assert bad.status_code == 400 and "year" in bad.json()["error"]
    assert get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"], params={"columns": "nope"}).status_code == 400
    assert get(server, "/api/v1/datasets/no_such/rows", keys["analyst"]).status_code == 404


def test_paging_by_cursor_covers_every_row_once_and_the_row_limit_holds(server, keys):
    expected = pull_table(PANEL, ["ref_area=in:FRA,DEU,USA"]).table.to_pylist()
    rows, cursor, pages = [], None, 0
    while True:
        params = {"where": "ref_area=in:FRA,DEU,USA", "limit": 37, **({"cursor": cursor} if cursor else {})}
        doc = get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"], params=params).json()
        rows += doc["rows"]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert pages > 1 and len(rows) == len(expected)
    assert [(r["ref_area"], r["indicator"], r["year"]) for r in rows] == \
        [(r["ref_area"], r["indicator"], r["year"]) for r in expected]
    over = get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"], params={"limit": 5001})
    assert over.status_code == 400 and "row limit" in over.json()["error"]
    capped = get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"]).json()
    assert capped["count"] == min(5000, Catalog(ObjectStore()).dataset(PANEL)["rows"])
    assert get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"], params={"cursor": "garbage!"}).status_code == 400


def test_metadata_and_provenance(server, keys):
    listing = get(server, "/api/v1/datasets", keys["analyst"]).json()
    names = {d["name"] for d in listing}
    assert PANEL in names and all(d["zone"] in ("curated", "harmonized") for d in listing)
    harmonized = next(d for d in listing if d["kind"] == "harmonized" and d.get("org"))
    meta = get(server, f"/api/v1/datasets/{harmonized['name']}", keys["analyst"]).json()
    assert meta["provenance"]["releases"] and {r["org"] for r in meta["provenance"]["releases"]} == {harmonized["org"]}
    assert all(r["applied_at"] for r in meta["provenance"]["releases"])
    year = next(c for c in meta["columns"] if c["name"] == "year")
    assert (year["type"], year["partition"]) == ("int", True) and year["doc"]           # documented, as on the portal
    panel = get(server, f"/api/v1/datasets/{PANEL}", keys["analyst"]).json()
    assert [c["name"] for c in panel["columns"]][:3] == ["indicator", "ref_area", "freq"]
    assert panel["snapshots"][-1]["snapshot"] == panel["snapshot"] and panel["provenance"]["inputs"]
    assert {i["dataset"] for i in panel["provenance"]["inputs"]} <= names


# --- access control ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def zone_objects(data, quarantined_org):
    store, org = ObjectStore(data), quarantined_org
    return {z: next(k for k in store.list(p) if k.endswith((".avro", ".parquet", ".json")))
            for z, p in (("raw", f"raw/org={org}/"), ("quarantine", f"quarantine/observations/org={org}/"),
                         ("harmonized", f"harmonized/tables/harmonized/{org.lower()}__"),        # its tables' files
                         ("curated", f"curated/tables/curated/{PANEL}/data/"))}


@pytest.mark.parametrize("who, expected", [
    ("analyst", {"raw": 403, "quarantine": 403, "harmonized": 200, "curated": 200}),
    ("org", {"raw": 200, "quarantine": 200, "harmonized": 200, "curated": 200}),
    ("other", {"raw": 403, "quarantine": 403, "harmonized": 200, "curated": 200}),
    ("missing", {"raw": 401, "quarantine": 401, "harmonized": 401, "curated": 401}),
    ("wrong", {"raw": 401, "quarantine": 401, "harmonized": 401, "curated": 401}),
])
def test_access_matrix(server, keys, zone_objects, quarantined_org, who, expected):
    key = {"missing": None, "wrong": keys["org"][:-4] + "AAAA"}.get(who, keys.get(who))
    got = {}
    for zone, object_key in zone_objects.items():
        response = get(server, f"/api/v1/objects/{object_key}", key)
        got[zone] = response.status_code
        if response.status_code in (401, 403):    # no detail of why
            assert response.json() == {"error": "unauthorized" if response.status_code == 401 else "forbidden"}
        listing = get(server, f"/api/v1/objects/{zone}", key)
        if response.status_code == 200:
            assert listing.status_code == 200
            if zone in ("raw", "quarantine"):     # an org key lists its own org's objects only
                assert listing.json()["objects"] and all(object_org(o["key"]) == quarantined_org
                                                         for o in listing.json()["objects"])
    assert got == expected
    if who == "org":
        body = get(server, f"/api/v1/objects/{zone_objects['raw']}", key).content
        assert body == ObjectStore().get_bytes(zone_objects["raw"])
    assert get(server, "/api/v1/objects/catalog/apikeys/x.json", keys["analyst"]).status_code == 404


def test_revoked_key_is_refused_within_the_cache_time_and_session_cookie(server, keys):
    store = ObjectStore()
    key, record = create_key(store, f"temp-{uuid.uuid4().hex[:6]}", "analyst")
    assert get(server, "/api/v1/whoami", key).json() == {"name": record["name"], "kind": "analyst", "org": None}
    login = httpx.post(server[0] + "/login", data={"key": key, "next": "/api/v1/whoami"}, follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/api/v1/whoami"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith("ioxhub_session=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert key.split("_", 2)[2] not in cookie
    session = login.cookies["ioxhub_session"]
    assert httpx.get(server[0] + "/api/v1/whoami", cookies={"ioxhub_session": session}).status_code == 200
    forged = session[:-1] + ("0" if session[-1] != "0" else "1")
    assert httpx.get(server[0] + "/api/v1/whoami", cookies={"ioxhub_session": forged}).status_code == 401
    assert httpx.post(server[0] + "/login", data={"key": key + "x"}).status_code == 401
    logout = httpx.post(server[0] + "/logout", cookies={"ioxhub_session": session}, follow_redirects=False)
    assert logout.status_code == 303 and 'ioxhub_session=""' in logout.headers["set-cookie"]
    revoke_key(store, record["id"])
    time.sleep(1.0)
    assert get(server, "/api/v1/whoami", key).status_code == 401
    assert httpx.get(server[0] + "/api/v1/whoami", cookies={"ioxhub_session": session}).status_code == 401


def test_apikeys_command_json_and_no_secret_in_the_server_log(server, keys):
    created = json.loads(cli("apikeys", "create", "--name", "cli-made", "--org", "ICC", "--json"))
    assert set(created) == {"id", "name", "kind", "org", "created_at", "revoked_at", "key"} and created["org"] == "ICC"
    assert get(server, "/api/v1/whoami", created["key"]).json()["org"] == "ICC"
    listed = json.loads(cli("apikeys", "list", "--json"))
    assert {r["id"] for r in listed} >= {created["id"]} and all("key" not in r and "hash" not in r for r in listed)
    assert json.loads(cli("apikeys", "revoke", created["id"], "--json"))[0]["revoked_at"]
    log = server[1].read_text()
    assert "no read-only S3 keys" not in log       # it reads with the provisioned `web` role
    for key in [*keys.values(), created["key"]]:
        assert key.split("_", 2)[2] not in log


# --- SDMX ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sdmx_client(server, keys):
    # the source id is the agency sdmx1 asks for structures of: the hub's agency id
    sdmx.add_source({"id": "IOXHUB", "url": server[0] + "/sdmx/rest", "name": "ioxhub"}, override=True)
    client = sdmx.Client("IOXHUB")
    client.session.headers["X-API-Key"] = keys["analyst"]
    return client


def test_sdmx_client_reads_flows_structures_and_data(sdmx_client):
    flows = sdmx_client.dataflow()
    assert "INDICATOR_PANEL_ANNUAL" in flows.dataflow
    structure = sdmx_client.datastructure("INDICATOR_PANEL_ANNUAL").structure["INDICATOR_PANEL_ANNUAL"]
    dims = [d.id for d in structure.dimensions]
    assert dims == ["FREQ", "INDICATOR", "REF_AREA", "TIME_PERIOD"]
    panel = pull_table(PANEL, ["ref_area=FRA", "year>=2015", "year<=2018"]).table.to_pandas()
    indicator = panel.indicator.iloc[0]
    one = panel[panel.indicator == indicator]
    code = sdmx_id(indicator)              # a code id has no "." (ICAO.X -> ICAO_X); its name is the value
    assert structure.dimensions.get("INDICATOR").local_representation.enumerated[code].name.localized_default() == indicator
    msg = sdmx_client.data("INDICATOR_PANEL_ANNUAL", key=f"A.{code}.FRA",
                           params={"startPeriod": "2015", "endPeriod": "2018"})
    series = sdmx.to_pandas(msg)
    assert len(series) == len(one) > 0
    got = {p: v for (_, _, _, p), v in series.items()}
    assert got == pytest.approx({str(p): v for p, v in zip(one.period, one.value)}, nan_ok=True)
    by_dict = sdmx.to_pandas(sdmx_client.data("INDICATOR_PANEL_ANNUAL", key={"INDICATOR": code, "REF_AREA": ["FRA", "DEU"]},
                                              params={"startPeriod": "2016"}))
    want = pull_table(PANEL, [f"indicator={indicator}", "ref_area=in:FRA,DEU", "year>=2016"]).table
    assert len(by_dict) == want.num_rows and set(by_dict.index.get_level_values("REF_AREA")) == {"FRA", "DEU"}
    # harmonized observations too: a dataset of an org, as its own dataflow
    # a dataset of the sample feeds with French rows (other tests of the session may add larger ones)
    harmonized = next(d for d in Catalog(ObjectStore()).datasets() if d.get("kind") == "harmonized" and d.get("org")
                      and "FRA" in d["coverage"]["countries"] and d["rows"] <= 1000)
    flow = flow_id(harmonized["name"])
    observations = sdmx.to_pandas(sdmx_client.data(flow, key={"REF_AREA": "FRA"}))
    assert len(observations) == pull_table(harmonized["name"], ["ref_area=FRA"]).table.num_rows > 0

def test_sdmx_formats_of_the_rows_endpoint_and_bad_keys(server, keys, sdmx_client):
    indicator = pull_table(PANEL, ["ref_area=FRA"], columns=["indicator"]).table["indicator"][0].as_py()
    where = [f"indicator={indicator}", "ref_area=FRA"]        # under the server's SDMX limit of 1000 rows
    csv = get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"], params={"where": where, "format": "sdmx-csv"})
    frame = pd.read_csv(io.StringIO(csv.text))
    assert csv.status_code == 200 and list(frame.columns[:4]) == ["STRUCTURE", "STRUCTURE_ID", "ACTION", "FREQ"]
    assert len(frame) == pull_table(PANEL, where).table.num_rows > 0 and set(frame.REF_AREA) == {"FRA"}
    xml = get(server, f"/api/v1/datasets/{PANEL}/rows", keys["analyst"], params={"where": where, "format": "sdmx-ml"})
    assert len(sdmx.to_pandas(sdmx.read_sdmx(io.BytesIO(xml.content)))) == len(frame)
    assert get(server, "/sdmx/rest/data/INDICATOR_PANEL_ANNUAL/A.FRA", keys["analyst"]).status_code == 400   # 2 of 3 parts
    assert get(server, "/sdmx/rest/data/NOPE", keys["analyst"]).status_code == 404
    assert get(server, "/sdmx/rest/data/INDICATOR_PANEL_ANNUAL").status_code == 401
    assert Catalog(ObjectStore()).dataset(PANEL)["rows"] > 1000        # the server's SDMX limit in this test
    too_many = get(server, "/sdmx/rest/data/INDICATOR_PANEL_ANNUAL", keys["analyst"])
    assert too_many.status_code == 413 and "1000" in too_many.json()["error"]


# --- schemas -------------------------------------------------------------------------------------------

def test_schemas_in_confluent_registry_shapes(server):
    registry = get_registry()
    assert get(server, "/schemas/subjects").json() == registry.names()
    for name in registry.names():
        versions = registry.versions(name)
        assert get(server, f"/schemas/subjects/{name}/versions").json() == [v.version for v in versions]
        latest = get(server, f"/schemas/subjects/{name}/versions/latest").json()
        assert latest["id"] == versions[-1].confluent_id and json.loads(latest["schema"]) == versions[-1].schema
        by_id = get(server, f"/schemas/schemas/ids/{versions[0].confluent_id}").json()
        assert json.loads(by_id["schema"]) == versions[0].schema and by_id["schemaType"] == "AVRO"
    assert get(server, "/schemas/subjects/nope/versions").json() == {"error_code": 40401, "message": "Subject not found"}
    assert get(server, "/schemas/schemas/ids/1").status_code == 404


# --- schemathesis ---------------------------------------------------------------------------------------

def test_schemathesis_finds_no_server_error(server, keys, tmp_path):
    st = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    done = subprocess.run([st, "run", server[0] + "/openapi.json", "--checks", "not_a_server_error",
                           "-H", f"Authorization: Bearer {keys['analyst']}", "--max-examples", "25", "--seed", "1",
                           "--phases", "examples,coverage,fuzzing", "--request-timeout", "60", "--workers", "2"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_as_of_names_a_snapshot_by_number_id_or_time_and_a_cursor_pins_the_snapshot_id(data, server, keys):
    """Last in this module: it derives a new snapshot of the panel."""
    import datetime as dt

    from app.web.api import decode_cursor

    store = ObjectStore(data)
    entry = Catalog(store).dataset(PANEL)
    path, params = f"/api/v1/datasets/{PANEL}/rows", {"where": "ref_area=in:FRA,DEU", "limit": 40}
    first = get(server, path, keys["analyst"], params=params).json()
    assert first["snapshot_id"] == entry["snapshot_id"] and decode_cursor(first["next_cursor"]) == (entry["snapshot_id"], 40)
    just_after = (dt.datetime.fromisoformat(entry["updated_at"]) + dt.timedelta(seconds=1)).isoformat()
    for as_of in (str(entry["snapshot"]), str(entry["snapshot_id"]), just_after):
        same = get(server, path, keys["analyst"], params={**params, "as_of": as_of})
        assert same.json()["rows"] == first["rows"] and same.headers["x-snapshot-id"] == str(entry["snapshot_id"]), as_of
    derive_evidence(data, force=True)                      # a newer snapshot comes while the analyst pages
    assert Catalog(store).dataset(PANEL)["snapshot_id"] != entry["snapshot_id"]
    second = get(server, path, keys["analyst"], params={**params, "cursor": first["next_cursor"]}).json()
    pinned = pull_table(PANEL, ["ref_area=in:FRA,DEU"], as_of=str(entry["snapshot_id"])).table.to_pylist()
    assert second["snapshot_id"] == entry["snapshot_id"] and second["rows"] == json.loads(
        pd.DataFrame(pinned[40:80]).to_json(orient="records", date_format="iso"))

    # a harmonized dataset: any snapshot kept, here its first, by id (byte for byte what ioxhub pull gives)
    harmonized = max((d for d in Catalog(store).datasets() if d.get("kind") == "harmonized" and d.get("dataset_id")),
                     key=lambda d: len(d["snapshots"]))
    oldest = harmonized["snapshots"][0]
    got = get(server, f"/api/v1/datasets/{harmonized['name']}/rows", keys["analyst"],
              params={"as_of": str(oldest["snapshot_id"]), "format": "csv"})
    assert got.status_code == 200 and got.headers["x-snapshot"] == str(oldest["snapshot"])
    assert got.text == cli("pull", harmonized["name"], "--as-of", str(oldest["snapshot_id"]), "--format", "csv")
    missing = get(server, path, keys["analyst"], params={"as_of": "987654321"})
    assert missing.status_code == 400 and "has no snapshot 987654321" in missing.json()["error"]
    assert "as_of 'soon'" in get(server, path, keys["analyst"], params={"as_of": "soon"}).json()["error"]
