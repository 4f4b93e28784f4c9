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

A publisher that names its source (``source=WatermarkSource("billing", "4.12.3")``) also
sends **producer watermarks** (``schemas/producer_watermark.v1.avsc``): "every disclosure
of this source that occurred before T has been published". It sends one only after
``flush()`` has seen every earlier event acknowledged, to *every* partition of the topic
(an explicit partition on each send, the partitions from the producer's metadata),
every ``watermark_every`` seconds (a minute by default) on a background thread, and on
:meth:`DisclosurePublisher.close`. T is the moment the flush began; it never passes the
``occurred_at`` of an event this publisher reported undelivered, which only a new
publisher (after the replay) moves beyond. While a watermark is sent, other threads'
sends wait, so no event slips between the flush and the watermark. How the ledger uses
them: ``ledger/coverage.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from typing import Any

from kafka.partitioner.default import DefaultPartitioner, murmur2

from disclosure_ledger.errors import KafkaSecurityError
from disclosure_ledger.kafka_security import connection_config, connection_hint
from disclosure_ledger.settings import load_settings
from kafka_transport import (
    ClientName,
    Deliveries,
    Delivery,
    PublishingTransport,
    TransportError,
    client_for,
    hint_source,
    open_publishing_producer,
)
from producers.encoding import EventEncoder
from producers.errors import PublishError, UnregisteredRecipientError
from producers.recipient_check import RecipientCheck, RecipientRegistry
from schemas import DEFAULT_TOPIC
from schemas.codec import EventCodec
from schemas.model import DisclosureEvent
from schemas.watermark import Watermark, WatermarkCodec, epoch_ms

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

# The same for librdkafka (its names). It partitions with murmur2_random, kafka-python's
# and the Java client's murmur2 of the key (``kafka_transport.confluent.producer_config``),
# natively, so no partitioner is passed. Its local queue holds at most this many records;
# a send waits for room (serving delivery reports) up to the publisher's timeout.
LIBRDKAFKA_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "linger.ms": 50,
    "batch.size": 256 * 1024,
    "message.max.bytes": 4 * 1024 * 1024,
    "queue.buffering.max.messages": 200_000,
}

# publish_many encodes this many events, then sends them ...
_CHUNK = 1_000
# ... and waits for acknowledgements when this many are outstanding, bounding what it holds.
_MAX_UNSETTLED = 50_000


DEFAULT_WATERMARK_EVERY = 60.0
"""Seconds between the periodic watermarks of a publisher that names its source."""


@dataclass(frozen=True)
class WatermarkSource:
    """The producer service a publisher speaks for, as its events carry it in
    ``producer.service`` and ``producer.version``."""

    service: str
    version: str


@dataclass(frozen=True)
class Undelivered:
    event: DisclosureEvent
    error: str


@dataclass
class PublishResult:
    delivered: int = 0
    undelivered: list[Undelivered] = field(default_factory=list)
    watermark: Watermark | None = None  # sent on every partition, when one was asked for
    watermark_error: str | None = None  # why the watermark asked for was not sent

    @property
    def ok(self) -> bool:
        return not self.undelivered and self.watermark_error is None


