"""The Kafka sender of a publish: `Sender.connect(settings, topic, org)`, then `send`, `settle`, `close`.

Each event goes out with the codec's headers and, when the org has a signing key under
`<data_dir>/keys/<ORG>/`, an Ed25519 signature. At most `MAX_UNACKNOWLEDGED` events are in flight
before the oldest must be acknowledged (kafka-python has no memory bound of its own); every send is
checked, a failure is a `PublishError`, never silent.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from kafka.errors import KafkaError

from ioxhub import keys, signing
from ioxhub.contracts import codec
from ioxhub.kafka import make_producer
from producers.summary import PublishError
from ioxhub.settings import Settings

SEND_TIMEOUT_S = 120.0
MAX_UNACKNOWLEDGED = 8       # chunks (~1 MB each) handed to Kafka before the oldest must be acknowledged
MAX_BLOCK_MS = 20_000


class Sender:
    """One Kafka producer for a publish: sends with headers (+ signature), then checks every future."""

    def __init__(self, topic: str, org: str, producer, signer: signing.Signer | None = None):
        self.topic, self.org, self.producer, self.signer = topic, org, producer, signer
        self.key_id = signer.key_id if signer else None
        self._pending: deque[tuple[str, Any]] = deque()

    @classmethod
    def connect(cls, settings: Settings, topic: str, org: str) -> "Sender":
        """A sender on the settings' broker, signing with the org's newest key if it has one; a
        `PublishError` naming the broker when it cannot be reached or the topic is missing."""
        signer = org_signer(org, settings)
        try:
            producer = make_producer(settings, max_block_ms=MAX_BLOCK_MS)
        except KafkaError as exc:
            raise PublishError(f"cannot connect to Kafka at {settings.kafka_bootstrap} "
                               f"(is the stack up? `ioxhub stack up`): {exc}") from None
        try:
            if not producer.partitions_for(topic):
                raise PublishError(f"topic {topic} has no partitions on {settings.kafka_bootstrap}")
        except KafkaError as exc:
            producer.close(timeout=2)
            raise PublishError(f"topic {topic} is not available on {settings.kafka_bootstrap} "
                               f"(provisioned? `ioxhub provision`): {type(exc).__name__}") from None
        return cls(topic, org, producer, signer)

    def send(self, key: bytes, value: bytes, event_id: str, fingerprint: bytes, schema: str, time_ms: int) -> None:
        """Send one framed event of schema `schema` produced at `time_ms` (epoch ms; its ce_time)."""
        headers = codec.record_headers(self.org, fingerprint, event_id, schema, time_ms)
        if self.signer is not None:
            headers = self.signer.sign(value, headers, self.topic)
        try:
            future = self.producer.send(self.topic, key=key, value=value, headers=headers)
        except KafkaError as exc:
            raise PublishError(f"sending event {event_id[:12]} to {self.topic} failed: {exc}") from None
        self._pending.append((event_id, future))
        while len(self._pending) > MAX_UNACKNOWLEDGED:     # back-pressure: bounded memory
            self._check(*self._pending.popleft())

    def settle(self) -> None:
        """Wait until every event sent so far is acknowledged; raise on the first failure."""
        try:
            self.producer.flush(timeout=SEND_TIMEOUT_S)
        except KafkaError as exc:
            raise PublishError(f"Kafka did not acknowledge the events within {SEND_TIMEOUT_S:.0f} s: {exc}") from None
        while self._pending:
            self._check(*self._pending.popleft())

    def _check(self, event_id: str, future) -> None:
        try:
            future.get(timeout=SEND_TIMEOUT_S)
        except KafkaError as exc:
            raise PublishError(f"event {event_id[:12]} was not stored by Kafka ({self.topic}): {exc!r}; "
                               "nothing is visible downstream until the release is published again") from None

    def close(self) -> None:
        self.producer.close(timeout=10)

    def __enter__(self) -> "Sender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def org_signer(org: str, settings: Settings) -> signing.Signer | None:
    """The org's newest signing key under <data_dir>/keys/<ORG>/, or None when it has none."""
    org_dir = keys.keys_dir(settings.data_dir) / org
    if not org_dir.is_dir() or not any(org_dir.glob("*.key")):
        return None
    return keys.load_signer(org, settings=settings)
