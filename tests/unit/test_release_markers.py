"""The release marker's counts: written as strings in a snapshot summary, read back as numbers."""
from __future__ import annotations

from ioxhub.ingest.harmonized import summary_of
from ioxhub.ingest.markers import marker_of


def test_summary_holds_release_run_and_counts_as_strings():
    summary = summary_of({"harmonized": 5, "refused": 0, "commodity_classification": None, "chunks": 2}, "r1", "run-7")
    assert summary == {"ioxhub.release_id": "r1", "ioxhub.run_id": "run-7", "ioxhub.harmonized": "5",
                       "ioxhub.refused": "0", "ioxhub.chunks": "2"}
    assert "ioxhub.run_id" not in summary_of({}, "r1", None)


def test_marker_reads_the_hub_keys_back_without_prefix():
    summary = {**summary_of({"harmonized": 5, "commodity_classification": "HS2017"}, "r1", "run-7"),
               "added-data-files": "3", "total-records": "12"}
    assert marker_of(summary, "r1") == {"release_id": "r1", "run_id": "run-7", "harmonized": 5,
                                        "commodity_classification": "HS2017"}
