"""The library services use to publish disclosure events.

Validate (pydantic), encode (Avro single-object), send with ``acks=all`` and idempotence,
and say per event whether the broker acknowledged it. Nothing is reported as delivered
that was not acknowledged by every in-sync replica. The converse is not promised: an
event reported undelivered because its acknowledgement did not arrive in time may still
have reached the broker, so replaying it is safe only because the ledger deduplicates by
``event_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

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
        timeout: float | None = None,
        **producer_config: Any,
    ) -> None:
        """``timeout`` (seconds) bounds connecting and each event's delivery; default 60."""
        self.topic = topic
        self.codec = codec or EventCodec()
        self.timeout = float(timeout if timeout is not None else 60.0)
        config = {**PRODUCER_DEFAULTS, **_timeouts(timeout), **producer_config}
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

    def send_encoded(self, key: bytes | None, value: bytes | None) -> Any:
        """Send bytes already in single-object encoding (replays, benchmarks, tests)."""
        return self._producer.send(self.topic, key=key, value=value)

    def publish(self, event: DisclosureEvent, timeout: float = 30.0) -> None:
        """Send one event and wait for its acknowledgement; raises PublishError if none."""
        try:
            self.send(event).get(timeout=timeout)
        except KafkaError as exc:
            raise PublishError(f"event {event.event_id} was not acknowledged: {exc}") from exc

    def publish_many(
        self, events: Iterable[DisclosureEvent], timeout: float | None = None
    ) -> PublishResult:
        """Send events and wait for every acknowledgement; report each one not delivered.

        If the producer cannot even queue an event (no metadata for the topic within the
        timeout: the broker is away), that event and every later one are reported
        undelivered at once instead of each waiting out the timeout again.
        """
        timeout = self.timeout if timeout is None else timeout
        result = PublishResult()
        pending: list[tuple[DisclosureEvent, Any]] = []
        gave_up: str | None = None
        for event in events:
            if gave_up is not None:
                result.undelivered.append(Undelivered(event, gave_up))
                continue
            try:
                pending.append((event, self.send(event)))
            except KafkaTimeoutError as exc:
                result.undelivered.append(Undelivered(event, str(exc)))
                gave_up = f"not sent: an earlier event could not be queued ({exc})"
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
        """Flush for up to ``timeout`` seconds, then close; whatever is still unsent is
        dropped (and was reported undelivered by :meth:`publish_many`)."""
        self._producer.close(timeout=timeout)


def publish_events(
    bootstrap_servers: str,
    topic: str,
    events: Iterable[DisclosureEvent],
    *,
    timeout: float = 60.0,
    **producer_config: Any,
) -> PublishResult:
    """Publish ``events`` and report every one the broker did not acknowledge.

    Never raises for an unreachable broker: then every event is reported undelivered,
    with the reason, so the caller can write them out and replay them later.
    """
    events = list(events)
    try:
        publisher = DisclosurePublisher(
            bootstrap_servers, topic, timeout=timeout, **producer_config
        )
    except PublishError as exc:
        log.error("%s", exc)
        return PublishResult(undelivered=[Undelivered(event, str(exc)) for event in events])
    try:
        result = publisher.publish_many(events, timeout=timeout)
    except BaseException:
        publisher.close(timeout=0)
        raise
    # Whatever is unacknowledged now is reported undelivered: do not wait for it again.
    publisher.close(timeout=timeout if result.ok else 0)
    return result


def _timeouts(timeout: float | None) -> dict[str, Any]:
    """kafka-python settings that keep connecting, queueing and delivery within ``timeout``."""
    if timeout is None:
        return {}
    total_ms = max(100, int(timeout * 1000))
    request_ms = max(50, min(30_000, total_ms // 2))
    return {
        "bootstrap_timeout_ms": total_ms,
        "max_block_ms": total_ms,
        "request_timeout_ms": request_ms,
        "delivery_timeout_ms": max(total_ms, request_ms + PRODUCER_DEFAULTS["linger_ms"]),
    }
