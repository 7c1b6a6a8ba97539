"""The published JWK Sets: infra/jwks/<ORG>.json match infra/orgs.yaml, and a standard JOSE library
(jwcrypto) verifies an event signature with them."""
from __future__ import annotations

import json

import pytest
from jwcrypto import jwk

from ioxhub import jwks
from ioxhub.orgs import load_orgs
from ioxhub.settings import PROJECT_ROOT
from ioxhub.signing import KeyFileError, TrustStore

VECTORS = PROJECT_ROOT / "schemas" / "vectors"
JWKS_DIR = PROJECT_ROOT / "infra" / "jwks"


def test_committed_jwks_files_match_orgs_yaml():
    spec = load_orgs(PROJECT_ROOT / "infra" / "orgs.yaml")
    assert sorted(p.name for p in JWKS_DIR.glob("*.json")) == sorted(f"{o.id}.json" for o in spec.orgs)
    for org in spec.orgs:
        committed = (JWKS_DIR / f"{org.id}.json").read_text()
        assert committed == jwks.render(jwks.org_jwks(spec, org.id)), \
            f"infra/jwks/{org.id}.json is stale: run `ioxhub keys jwks`"


def test_write_and_load_round_trip(tmp_path):
    keys = jwks.load_jwks(VECTORS / "test-keys.jwks.json")
    assert len(keys) == 3 and {k.org for k in keys} == {"WCO", "WHO"}
    again = tmp_path / "keys.json"
    again.write_text(jwks.render(jwks.jwks_of(keys)))
    assert [(k.org, k.key) for k in jwks.load_jwks(again)] == [(k.org, k.key) for k in keys]
    jwk_ = json.loads(again.read_text())["keys"][0]
    assert {"kty": "OKP", "crv": "Ed25519"}.items() <= jwk_.items() and "d" not in jwk_     # public only


def test_jose_library_verifies_an_event_signature_with_the_jwks():
    keyset = jwk.JWKSet.from_json((VECTORS / "test-keys.jwks.json").read_text())
    doc = json.loads((VECTORS / "signatures.json").read_text())
    for case in doc["cases"]:
        key = keyset.get_key(case["key_id"])
        assert (key.key_type, key.get("crv")) == ("OKP", "Ed25519")
        public = key.get_op_key("verify")
        public.verify(bytes.fromhex(case["signature_hex"]), bytes.fromhex(case["signed_bytes_hex"]))   # raises if not
        with pytest.raises(Exception):
            public.verify(bytes.fromhex(case["signature_hex"]), bytes.fromhex(case["signed_bytes_hex"]) + b"x")


def test_a_bad_key_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "k1", "org": "WCO",
                                          "valid_from": "2026-01-01T00:00:00Z"}]}))
    with pytest.raises(KeyFileError, match=r"bad.json: keys\[0\]: member 'x' decodes to 3 bytes"):
        jwks.load_jwks(path)
    path.write_text("{\n  \"keys\": [,]\n}")
    with pytest.raises(KeyFileError, match="bad.json, line 2: not valid JSON"):
        jwks.load_jwks(path)
    assert len(TrustStore(jwks.load_jwks(VECTORS / "test-keys.jwks.json"))) == 3
