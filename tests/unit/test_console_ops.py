"""The operations commands' terminal and --json shapes, from made-up results (no server)."""
from __future__ import annotations

import datetime as dt
import json

from app.console.ops import letters_json, print_check, print_letter, print_letters, print_replay, print_retry

AT = dt.datetime(2026, 12, 6, 3, 12, tzinfo=dt.timezone.utc)
LETTER = {"id": "ioxhub.who.datasets:0:7:unknown-key", "quarantined_at": AT, "reason": "unknown-key", "org": "WHO",
          "topic": "ioxhub.who.datasets", "partition": 0, "offset": 7, "event_id": "e1", "observations": 0,
          "detail": "key 'k' (claimed by WHO) is in no trust store", "retryable": True, "payload": b"\xc3\x01",
          "headers": {"ioxhub-org": b"WHO"}, "object": "quarantine/events/x.avro",
          "retries": [{"at": "2026-12-06T04:00:00+00:00", "run_id": "retry-1", "outcome": "applied"}]}


def test_letters_json_has_stable_keys_and_no_bytes():
    (shape,) = letters_json([LETTER])
    assert shape["last_retry"] == "applied" and shape["retries"] == 1
    assert "payload" not in shape and "headers" not in shape
    json.dumps(shape, default=str)


def test_renderers_print_the_facts(capsys):
    print_letters([LETTER])
    print_letter([{**LETTER, "headers": {"ioxhub-org": "WHO"}, "payload_bytes": 2, "traceback": "Traceback...\nValueError: x",
                   "release": {"org": "WHO", "dataset": "D", "release_id": "R1", "event": "dataset_chunk"}}])
    print_retry({"run_id": "retry-1", "letters": 1, "outcomes": {"quarantined": 1},
                 "by_letter": [{"id": LETTER["id"], "outcome": "quarantined", "reason": "unknown-key", "detail": "still"}]})
    print_replay({"org": "WHO", "dataset": "D", "run_id": "replay-1", "events": {"read": 3, "refused": 0},
                  "releases": {"selected": 2, "replayed": 1, "unchanged": 0, "skipped": 1},
                  "observations": {"added": 0, "changed": 2, "removed": 0, "refused_before": 0, "refused_after": 0},
                  "by_release": [{"release_id": "R2", "status": "not-applied", "detail": "never applied"}]})
    print_check({"ok": False, "problems": [{"check": "lag", "subject": "t", "message": "topic t lag 5 records > 0"}]}, False)
    print_check({"ok": True, "problems": []}, False)
    out = capsys.readouterr().out
    for text in ("unknown-key", "1x, applied", "release:     R1 of WHO/D", "ValueError: x", "1 quarantined",
                 "1 replayed", "R2: not-applied", "lag: topic t lag 5 records > 0", "\nok\n"):
        assert text in out, text
