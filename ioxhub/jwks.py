"""Public signing keys as JSON Web Key Sets (RFC 7517, OKP Ed25519 keys of RFC 8037), for partners and
generic JOSE tooling.

Entry points: `jwk_of(trusted)`, `org_jwks(spec, org)` (the JWKS of one org's orgs.yaml keys),
`write_jwks(spec, out_dir, orgs)` (`ioxhub keys jwks`, infra/jwks/<org>.json), `load_jwks(path)` (a
JWKS file as trusted keys, e.g. `ioxhub conformance --keys`). Besides the standard members each key
carries `org`, `valid_from` and `valid_until` (RFC 7517 allows further members): docs/partner-contract.md.
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from ioxhub import names
from ioxhub.errors import IoxhubError, read_user_text
from ioxhub.orgs import OrgsSpec, SigningKey
from ioxhub.signing import KeyFileError, TrustedKey, TrustStore, iso_utc


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_of(trusted: TrustedKey) -> dict[str, Any]:
    """The public JWK of a key: `{"kty":"OKP","crv":"Ed25519","x":...,"kid":...}` and the ioxhub members."""
    k = trusted.key
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(k.public_key), "kid": k.key_id, "use": "sig",
            "alg": "EdDSA", "org": trusted.org, "valid_from": iso_utc(k.valid_from),
            "valid_until": iso_utc(k.valid_until) if k.valid_until else None}


def jwks_of(keys: Iterable[TrustedKey]) -> dict[str, Any]:
    return {"keys": [jwk_of(k) for k in sorted(keys, key=lambda t: (t.org, t.key.valid_from, t.key.key_id))]}


def org_jwks(spec: OrgsSpec, org: str) -> dict[str, Any]:
    """The JWKS of one org's `signing_keys` in the provisioning file."""
    return jwks_of(k for k in TrustStore.from_orgs(spec) if k.org == org)


def render(jwks: dict[str, Any]) -> str:
    """The committed text of a JWKS file (stable: sorted keys, two-space indent, final newline)."""
    return json.dumps(jwks, indent=2, sort_keys=True) + "\n"


def write_jwks(spec: OrgsSpec, out_dir: Path, orgs: Iterable[str] | None = None) -> dict[str, Path]:
    """Write `<out_dir>/<org>.json` for each org (default: all of `spec`); returns org -> file."""
    known = [o.id for o in spec.orgs]
    chosen = list(orgs) if orgs else known
    for org in chosen:
        if org not in known:
            raise IoxhubError(f"org {org!r} is not in {spec.source or 'orgs.yaml'} (known: {', '.join(known)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for org in chosen:
        path = out_dir / f"{org}.json"
        path.write_text(render(org_jwks(spec, org)), encoding="utf-8")
        written[org] = path
    return written


def load_jwks(path: Path) -> list[TrustedKey]:
    """The Ed25519 keys of a JWKS file; a malformed key is a KeyFileError naming the file, key and member."""
    path = Path(path)
    text = read_user_text(path, KeyFileError, "JWKS file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyFileError(f"{path}: expected a JWK Set, an object with a \"keys\" array")
    out = []
    for i, jwk in enumerate(doc["keys"]):
        where = f"{path}: keys[{i}]"
        try:
            if not isinstance(jwk, dict):
                raise ValueError("not an object")
            if (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519"):
                raise ValueError(f"kty {jwk.get('kty')!r} crv {jwk.get('crv')!r}: only OKP Ed25519 keys sign ioxhub events")
            for member in ("x", "kid", "org", "valid_from"):
                if not isinstance(jwk.get(member), str):
                    raise ValueError(f"member {member!r} is missing or not a string")
            public = _unb64url(jwk["x"])
            if len(public) != 32:
                raise ValueError(f"member 'x' decodes to {len(public)} bytes, not 32")
            valid_from = _time(jwk["valid_from"], "valid_from")
            valid_until = _time(jwk["valid_until"], "valid_until") if jwk.get("valid_until") else None
            key = SigningKey(names.check_id(jwk["kid"], "kid"), public, valid_from, valid_until)
            out.append(TrustedKey(names.check_org(jwk["org"], "org"), key, str(path)))
        except (ValueError, binascii.Error, IoxhubError) as exc:
            raise KeyFileError(f"{where}: {exc}") from None
    return out


def _time(text: str, member: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"member {member!r} {text!r} has no timezone")
    return t
