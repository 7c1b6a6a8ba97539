"""The Node.js reference producer (examples/node-producer/), written from docs/partner-contract.md alone,
against the real stack: `npm ci`, the contract's test vectors, then a CSV published with kafkajs to the
tansu broker, signed with a key the hub trusts (the local keyring, as `ioxhub keys generate` registers it),
checked by `ioxhub conformance` on the topic, ingested, and read back from harmonized/.

Skipped only when Node.js is not installed (CI has it: .ci/run runs `npm ci` there too).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
from typer.testing import CliRunner

from app.cli import app

from ioxhub import conformance, names
from ioxhub.ingest.run import ingest
from ioxhub.keys import generate_org_key, load_trust_store
from ioxhub.settings import PROJECT_ROOT
import hub_tables

NODE_DIR = PROJECT_ROOT / "examples" / "node-producer"
ORG = "UPU"
COUNTRIES = ["FRA", "DEU", "ITA", "ESP", "PRT", "BEL", "NLD", "LUX", "AUT", "CHE", "POL", "CZE", "SVK", "HUN",
             "ROU", "BGR", "GRC", "HRV", "SVN", "DNK", "SWE", "NOR", "FIN", "ISL", "IRL", "GBR", "EST", "LVA",
             "LTU", "MLT", "CYP", "USA", "CAN", "MEX", "BRA", "ARG", "CHL", "PER", "COL", "ZAF", "NGA", "KEN",
             "EGY", "MAR", "IND", "CHN", "JPN", "KOR", "AUS", "NZL"]

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="Node.js (node and npm) is not installed: the reference producer cannot run")


def run(*args: str, timeout: float = 300) -> str:
    result = subprocess.run(args, cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_node_producer_release_is_ingested(provisioned_settings, tmp_path):
    run("npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
    assert "match" in run("node", "check-vectors.mjs", str(PROJECT_ROOT / "schemas"))

    tag = uuid.uuid4().hex[:8]
    key = generate_org_key(ORG, f"node-{ORG.lower()}-{tag}", settings=provisioned_settings)
    dataset = f"node_producer_{tag}"
    rows = [f"{ORG}.ITEMS_{i % 5},{COUNTRIES[(i // 5) % 50]},{2000 + i // 250},{i}.5,NUMBER" for i in range(2500)]
    rows[7] = f"{ORG}.ITEMS_2,XXX,2000,1,NUMBER"                       # not a country: refused at harmonization
    csv = tmp_path / "items.csv"
    csv.write_text("indicator,ref_area,period,value,unit\n" + "\n".join(rows) + "\n")

    out = json.loads(run("node", "producer.mjs", "--csv", str(csv), "--org", ORG, "--dataset", dataset,
                         "--key", str(key.path), "--key-id", key.key_id, "--chunk-rows", "1000",
                         "--brokers", provisioned_settings.kafka_bootstrap, timeout=120).strip().splitlines()[-1])
    assert (out["chunks"], out["observations"], out["topic"]) == (3, 2500, names.datasets_topic(ORG))

    # The contract check of the hub on what kafkajs wrote: every record conforms, the release is complete
    # (the XXX row is reported as a refused observation, not a broken event).
    records = [r for r in conformance.fetch_records(provisioned_settings, out["topic"], 0, None)
               if r.key == f"{ORG}/{dataset}".encode()]
    assert len(records) == 4 and len({r.partition for r in records}) == 1
    report = conformance.check(records, load_trust_store(provisioned_settings))
    assert report.releases_complete == 1
    assert [(f.reason, f.detail.split(",")[0]) for f in report.findings] == \
           [("unknown-country", "1 observation(s) refused")]

    # The same through the command, by offsets (the four records are contiguous on their partition).
    first, last = records[0], records[-1]
    result = CliRunner().invoke(app, ["conformance", "--topic", out["topic"], "--partition", str(first.partition),
                                      "--from-offset", str(first.offset), "--to-offset", str(last.offset + 1), "--json"])
    shown = json.loads(result.stdout)
    assert (result.exit_code, shown["records"], shown["releases_complete"]) == (1, 4, 1)
    assert [(f["reason"], f["where"]) for f in shown["findings"]] == \
           [("unknown-country", f"{out['topic']}[{first.partition}]@{first.offset}")]

    summary = ingest("datasets", provisioned_settings, idle_ms=1500)
    assert summary["quarantined_by_reason"].get("unknown-country", 0) == 0     # rows, not events
    assert summary["observations_refused_by_reason"].get("unknown-country", 0) >= 1
    table = hub_tables.current_rows(ORG, dataset, settings=provisioned_settings)
    assert table.num_rows == 2499
    got = {(r["indicator"], r["ref_area"], r["period"]) for r in table.select(["indicator", "ref_area", "period"]).to_pylist()}
    assert (f"{ORG}.ITEMS_0", "FRA", "2000") in got and not any(area == "XXX" for _, area, _ in got)
    assert sorted(table["value"].to_pylist())[-1] == 2499.5
