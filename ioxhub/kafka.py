"""Kafka clients configured from Settings: the only place client options are set.

Producer settings are chosen for no loss (acks=all, idempotence, unbounded retries) and throughput
(large batches; the payloads are already compact dictionary-encoded Avro). Consumers never
auto-commit: the ingest engine commits only after its objects are durable.
"""
from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from ioxhub.settings import Settings, get_settings

# Consumers that join a group: a 6 s session (kafka-python's default is 45 s). Group joins on the local
# tansu broker take ~23 s whatever the session (docs/local-stack.md): the ingest assigns partitions instead.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 2000


class _MaskSecrets(logging.Filter):
    """kafka-python logs a client's whole configuration, SASL password included, at DEBUG (e.g. "Starting
    KafkaAdminClient with configuration: {...}"): mask every password a client was given, in any record of
    its loggers. Costs nothing at INFO: records below a logger's level are never built."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


_MASK = _MaskSecrets()


def _mask_in_kafka_logs(*secrets: str | None) -> None:
    """Mask these values in every kafka-python logger (filters do not propagate to child loggers)."""
    _MASK.secrets.update(s for s in secrets if s)
    for name in [n for n in logging.Logger.manager.loggerDict if n == "kafka" or n.startswith("kafka.")]:
        logger = logging.getLogger(name)
        if _MASK not in logger.filters:
            logger.addFilter(_MASK)


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
        _mask_in_kafka_logs(password)
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
