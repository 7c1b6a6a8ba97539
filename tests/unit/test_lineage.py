"""Lineage run events (building, transports) and the upstream graph, without the stack (the http transport
posts to an in-process receiver)."""
from __future__ import annotations

import dataclasses
import http.server
import json
import logging
import threading
import uuid
from pathlib import Path

import jsonschema
import pytest

from ioxhub import lineage
from consumers.observe import DeriveTrace
from ioxhub.ingest.datasets import StagedRecord
from ioxhub.ingest.observe import IngestTrace
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.lineage_graph import LineageNotFound, sources, upstream
from ioxhub.settings import PROJECT_ROOT, load_settings


@pytest.fixture()
def settings(tmp_path):
    lineage.reset_transports()
    yield dataclasses.replace(load_settings({}), data_dir=tmp_path, kafka_bootstrap="10.0.0.5:9092,10.0.0.6:9092",
                              bucket="hub")
    lineage.reset_transports()


def test_dataset_naming_follows_the_openlineage_conventions(settings, tmp_path):
    assert lineage.kafka_dataset(settings, "ioxhub.WCO.datasets")["namespace"] == "kafka://10.0.0.5:9092"
    s3 = lineage.s3_dataset(settings, "harmonized/observations/org=WCO/dataset=x/")
    assert (s3["namespace"], s3["name"]) == ("s3://hub", "harmonized/observations/org=WCO/dataset=x")
    f = lineage.file_dataset(tmp_path / "a" / ".." / "feed.csv")
    assert f["namespace"].startswith("file://") and f["name"] == str((tmp_path / "feed.csv").resolve())


def test_run_event_has_the_spec_fields_and_facets_name_their_schema():
    run_id = lineage.uuid7()
    assert uuid.UUID(run_id).version == 7
    out = lineage.s3_dataset(load_settings({}), "curated/panel", version=lineage.version_facet(3),
                             schema=lineage.schema_facet([("ref_area", "string"), ("value", "")]),
                             outputStatistics=lineage.output_statistics(12, 3400))
    event = lineage.run_event("COMPLETE", run_id, "derive_evidence", [], [out],
                              {"parent": lineage.parent_facet("airflow", "derive_evidence.derive", "p-1")})
    assert {"eventType", "eventTime", "producer", "schemaURL", "run", "job", "inputs", "outputs"} <= set(event)
    assert event["eventTime"].endswith("Z") and event["job"] == {**event["job"], "namespace": "ioxhub"}
    assert out["facets"]["schema"]["fields"] == [{"name": "ref_area", "type": "string"}, {"name": "value"}]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 12 and "outputStatistics" not in out["facets"]
    assert event["run"]["facets"]["parent"]["job"]["name"] == "derive_evidence.derive"
    for facet in [*out["facets"].values(), *out["outputFacets"].values(), *event["run"]["facets"].values()]:
        assert facet["_schemaURL"].startswith("https://openlineage.io/spec/") and facet["_producer"]
    json.dumps(event)


@pytest.mark.parametrize("name,facet", [
    ("ReleasesDatasetFacet", lineage.releases_facet([lineage.release_ref("WCO", "seizures", "r1")])),
    ("RefusedDatasetFacet", lineage.refused_facet({"unknown-country": 2, "bad-hs": 1}, "rows")),
])
def test_custom_facets_match_the_schemas_they_name(name, facet):
    assert facet["_schemaURL"].endswith(f"/docs/lineage/{name}.json")
    schema = json.loads((PROJECT_ROOT / "docs" / "lineage" / f"{name}.json").read_text())
    jsonschema.validate(facet, schema["$defs"][name]["allOf"][1])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in facet.items() if k.startswith("_")}, schema["$defs"][name]["allOf"][1])


def test_file_transport_appends_one_line_per_event_and_none_sends_nothing(settings):
    run = lineage.LineageRun("publish.WCO.x", settings)
    run.start()
    run.fail(ValueError("bad thing"))
    events = lineage.read_events(lineage.events_file(settings))
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert {e["run"]["runId"] for e in events} == {run.run_id}
    assert "ValueError: bad thing" in events[1]["run"]["facets"]["errorMessage"]["message"]
    off = dataclasses.replace(settings, lineage_transport="none", data_dir=settings.data_dir / "off")
    lineage.LineageRun("x", off).start()
    assert not lineage.events_file(off).exists()


