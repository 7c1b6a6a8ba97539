"""What provisioning would send, computed without a server: topics, SCRAM users, ACLs, S3 identities, policies."""
from __future__ import annotations

import hashlib
import json

import pytest
from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourceType, ScramMechanism

from ioxhub import names
from ioxhub.orgs import load_orgs
from ioxhub.provision.kafka import (
    AclRule, ObservedTopic, acl_requests, desired_acls, org_user, plan_kafka_auth, plan_topics, scram_upsertions,
)
from ioxhub.provision.minio import MinioUser, minio_policy, minio_policy_name, normalize_policy, plan_minio
from ioxhub.provision.plan import ProvisionReport, RoleIdentity, plan_bucket
from ioxhub.provision.seaweedfs import SeaweedIdentity, plan_seaweed, seaweed_actions
from ioxhub.settings import PROJECT_ROOT

SPEC = load_orgs(PROJECT_ROOT / "infra" / "orgs.yaml")
HUB = "hub-ingest"
GROUP = "ioxhub-ingest"


def _observed_exact() -> dict[str, ObservedTopic]:
    return {t.name: ObservedTopic(t.partitions, t.retention_ms) for t in SPEC.topics}


# ------------------------------------------------------------------------------------------- topics
def test_every_topic_is_created_on_an_empty_broker():
    changes, notes = plan_topics(SPEC, {})
    assert [c.target for c in changes] == [t.name for t in SPEC.topics]
    assert {c.action for c in changes} == {"create"}
    assert changes[0].payload.partitions == SPEC.orgs[0].datasets.partitions
    assert notes == []


def test_matching_topics_need_nothing():
    assert plan_topics(SPEC, _observed_exact()) == ([], [])


def test_partition_and_retention_drift():
    who, wco, dl = SPEC.org("WHO").datasets, SPEC.org("WCO").datasets, SPEC.dead_letter
    observed = _observed_exact()
    observed[who.name] = ObservedTopic(who.partitions - 2, who.retention_ms)        # fewer: grow
    observed[wco.name] = ObservedTopic(wco.partitions + 4, wco.retention_ms)        # more: report only
    observed[dl.name] = ObservedTopic(dl.partitions, 1234)                          # retention drift: alter
    changes, notes = plan_topics(SPEC, observed)
    assert [(c.target, c.action, c.detail) for c in changes] == [
        (who.name, "add partitions", f"{who.partitions - 2} -> {who.partitions}"),
        (dl.name, "set retention.ms", f"1234 -> {dl.retention_ms}"),
    ]
    assert len(notes) == 1 and wco.name in notes[0] and "cannot remove partitions" in notes[0]

    changes, notes = plan_topics(SPEC, observed, can_add_partitions=False)
    assert [c.action for c in changes] == ["set retention.ms"]
    assert any("cannot add partitions" in n and who.name in n for n in notes)


# ------------------------------------------------------------------------------------------- kafka auth
def test_acls_give_each_org_write_on_its_own_topics_only():
    rules = desired_acls(SPEC, HUB, GROUP)
    for org in SPEC.orgs:
        mine = {r for r in rules if r.principal == f"User:{org_user(org.id)}"}
        assert mine == {AclRule(f"User:{org_user(org.id)}", "TOPIC", t, "LITERAL", "WRITE")
                        for t in (names.datasets_topic(org.id), names.policies_topic(org.id))}
    hub = {r for r in rules if r.principal == f"User:{HUB}"}
    reads = {r.resource_name for r in hub if r.resource_type == "TOPIC" and r.operation == "READ"}
    assert reads == {t.name for org in SPEC.orgs for t in org.topics}
    assert {r.resource_name for r in hub if r.operation == "WRITE"} == {names.DEAD_LETTER_TOPIC}
    assert AclRule(f"User:{HUB}", "GROUP", GROUP, "PREFIXED", "READ") in hub
    assert all(r.permission == "ALLOW" and r.host == "*" for r in rules)
    assert len(rules) == len(hub) + 2 * len(SPEC.orgs)


def test_fresh_broker_gets_every_user_and_acl():
    changes = plan_kafka_auth(SPEC, hub_user=HUB, admin_user="admin", consumer_group=GROUP,
                              existing_users=["admin"], existing_acls=[])
    users = [c.payload for c in changes if c.area == "kafka user"]
    assert users == [org_user(o.id) for o in SPEC.orgs] + [HUB]
    assert "org-who" in users and "admin" not in users
    added = {c.payload for c in changes if c.area == "kafka acl"}
    assert added == desired_acls(SPEC, HUB, GROUP)
    assert all(c.action == "add" for c in changes if c.area == "kafka acl")


