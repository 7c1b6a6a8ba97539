"""The publisher's Kafka sender bounds what it hands to the producer before the broker acknowledges it.

kafka-python 3 has no `buffer.memory` limit: without this back-pressure a publish faster than the broker
would hold the whole release in memory. The producer is a stand-in here (pure logic); the real broker
path is covered by tests/integration/test_publish.py.
"""
from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError

from producers import sender as sender_mod
from producers.summary import PublishError


class FakeFuture:
    def __init__(self, log: list, n: int, error: Exception | None = None):
        self.log, self.n, self.error = log, n, error

    def get(self, timeout=None):
        self.log.append(("ack", self.n))
        if self.error:
            raise self.error


class FakeProducer:
    def __init__(self, fail_at: int | None = None):
        self.log: list = []
        self.fail_at = fail_at

    def send(self, topic, key, value, headers):
        n = sum(1 for e in self.log if e[0] == "send")
        self.log.append(("send", n))
        return FakeFuture(self.log, n, KafkaTimeoutError("no ack") if n == self.fail_at else None)

    def flush(self, timeout=None):
        self.log.append(("flush",))


def sender(producer: FakeProducer) -> sender_mod.Sender:
    return sender_mod.Sender("ioxhub.wto.datasets", "WTO", producer)


def test_sender_waits_for_the_oldest_ack_beyond_the_bound():
    producer = FakeProducer()
    s = sender(producer)
    bound = sender_mod.MAX_UNACKNOWLEDGED
    for i in range(bound + 3):
        s.send(b"k", b"v", f"{i:064x}", b"\0" * 8, "dataset_chunk", 0)
    sends_before_first_ack = producer.log.index(("ack", 0))
    assert sends_before_first_ack == bound + 1            # the (bound+1)-th send waits for event 0
    assert [e for e in producer.log if e[0] == "ack"] == [("ack", 0), ("ack", 1), ("ack", 2)]
    s.settle()
    assert [e[1] for e in producer.log if e[0] == "ack"] == list(range(bound + 3))   # each checked once


def test_a_failed_ack_stops_the_publish_with_the_event_named():
    s = sender(FakeProducer(fail_at=0))
    with pytest.raises(PublishError, match=f"event {0:012x} was not stored"):
        for i in range(sender_mod.MAX_UNACKNOWLEDGED + 1):
            s.send(b"k", b"v", f"{i:064x}", b"\0" * 8, "dataset_chunk", 0)
