"""The policy_update contract: its encoding and its content check."""
from __future__ import annotations

import datetime as dt

import pytest

from ioxhub.contracts import codec, content, policy_update
from ioxhub.contracts.codec import ContentError


def update(**change) -> dict:
    record = {"event_id": "p1", "org": "WCO", "instrument_id": "WCO-FOS-ECOM", "issuing_org": "WCO",
              "partner_orgs": ["UPU"], "title": "Framework of standards on e-commerce", "instrument_type": "FRAMEWORK",
              "binding": False, "action": "ADOPTED", "version": "1", "effective_date": dt.date(2018, 6, 1),
              "member_countries": ["FRA"], "themes": [], "related_indicators": [], "url": None,
              "produced_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}
    record.update(change)
    return record


def test_encode_round_trip_and_a_sound_update_passes():
    decoded = codec.decode(policy_update.encode(update()))
    assert decoded.name == policy_update.NAME and decoded.record == update()
    content.check_event(decoded)


@pytest.mark.parametrize("change, reason, field", [
    ({"effective_date": dt.date(9999, 12, 31)}, policy_update.BAD_POLICY, "field effective_date"),
    ({"effective_date": dt.date(1799, 12, 31)}, policy_update.BAD_POLICY, "field effective_date"),
    ({"title": "  "}, policy_update.BAD_POLICY, "field title"),
    ({"version": ""}, policy_update.BAD_POLICY, "field version"),
    ({"partner_orgs": ["UPU", "../x"]}, codec.BAD_NAME, "partner_orgs entry"),
])
def test_unusable_updates_are_refused_with_reason_and_field(change, reason, field):
    decoded = codec.decode(policy_update.encode(update(**change)))
    with pytest.raises(ContentError) as exc:
        content.check_event(decoded)
    assert exc.value.reason == reason and field in exc.value.detail, exc.value


def test_events_of_other_types_pass_the_content_check():
    content.check_event(codec.Decoded("dead_letter", 1, bytes(8), {"title": ""}, "single-object", 10))
