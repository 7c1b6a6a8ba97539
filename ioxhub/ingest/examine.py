"""What the ingest makes of one record, without any I/O: `examine(record, trust)` runs a run's per-record
path (signature, decoding, org claims, content checks, harmonization of a chunk, the row of a policy
update) and returns "accepted" or the reason the record would be refused with.

The seam of the wire fuzzer (tests/unit/wirefuzz.py, bench/fuzz.py): an exception escaping `examine` is
a record that would cost an `internal-error` in a run.
"""
from __future__ import annotations

from ioxhub.contracts import codec, content
from ioxhub.ingest.datasets import CHUNK, published_at
from ioxhub.ingest.observations import harmonize_chunk
from ioxhub.ingest.policies import POLICY, check_policy_update, policy_row
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.ingest.run import accept
from ioxhub.signing import TrustStore

ACCEPTED = "accepted"


def examine(record, trust: TrustStore | None = None) -> str:
    """"accepted", or the reason `record` (a kafka-python ConsumerRecord or alike) would be refused."""
    dead = DeadLetters()
    decoded = accept(record, dead, trust)
    if decoded is None:
        return next(letter["reason"] for letters in dead.letters.values() for letter in letters)
    try:
        content.check_event(decoded)
    except codec.ContentError as exc:
        return exc.reason
    if decoded.name == CHUNK:
        harmonize_chunk(decoded.record, f"{CHUNK}/v{decoded.version}", published_at(decoded.record["produced_at"]))
    elif decoded.name == POLICY:
        problem = check_policy_update(decoded.record)
        if problem is not None:
            return problem[0]
        policy_row(decoded)
    return ACCEPTED
