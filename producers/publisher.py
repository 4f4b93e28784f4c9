"""The library services use to publish disclosure events.

Check, encode (Avro single-object; see ``producers/encoding.py``), send with ``acks=all``
and idempotence, and say per event whether the broker acknowledged it. An event that
breaks the model's rules (one built with ``model_construct``, say) is refused with
:class:`~schemas.errors.EventValidationError` naming the event, the field and the fix,
and is never sent. Nothing is reported as delivered that was not acknowledged by every
in-sync replica. The converse is not promised: an event reported undelivered because its
acknowledgement did not arrive in time may still have reached the broker, so replaying it
is safe only because the ledger deduplicates by ``event_id``.

Opt-in, ``recipients=`` a recipient registry (``reference.load_reference()``) checks each
event's recipient before it is sent (see ``producers/recipient_check.py``): an
unregistered one is warned about, or, with ``strict=True``, refused and never sent.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner.default import DefaultPartitioner, murmur2

from producers.encoding import EventEncoder
from producers.errors import PublishError, UnregisteredRecipientError
from producers.recipient_check import RecipientCheck, RecipientRegistry
from schemas import DEFAULT_TOPIC
from schemas.codec import EventCodec
from schemas.model import DisclosureEvent

log = logging.getLogger(__name__)


class KeyHashPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """kafka-python's default partitioning (murmur2 of the key, as the Java client does),
    remembering each key's hash: the pure-Python murmur2 and the per-record bookkeeping
    around it are a fifth of kafka-python's send time, and subject ids repeat. Records
    without a key are left to the default partitioner."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._max_keys = max_keys
        self._hashes: dict[bytes, int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if serialized_key is None:
            return int(
                super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            )
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        hashed = self._hashes.get(serialized_key)
        if hashed is None:
            hashed = murmur2(serialized_key) & 0x7FFFFFFF
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()
            self._hashes[serialized_key] = hashed
        return int(sorted(partitions)[hashed % len(partitions)])


# linger_ms: kafka-python's per-request work (in its sender thread, which shares the GIL
# with the caller) is paid per batch; 50 ms gives batches of hundreds of records at the
# rates one process reaches, where 5 ms gave tens. publish() flushes, so a single event
# does not wait it out.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 50,
    "batch_size": 256 * 1024,
    "max_request_size": 4 * 1024 * 1024,
    "retries": 2**31 - 1,
    "delivery_timeout_ms": 60_000,
    "partitioner": KeyHashPartitioner(),
}

