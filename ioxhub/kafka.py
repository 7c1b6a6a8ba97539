"""Kafka clients configured from Settings: the only place client options are set.

Producer settings are chosen for no loss (acks=all, idempotence, unbounded retries) and throughput
(large batches; the payloads are already compact dictionary-encoded Avro). Consumers never
auto-commit: the ingest engine commits only after its objects are durable.
"""
from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from ioxhub.settings import Settings, get_settings

# Against tansu, kafka-python's default 45 s session makes a group join wait ~23 s (platform-facts).
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 2000


def common_config(settings: Settings | None = None, *, admin: bool = False) -> dict[str, Any]:
    """bootstrap + security options shared by every client."""
    s = settings or get_settings()
    config: dict[str, Any] = {
        "bootstrap_servers": s.kafka_bootstrap.split(","),
        "security_protocol": s.kafka_security_protocol,
    }
    if s.kafka_security_protocol.startswith("SASL"):
        user, password = (s.kafka_admin_username, s.kafka_admin_password) if admin else (s.kafka_username, s.kafka_password)
        config.update(sasl_mechanism=s.kafka_sasl_mechanism or "SCRAM-SHA-512",
                      sasl_plain_username=user, sasl_plain_password=password)
    return config


def make_producer(settings: Settings | None = None, **overrides: Any) -> KafkaProducer:
    config = dict(
        common_config(settings),
        acks="all",
        enable_idempotence=True,
        retries=2147483647,
        max_in_flight_requests_per_connection=5,
        linger_ms=5,
        batch_size=1 << 20,
        max_request_size=8 << 20,
    )
    config.update(overrides)
    return KafkaProducer(**config)


def make_consumer(group_id: str | None, settings: Settings | None = None, **overrides: Any) -> KafkaConsumer:
    config = dict(
        common_config(settings),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
    )
    config.update(overrides)
    return KafkaConsumer(**config)


def make_admin(settings: Settings | None = None, **overrides: Any) -> KafkaAdminClient:
    config = dict(common_config(settings, admin=True), request_timeout_ms=15000)
    config.update(overrides)
    return KafkaAdminClient(**config)