class DisclosurePublisher:
    """Publishes DisclosureEvents to a Kafka topic; key = subject id.

    Use as a context manager, or call :meth:`close`, which flushes.
    """

    # until __init__ says otherwise: no source, so no watermarks
    source: WatermarkSource | None = None
    _watermark_thread: threading.Thread | None = None
    _watermark_on_close: bool = False

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = DEFAULT_TOPIC,
        *,
        codec: EventCodec | None = None,
        timeout: float | None = None,
        recipients: RecipientRegistry | None = None,
        strict: bool = False,
        source: WatermarkSource | None = None,
        watermark_every: float | None = DEFAULT_WATERMARK_EVERY,
        watermark_on_close: bool = True,
        client: str | None = None,
        **producer_config: Any,
    ) -> None:
        """``timeout`` (seconds) bounds connecting and each event's delivery; default 60.

        ``client``: the Kafka client, ``auto``, ``kafka-python`` or ``confluent-kafka``
        (default: the ``DISCLOSURE_LEDGER_KAFKA_CLIENT`` setting); ``producer_config``:
        further settings of that client, in its own names (kafka-python's ``linger_ms``,
        librdkafka's ``linger.ms``).

        With ``source``, producer watermarks are sent every ``watermark_every`` seconds
        (None: only when :meth:`send_watermark` is called) and, unless
        ``watermark_on_close`` is false, on close.

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
        self.source = source
        self._watermark_codec = WatermarkCodec()
        # held by every send and by the watermark, so that nothing is sent between the flush
        # a watermark waits for and the watermark itself
        self._send_lock = threading.RLock()
        self._earliest_undelivered_ms: int | None = None
        # its own lock: delivery failures are reported on kafka-python's sender thread,
        # which a watermark's flush (holding the send lock) waits for (librdkafka reports
        # them inside poll and flush, on whichever thread calls them)
        self._undelivered_lock = threading.Lock()
        self._watermark_on_close = watermark_on_close
        self._stop_watermarks = threading.Event()
        self._watermark_thread: threading.Thread | None = None
        try:
            self.client: ClientName = client_for(
                client if client is not None else load_settings().kafka_client
            )
        except TransportError as exc:
            raise PublishError(f"{exc}. Nothing was sent") from exc
        try:  # TLS/SASL, the same for both clients (OAUTHBEARER: librdkafka only)
            security = connection_config(self.client)
        except KafkaSecurityError as exc:
            raise PublishError(f"{exc}. Nothing was sent") from exc
        if self.client == "confluent-kafka":
            settings = {**LIBRDKAFKA_DEFAULTS, **_librdkafka_timeouts(timeout)}
        else:
            settings = {**PRODUCER_DEFAULTS, **_timeouts(timeout)}
        try:
            self._producer: PublishingTransport = open_publishing_producer(
                self.client,
                bootstrap_servers,
                timeout=self.timeout,
                settings={**settings, **producer_config},
                connection=security,
            )
        except TransportError as exc:
            hint = connection_hint(bootstrap_servers, hint_source(exc))
            raise PublishError(
                f"cannot reach Kafka at {bootstrap_servers}: {exc}; "
                + (
                    hint
                    or "start the local broker with `disclosure-ledger broker start` or set "
                    "KAFKA_BOOTSTRAP_SERVERS"
                )
            ) from exc
        if source is not None and watermark_every is not None:
            if watermark_every <= 0:
                raise PublishError(f"watermark_every must be positive, not {watermark_every}")
            self._watermark_thread = threading.Thread(
                target=self._send_watermarks_every,
                args=(watermark_every,),
                name=f"watermarks-{source.service}",
                daemon=True,
            )
            self._watermark_thread.start()

    def __enter__(self) -> DisclosurePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, event: DisclosureEvent) -> Delivery:
        """Encode and send one event; returns its delivery report (``.get(timeout)`` waits
        for it: where it landed, or :class:`~kafka_transport.TransportError`).

        Raises :class:`EventValidationError`, sending nothing, if the event is invalid, and
        :class:`UnregisteredRecipientError` if the strict recipient check refuses it.
        """
        if self.recipient_check is not None:
            refusal = self.recipient_check.refusal(event)
            if refusal is not None:
                raise UnregisteredRecipientError(refusal)
        key, value = self._encoder.message(event)
        hold = None if self.source is None else partial(self._hold_watermark_at, event)
        with self._send_lock:
            return self._producer.send(self.topic, value, key=key, on_failure=hold)

    def send_encoded(self, key: bytes | None, value: bytes | None) -> Delivery:
        """Send bytes already in single-object encoding (replays, benchmarks, tests)."""
        with self._send_lock:
            return self._producer.send(self.topic, value, key=key)

    def publish(self, event: DisclosureEvent, timeout: float = 30.0) -> None:
        """Send one event and wait for its acknowledgement; raises PublishError if none,
        EventValidationError (nothing sent) if the event is invalid,
        UnregisteredRecipientError (nothing sent) if the strict recipient check refuses it."""
        try:
            delivery = self.send(event)
            self._producer.flush(timeout)  # do not wait out linger_ms for one event
            delivery.get(timeout)
        except TransportError as exc:
            raise PublishError(f"event {event.event_id} was not acknowledged: {exc}") from exc

    def publish_many(
        self, events: Iterable[DisclosureEvent], timeout: float | None = None
    ) -> PublishResult:
        """Send events and wait for every acknowledgement; report each one not delivered.

        This is the path services use for volume (and the one ``bench/bench_publish.py``
        measures with each client): each chunk of encoded events goes to the transport's
        ``send_batch`` in one call. An invalid event is reported undelivered with the
        :class:`EventValidationError` message (field and fix) and not sent; the others
        still are. So is an event the strict recipient check refuses, with its reason.
        If the producer cannot even queue an event (no metadata for the topic within the
        timeout: the broker is away), that event and every later one are reported
        undelivered at once instead of each waiting out the timeout again.
        """
        timeout = self.timeout if timeout is None else timeout
        result = PublishResult()
        undelivered = result.undelivered
        unsettled: deque[tuple[list[DisclosureEvent], Deliveries]] = deque()
        in_flight = 0
        gave_up: str | None = None
        messages, send_batch, topic = self._encoder.messages, self._producer.send_batch, self.topic
        serve = getattr(self._producer, "serve", None)
        hold = self._hold_watermark_at
        source = iter(events)
        check = self.recipient_check
        # Encode a chunk, then send it: two tight loops (the second inside the transport)
        # run faster than one that alternates between the encoder's code and the client's.
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
            sent = [event for event, _, _ in encoded]
            pairs = [(key, value) for _, key, value in encoded]
            # a failure holds the watermark before a watermark's flush returns
            on_failure = None if self.source is None else partial(_hold_at, hold, sent)
            with self._send_lock:  # a chunk at a time: see send_watermark
                deliveries = send_batch(topic, pairs, on_failure)
            stopped = deliveries.stopped()
            if stopped is not None:
                gave_up = f"not sent: an earlier event could not be queued ({stopped})"
                cut = deliveries.attempted()
                undelivered.extend(Undelivered(event, gave_up) for event in sent[cut:])
                sent = sent[:cut]
            unsettled.append((sent, deliveries))
            in_flight += len(sent)
            if serve is not None:  # librdkafka reports deliveries only when asked
                serve()
            # Account for acknowledged chunks as they complete, so that reports do not
            # pile up; wait for the oldest only when too many are outstanding.
            while unsettled and (in_flight > _MAX_UNSETTLED or unsettled[0][1].done()):
                sent, deliveries = unsettled.popleft()
                in_flight -= len(sent)
                deliveries.wait(timeout)
                _settle(sent, deliveries, result)
        try:
            self._producer.flush(timeout)
        except TransportError as exc:
            log.warning("flush did not complete: %s", exc)
        for sent, deliveries in unsettled:
            _settle(sent, deliveries, result)
        for miss in result.undelivered:
            self._hold_watermark_at(miss.event)
        return result

    def flush(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds (default: the publisher's) for every delivery
        report; :class:`~kafka_transport.TransportError` if some did not arrive."""
        self._producer.flush(self.timeout if timeout is None else timeout)

    # -- producer watermarks -------------------------------------------------------------

    def _hold_watermark_at(self, event: DisclosureEvent) -> None:
        at = epoch_ms(event.occurred_at)
        with self._undelivered_lock:
            if self._earliest_undelivered_ms is None or at < self._earliest_undelivered_ms:
                self._earliest_undelivered_ms = at

    def send_watermark(
        self, watermark_at: datetime | None = None, *, timeout: float | None = None
    ) -> Watermark:
        """Flush, then declare on every partition of the topic that every disclosure of
        this publisher's source before ``watermark_at`` (default: the moment the flush
        began) has been published; wait for every partition's acknowledgement.

        Raises :class:`PublishError`, having sent no watermark, when the publisher names no
        source, when an earlier event was not acknowledged in time, or when
        ``watermark_at`` is later than an event this publisher reported undelivered (that
        event is missing, so the claim would be false); and when a partition does not
        acknowledge the watermark (it then proves nothing there: send another).
        """
        if self.source is None:
            raise PublishError(
                "this publisher names no source, so it cannot send watermarks; create it "
                "with source=WatermarkSource(service, version)"
            )
        timeout = self.timeout if timeout is None else timeout
        with self._send_lock:
            began = datetime.now(UTC)
            try:
                self._producer.flush(timeout)
            except TransportError as exc:
                raise PublishError(
                    f"no watermark for {self.source.service}: earlier events were not all "
                    f"acknowledged within {timeout:g} s ({exc})"
                ) from exc
            if watermark_at is not None and watermark_at > began:
                raise PublishError(
                    f"no watermark for {self.source.service} at {watermark_at.isoformat()}: it "
                    "is in the future, and a source can only declare what it has published"
                )
            at_ms = epoch_ms(watermark_at if watermark_at is not None else began)
            with self._undelivered_lock:
                held = self._earliest_undelivered_ms
            if held is not None and at_ms > held:
                if watermark_at is not None:
                    raise PublishError(
                        f"no watermark for {self.source.service} at {watermark_at.isoformat()}: "
                        f"an event that occurred at {_iso_ms(held)} was reported undelivered by "
                        "this publisher; replay it, then send the watermark from a new publisher"
                    )
                at_ms = held
            try:
                partitions = sorted(self._producer.partitions(self.topic, timeout))
            except TransportError as exc:
                raise PublishError(
                    f"no watermark for {self.source.service}: the partitions of {self.topic} "
                    f"are unknown ({exc})"
                ) from exc
            if not partitions:
                raise PublishError(f"topic {self.topic} has no partitions in the metadata")
            watermark = Watermark(
                self.source.service, at_ms, epoch_ms(datetime.now(UTC)), self.source.version
            )
            value = self._watermark_codec.encode(watermark)
            futures: list[tuple[int, Delivery]] = []
            try:
                for p in partitions:
                    futures.append((p, self._producer.send(self.topic, value, partition=p)))
                self._producer.flush(timeout)
            except TransportError as exc:
                log.warning("flush after a watermark did not complete: %s", exc)
        missing = []
        for partition, future in futures:
            try:
                future.get(0 if future.done() else timeout)
            except TransportError as exc:
                missing.append(f"{partition} ({exc})")
        if missing:
            raise PublishError(
                f"watermark of {self.source.service} at {_iso_ms(at_ms)} was not acknowledged "
                f"on partition(s) {', '.join(missing)} of {self.topic}; it proves nothing there "
                "until a later one is"
            )
        return watermark

    def _send_watermarks_every(self, seconds: float) -> None:
        while not self._stop_watermarks.wait(seconds):
            try:
                self.send_watermark()
            except (PublishError, TransportError) as exc:  # the next period tries again
                log.warning("%s", exc)

    def close(self, timeout: float = 30.0) -> None:
        """Flush for up to ``timeout`` seconds, then close; whatever is still unsent is
        dropped (and was reported undelivered by :meth:`publish_many`). A publisher that
        names its source sends a last watermark first (a warning if it cannot)."""
        if self._watermark_thread is not None:
            self._stop_watermarks.set()
            self._watermark_thread.join()
        if self.source is not None and self._watermark_on_close and timeout > 0:
            began = time.monotonic()
            try:
                self.send_watermark(timeout=timeout)
            except (PublishError, TransportError) as exc:
                log.warning("no watermark on close: %s", exc)
            timeout = max(0.0, timeout - (time.monotonic() - began))  # one budget for both
        # unsent records are failed (reported undelivered), not raised: see the transport
        self._producer.close(timeout)


