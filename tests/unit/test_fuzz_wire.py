"""The wire path survives malformed events: seeds, saved crashing inputs, and a few thousand fuzz cases.

Every case goes through `ioxhub.ingest.examine.examine` (signature, decoding, org claims, content
checks, harmonization); an exception escaping it is a record that would stop on an internal error.
bench/fuzz.py runs the same strategies at >= 100,000 cases.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from wirefuzz import CORPUS, Record, TOPICS, cases, from_json, run_case, seed_values, signed_headers


@pytest.mark.parametrize("name,value", seed_values(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_seed_is_accepted(name, value):
    assert run_case(Record(TOPICS[name], value, signed_headers(name, value))).reason == "accepted"


CORPUS_FILES = sorted(CORPUS.glob("*.json"))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.stem for p in CORPUS_FILES])
def test_saved_crashing_inputs_are_refused_with_their_reason(path):
    """Inputs that once raised out of the ingest (ArrowIndexError, ValueError, IndexError, OverflowError...)
    now end in the reason recorded with them."""
    doc = json.loads(path.read_text())
    outcome = run_case(from_json(doc["record"]))
    assert outcome.escape is None, outcome.escape
    assert outcome.reason == doc["reason"]


def test_corpus_is_not_empty():
    assert len(CORPUS_FILES) >= 5


@settings(max_examples=3000, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(cases())
def test_no_fuzz_case_escapes(record):
    outcome = run_case(record)
    assert outcome.escape is None, outcome.escape
