"""`ioxhub demo`, the main job, as a user runs it: a subprocess with its own data directory and free ports.

From a clean data dir it completes (its DAG runs started by the published events, never by hand) and
prints the summary; a second run doubles nothing (harmonized rows and curated snapshot numbers unchanged,
every event its ingest runs consumed a duplicate). Then `ioxhub datasets`, `ioxhub report` and `ioxhub
lineage impact_did` (down to every sample file) against the same stack, all readable in an 80-column terminal;
the portal it starts answers with the analyst key it prints.
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import matplotlib.image
import pytest

from ioxhub.catalog import Catalog, add_counts
from ioxhub.lineage_graph import sources
from producers.samples.manifest import SampleManifest
from producers.samples.effects import PLANTED_EFFECTS
from ioxhub.settings import load_settings
from ioxhub.stack import local
from ioxhub.storage import ObjectStore
from ioxhub.tables import INSTRUMENTS_PREFIX, object_key

pytestmark = [pytest.mark.integration, pytest.mark.airflow]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env(data_dir) -> dict[str, str]:
    """A hub of its own (no session IOXHUB_*/AIRFLOW* settings, free ports) and an 80-column terminal."""
    return {**local.isolated_env(data_dir), **local.free_ports_env(airflow=True), "COLUMNS": "80"}


def _ioxhub(env, *args, cwd, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _failure(done: subprocess.CompletedProcess, data_dir) -> str:
    """What a failed demo printed, with the end of Airflow's log and of its task logs (the session's tmp dir
    is removed at exit)."""
    logs = [data_dir / "logs" / "airflow.log", *sorted((data_dir / "airflow" / "logs").rglob("attempt=*.log"))]
    return done.stdout[-3000:] + done.stderr[-3000:] + "".join(
        f"\n--- {log}\n" + log.read_text(errors="replace")[-3000:] for log in logs if log.is_file())


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _state(env, since: str) -> tuple[dict, dict, dict]:
    """(rows of each harmonized dataset read from its table's current files, curated snapshot numbers, the counts
    of the ingest runs finished since `since`, summed per DAG)."""
    store = ObjectStore(load_settings(env))
    catalog = Catalog(store)
    rows, snapshots = {}, {}
    for entry in catalog.datasets():
        if entry["kind"] == "curated":
            snapshots[entry["name"]] = entry["snapshot"]
        elif not entry["name"].startswith(INSTRUMENTS_PREFIX):     # a harmonized dataset's observations table
            files = catalog.tables.data_files(catalog.table_of(entry["name"]))
            rows[entry["name"]] = sum(store.read_parquet(object_key(f.file_path, store.bucket), columns=["value"]).num_rows
                                      for f in files)
    runs = {dag_id: add_counts(catalog.runs(dag_id, since)) for dag_id in ("ingest_datasets", "ingest_policies")}
    return rows, snapshots, runs


def _assert_fits_80_columns(text: str) -> None:
    wide = [line for line in text.splitlines() if len(line) > 80 and not line.startswith(("report: ", "Portal: "))]
    assert not wide, wide
    assert "…" not in text                                   # rich truncated nothing


def _portal_answers(out: str, env: dict, tmp_path) -> str:
    """The demo's closing line names the running portal and an analyst key that signs in; returns the key.
    The instrument page shows the impact the demo just estimated."""
    [(url, key)] = re.findall(r"^Portal: (http://\S+/) \(sign in with key (\S+)\)$", out, re.M)
    assert url == f"http://127.0.0.1:{env['IOXHUB_WEB_PORT']}/"
    request = urllib.request.Request(url + "instruments/WCO-FOS-ECOM", headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        page = response.read().decode()
    assert "Effect on adopters" in page and "Pre-trend check" in page
    (tmp_path / "portal-instrument.html").write_text(page)
    return key


def test_demo_twice_then_datasets_and_report(tmp_path):
    env = _env(tmp_path / "data")
    try:
        started = _now()
        first = _ioxhub(env, "demo", cwd=tmp_path, timeout=900)
        assert first.returncode == 0, _failure(first, tmp_path / "data")
        out = first.stdout
        assert "ioxhub demo: summary" in out and "headline impact estimates" in out
        _assert_fits_80_columns(out)
        for effect in PLANTED_EFFECTS:                         # full names, one line per estimate
            assert re.search(rf"^  {re.escape(effect.indicator)} +[-+]\d", out, re.M), effect.indicator
            assert re.search(rf"^{re.escape(effect.instrument_id)} *$", out, re.M), effect.instrument_id
        report = tmp_path / "data" / "reports" / "WCO-FOS-ECOM.html"
        assert f"\nreport: {report}\n" in out and report.is_file()       # not wrapped: copyable
        key = _portal_answers(out, env, tmp_path)
        rows, snapshots, runs = _state(env, started)
        assert len(rows) == 8 and all(n > 0 for n in rows.values())
        assert {"impact_did", "indicator_panel_annual", "instruments_compendium", "coverage"} <= set(snapshots)
        assert set(snapshots.values()) == {1}
        assert runs["ingest_datasets"]["events"]["applied"] > 0

        started = _now()
        second = _ioxhub(env, "demo", cwd=tmp_path, timeout=900)
        assert second.returncode == 0, _failure(second, tmp_path / "data")
        rows2, snapshots2, runs2 = _state(env, started)
        assert rows2 == rows                                   # nothing doubled
        assert snapshots2 == snapshots                         # no new snapshot: the inputs did not change
        for dag_id in ("ingest_datasets", "ingest_policies"):
            events = runs2[dag_id]["events"]
            assert events["applied"] == 0 and events["duplicate"] == events["consumed"] > 0, (dag_id, events)
        assert runs2["ingest_datasets"]["observations_harmonized"] == 0
        consumed = runs2["ingest_datasets"]["events"]["consumed"]
        assert f"consumed {consumed}: applied 0, " in second.stdout
        assert "no new harmonized data: no derive_evidence run to wait for" in second.stdout
        assert _portal_answers(second.stdout, env, tmp_path) != key       # a fresh key each run
        with pytest.raises(urllib.error.HTTPError) as refused:            # the earlier one revoked
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{env['IOXHUB_WEB_PORT']}/api/v1/whoami",
                                                          headers={"X-API-Key": key}), timeout=30)
        assert refused.value.code == 401

        datasets = _ioxhub(env, "datasets", cwd=tmp_path)
        assert datasets.returncode == 0, datasets.stderr
        _assert_fits_80_columns(datasets.stdout)
        for name in [*rows, *snapshots]:
            assert re.search(rf"^{re.escape(name)} ", datasets.stdout, re.M), name

        # where impact_did came from: every sample file the demo published, through its release
        graph = _ioxhub(env, "lineage", "impact_did", "--json", cwd=tmp_path)
        assert graph.returncode == 0, graph.stderr
        files, releases = sources(json.loads(graph.stdout))
        samples = tmp_path / "data" / "samples"
        assert files == {str((samples / f.path).resolve()) for f in SampleManifest.load(samples).files}
        assert len(releases) >= len(rows)                       # at least one release per harmonized dataset

        page = tmp_path / "x.html"
        done = _ioxhub(env, "report", "WCO-FOS-ECOM", "-o", str(page), cwd=tmp_path)
        assert done.returncode == 0 and done.stdout.strip() == f"report written to {page}", done.stderr
        text = page.read_text(encoding="utf-8")
        assert "<title>Impact of WCO-FOS-ECOM</title>" in text and "<h1>Impact of WCO-FOS-ECOM</h1>" in text
        assert "vertical lines mark the adoption years" in text
        assert "<h2>Impact (difference-in-differences)</h2>" in text
        planted = [e for e in PLANTED_EFFECTS if e.instrument_id == "WCO-FOS-ECOM"]
        assert all(f"<td>{e.indicator}</td>" in text for e in planted)
        adopters = sorted(planted[0].adopters.items(), key=lambda kv: (kv[1], kv[0]))
        assert f"Adopting members ({len(adopters)})" in text
        assert "".join(f"<tr><td>{c}</td><td>{y}-01-01</td></tr>" for c, y in adopters) in text
        [png_b64] = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
        png = base64.b64decode(png_b64)
        assert png.startswith(PNG_MAGIC)
        height, width, _ = matplotlib.image.imread(io.BytesIO(png)).shape
        assert width > 1000 and height > 600                    # two indicator rows of trend + event study
        (tmp_path / "report.png").write_bytes(png)              # kept for a look: pytest's tmp dir

        unknown = _ioxhub(env, "report", "NOPE-X", "-o", str(tmp_path / "nope.html"), cwd=tmp_path)
        assert unknown.returncode == 2 and unknown.stdout == ""
        [line] = unknown.stderr.strip().splitlines()
        assert line.startswith("error: report: no impact estimate for instrument 'NOPE-X' (known instruments: ")
        assert "WCO-FOS-ECOM" in line and not (tmp_path / "nope.html").exists()
    finally:
        down = _ioxhub(env, "stack", "down", cwd=tmp_path, timeout=120)
        assert down.returncode == 0, down.stderr