def publish_events(
    bootstrap_servers: str,
    topic: str,
    events: Iterable[DisclosureEvent],
    *,
    timeout: float = 60.0,
    watermark: tuple[WatermarkSource, datetime] | None = None,
    **producer_config: Any,
) -> PublishResult:
    """Publish ``events`` and report every one the broker did not acknowledge.

    With ``watermark`` (source, T), and only if every event was delivered, then declare on
    every partition that the source published everything before T (a backfill that knows
    it is whole); without, send no watermark, so a partial backfill claims nothing.
    Never raises for an unreachable broker: then every event is reported undelivered,
    with the reason, so the caller can write them out and replay them later.
    """
    events = list(events)
    source = watermark[0] if watermark is not None else None
    try:
        publisher = DisclosurePublisher(
            bootstrap_servers,
            topic,
            timeout=timeout,
            source=source,
            watermark_every=None,
            watermark_on_close=False,
            **producer_config,
        )
    except PublishError as exc:
        log.error("%s", exc)
        return PublishResult(
            undelivered=[Undelivered(event, str(exc)) for event in events],
            watermark_error=None if watermark is None else f"no watermark sent: {exc}",
        )
    try:
        result = publisher.publish_many(events, timeout=timeout)
        if watermark is not None and result.undelivered:
            result.watermark_error = (
                f"no watermark sent for {watermark[0].service}: {len(result.undelivered)} "
                "event(s) were not delivered; replay them, then send the watermark"
            )
        elif watermark is not None:
            try:
                result.watermark = publisher.send_watermark(watermark[1], timeout=timeout)
            except PublishError as exc:
                result.watermark_error = str(exc)
    except BaseException:
        publisher.close(timeout=0)
        raise
    # Whatever is unacknowledged now is reported undelivered: do not wait for it again.
    publisher.close(timeout=timeout if result.ok else 0)
    return result


