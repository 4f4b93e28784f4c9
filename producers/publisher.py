"""The library services use to publish disclosure events.

Validate (pydantic), encode (Avro single-object), send with ``acks=all`` and idempotence,
and say per event whether the broker acknowledged it. Nothing is reported as delivered
that was not acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from schemas import DEFAULT_TOPIC
from schemas.codec import EventCodec
from schemas.errors import PublishError
from schemas.model import DisclosureEvent

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "max_request_size": 4 * 1024 * 1024,
    "retries": 2**31 - 1,
    "delivery_timeout_ms": 60_000,
}


@dataclass(frozen=True)
class Undelivered:
    event: DisclosureEvent
    error: str


@dataclass
class PublishResult:
    delivered: int = 0
    undelivered: list[Undelivered] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.undelivered


class DisclosurePublisher:
    """Publishes DisclosureEvents to a Kafka topic; key = subject id.

    Use as a context manager, or call :meth:`close`, which flushes.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = DEFAULT_TOPIC,
        *,
        codec: EventCodec | None = None,
        **producer_config: Any,
    ) -> None:
        self.topic = topic
        self.codec = codec or EventCodec()
        config = {**PRODUCER_DEFAULTS, **producer_config}
        try:
            self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers, **config)
        except KafkaError as exc:
            raise PublishError(
                f"cannot reach Kafka at {bootstrap_servers}: {exc}; start the local broker "
                "with `disclosure-ledger broker start` or set KAFKA_BOOTSTRAP_SERVERS"
            ) from exc

    def __enter__(self) -> DisclosurePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, event: DisclosureEvent) -> Any:
        """Encode and send one event; returns kafka-python's future for its acknowledgement."""
        value = self.codec.encode(event.to_avro())
        return self._producer.send(self.topic, key=event.subject.id.encode(), value=value)

    def send_encoded(self, key: bytes, value: bytes) -> Any:
        """Send bytes already in single-object encoding (replays, benchmarks)."""
        return self._producer.send(self.topic, key=key, value=value)

    def publish(self, event: DisclosureEvent, timeout: float = 30.0) -> None:
        """Send one event and wait for its acknowledgement; raises PublishError if none."""
        try:
            self.send(event).get(timeout=timeout)
        except KafkaError as exc:
            raise PublishError(f"event {event.event_id} was not acknowledged: {exc}") from exc

    def publish_many(
        self, events: Iterable[DisclosureEvent], timeout: float = 60.0
    ) -> PublishResult:
        """Send events and wait for every acknowledgement; report each one not delivered."""
        result = PublishResult()
        pending: list[tuple[DisclosureEvent, Any]] = []
        for event in events:
            try:
                pending.append((event, self.send(event)))
            except KafkaError as exc:
                result.undelivered.append(Undelivered(event, str(exc)))
            if len(pending) >= 50_000:
                self._settle(pending, result, timeout)
                pending = []
        self._settle(pending, result, timeout)
        return result

    def _settle(
        self, pending: list[tuple[DisclosureEvent, Any]], result: PublishResult, timeout: float
    ) -> None:
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as exc:
            log.warning("flush did not complete: %s", exc)
        for event, future in pending:
            if future.succeeded():
                result.delivered += 1
            else:
                error = future.exception if future.is_done else "not acknowledged before timeout"
                result.undelivered.append(Undelivered(event, str(error)))

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        self._producer.close(timeout=timeout)
