"""The committed test vectors (schemas/vectors/) against the hub's code: the same bytes, the same verdicts.

The partner contract (docs/partner-contract.md) cites these files; code and document cannot drift while
this passes. The vectors are never regenerated here: they are compared.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict

import pytest
from blake3 import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ioxhub import conformance, jwks
from ioxhub.contracts import codec
from ioxhub.contracts.registry import Registry
from ioxhub.ingest.examine import ACCEPTED, inspect
from ioxhub.signing import TrustStore, sign, signed_bytes, verify, verification_time
from ioxhub.settings import PROJECT_ROOT

VECTORS = PROJECT_ROOT / "schemas" / "vectors"
REGISTRY = Registry.load(PROJECT_ROOT / "schemas")


def load(name: str):
    return json.loads((VECTORS / name).read_text())


def lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (VECTORS / name).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def trust() -> TrustStore:
    return TrustStore(jwks.load_jwks(VECTORS / "test-keys.jwks.json"))


def wire(event: dict) -> dict:
    """A vector's JSON event as the encoder takes it ("NaN" back to a float)."""
    return {k: [float(x) if isinstance(x, str) and k == "value" else x for x in v] if isinstance(v, list) else v
            for k, v in event.items()}


def test_fingerprints_and_confluent_ids():
    vectors = {(v["schema"], v["version"]): v for v in load("fingerprints.json")}
    assert set(vectors) == {(sv.name, sv.version) for sv in REGISTRY}
    for sv in REGISTRY:
        v = vectors[(sv.name, sv.version)]
        assert (v["parsing_canonical_form"], v["fingerprint_hex"], v["confluent_id"]) == \
               (sv.canonical, sv.fingerprint.hex(), sv.confluent_id)
        assert int.from_bytes(bytes.fromhex(v["fingerprint_hex"]), "little") == v["fingerprint_u64_little_endian"]
    # a schema with logical types: the spec's fingerprint and Apache Avro for Python's differ
    chunk = vectors[("dataset_chunk", 1)]
    assert chunk["apache_avro_python_fingerprint_hex"] not in (None, chunk["fingerprint_hex"])


def test_framing_encodes_and_decodes_both_ways():
    v = load("framing.json")
    single = codec.encode(v["schema"], v["event"], registry=REGISTRY)
    assert single.hex() == v["single_object_hex"]
    assert bytes(codec.body(single)).hex() == v["avro_body_hex"]
    want = codec.decode(single, REGISTRY).record
    for key in ("confluent_hex", "single_object_apache_python_fingerprint_hex"):
        decoded = codec.decode(bytes.fromhex(v[key]), REGISTRY)
        assert (decoded.name, decoded.record) == (v["schema"], want), key
    assert codec.decode(bytes.fromhex(v["confluent_hex"]), REGISTRY).framing == "confluent"


def test_signatures_byte_by_byte(trust):
    doc = load("signatures.json")
    assert "TEST-ONLY" in doc["note"]
    assert {c["contract"] for c in doc["cases"]} == {"1.0", "1.1"}
    for case in doc["cases"]:
        value = bytes.fromhex(case["value_hex"])
        headers = [(k, v.encode()) for k, v in case["headers"]]
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(doc["private_seeds_hex"][case["key_id"]]))
        assert blake3(value).hexdigest() == case["blake3_of_value_hex"]
        assert signed_bytes(value, case["topic"], dict(headers), case["key_id"].encode()).hex() == case["signed_bytes_hex"]
        signed = sign(value, headers, key, case["key_id"], case["topic"])
        assert dict(signed)["ioxhub-signature"].hex() == case["signature_hex"]        # Ed25519 is deterministic
        assert verify(value, signed, case["topic"], trust, verification_time(None, None)).org == "WCO"