def _hold_at(
    hold: Callable[[DisclosureEvent], None], sent: list[DisclosureEvent], position: int
) -> None:
    hold(sent[position])


def _settle(sent: list[DisclosureEvent], deliveries: Deliveries, result: PublishResult) -> None:
    """Count each event of a chunk delivered or not, from its reports as they are now."""
    failures = deliveries.failures()
    unreported = deliveries.unreported()
    if unreported is None:  # the client cannot tell which: none of the rest is claimed
        missing = {p for p in range(len(sent)) if p not in failures}
    else:
        missing = set(unreported)
    for position in sorted(failures.keys() | missing):
        error = failures.get(position) or "not acknowledged before timeout"
        result.undelivered.append(Undelivered(sent[position], error))
    result.delivered += len(sent) - len(failures.keys() | missing)


def _iso_ms(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _librdkafka_timeouts(timeout: float | None) -> dict[str, Any]:
    """librdkafka settings that keep each request and delivery within ``timeout``."""
    if timeout is None:
        return {"message.timeout.ms": PRODUCER_DEFAULTS["delivery_timeout_ms"]}
    total_ms = max(100, int(timeout * 1000))
    request_ms = max(50, min(30_000, total_ms // 2))
    return {
        "request.timeout.ms": request_ms,
        "message.timeout.ms": max(total_ms, request_ms + LIBRDKAFKA_DEFAULTS["linger.ms"]),
    }


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