def test_second_run_changes_nothing_and_stale_acls_are_removed():
    wanted = desired_acls(SPEC, HUB, GROUP)
    users = [org_user(o.id) for o in SPEC.orgs] + [HUB, "admin"]
    assert plan_kafka_auth(SPEC, hub_user=HUB, admin_user="admin", consumer_group=GROUP,
                           existing_users=users, existing_acls=wanted) == []

    stale = AclRule("User:org-who", "TOPIC", names.datasets_topic("WCO"), "LITERAL", "WRITE")  # WHO into WCO
    foreign = AclRule("User:someone-else", "TOPIC", "other", "LITERAL", "READ")                # not ours: kept
    changes = plan_kafka_auth(SPEC, hub_user=HUB, admin_user="admin", consumer_group=GROUP,
                              existing_users=users, existing_acls=wanted | {stale, foreign})
    assert [(c.action, c.payload) for c in changes] == [("remove", stale)]


def test_hub_user_equal_to_admin_is_not_created():
    changes = plan_kafka_auth(SPEC, hub_user="admin", admin_user="admin", consumer_group=GROUP,
                              existing_users=["admin"], existing_acls=[])
    assert "admin" not in [c.payload for c in changes if c.area == "kafka user"]


def test_what_is_sent_to_kafka():
    changes = plan_kafka_auth(SPEC, hub_user=HUB, admin_user="admin", consumer_group=GROUP,
                              existing_users=[], existing_acls=[AclRule("User:org-old", "TOPIC", "x", "LITERAL", "WRITE")])
    passwords = {u: f"pw-{u}" for u in [org_user(o.id) for o in SPEC.orgs] + [HUB]}
    upserts = scram_upsertions(changes, passwords, "SCRAM-SHA-512")
    assert len(upserts) == len(SPEC.orgs) + 1
    who = next(u for u in upserts if u.user == "org-who")
    assert who.mechanism == ScramMechanism.SCRAM_SHA_512 and who.iterations == 4096
    assert who.salted_password == hashlib.pbkdf2_hmac("sha512", b"pw-org-who", who.salt, 4096)

    create, delete = acl_requests(changes)
    assert len(create) == len(desired_acls(SPEC, HUB, GROUP))
    who_acl = next(a for a in create if a.principal == "User:org-who" and a.resource_pattern.resource_name == names.datasets_topic("WHO"))
    assert who_acl.operation == ACLOperation.WRITE and who_acl.permission_type == ACLPermissionType.ALLOW
    assert who_acl.resource_pattern.resource_type == ResourceType.TOPIC
    assert who_acl.resource_pattern.pattern_type == ACLResourcePatternType.LITERAL
    group = next(a for a in create if a.resource_pattern.resource_type == ResourceType.GROUP)
    assert group.resource_pattern.pattern_type == ACLResourcePatternType.PREFIXED and group.principal == f"User:{HUB}"
    assert [(f.principal, f.resource_pattern.resource_name) for f in delete] == [("User:org-old", "x")]
    assert AclRule.from_kafka(who_acl) == AclRule("User:org-who", "TOPIC", names.datasets_topic("WHO"), "LITERAL", "WRITE")


# ------------------------------------------------------------------------------------------- storage
def _identities(hub_key="HUBKEY", analyst_key="ANKEY"):
    roles = SPEC.storage.roles
    return [RoleIdentity(roles["hub"], "hub", hub_key, "hub-secret"),
            RoleIdentity(roles["analyst"], "analyst", analyst_key, "analyst-secret")]


def test_bucket_plan():
    assert plan_bucket("ioxhub", True) == []
    assert [c.action for c in plan_bucket("ioxhub", False)] == ["create"]


def test_seaweed_actions_per_role():
    roles = SPEC.storage.roles
    assert seaweed_actions(roles["hub"], "b") == {"Read:b", "List:b", "Write:b", "Tagging:b"}
    assert seaweed_actions(roles["analyst"], "b") == {"Read:b/curated/*", "List:b/curated/*",
                                                      "Read:b/catalog/*", "List:b/catalog/*"}


def test_seaweed_create_then_nothing():
    hub_static = SeaweedIdentity("hub", frozenset(seaweed_actions(SPEC.storage.roles["hub"], "b")),
                                 (("HUBKEY", "hub-secret"),), static=True)
    changes, notes = plan_seaweed("b", _identities(), {"hub": hub_static})
    assert notes == []
    assert [(c.target, c.action) for c in changes] == [("analyst", "create")]
    commands = changes[0].payload
    assert "s3.configure -user=analyst -actions=List,Read -buckets=b/catalog/* -apply" in commands
    assert "s3.configure -user=analyst -actions=List,Read -buckets=b/curated/* -apply" in commands
    assert "s3.configure -user=analyst -access_key=ANKEY -secret_key=analyst-secret -apply" in commands
    assert "analyst-secret" not in changes[0].detail

    analyst = SeaweedIdentity("analyst", frozenset(seaweed_actions(SPEC.storage.roles["analyst"], "b")),
                              (("ANKEY", "analyst-secret"),))
    assert plan_seaweed("b", _identities(), {"hub": hub_static, "analyst": analyst}) == ([], [])