def test_release_records_encode_to_the_committed_bytes_and_conform(trust):
    """Chunk 0 is v1 (nothing of v2), chunk 1 v2 (a dimension and actions), as the hub writes them."""
    records = lines("release.jsonl")
    assert [codec.writer_of(bytes.fromhex(r["value_hex"]), REGISTRY)[0].version for r in records[:2]] == [1, 2]
    assert [r["event"].get("chunk_seq", "manifest") for r in records] == [0, 1, "manifest"]
    for r in records:
        name = "dataset_chunk" if "chunk_seq" in r["event"] else "release_manifest"
        version = codec.writer_of(bytes.fromhex(r["value_hex"]), REGISTRY)[0].version
        assert codec.encode(name, wire(r["event"]), version=version, registry=REGISTRY).hex() == r["value_hex"]
        headers = dict((k, bytes.fromhex(v)) for k, v in r["headers"])
        assert headers["ce_type"] == f"org.ioxhub.{name}".encode()
        assert bytes.fromhex(r["key_hex"]) == b"WCO/VECTOR-SEIZURES"
    report = conformance.check(conformance.read_records(VECTORS / "release.jsonl"), trust)
    assert (report.ok, report.records, report.conforming, report.releases_complete) == (True, 3, 3, 1), report.findings


def test_contract_1_0_record_still_ingests(trust):
    """A record with the retired ioxhub-org / ioxhub-event-id headers (and their v2 signature) is accepted."""
    doc = load("signatures.json")
    case = next(c for c in doc["cases"] if c["contract"] == "1.0")
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(doc["private_seeds_hex"][case["key_id"]]))
    headers = sign(bytes.fromhex(case["value_hex"]), [(k, v.encode()) for k, v in case["headers"]], key,
                   case["key_id"], case["topic"])
    assert not any(k.startswith("ce_") for k, _ in headers)
    record = conformance.Record(case["topic"], bytes.fromhex(case["value_hex"]), headers)
    assert inspect(record, trust).reason == ACCEPTED


INVALID = lines("invalid.jsonl")


@pytest.mark.parametrize("line", [l for l in INVALID if l["scope"] == "record"], ids=lambda l: l["case"])
def test_invalid_record_gives_its_reason(line, trust):
    record = conformance.parse_record(line, line["case"])
    verdict = inspect(record, trust)
    assert verdict.reason == line["expect"], verdict.detail
    assert verdict.detail


def test_invalid_rows_and_releases_give_their_reasons(trust):
    cases = defaultdict(list)
    for line in INVALID:
        if line["scope"] != "record":
            cases[line["case"]].append(line)
    assert {"row-country", "release-checksum", "release-missing-chunk"} <= set(cases)
    for name, group in cases.items():
        report = conformance.check([conformance.parse_record(l, name) for l in group], trust)
        assert {f.reason for f in report.findings} == {group[0]["expect"]}, (name, report.findings)


def test_every_invalid_event_decodes_from_its_json_where_it_is_valid_avro():
    """The JSON `event` of a vector is what its bytes say (for the cases whose value is a plain encoding)."""
    checked = 0
    for line in INVALID:
        value = bytes.fromhex(line["value_hex"])
        try:
            decoded = codec.decode(value, REGISTRY)
        except codec.DecodeError:
            continue
        encoded = codec.encode(decoded.name, wire(line["event"]), version=decoded.version, registry=REGISTRY)
        if line["case"] not in ("tampered-value",):
            assert bytes(codec.body(encoded)) == bytes(codec.body(value)), line["case"]
            checked += 1
    assert checked >= 15


def test_nan_is_written_as_its_name_in_the_json():
    line = next(l for l in INVALID if l["case"] == "non-finite")
    assert line["event"]["value"][0] == "NaN" and math.isnan(wire(line["event"])["value"][0])


def test_generator_reproduces_the_committed_files():
    """The code that wrote the vectors still writes the same bytes (a change of the contract shows here)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("vector_generator", VECTORS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, text in module.outputs().items():
        assert (VECTORS / name).read_text() == text, f"{name} differs from what generate.py writes now"
