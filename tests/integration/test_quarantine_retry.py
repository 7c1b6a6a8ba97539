"""`ioxhub quarantine list|show|retry` on the real broker and S3: a release signed with a key the hub did
not know is quarantined whole; once the key is registered a retry applies it, keeps the letters and marks
them; a second retry is refused, an analyst may not retry, the CLI lists and shows the letters."""
from __future__ import annotations

import dataclasses
import json
import os
import uuid

import pytest

from app.demo import ensure_keys
from ioxhub.catalog import Catalog
from ioxhub.errors import IoxhubError
from ioxhub.ingest.letters import find_letters, read_letters
from ioxhub.ingest.retry import RetryError, retry
from ioxhub.ingest.run import ingest
from ioxhub.keys import KEYRING_FILE, add_to_keyring, generate_key, keys_dir
from ioxhub.storage import ObjectStore
from ioxhub.ingest.markers import release_applied
import hub_tables
from ioxhub_cli import ioxhub
from producers import publish_dataset

pytestmark = pytest.mark.integration

MAPPING = {"indicator": "IND", "ref_area": "AREA", "period": "PERIOD", "value": "VALUE", "unit": "UNIT",
           "title": "Retry"}


@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys(["ICC"], provisioned_settings)
    return provisioned_settings


def test_a_release_refused_for_an_unknown_key_is_applied_once_after_the_key_is_registered(hub, tmp_path):
    ingest("datasets", idle_ms=1500)
    tag = uuid.uuid4().hex[:6]
    dataset_id = f"RETRY-{tag}"
    key = generate_key("ICC", f"ICC-new-{tag}", keys_dir(hub.data_dir) / "ICC")   # not yet in the keyring
    try:
        csv = tmp_path / "retry.csv"
        csv.write_text("IND,AREA,PERIOD,VALUE,UNIT\nX,FRA,2024,1,KG\nX,DEU,2024,2,KG\nX,ITA,2024,3,KG\n")
        published = publish_dataset("ICC", dataset_id, [csv], MAPPING, settings=hub, max_chunk_observations=2)
        run = ingest("datasets", idle_ms=1500)
        assert run["quarantined_by_reason"].get("unknown-key") == 3          # 2 chunks + the manifest
        store = ObjectStore(hub)
        refused = [l for l in read_letters(store, org="ICC", reason="unknown-key") if l["event_id"] in published.event_ids]
        assert len(refused) == 3 and all(l["retryable"] and not l["retries"] for l in refused)

        again = retry(release=("ICC", dataset_id, published.release_id), settings=hub)
        assert again["outcomes"] == {"quarantined": 3}          # still unknown: refused again, letters kept
        assert hub_tables.rows_count("ICC", dataset_id, hub) == 0

        add_to_keyring(keys_dir(hub.data_dir) / KEYRING_FILE, key)          # the fix
        done = retry(release=("ICC", dataset_id, published.release_id), settings=hub, run_id="retry-test")
        assert done["outcomes"] == {"applied": 3}
        assert done["runs"]["datasets"]["events"]["applied"] == 3
        assert release_applied(Catalog(store), "ICC", dataset_id, published.release_id)["harmonized"] == 3
        assert Catalog(store).last_runs()["quarantine_retry"]["run_id"] == "retry-test"
        letter = find_letters(store, refused[0]["id"])[0]                  # kept, with its history
        assert [a["outcome"] for a in letter["retries"]] == ["quarantined", "applied"]

        with pytest.raises(RetryError, match="already retried"):
            retry([refused[0]["id"]], settings=hub)

        env = dict(os.environ)                                             # the session's hub
        listed = ioxhub(env, "quarantine", "list", "--org", "ICC", "--reason", "unknown-key", "--json")
        assert listed.returncode == 0, listed.stderr
        ids = {l["id"]: l for l in json.loads(listed.stdout)}
        assert {l["id"] for l in refused} <= set(ids)
        assert ids[refused[0]["id"]]["last_retry"] == "applied"
        shown = ioxhub(env, "quarantine", "show", refused[0]["id"])
        assert shown.returncode == 0 and "unknown-key" in shown.stdout and published.release_id in shown.stdout
        missing = ioxhub(env, "quarantine", "show", "nope:0:1")
        assert missing.returncode == 2 and missing.stderr.startswith("error: no dead letter") and "Traceback" not in missing.stderr
    finally:
        key.path.unlink(missing_ok=True)


def test_an_analyst_may_not_retry(hub):
    secrets = json.loads(hub.local_secrets_file.read_text())
    analyst = dataclasses.replace(hub, s3_access_key=secrets["analyst_access_key"], s3_secret_key=secrets["analyst_secret_key"])
    with pytest.raises(IoxhubError, match="(?i)denied"):
        retry(["ioxhub.icc.datasets:0:0"], settings=analyst)



def test_a_retried_release_that_was_applied_meanwhile_is_a_duplicate(hub, tmp_path):
    """The partner sent the release again with its registered key (applied by the live ingest); the old
    letters, retried once their key is known too, apply nothing twice."""
    ingest("datasets", idle_ms=1500)
    tag = uuid.uuid4().hex[:6]
    dataset_id = f"RETRY-DUP-{tag}"
    csv = tmp_path / "dup.csv"
    csv.write_text("IND,AREA,PERIOD,VALUE,UNIT\nX,FRA,2024,1,KG\nX,DEU,2024,2,KG\n")
    key = generate_key("ICC", f"ICC-dup-{tag}", keys_dir(hub.data_dir) / "ICC")
    try:
        first = publish_dataset("ICC", dataset_id, [csv], MAPPING, settings=hub)
        assert ingest("datasets", idle_ms=1500)["quarantined_by_reason"].get("unknown-key") == 2
    finally:
        key.path.unlink()                      # the partner signs with its registered key again
    again = publish_dataset("ICC", dataset_id, [csv], MAPPING, settings=hub)
    assert again.release_id == first.release_id
    assert ingest("datasets", idle_ms=1500)["events"]["applied"] == 2
    store = ObjectStore(hub)
    rows_before = Catalog(store).dataset(f"ICC.{dataset_id}")["rows"]

    add_to_keyring(keys_dir(hub.data_dir) / KEYRING_FILE, key)
    result = retry(release=("ICC", dataset_id, first.release_id), settings=hub)
    assert result["outcomes"] == {"duplicate": 2}
    assert result["runs"]["datasets"]["events"] == {"consumed": 2, "applied": 0, "staged": 0, "duplicate": 2, "quarantined": 0}
    assert Catalog(store).dataset(f"ICC.{dataset_id}")["rows"] == rows_before == 2
