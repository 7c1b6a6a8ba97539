"""Writes the contract's test vectors (schemas/vectors/*.json, *.jsonl) with the hub's own code.

Run `.venv/bin/python schemas/vectors/generate.py` after a contract change; tests/unit/test_vectors.py
compares the code against the committed files (it never regenerates them). The keys are TEST-ONLY keys
(the RFC 8032 test vectors' secrets): never trust them outside tests. Format: schemas/vectors/README.md.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
import sys
from pathlib import Path

from blake3 import blake3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ioxhub import names
from ioxhub.contracts import codec, dataset_chunk, release_manifest
from ioxhub.contracts.registry import Registry
from ioxhub.jwks import jwks_of, render
from ioxhub.orgs import SigningKey
from ioxhub.signing import TrustedKey, sign, signed_bytes

HERE = Path(__file__).resolve().parent
REGISTRY = Registry.load(HERE.parent)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
PRODUCED_AT = 1_767_225_600_000            # 2026-01-01T00:00:00Z in epoch milliseconds
LOG_APPEND_TIME = 1

# TEST-ONLY keys: the secrets of RFC 8032 section 7.1, tests 1-3. Never trust them outside tests.
TEST_KEYS = [
    {"kid": "test-only-wco-2026", "org": "WCO", "valid_from": "2026-01-01T00:00:00Z", "valid_until": None,
     "seed": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"},
    {"kid": "test-only-who-2026", "org": "WHO", "valid_from": "2026-01-01T00:00:00Z", "valid_until": None,
     "seed": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"},
    {"kid": "test-only-wco-2025", "org": "WCO", "valid_from": "2025-01-01T00:00:00Z",
     "valid_until": "2026-01-01T00:00:00Z",
     "seed": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"},
]
PRIVATE = {k["kid"]: Ed25519PrivateKey.from_private_bytes(bytes.fromhex(k["seed"])) for k in TEST_KEYS}


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def trusted_keys() -> list[TrustedKey]:
    out = []
    for k in TEST_KEYS:
        public = PRIVATE[k["kid"]].public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out.append(TrustedKey(k["org"], SigningKey(k["kid"], public, _time(k["valid_from"]), _time(k["valid_until"])),
                              "schemas/vectors/test-keys.jwks.json"))
    return out


# ------------------------------------------------------------------------------------------- events
def chunk(seq: int, count: int | None = None, *, org="WCO", dataset_id="VECTOR-SEIZURES", release_id="vector-r1",
          rows: list[tuple] = (), dimensions: dict[str, list[str | None]] | None = None,
          action: list[str | None] | None = None, **override) -> dict:
    """A dataset_chunk record (wire form: produced_at in epoch ms) of `rows` (indicator, ref_area, period,
    value, unit; value None = missing), with extra `dimensions` (name -> a value per row) and `action`."""
    strings: list[str] = []

    def idx(s: str | None) -> int:
        if s is None:
            return -1
        if s not in strings:
            strings.append(s)
        return strings.index(s)

    record = {"event_id": dataset_chunk.chunk_event_id(org, dataset_id, release_id, seq), "org": org,
              "dataset_id": dataset_id, "release_id": release_id, "chunk_seq": seq, "chunk_count": count,
              "produced_at": PRODUCED_AT, "licence": "CC-BY-4.0", "source_url": None}
    cols = {c: [] for c in ("indicator", "ref_area", "counterpart_area", "commodity", "period", "value",
                            "missing_values", "unit", "unit_mult", "obs_status", "source_file", "source_line")}
    for i, (indicator, area, period, value, unit) in enumerate(rows):
        cols["indicator"].append(idx(indicator))
        cols["ref_area"].append(idx(area))
        cols["counterpart_area"].append(-1)
        cols["commodity"].append(idx("3006.92"))
        cols["period"].append(idx(period))
        cols["value"].append(0.0 if value is None else value)
        if value is None:
            cols["missing_values"].append(i)
        cols["unit"].append(idx(unit))
        cols["unit_mult"].append(0)
        cols["obs_status"].append(idx("A"))
        cols["source_file"].append(idx("seizures.csv"))
        cols["source_line"].append(2 + seq * 10 + i)
    record.update({"strings": strings, **cols, "attributes": []})
    record["dimensions"] = [{"name": k, "values": [idx(v) for v in vs]} for k, vs in (dimensions or {}).items()]
    record["action"] = [idx(a) for a in action] if action else []
    record["commodity_classification"] = None
    record.update(override)
    return record


RELEASE_ROWS = [
    [("SEIZ_CASES", "FRA", "2025", 12.0, "NUMBER"), ("SEIZ_CASES", "DEU", "2025", 7.0, "NUMBER"),
     ("SEIZ_CASES", "ITA", "2025", None, "NUMBER")],
    [("SEIZ_KG", "FRA", "2025-Q1", 1250.5, "KG"), ("SEIZ_KG", "DEU", "2025-Q1", 310.0, "KG"),
     ("SEIZ_KG", "BEL", "2025-Q1", 42.25, "KG")],
]


# The second chunk of the release is v2: an extra dimension (FLOW) and the SDMX ACTION of each row.
RELEASE_EXTRAS = [{}, {"dimensions": {"FLOW": ["M", "M", "X"]}, "action": ["I", None, "I"]}]


def release_events(rows=RELEASE_ROWS, *, checksum: str | None = None, observation_count: int | None = None,
                   release_id="vector-r1", extras=RELEASE_EXTRAS) -> list[tuple[str, dict]]:
    chunks = [chunk(seq, len(rows), rows=r, release_id=release_id, **(extras[seq] if seq < len(extras) else {}))
              for seq, r in enumerate(rows)]
    digest = hashlib.sha256()
    for c in chunks:
        digest.update(codec.body(codec.encode(dataset_chunk.NAME, c, version=version_of(dataset_chunk.NAME, c), registry=REGISTRY)))
    manifest = release_manifest.build(
        org="WCO", dataset_id="VECTOR-SEIZURES", release_id=release_id, chunk_count=len(chunks),
        observation_count=sum(len(r) for r in rows) if observation_count is None else observation_count,
        checksum=checksum or "sha256:" + digest.hexdigest(), produced_at=PRODUCED_AT,
        title="Seizures (test vector)", licence="CC-BY-4.0")
    return [(dataset_chunk.NAME, c) for c in chunks] + [(release_manifest.NAME, manifest)]


def policy(**override) -> dict:
    record = {"event_id": "vector-policy-1", "org": "WCO", "instrument_id": "WCO-VECTOR-1", "issuing_org": "WCO",
              "partner_orgs": [], "title": "Vector framework", "instrument_type": "FRAMEWORK", "binding": False,
              "action": "ADOPTED", "version": "1.0", "effective_date": 20454,   # 2026-01-01 in days
              "member_countries": ["FRA"], "themes": ["trade-facilitation"], "related_indicators": ["SEIZ_KG"],
              "url": None, "produced_at": PRODUCED_AT}
    record.update(override)
    return record


def version_of(name: str, event: dict) -> int:
    """The version the hub writes an event in: a chunk in the oldest that holds it, the rest the latest."""
    if name == dataset_chunk.NAME:
        return dataset_chunk.version_of(event.get("dimensions"), event.get("action") or None,
                                        event.get("commodity_classification"))
    return REGISTRY.latest(name).version


# ------------------------------------------------------------------------------------------- records
def record_line(name: str, event: dict, *, topic: str | None = None, kid: str | None = "test-only-wco-2026",
                value: bytes | None = None, offset: int = 0, timestamp: int | None = None,
                headers_of=None, after_sign=None, **extra) -> dict:
    """One record of the JSON-lines format: value framed, CloudEvents headers, signed with `kid`."""
    org = event["org"]
    topic = topic or (names.policies_topic(org) if name == "policy_update" else names.datasets_topic(org))
    version = version_of(name, event)
    value = codec.encode(name, event, version=version, registry=REGISTRY) if value is None else value
    fp = REGISTRY.get(name, version).fingerprint
    headers = (headers_of or codec.record_headers)(event["org"], fp, event["event_id"], name, event["produced_at"])
    if kid is not None:
        headers = sign(value, headers, PRIVATE[kid], kid, topic)
    if after_sign is not None:
        value, headers = after_sign(value, headers)
    key = (f"{event['org']}/{event['dataset_id']}" if "dataset_id" in event else event.get("instrument_id", "")).encode()
    line = {**extra, "topic": topic, "partition": 0, "offset": offset, "key_hex": key.hex(),
            "headers": [[k, v.hex()] for k, v in headers], "value_hex": value.hex()}
    if timestamp is not None:
        line.update(timestamp=timestamp, timestamp_type=LOG_APPEND_TIME)
    line["event"] = _json_safe(event)
    return line


def _json_safe(obj):
    """The event as strict JSON: a non-finite float becomes its name ("NaN"), as Avro JSON encoding does."""
    if isinstance(obj, float) and obj != obj or obj in (float("inf"), float("-inf")):
        return str(obj).replace("nan", "NaN").replace("inf", "Infinity")
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def release_lines(events, **extra) -> list[dict]:
    return [record_line(name, event, offset=i, **extra) for i, (name, event) in enumerate(events)]


def invalid_lines() -> list[dict]:
    good = chunk(0, 1, rows=RELEASE_ROWS[0], release_id="vector-bad")
    fp = REGISTRY.latest(dataset_chunk.NAME).fingerprint
    body = bytes(codec.body(codec.encode(dataset_chunk.NAME, good, registry=REGISTRY)))
    n = len(good["indicator"])

    def case(case_name, expect, why, name="dataset_chunk", event=good, scope="record", **kw):
        return record_line(name, event, case=case_name, scope=scope, expect=expect, why=why, **kw)

    lines = [
        case("not-avro", "not-avro", "the value is not framed Avro", value=b"not avro at all"),
        case("unknown-schema", "unknown-schema", "single-object frame with a fingerprint no schema has",
             value=codec.SINGLE_OBJECT_MAGIC + bytes(8) + body),
        case("unknown-confluent-id", "unknown-schema", "Confluent frame with a schema id the registry lacks",
             value=codec.CONFLUENT_MAGIC + struct.pack(">I", 1) + body),
        case("truncated-header", "truncated", "single-object header cut short", value=b"\xc3\x01" + fp[:3]),
        case("truncated-body", "truncated", "the Avro body ends early",
             value=codec.SINGLE_OBJECT_MAGIC + fp + body[:len(body) // 2]),
        case("trailing-bytes", "undecodable", "bytes after the record",
             value=codec.SINGLE_OBJECT_MAGIC + fp + body + b"\x00\x00"),
        case("unsigned", "unsigned", "no ioxhub-key-id / ioxhub-signature headers", kid=None),
        case("other-orgs-topic", "org-mismatch", "WHO signs its record and publishes it into WCO's topic",
             event={**good, "org": "WHO"}, kid="test-only-who-2026", topic=names.datasets_topic("WCO")),
        case("unknown-key", "unknown-key", "the key id is in no trust store",
             after_sign=lambda v, h: (v, [(k, b"test-only-nobody" if k == "ioxhub-key-id" else x) for k, x in h])),
        case("wrong-org-key", "wrong-org-key", "a WCO record signed with WHO's key", kid="test-only-who-2026"),
        case("expired-key", "expired-key", "signed with a key whose window closed before the broker's stamp",
             kid="test-only-wco-2025", timestamp=PRODUCED_AT + 86_400_000),
        case("tampered-value", "bad-signature", "one byte of the value changed after signing",
             after_sign=lambda v, h: (v[:-1] + bytes([v[-1] ^ 1]), h)),
        case("tampered-ce-id", "bad-signature", "ce_id changed after signing",
             after_sign=lambda v, h: (v, [(k, b"other" if k == "ce_id" else x) for k, x in h])),
        case("payload-org", "org-mismatch", "the payload names WHO on WCO's topic, signed as WCO",
             event={**good, "org": "WHO"}, topic=names.datasets_topic("WCO"),
             headers_of=lambda org, *a: codec.record_headers("WCO", *a)),
        case("dot-dot", "bad-name", "a dataset id that would climb out of its object prefix",
             event={**good, "dataset_id": "../evil"}),
        case("unequal-columns", "unequal-columns", "ref_area has one value fewer than indicator",
             event={**good, "ref_area": good["ref_area"][:-1]}),
        case("index-out-of-range", "index-out-of-range", "an index past the string table",
             event={**good, "period": [len(good["strings"])] * n}),
        case("empty-string-table", "empty-string-table", "observations but no strings",
             event={**good, "strings": []}),
        case("missing-position", "bad-missing-position", "missing_values names a position past the rows",
             event={**good, "missing_values": [n]}),
        case("non-finite", "non-finite-value", "NaN is not a value (list it in missing_values)",
             event={**good, "value": [float("nan")] * n}),
        case("chunk-seq", "bad-chunk-seq", "chunk_seq 3 with chunk_count 2", event={**good, "chunk_seq": 3, "chunk_count": 2}),
        case("dimension-twice", "bad-dimension", "(v2) the dimension FLOW named twice",
             event={**good, "dimensions": [{"name": "FLOW", "values": [-1] * n}] * 2}),
        case("action-length", "unequal-columns", "(v2) action has one value fewer than indicator",
             event={**good, "action": [-1] * (n - 1)}),
        case("manifest-counts", "bad-manifest", "a negative chunk_count", name="release_manifest",
             event=release_manifest.build(org="WCO", dataset_id="VECTOR-SEIZURES", release_id="vector-bad",
                                          chunk_count=-1, observation_count=3, checksum="sha256:" + "0" * 64,
                                          produced_at=PRODUCED_AT)),
        case("policy-on-datasets", "wrong-event-type", "a policy update on a datasets topic", name="policy_update",
             event=policy(), topic=names.datasets_topic("WCO")),
        case("policy-title", "bad-policy", "an empty title", name="policy_update", event=policy(title=" ")),
        case("policy-country", "unknown-country", "a member country that is no ISO 3166 country",
             name="policy_update", event=policy(member_countries=["XXX"])),
    ]
    rows = release_events([[("SEIZ_CASES", "XXX", "2025", 1.0, "NUMBER"), ("SEIZ_CASES", "FRA", "2025", 2.0, "NUMBER")]],
                          release_id="vector-rows")
    lines += [record_line(n_, e, offset=i, case="row-country", scope="rows", expect="unknown-country",
                          why="the release is applied; its row for XXX is refused (not an ISO 3166 country)")
              for i, (n_, e) in enumerate(rows)]
    bad_sum = release_events(checksum="sha256:" + "0" * 64, release_id="vector-bad-sum")
    lines += [record_line(n_, e, offset=i, case="release-checksum", scope="release", expect="bad-release",
                          why="the manifest's checksum is not the chunks'") for i, (n_, e) in enumerate(bad_sum)]
    missing = release_events(release_id="vector-missing")
    lines += [record_line(n_, e, offset=i, case="release-missing-chunk", scope="release", expect="incomplete-release",
                          why="chunk_seq 1 never sent") for i, (n_, e) in enumerate(missing) if i != 1]
    return lines


def signature_cases() -> list[dict]:
    out = []
    value = codec.encode(dataset_chunk.NAME, chunk(0, 2, rows=RELEASE_ROWS[0]), registry=REGISTRY)
    fp = REGISTRY.latest(dataset_chunk.NAME).fingerprint
    event_id = dataset_chunk.chunk_event_id("WCO", "VECTOR-SEIZURES", "vector-r1", 0)
    topic = names.datasets_topic("WCO")
    kid = "test-only-wco-2026"
    for contract, headers in (("1.1", codec.record_headers("WCO", fp, event_id, dataset_chunk.NAME, PRODUCED_AT)),
                              ("1.0", codec.legacy_record_headers("WCO", fp, event_id))):
        identity = dict(headers)
        signed = sign(value, headers, PRIVATE[kid], kid, topic)
        out.append({"contract": contract, "topic": topic, "key_id": kid, "value_hex": value.hex(),
                    "headers": [[k, v.decode()] for k, v in headers],
                    "blake3_of_value_hex": blake3(value).hexdigest(),
                    "signed_bytes_hex": signed_bytes(value, topic, identity, kid.encode()).hex(),
                    "signature_hex": dict(signed)["ioxhub-signature"].hex()})
    return out


def framing() -> dict:
    event = policy()
    single = codec.encode("policy_update", event, registry=REGISTRY)
    sv = REGISTRY.latest("policy_update")
    return {"schema": "policy_update", "version": sv.version, "event": event,
            "avro_body_hex": bytes(codec.body(single)).hex(), "single_object_hex": single.hex(),
            "confluent_hex": (codec.CONFLUENT_MAGIC + struct.pack(">I", sv.confluent_id) + bytes(codec.body(single))).hex(),
            "single_object_apache_python_fingerprint_hex": (codec.SINGLE_OBJECT_MAGIC + sv.alias_fingerprints[0]
                                                            + bytes(codec.body(single))).hex()}


def fingerprints() -> list[dict]:
    return [{"schema": sv.name, "version": sv.version, "parsing_canonical_form": sv.canonical,
             "fingerprint_hex": sv.fingerprint.hex(),
             "fingerprint_u64_little_endian": int.from_bytes(sv.fingerprint, "little"),
             "apache_avro_python_fingerprint_hex": sv.alias_fingerprints[0].hex() if sv.alias_fingerprints else None,
             "confluent_id": sv.confluent_id} for sv in REGISTRY]


def outputs() -> dict[str, str]:
    """File name -> text of every vector file."""
    def js(obj) -> str:
        return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"

    def jsonl(lines) -> str:
        return "".join(json.dumps(line, sort_keys=False, allow_nan=False) + "\n" for line in lines)

    keys_doc = jwks_of(trusted_keys())
    return {
        "fingerprints.json": js(fingerprints()),
        "framing.json": js(framing()),
        "signatures.json": js({"note": "TEST-ONLY keys (RFC 8032 7.1 tests 1-3): never trust them outside tests",
                               "private_seeds_hex": {k["kid"]: k["seed"] for k in TEST_KEYS},
                               "cases": signature_cases()}),
        "test-keys.jwks.json": render(keys_doc),
        "release.jsonl": jsonl(release_lines(release_events())),
        "invalid.jsonl": jsonl(invalid_lines()),
    }


if __name__ == "__main__":
    for name, text in outputs().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name}", file=sys.stderr)
