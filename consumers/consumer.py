"""The Kafka side of ingestion: assign every partition, resume from the ledger's offsets,
poll in batches, hand each batch to the :class:`~consumers.pipeline.Ingestor`.

Kafka's committed group offsets are never read: the ledger says where to resume.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from consumers.pipeline import Ingestor, IngestStats, SourceMessage
from schemas.errors import ConsumeError

log = logging.getLogger(__name__)

CONSUMER_DEFAULTS = {
    "enable_auto_commit": False,
    "group_id": None,
    "auto_offset_reset": "earliest",
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 200,
    "reconnect_backoff_ms": 200,
    "reconnect_backoff_max_ms": 5_000,
}


@dataclass
class ConsumeStats(IngestStats):
    batches: int = 0
    partitions: list[int] = field(default_factory=list)


def _connect(bootstrap_servers: str, max_batch: int) -> KafkaConsumer:
    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap_servers, max_poll_records=max_batch, **CONSUMER_DEFAULTS
        )
    except KafkaError as exc:
        raise ConsumeError(
            f"cannot reach Kafka at {bootstrap_servers}: {exc}; start the local broker with "
            "`disclosure-ledger broker start` or set KAFKA_BOOTSTRAP_SERVERS"
        ) from exc


def consume(
    bootstrap_servers: str,
    topic: str,
    ingestor: Ingestor,
    *,
    until_idle: float | None = None,
    max_batch: int = 10_000,
    linger: float = 0.2,
    stop: threading.Event | None = None,
) -> ConsumeStats:
    """Ingest ``topic`` until ``stop`` is set or nothing new arrived for ``until_idle`` s.

    Every batch is one ledger transaction; a stop between batches loses nothing.
    """
    stop = stop or threading.Event()
    stats = ConsumeStats()
    consumer = _connect(bootstrap_servers, max_batch)
    assigned: set[int] = set()
    last_refresh = 0.0
    last_activity = time.monotonic()
    try:
        while not stop.is_set():
            if time.monotonic() - last_refresh > (1.0 if not assigned else 10.0):
                assigned = _assign(consumer, topic, ingestor, assigned)
                last_refresh = time.monotonic()
            messages = _poll_batch(consumer, max_batch, linger) if assigned else []
            if messages:
                result = ingestor.ingest(messages)
                stats.add(result)
                stats.batches += 1
                last_activity = time.monotonic()
                log.info(
                    "batch of %d: %d accepted, %d duplicate, %d quarantined",
                    result.total,
                    result.accepted,
                    result.duplicates,
                    result.quarantined,
                )
                continue
            if until_idle is not None and time.monotonic() - last_activity >= until_idle:
                break
            if not assigned:
                stop.wait(0.5)
    finally:
        consumer.close()
    stats.partitions = sorted(assigned)
    return stats


def _assign(
    consumer: KafkaConsumer, topic: str, ingestor: Ingestor, assigned: set[int]
) -> set[int]:
    """Assign every partition of the topic; new ones start where the ledger says."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions or set(partitions) == assigned:
        return assigned
    stored = ingestor.ledger.stored_offsets(topic)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    for tp in tps:
        if tp.partition in stored:
            consumer.seek(tp, stored[tp.partition])
        else:
            consumer.seek_to_beginning(tp)
    log.info("assigned %s partitions %s; resuming at %s", topic, sorted(partitions), stored)
    return set(partitions)


def _poll_batch(consumer: KafkaConsumer, max_batch: int, linger: float) -> list[SourceMessage]:
    """Poll until ``max_batch`` messages or ``linger`` seconds; in offset order per partition."""
    messages: list[SourceMessage] = []
    deadline = time.monotonic() + linger
    while len(messages) < max_batch:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        polled = consumer.poll(
            timeout_ms=int(remaining * 1000), max_records=max_batch - len(messages)
        )
        if not polled:
            break
        for records in polled.values():
            messages.extend(
                SourceMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records
            )
    return messages
