"""What the ingest makes of one record, without any I/O: `inspect(record, trust)` runs a run's per-record
path (signature, decoding, org claims, content checks, harmonization of a chunk, the row of a policy
update) and returns a `Verdict`: "accepted" or the reason (and detail) the record would be refused with,
and the observations harmonization would refuse. `examine` gives the reason alone.

The seam of the wire fuzzer (tests/unit/wirefuzz.py, bench/fuzz.py) and of `ioxhub conformance`
(ioxhub/conformance.py): an exception escaping `inspect` is a record that would cost an `internal-error`
in a run.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ioxhub.contracts import codec, content
from ioxhub.contracts.registry import Registry
from ioxhub.ingest.datasets import CHUNK, MANIFEST, published_at
from ioxhub.ingest.observations import harmonize_chunk
from ioxhub.ingest.policies import POLICY, check_policy_update, policy_row
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.ingest.run import accept
from ioxhub.signing import TrustStore

ACCEPTED = "accepted"
EVENTS_OF_TOPIC = {"datasets": (CHUNK, MANIFEST), "policies": (POLICY,)}   # what each handler takes


@dataclass
class Verdict:
    reason: str                                  # ACCEPTED or the dead-letter reason of the whole event
    detail: str = ""
    decoded: codec.Decoded | None = None
    refused_rows: Counter = field(default_factory=Counter)    # observation refusals by reason (chunks)
    first_refused: dict[str, str] = field(default_factory=dict)   # reason -> an example (field, value, line)


def inspect(record, trust: TrustStore | None = None, registry: Registry | None = None) -> Verdict:
    """The verdict of the ingest on `record` (a kafka-python ConsumerRecord or alike)."""
    dead = DeadLetters()
    decoded = accept(record, dead, trust, registry)
    if decoded is None:
        letter = next(letter for letters in dead.letters.values() for letter in letters)
        return Verdict(letter["reason"], letter["detail"])
    expected = EVENTS_OF_TOPIC.get(record.topic.rsplit(".", 1)[-1], ())
    if decoded.name not in expected:
        return Verdict("wrong-event-type", f"{decoded.name} v{decoded.version} event on {record.topic} "
                                           f"(expected {' or '.join(expected)})", decoded)
    try:
        content.check_event(decoded)
    except codec.ContentError as exc:
        return Verdict(exc.reason, f"{decoded.name}: {exc.detail}", decoded)
    verdict = Verdict(ACCEPTED, "", decoded)
    if decoded.name == CHUNK:
        refused = harmonize_chunk(decoded.record, f"{CHUNK}/v{decoded.version}",
                                  published_at(decoded.record["produced_at"])).refused
        for row in refused.select(["reason", "field", "value", "source_file", "source_line"]).to_pylist():
            verdict.refused_rows[row["reason"]] += 1
            verdict.first_refused.setdefault(row["reason"], f"field {row['field']} {row['value']!r} at "
                                                            f"{row['source_file']} line {row['source_line']}")
    elif decoded.name == POLICY:
        problem = check_policy_update(decoded.record)
        if problem is not None:
            return Verdict(problem[0], problem[1], decoded)
        policy_row(decoded)
    return verdict


def examine(record, trust: TrustStore | None = None) -> str:
    """"accepted", or the reason `record` (a kafka-python ConsumerRecord or alike) would be refused."""
    return inspect(record, trust).reason
