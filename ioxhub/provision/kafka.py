"""Kafka provisioning: topics (partitions, retention), and where the broker enforces them, SCRAM users
and least-privilege ACLs.

Entry points: `plan_topics`, `plan_kafka_auth`, `desired_acls` (pure planning), `provision_kafka` (observe
the broker, plan, apply unless dry run). Rules: docs/provisioning.md.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import kafka.errors as kerr
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ConfigResource,
                         ConfigResourceType, ResourcePattern, ResourcePatternFilter, ResourceType,
                         UserScramCredentialUpsertion)
from kafka.protocol.api_key import ApiKey

from ioxhub.kafka import make_admin
from ioxhub.orgs import OrgsSpec
from ioxhub.provision.plan import Change, ProvisionError, read_secrets, safe_text, write_private
from ioxhub.settings import Settings

KAFKA_USERS_FILE = "kafka-users.json"
ORG_USER_PREFIX = "org-"
DEFAULT_SCRAM_MECHANISM = "SCRAM-SHA-512"


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
    return [UserScramCredentialUpsertion(c.payload, mechanism, passwords[c.payload])
            for c in changes if c.area == "kafka user"]


def acl_requests(changes: Iterable[Change]) -> tuple[list, list]:
    """(ACLs to create, ACL filters to delete) as kafka-python objects."""
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


def kafka_passwords(settings: Settings, users: list[str]) -> dict[str, str]:
    """Passwords of new org users: generated, saved owner-only in <data_dir>/secrets/kafka-users.json."""
    path = settings.data_dir / "secrets" / KAFKA_USERS_FILE
    stored = read_secrets(path)
    new = {u: secrets.token_urlsafe(24) for u in users if u not in stored}
    if new:
        write_private(path, {**stored, **new})
    return {**stored, **new}


def provision_kafka(s: Settings, spec: OrgsSpec, changes: list[Change], notes: list[str], dry_run: bool) -> str:
    """Observe the broker, add its planned changes and notes to `changes` / `notes`, apply them unless
    `dry_run`; returns the broker's description (tansu or Apache Kafka, and its address)."""
    try:
        admin = make_admin(s, bootstrap_timeout_ms=10000)
    except kerr.KafkaTimeoutError:  # kafka-python 3: "Unable to bootstrap"
        raise ProvisionError(f"cannot reach Kafka at {s.kafka_bootstrap} (IOXHUB_KAFKA_BOOTSTRAP): "
                             f"start the local stack (`ioxhub stack up`) or check the address") from None
    except (kerr.KafkaError, OSError) as exc:
        raise ProvisionError(f"cannot connect to Kafka at {s.kafka_bootstrap}: {safe_text(exc, s)}") from None
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
        raise ProvisionError(f"Kafka at {s.kafka_bootstrap} refused a provisioning request: {safe_text(exc, s)}") from None
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
    found, _ = admin.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                             ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))
    return {AclRule.from_kafka(a) for a in found}


def _apply_topics(admin, changes: list[Change], s: Settings) -> None:

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
        passwords = kafka_passwords(s, [u for u in new_users if u != s.kafka_username])
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