def test_parent_run_is_carried_by_runs_started_inside(settings):
    with lineage.parent_run("airflow", "ingest_datasets.ingest", "task-run-1"):
        inside = lineage.LineageRun("ingest_datasets", settings)
    outside = lineage.LineageRun("ingest_datasets", settings)
    inside.start()
    outside.start()
    first, second = lineage.read_events(lineage.events_file(settings))
    assert first["run"]["facets"]["parent"]["run"]["runId"] == "task-run-1"
    assert "parent" not in second["run"]["facets"]


def test_a_failing_transport_is_logged_once_and_never_raises(settings, caplog):
    blocked = dataclasses.replace(settings, data_dir=settings.data_dir / "file-in-the-way")
    blocked.data_dir.mkdir()
    (blocked.data_dir / "lineage").write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING, "ioxhub.lineage"):
        for _ in range(3):
            lineage.LineageRun("publish.WCO.x", blocked).start()
    warnings = [r for r in caplog.records if "transport failed" in r.getMessage()]
    assert len(warnings) == 1 and "file" in warnings[0].getMessage()


def test_http_transport_to_a_closed_port_does_not_raise(settings, caplog):
    http = dataclasses.replace(settings, lineage_transport="http", lineage_url="http://127.0.0.1:9")
    with caplog.at_level(logging.WARNING, "ioxhub.lineage"):
        lineage.LineageRun("x", http).start()
        lineage.LineageRun("x", http).complete()
    assert len([r for r in caplog.records if "http transport failed" in r.getMessage()]) == 1