# publish_many encodes this many events, then sends them ...
_CHUNK = 1_000
# ... and waits for acknowledgements when this many are outstanding, bounding what it holds.
_MAX_UNSETTLED = 50_000


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
        recipients: RecipientRegistry | None = None,
        strict: bool = False,
        **producer_config: Any,
    ) -> None:
        """``timeout`` (seconds) bounds connecting and each event's delivery; default 60.

        ``recipients``: check each event's recipient against this registry (opt-in; e.g.
        ``reference.load_reference()``); an unregistered one is logged as a warning, or,
        with ``strict=True``, refused and not sent.
        """
        if strict and recipients is None:
            raise ValueError(
                "strict=True checks recipients against a registry: pass recipients= too "
                "(e.g. reference.load_reference())"
            )
        self.recipient_check = (
            None if recipients is None else RecipientCheck(recipients, strict=strict)
        )
        self.topic = topic
        self.codec = codec or EventCodec()
        self._encoder = EventEncoder(self.codec)
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
        """Encode and send one event; returns kafka-python's future for its acknowledgement.

        Raises :class:`EventValidationError`, sending nothing, if the event is invalid, and
        :class:`UnregisteredRecipientError` if the strict recipient check refuses it.
        """
        if self.recipient_check is not None:
            refusal = self.recipient_check.refusal(event)
            if refusal is not None:
                raise UnregisteredRecipientError(refusal)
        key, value = self._encoder.message(event)
        return self._producer.send(self.topic, key=key, value=value)

    def send_encoded(self, key: bytes | None, value: bytes | None) -> Any:
        """Send bytes already in single-object encoding (replays, benchmarks, tests)."""
        return self._producer.send(self.topic, key=key, value=value)

    def publish(self, event: DisclosureEvent, timeout: float = 30.0) -> None:
        """Send one event and wait for its acknowledgement; raises PublishError if none,
        EventValidationError (nothing sent) if the event is invalid,
        UnregisteredRecipientError (nothing sent) if the strict recipient check refuses it."""
        try:
            future = self.send(event)
            self._producer.flush(timeout=timeout)  # do not wait out linger_ms for one event
            future.get(timeout=timeout)
        except KafkaError as exc:
            raise PublishError(f"event {event.event_id} was not acknowledged: {exc}") from exc

    def publish_many(
        self, events: Iterable[DisclosureEvent], timeout: float | None = None
    ) -> PublishResult:
        """Send events and wait for every acknowledgement; report each one not delivered.

        This is the path services use for volume (and the one ``bench/bench_ingest.py``
        measures). An invalid event is reported undelivered with the
        :class:`EventValidationError` message (field and fix) and not sent; the others
        still are. So is an event the strict recipient check refuses, with its reason.
        If the producer cannot even queue an event (no metadata for the topic within the
        timeout: the broker is away), that event and every later one are reported
        undelivered at once instead of each waiting out the timeout again.
        """
        timeout = self.timeout if timeout is None else timeout
        result = PublishResult()
        undelivered = result.undelivered
        unsettled: deque[tuple[list[DisclosureEvent], list[Any]]] = deque()
        in_flight = 0
        gave_up: str | None = None
        messages, send, topic = self._encoder.messages, self._producer.send, self.topic
        source = iter(events)
        check = self.recipient_check
        # Encode a chunk, then send it: two tight loops run faster than one that
        # alternates between the encoder's code and kafka-python's.
        while chunk := list(islice(source, _CHUNK)):
            if gave_up is not None:
                undelivered.extend(Undelivered(event, gave_up) for event in chunk)
                continue
            if check is not None:
                allowed = []
                for event in chunk:
                    refusal = check.refusal(event)
                    if refusal is None:
                        allowed.append(event)
                    else:
                        undelivered.append(Undelivered(event, refusal))
                chunk = allowed
            encoded, refused = messages(chunk)
            undelivered.extend(Undelivered(event, str(exc)) for event, exc in refused)
            sent: list[DisclosureEvent] = []
            futures: list[Any] = []
            for position, (event, key, value) in enumerate(encoded):
                try:
                    futures.append(send(topic, key=key, value=value))
                except KafkaTimeoutError as exc:
                    undelivered.append(Undelivered(event, str(exc)))
                    gave_up = f"not sent: an earlier event could not be queued ({exc})"
                    undelivered.extend(
                        Undelivered(e, gave_up) for e, _, _ in encoded[position + 1 :]
                    )
                    break
                except KafkaError as exc:
                    undelivered.append(Undelivered(event, str(exc)))
                    continue
                sent.append(event)
            unsettled.append((sent, futures))
            in_flight += len(futures)
            # Account for acknowledged chunks as they complete, so that futures do not
            # pile up; wait for the oldest only when too many are outstanding.
            while unsettled and (
                in_flight > _MAX_UNSETTLED or all(f.is_done for f in unsettled[0][1])
            ):
                sent, futures = unsettled.popleft()
                in_flight -= len(futures)
                self._settle(sent, futures, result, timeout)
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as exc:
            log.warning("flush did not complete: %s", exc)
        for sent, futures in unsettled:
            self._settle(sent, futures, result, 0)
        return result

    def _settle(
        self,
        sent: list[DisclosureEvent],
        futures: list[Any],
        result: PublishResult,
        timeout: float,
    ) -> None:
        """Count each event delivered or not, waiting up to ``timeout`` for those pending."""
        deadline = time.monotonic() + timeout
        for event, future in zip(sent, futures, strict=True):
            if not future.is_done:
                with suppress(Exception):  # the outcome is read just below
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
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
        try:
            self._producer.close(timeout=timeout)
        except KafkaTimeoutError:
            # kafka-python's close() flushes first and raises when records are still unsent
            # (the broker is away), leaving its I/O thread running. Fail those records and
            # stop the thread, as its close would after the timeout, then close for good.
            sender = getattr(self._producer, "_sender", None)
            if sender is not None:
                sender.force_close()  # aborts the unsent batches, then closes the client
                sender.join(5.0)
            log.warning(
                "closed the Kafka producer with unsent records; they were reported undelivered"
            )
            with suppress(KafkaTimeoutError):
                self._producer.close(timeout=0)


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