def test_seaweed_drift_revokes_grants_and_rekeys():
    drifted = SeaweedIdentity("analyst", frozenset({"Read:b/curated/*", "List:b/curated/*", "Write:b/raw/*"}),
                              (("OLDKEY", "old"),))
    changes, _ = plan_seaweed("b", _identities()[1:], {"analyst": drifted})
    by_action = {c.action: c.payload for c in changes}
    assert by_action["grant"] == ("s3.configure -user=analyst -actions=List,Read -buckets=b/catalog/* -apply",)
    assert by_action["revoke"] == ("s3.configure -user=analyst -actions=Write -buckets=b/raw/* -delete -apply",)
    assert by_action["set keys"] == ("s3.configure -user=analyst -access_key=OLDKEY -delete -apply",
                                     "s3.configure -user=analyst -access_key=ANKEY -secret_key=analyst-secret -apply")


def test_analyst_minio_policy_reads_curated_and_catalog_only():
    doc = minio_policy(SPEC.storage.roles["analyst"], "ioxhub")
    allowed = {(a, r) for st in doc["Statement"] for a in st["Action"] for r in st["Resource"]}
    object_actions = {(a, r) for a, r in allowed if r.startswith("arn:aws:s3:::ioxhub/")}
    assert object_actions == {(a, f"arn:aws:s3:::ioxhub/{z}/*") for a in ("s3:GetObject", "s3:GetObjectTagging")
                              for z in ("curated", "catalog")}
    listing = next(st for st in doc["Statement"] if st["Action"] == ["s3:ListBucket"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["curated/*", "catalog/*"]}}
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a, _ in allowed)

    hub = minio_policy(SPEC.storage.roles["hub"], "ioxhub")
    hub_allowed = {(a, r) for st in hub["Statement"] for a in st["Action"] for r in st["Resource"]}
    assert ("s3:PutObject", "arn:aws:s3:::ioxhub/*") in hub_allowed and ("s3:GetObject", "arn:aws:s3:::ioxhub/*") in hub_allowed


def test_minio_fresh_server_gets_policies_users_and_attachments():
    changes = plan_minio("ioxhub", _identities(), users={}, policies={}, root_access_key="ROOT")
    calls = [c.payload[0:2] if c.payload[0] != "user_add" else ("user_add", c.payload[1]) for c in changes]
    assert calls == [("policy_add", "ioxhub-hub"), ("user_add", "HUBKEY"), ("attach_policy", "ioxhub-hub"),
                     ("policy_add", "ioxhub-analyst"), ("user_add", "ANKEY"), ("attach_policy", "ioxhub-analyst")]
    attach = [c.payload for c in changes if c.payload[0] == "attach_policy"]
    assert attach == [("attach_policy", "ioxhub-hub", "HUBKEY"), ("attach_policy", "ioxhub-analyst", "ANKEY")]
    assert all("secret" not in c.detail for c in changes)


def test_minio_second_run_and_drift():
    # MinIO hands policies back re-serialized: keys and lists in another order must not count as drift.
    def reserialized(doc):
        return json.dumps({"Statement": [dict(reversed(list(st.items()))) for st in reversed(doc["Statement"])],
                           "Version": doc["Version"]})
    policies = {minio_policy_name(r): reserialized(minio_policy(SPEC.storage.roles[r], "ioxhub")) for r in ("hub", "analyst")}
    users = {"HUBKEY": MinioUser(frozenset({"ioxhub-hub"}), True), "ANKEY": MinioUser(frozenset({"ioxhub-analyst"}), True)}
    assert plan_minio("ioxhub", _identities(), users, policies, root_access_key="ROOT") == []

    users["ANKEY"] = MinioUser(frozenset(), False)
    policies["ioxhub-analyst"] = json.dumps(minio_policy(SPEC.storage.roles["hub"], "ioxhub"))
    changes = plan_minio("ioxhub", _identities(), users, policies, root_access_key="ROOT")
    assert [(c.target, c.action) for c in changes] == [("ioxhub-analyst", "update"), ("analyst", "set keys"),
                                                       ("analyst", "attach policy")]


def test_minio_root_hub_needs_no_user():
    changes = plan_minio("ioxhub", _identities(hub_key="ROOT"), users={}, policies={}, root_access_key="ROOT")
    assert not any(c.target == "hub" for c in changes)


def test_normalize_policy_accepts_wrapped_documents():
    doc = minio_policy(SPEC.storage.roles["analyst"], "ioxhub")
    assert normalize_policy({"PolicyName": "x", "Policy": doc}) == normalize_policy(json.dumps(doc))


@pytest.mark.parametrize("changes,applied,expected", [
    ([], True, "no changes"),
    ([object()], True, "1 change applied"),
    ([object(), object()], False, "2 changes would be applied (dry run"),
])
def test_report_summary(changes, applied, expected):
    assert ProvisionReport("k", "s", changes, [], applied).summary.startswith(expected)