def test_provider_config_points_the_airflow_provider_at_the_same_transport(settings):
    config = json.loads(lineage.provider_config(settings)["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert config == {"type": "file", "log_file_path": str(lineage.events_file(settings)), "append": True}
    assert lineage.events_file(settings).parent.is_dir()
    http = dataclasses.replace(settings, lineage_transport="http", lineage_url="http://marquez:5000")
    assert json.loads(lineage.provider_config(http)["AIRFLOW__OPENLINEAGE__TRANSPORT"])["url"] == "http://marquez:5000"
    assert lineage.provider_config(dataclasses.replace(settings, lineage_transport="none")) == {
        "AIRFLOW__OPENLINEAGE__DISABLED": "True"}


# ---------------------------------------------------------------------------------------- the graph
def _events() -> list[dict]:
    """Two publishes of WCO (releases r1, r2), one of WHO (w1); an ingest applying r1 and w1; a later one
    applying r2; a derivation reading WCO's dataset at the snapshot holding r1 only, and WHO's."""
    s = load_settings({})
    topic = lambda org: lineage.kafka_dataset(s, f"ioxhub.{org}.datasets")  # noqa: E731
    harm = lambda org, releases=(), **f: lineage.s3_dataset(  # noqa: E731
        s, f"harmonized/observations/org={org}/dataset=d",
        ioxhub_releases=lineage.releases_facet([lineage.release_ref(org, "d", r) for r in releases]) if releases else None, **f)
    ev = []
    t = iter(range(10, 99))

    def run(job, inputs, outputs):
        e = lineage.run_event("COMPLETE", lineage.uuid7(), job, inputs, outputs)
        e["eventTime"] = f"2026-12-06T10:{next(t)}:00.000Z"
        ev.append(lineage.run_event("START", e["run"]["runId"], job, inputs, []))
        ev.append(e)

    for org, rel, path in (("WCO", "r1", "/feeds/wco-2024.csv"), ("WCO", "r2", "/feeds/wco-2025.csv"),
                           ("WHO", "w1", "/feeds/who.csv")):
        run(f"publish.{org}.d", [lineage.dataset("file://host", path)],
            [lineage.kafka_dataset(s, f"ioxhub.{org}.datasets",
                                   ioxhub_releases=lineage.releases_facet([lineage.release_ref(org, "d", rel)]))])
    run("ingest_datasets", [topic("WCO"), topic("WHO"), topic("ICC")],
        [harm("WCO", ["r1"], outputStatistics=lineage.output_statistics(5)), harm("WHO", ["w1"])])
    run("ingest_datasets", [topic("WCO"), topic("WHO"), topic("ICC")], [harm("WCO", ["r2"])])
    run("derive_evidence", [harm("WCO", ["r1"], version=lineage.version_facet(1)), harm("WHO", ["w1"])],
        [lineage.s3_dataset(s, "curated/panel", version=lineage.version_facet(1))])
    run("derive_evidence", [harm("WCO", ["r1"], version=lineage.version_facet(1)), harm("WHO", ["w1"])],
        [lineage.s3_dataset(s, "curated/panel", version=lineage.version_facet(2))])
    return ev


def test_graph_follows_releases_down_to_the_files():
    tree = upstream(_events(), "panel")
    assert tree["name"] == "curated/panel" and tree["version"] == "2"       # the latest snapshot's run only
    assert len(tree["written_by"]) == 1
    files, releases = sources(tree)
    assert files == {"/feeds/wco-2024.csv", "/feeds/who.csv"}               # not r2's file: not in that snapshot
    assert releases == {"r1", "w1"}
    derive = tree["written_by"][0]
    wco = next(i for i in derive["inputs"] if "org=WCO" in i["name"])
    (ingest_run,) = wco["written_by"]
    assert ingest_run["releases"] == ["r1"] and ingest_run["rows"] == 5
    assert [i["name"] for i in ingest_run["inputs"]] == ["ioxhub.WCO.datasets"]   # WHO's and ICC's topics: not r1's


def test_graph_of_a_harmonized_dataset_and_names_that_do_not_resolve():
    files, releases = sources(upstream(_events(), "harmonized/observations/org=WCO/dataset=d"))
    assert releases == {"r2"} and files == {"/feeds/wco-2025.csv"}         # its latest write
    with pytest.raises(LineageNotFound, match="several datasets"):
        upstream(_events(), "dataset=d")
    with pytest.raises(LineageNotFound, match="no lineage event names a dataset 'nope'"):
        upstream(_events(), "nope")


def test_read_events_skips_a_broken_line_with_a_warning(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    path.write_text('{"eventType": "START"}\n{truncated\n\n{"eventType": "COMPLETE"}\n')
    with caplog.at_level(logging.WARNING, "ioxhub.lineage"):
        assert [e["eventType"] for e in lineage.read_events(path)] == ["START", "COMPLETE"]
    assert f"{path} line 2" in caplog.text
    assert lineage.read_events(Path(tmp_path / "missing.jsonl")) == []


def test_ingest_outputs_name_the_releases_applied_and_what_was_quarantined(settings):
    dead = DeadLetters()
    topic = "ioxhub.wco.datasets"
    dead.refuse(StagedRecord(topic, 0, 7), "not-avro", "garbage", org="WCO")
    dead.refuse(StagedRecord(topic, 0, 9), "unknown-country", "2 rows", org="WCO", observations=2)
    trace = IngestTrace("datasets", [topic], settings)
    trace.applied = [(("WCO", "seizures", "r1"), 3, 40, {"unknown-country": 2}), (("WCO", "seizures", "r2"), 2, 10, {})]
    harmonized = trace._harmonized(trace.applied)
    (out,) = harmonized
    assert out["name"] == "harmonized/tables/harmonized/wco__seizures"      # the observations table's location
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 50
    assert [r["releaseId"] for r in out["facets"]["ioxhub_releases"]["releases"]] == ["r1", "r2"]
    events, rows = trace._quarantine(dead)
    assert events["name"] == f"quarantine/events/topic={topic}"
    assert events["outputFacets"]["outputStatistics"]["rowCount"] == 2          # both letters are written
    assert events["facets"]["ioxhub_refused"]["byReason"] == {"not-avro": 1}    # one whole event refused
    assert rows["name"] == "quarantine/observations/org=WCO/dataset=seizures"
    assert rows["facets"]["ioxhub_refused"]["byReason"] == {"unknown-country": 2}
    assert [r["releaseId"] for r in rows["facets"]["ioxhub_releases"]["releases"]] == ["r1"]


def test_a_bug_in_building_a_run_s_events_never_reaches_the_job(settings, caplog):
    trace = DeriveTrace([], settings)
    with caplog.at_level(logging.WARNING, "ioxhub.lineage"):
        trace.complete({"datasets": {"impact_did": {"rows": 1, "snapshot": 1}}}, frames={})   # no frame: KeyError
    assert "DeriveTrace.complete failed (KeyError" in caplog.text


def test_http_transport_posts_the_event_to_an_openlineage_endpoint(settings):
    received: list[tuple[str, dict]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        http_settings = dataclasses.replace(settings, lineage_transport="http",
                                            lineage_url=f"http://127.0.0.1:{server.server_address[1]}")
        run = lineage.LineageRun("publish.WCO.x", http_settings)
        run.start([lineage.file_dataset("/feeds/a.csv")])
    finally:
        server.shutdown()
    (path, event), = received
    assert path == "/api/v1/lineage"                       # Marquez's (and the spec's) endpoint
    assert event["eventType"] == "START" and event["run"]["runId"] == run.run_id
    assert event["inputs"][0]["name"] == "/feeds/a.csv"
