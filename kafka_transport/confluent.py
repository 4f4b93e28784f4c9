"""The interface over confluent-kafka (librdkafka): the fast path, installed with
``pip install 'disclosure-ledger[librdkafka]'``.

librdkafka reconnects on its own and reports a missing broker through its error callback
rather than by raising; here those reports are logged, and the calls that must reach the
broker (metadata, watermarks, flush) raise :class:`TransportError` when it does not answer
within their timeout, which is how the consumer loop notices an outage with either client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kafka_transport.delivery import Delivered
from kafka_transport.errors import ClientConfigError, TransportError, TransportTimeoutError
from kafka_transport.group import (
    ASSIGNOR,
    DEFAULT_SESSION_TIMEOUT,
    GroupTimeouts,
    Membership,
    member_name,
)

if TYPE_CHECKING:
    from kafka_transport import RebalanceListener

T = TypeVar("T")
log = logging.getLogger(__name__)

_TIMEOUT_CODES = {KafkaError._TIMED_OUT, KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT}


# Errors that say only that no broker answered, not why.
_NO_CAUSE = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._TIMED_OUT}


def _error(exc: BaseException, errors: ErrorLog | None = None) -> TransportError:
    """``exc`` as a TransportError. When librdkafka reported why no broker answered (its error
    callback, ``errors``), the reason is in the message, and the TransportError is chained to
    it (a KafkaException of that error) so that a caller's hint can read it."""
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    text = f"{err.name()}: {err.str()}" if err is not None else f"{type(exc).__name__}: {exc}"
    cause = errors.cause if errors is not None else None
    if cause is not None and (err is None or err.code() in _NO_CAUSE):
        text = f"{text} (librdkafka: {cause.name()}: {cause.str()})"
        reason = KafkaException(cause)
        reason.__cause__ = exc
        exc = reason
    made = (
        TransportTimeoutError(text)
        if err is not None and err.code() in _TIMEOUT_CODES
        else TransportError(text)
    )
    made.__cause__ = exc  # ``raise _error(...)`` keeps it: no ``from`` there
    return made


class _LibrdkafkaLog:
    """librdkafka's own log lines, at DEBUG: it logs every refused connection of every
    thread; the consumer's loop logs an outage once per attempt, as with kafka-python."""

    def log(self, level: int, msg: str, *args: object) -> None:
        log.debug(msg, *args)


class ErrorLog:
    """librdkafka's error callback: it retries by itself, so an unreachable broker is noticed
    by the calls that time out, and those only say "Broker transport failure". The latest
    error naming a cause (a refused SASL login, a failed TLS handshake) is kept here, so the
    :class:`TransportError` of the call that timed out can say why."""

    def __init__(self) -> None:
        self.cause: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        log.debug("librdkafka: %s: %s", err.name(), err.str())
        if err.code() not in _NO_CAUSE:
            self.cause = err


# kafka-python's connection arguments (the vocabulary of ``connection`` throughout
# kafka_transport) and the librdkafka property each one means. ``ssl_check_hostname`` maps to
# ``ssl.endpoint.identification.algorithm`` (https/none); a dotted key is already librdkafka's
# own (the OAUTHBEARER pass-through, ``sasl.oauthbearer.*``) and goes through unchanged.
LIBRDKAFKA_NAMES: dict[str, str] = {
    "security_protocol": "security.protocol",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
    "ssl_check_hostname": "ssl.endpoint.identification.algorithm",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
}


def connection_config(
    bootstrap_servers: str, connection: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """librdkafka's connection settings: the brokers, and ``connection`` (kafka-python's
    TLS/SASL arguments, as every client of this package receives them) under librdkafka's
    names, meaning the same. The consumer, the producer and any admin client start from this.

    An argument with no librdkafka meaning is refused (:class:`ClientConfigError`) rather than
    dropped: a connection setting silently ignored would connect less securely than asked.
    """
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    for name, value in (connection or {}).items():
        if "." in name:  # librdkafka's own name (sasl.oauthbearer.*): passed through
            config[name] = value
        elif name == "ssl_check_hostname":
            config[LIBRDKAFKA_NAMES[name]] = "https" if value else "none"
        elif name in LIBRDKAFKA_NAMES:
            config[LIBRDKAFKA_NAMES[name]] = str(value)
        else:
            raise ClientConfigError(
                f"the connection argument {name!r} has no librdkafka equivalent here "
                f"(known: {', '.join(sorted(LIBRDKAFKA_NAMES))}, or librdkafka's own dotted "
                "names); use the kafka-python client for it, or drop it"
            )
    return config


def consumer_config(
    bootstrap_servers: str,
    *,
    max_batch: int,
    timeout: float,
    connection: Mapping[str, Any] | None = None,
    errors: ErrorLog | None = None,
) -> dict[str, Any]:
    """librdkafka's consumer settings: :func:`connection_config` (TLS/SASL) and the consumer's
    own. The fetch sizes match kafka-python's; the local queue is bounded to keep memory flat."""
    return {
        **connection_config(bootstrap_servers, connection),
        # a group id is required by the client but never used: partitions are assigned,
        # nothing is committed, the ledger holds the offsets
        "group.id": "disclosure-ledger-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 8 * 1024 * 1024,
        "max.partition.fetch.bytes": 1024 * 1024,
        "fetch.wait.max.ms": 200,
        "queued.max.messages.kbytes": 16 * 1024,
        "reconnect.backoff.ms": 200,
        "reconnect.backoff.max.ms": 5_000,
        "socket.timeout.ms": max(10, int(timeout * 1000)),
        "error_cb": errors if errors is not None else ErrorLog(),
        "logger": _LibrdkafkaLog(),
    }


def group_config(config: Mapping[str, Any], group: str, timeouts: GroupTimeouts) -> dict[str, Any]:
    """:func:`consumer_config` as a member of ``group`` (kafka_transport/group.py)."""
    return {
        **config,
        "group.id": group,
        "client.id": member_name(),
        "enable.auto.commit": False,  # the ledger holds the offsets; the group only splits
        "session.timeout.ms": timeouts.session_ms,
        "heartbeat.interval.ms": timeouts.heartbeat_ms,
        "partition.assignment.strategy": ASSIGNOR,
    }


def producer_config(
    bootstrap_servers: str,
    *,
    timeout: float,
    acks: str,
    connection: Mapping[str, Any] | None = None,
    errors: ErrorLog | None = None,
) -> dict[str, Any]:
    """librdkafka's producer settings: :func:`connection_config` (TLS/SASL) and the producer's
    own."""
    return {
        **connection_config(bootstrap_servers, connection),
        "acks": acks,
        # the Java client's (and kafka-python's) partitioning: murmur2 of the key
        "partitioner": "murmur2_random",
        "message.timeout.ms": max(10, int(timeout * 1000)),
        "socket.timeout.ms": max(10, int(timeout * 1000)),
        "error_cb": errors if errors is not None else ErrorLog(),
        "logger": _LibrdkafkaLog(),
    }


def _partitions(
    client: Any,
    topic: str,
    timeout: float,
    errors: ErrorLog,
    serve: Callable[[float], object] | None = None,
) -> set[int]:
    try:
        metadata = client.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        if serve is not None:
            serve(0)
        raise _error(exc, errors)  # noqa: B904 (chained by _error)
    errors.cause = None  # a broker answered: an earlier reason no longer applies
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return set()
    return set(found.partitions)


def _refused(exc: KafkaException) -> ClientConfigError:
    """librdkafka refused its configuration (an unknown property, an unreadable file): no
    broker was asked, and asking again cannot help."""
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    text = err.str() if err is not None else str(exc)
    return ClientConfigError(f"librdkafka refused its configuration: {text}")


class Consumer:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        max_batch: int,
        timeout: float,
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self._errors = ErrorLog()
        self._timeout = timeout
        self._config = consumer_config(
            bootstrap_servers,
            max_batch=max_batch,
            timeout=timeout,
            connection=connection,
            errors=self._errors,
        )
        self._consumer = self._connected(self._config)
        self._positions: dict[tuple[str, int], int | None] = {}
        self._membership: Membership | None = None

    def _connected(self, config: Mapping[str, Any]) -> Any:
        """A librdkafka consumer of ``config``, connected (TransportError if no broker
        answered within the timeout)."""
        try:
            consumer = confluent_kafka.Consumer(dict(config))
        except KafkaException as exc:
            raise _refused(exc) from exc
        try:  # as kafka-python does: connected, or an error
            consumer.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            # nothing is assigned yet, so a poll reads nothing: it serves the error callback,
            # which says why no broker answered (a refused login, a failed TLS handshake);
            # close() would serve it too, but only as a side effect
            consumer.poll(0)
            consumer.close()
            raise _error(exc, self._errors)  # noqa: B904 (chained by _error)
        except BaseException:
            consumer.close()
            raise
        return consumer

    def subscribe(
        self,
        topic: str,
        group: str,
        listener: RebalanceListener,
        *,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        heartbeat_interval: float | None = None,
    ) -> None:
        if self._membership is not None or self._positions:
            raise RuntimeError("subscribe() once, on a consumer that assign() was not used on")
        timeouts = GroupTimeouts.of(session_timeout, heartbeat_interval)
        # the group id is fixed when librdkafka's consumer is made: a new one, a member
        member = self._connected(group_config(self._config, group, timeouts))
        self._consumer.close()
        self._consumer = member
        self._timeouts = timeouts
        self._membership = Membership(topic, listener)
        try:
            member.subscribe(
                [topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
        except KafkaException as exc:
            raise _error(exc, self._errors)  # noqa: B904 (chained by _error)

    def _on_assign(self, consumer: Any, tps: list[TopicPartition]) -> None:
        """librdkafka's callback, inside consume() on the polling thread: the listener says
        where each partition starts, and it is assigned there (eager: all of them)."""
        assert self._membership is not None
        topic = self._membership.topic
        starts = self._membership.assigned(tp.partition for tp in tps if tp.topic == topic)
        if starts is None:  # the listener failed: read none of them (poll raises its error)
            consumer.assign(tps)
            consumer.pause(tps)
            return
        consumer.assign(
            [
                TopicPartition(
                    topic, p, confluent_kafka.OFFSET_BEGINNING if start is None else start
                )
                for p, start in starts.items()
            ]
        )
        self._positions = {(topic, p): start for p, start in starts.items()}

    def _on_revoke(self, consumer: Any, tps: list[TopicPartition]) -> None:
        """librdkafka's callback for partitions revoked or lost (it unassigns them after)."""
        assert self._membership is not None
        topic = self._membership.topic
        gone = [tp.partition for tp in tps if tp.topic == topic]
        for p in gone:
            self._positions.pop((topic, p), None)
        self._membership.revoked(gone)

    def assignment(self, topic: str) -> set[int]:
        if self._membership is not None:
            return set(self._membership.owned) if topic == self._membership.topic else set()
        return {p for (t, p) in self._positions if t == topic}

    def probe(self, timeout: float) -> None:
        try:
            self._consumer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise _error(exc, self._errors)  # noqa: B904 (chained by _error)
        self._errors.cause = None  # a broker answered: an earlier reason no longer applies

    def partitions(self, topic: str, timeout: float) -> set[int]:
        return _partitions(self._consumer, topic, timeout, self._errors)

    def assign(self, topic: str, starts: dict[int, int | None]) -> None:
        tps = [
            TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING if start is None else start)
            for p, start in sorted(starts.items())
        ]
        try:
            if self._positions:
                self._consumer.unassign()  # drops whatever was fetched for the old positions
            self._consumer.assign(tps)
        except KafkaException as exc:
            raise _error(exc, self._errors)  # noqa: B904 (chained by _error)
        self._positions = {(topic, p): start for p, start in starts.items()}

    def position(self, topic: str, partition: int, timeout: float) -> int:
        known = self._positions.get((topic, partition))
        if known is not None:
            return known
        try:  # from the beginning, nothing read yet: the partition's first offset
            low, _ = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout, cached=False
            )
        except KafkaException as exc:
            raise _error(exc, self._errors)  # noqa: B904 (chained by _error)
        return int(low)

    def end_offsets(self, topic: str, partitions: Sequence[int], timeout: float) -> dict[int, int]:
        ends: dict[int, int] = {}
        try:
            for p in partitions:
                found = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=timeout, cached=False
                )
                if found is None:
                    raise TransportTimeoutError(
                        f"KafkaTimeoutError: no end offset of {topic}[{p}] within {timeout:g} s"
                    )
                ends[p] = int(found[1])
        except KafkaException as exc:
            raise _error(exc, self._errors)  # noqa: B904 (chained by _error)
        return ends

    def poll(
        self,
        timeout: float,
        max_records: int,
        make: Callable[[str, int, int, bytes | None, bytes | None], T],
    ) -> list[T]:
        membership = self._membership
        if membership is not None:
            membership.check()
        try:
            polled = self._consumer.consume(num_messages=max_records, timeout=timeout)
        except KafkaException as exc:
            raise _error(exc, self._errors)  # noqa: B904 (chained by _error)
        finally:
            if membership is not None:  # the listener's failure, rather than the client's
                membership.check()
        out: list[T] = []
        positions = self._positions
        for m in cast(list[Any], polled):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if membership is not None:
                    if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        # "Subscribed topic not available": the member joins when it exists,
                        # as kafka-python's does, owning nothing meanwhile
                        log.debug("%s: %s", err.name(), err.str())
                        continue
                    if err.code() == KafkaError.INVALID_SESSION_TIMEOUT:
                        raise self._timeouts.refused(f"{err.name()}: {err.str()}")
                raise TransportError(f"{err.name()}: {err.str()}")
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            out.append(make(topic, partition, offset, m.key(), m.value()))
            positions[(topic, partition)] = offset + 1
        return out

    def close(self) -> None:
        before = self._membership.failure if self._membership is not None else None
        # a member: revokes what it owns (the listener is told), then leaves the group
        self._consumer.close()
        if self._membership is not None and self._membership.failure is not before:
            self._membership.check()  # the listener failed in this close


class _Delivery:
    """One message's delivery report, filled in by librdkafka's callback, which runs in
    ``poll``/``flush`` on the caller's thread: :meth:`get` polls until it arrives."""

    __slots__ = ("_done", "_error", "_on_failure", "_poll", "_where")

    def __init__(
        self, poll: Callable[[float], Any], on_failure: Callable[[], None] | None = None
    ) -> None:
        self._done = False
        self._error: KafkaError | None = None
        self._where: tuple[str, int, int] | None = None
        self._poll = poll
        self._on_failure = on_failure

    def __call__(self, err: KafkaError | None, msg: Any) -> None:
        self._done, self._error = True, err
        if err is None:
            self._where = (msg.topic(), msg.partition(), msg.offset())
        elif self._on_failure is not None:
            self._on_failure()

    def succeeded(self) -> bool:
        return self._done and self._error is None

    def failed(self) -> bool:
        return self._done and self._error is not None

    def done(self) -> bool:
        return self._done

    def error(self) -> str | None:
        err = self._error
        return None if err is None else f"{err.name()}: {err.str()}"

    def get(self, timeout: float) -> Delivered:
        deadline = time.monotonic() + timeout
        while not self._done:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransportTimeoutError(
                    f"KafkaTimeoutError: no delivery report within {timeout:g} s"
                )
            self._poll(min(left, 0.1))
        if self._error is not None:
            raise TransportError(self.error() or "")
        assert self._where is not None
        return Delivered(*self._where)


class Producer:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout: float,
        acks: str = "all",
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self.timeout = timeout
        self._errors = ErrorLog()
        config = producer_config(
            bootstrap_servers,
            timeout=timeout,
            acks=acks,
            connection=connection,
            errors=self._errors,
        )
        try:
            self._producer = confluent_kafka.Producer(config)
        except KafkaException as exc:
            raise _refused(exc) from exc

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> _Delivery:
        delivery = _Delivery(self._producer.poll, on_failure)
        extra: dict[str, Any] = {}
        if partition is not None:
            extra["partition"] = partition
        if headers is not None:
            extra["headers"] = list(headers)
        try:
            self._producer.produce(topic, value, key, on_delivery=delivery, **extra)
        except BufferError:  # the local queue is full
            self._produce_when_room(topic, value, key, delivery, extra)
        except KafkaException as exc:
            raise _error(exc, self._errors)  # noqa: B904 (chained by _error)
        return delivery

    def _produce_when_room(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        callback: Callable[[Any, Any], None],
        extra: dict[str, Any],
    ) -> None:
        """The local queue is full: serve delivery reports, and try again until there is
        room (the dead-letter copy waits as long as that takes)."""
        while True:
            self._producer.poll(0.1)
            try:
                self._producer.produce(topic, value, key, on_delivery=callback, **extra)
                return
            except BufferError:
                continue
            except KafkaException as exc:
                raise _error(exc, self._errors) from exc

    def flush(self, timeout: float) -> None:
        left = self._producer.flush(timeout)
        if left:
            raise TransportTimeoutError(
                f"KafkaTimeoutError: {left} message(s) not acknowledged within {timeout:g} s"
            )

    def partitions(self, topic: str, timeout: float) -> set[int]:
        # on failure, a poll serves the error callback (and delivery reports): it says why
        return _partitions(self._producer, topic, timeout, self._errors, self._producer.poll)

    def close(self, timeout: float) -> None:
        self.flush(timeout)


def unreachable(
    exc: KafkaException, timeout: float, errors: ErrorLog | None = None
) -> TransportTimeoutError:
    """No broker answered the first metadata request within ``timeout``: librdkafka retries
    by itself, so whatever it reports (``_TRANSPORT``, ``_TIMED_OUT``) means that; the
    reason its error callback kept (a refused login, a TLS handshake) is in the message and
    chained, as for every other call (:func:`_error`)."""
    described = _error(exc, errors)
    made = TransportTimeoutError(f"{described} (no broker answered within {timeout:g} s)")
    made.__cause__ = described.__cause__
    return made


def handle_config(
    bootstrap_servers: str,
    *,
    timeout: float,
    connection: Mapping[str, Any] | None,
    errors: ErrorLog | None = None,
) -> dict[str, Any]:
    """librdkafka settings for a producer or admin handle: ``producer_config`` (with the
    connection settings) for ``acks=all``."""
    return producer_config(
        bootstrap_servers, timeout=timeout, acks="all", connection=connection, errors=errors
    )


class _BatchDeliveries:
    """The delivery reports of a batch: librdkafka calls this once per message (inside
    ``poll``/``flush``, on the caller's thread). Acknowledgements are only counted; a
    failed message is found by its value among the batch's (the values are kept by the
    caller anyway), so the common case costs one call and one addition per message."""

    def __init__(
        self,
        messages: Sequence[tuple[bytes | None, bytes]],
        poll: Callable[[float], Any],
        on_failure: Callable[[int], None] | None,
    ) -> None:
        self._messages = messages
        self._poll = poll
        self._on_failure = on_failure
        self._acknowledged = 0
        self._reported_failed = 0
        self._failures: dict[int, str] = {}
        self._refused = 0
        self._attempted = 0
        self._stopped: str | None = None
        self._positions: dict[bytes, list[int]] | None = None

    def __call__(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self._acknowledged += 1
            return
        self._reported_failed += 1
        position = self._position_of(msg.value())
        self._failures[position] = f"{err.name()}: {err.str()}"
        if self._on_failure is not None:
            self._on_failure(position)

    def _position_of(self, value: bytes) -> int:
        if self._positions is None:  # built once, on the first failure
            self._positions = {}
            for position, (_, sent) in enumerate(self._messages):
                self._positions.setdefault(sent, []).append(position)
        candidates = self._positions[value]
        for position in candidates:  # equal values: the first not yet failed
            if position not in self._failures:
                return position
        return candidates[-1]

    def refuse(self, position: int, error: str) -> None:
        self._failures[position] = error
        self._refused += 1

    def stop(self, position: int, error: str) -> None:
        self.refuse(position, error)
        self._stopped = error
        self._attempted = position + 1

    def handed_over(self, count: int) -> None:
        self._attempted = count

    def attempted(self) -> int:
        return self._attempted

    def stopped(self) -> str | None:
        return self._stopped

    def done(self) -> bool:
        return self._acknowledged + self._reported_failed + self._refused >= self._attempted

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.done():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._poll(min(left, 0.1))

    def failures(self) -> dict[int, str]:
        return dict(self._failures)

    def unreported(self) -> list[int] | None:
        return [] if self.done() else None


class PublishingProducer(Producer):
    """The publisher's producer (``kafka_transport.open_publishing_producer``): connected
    at start like kafka-python's, a send that gives up (TransportTimeoutError) when the
    local queue stays full for the timeout, and a close that fails what is left unsent."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout: float,
        settings: Mapping[str, Any],
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self.timeout = timeout
        self._errors = ErrorLog()
        config = {
            **handle_config(
                bootstrap_servers, timeout=timeout, connection=connection, errors=self._errors
            ),
            **settings,
        }
        try:
            self._producer = confluent_kafka.Producer(config)
        except KafkaException as exc:
            raise _refused(exc) from exc
        try:  # as kafka-python does: connected, or an error
            self._producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            self._producer.poll(0)  # serves the error callback: it may say why
            self._drop()
            raise unreachable(exc, timeout, self._errors)  # noqa: B904 (chained by unreachable)

    def send_batch(
        self,
        topic: str,
        messages: Sequence[tuple[bytes | None, bytes]],
        on_failure: Callable[[int], None] | None = None,
    ) -> _BatchDeliveries:
        """One delivery callback for the whole batch, and a tight loop of ``produce``."""
        report = _BatchDeliveries(messages, self._producer.poll, on_failure)
        produce = self._producer.produce
        for position, (key, value) in enumerate(messages):
            try:
                produce(topic, value, key, on_delivery=report)
            except BufferError:
                try:
                    self._produce_when_room(topic, value, key, report, {})
                except TransportTimeoutError as exc:
                    report.stop(position, str(exc))
                    return report
                except TransportError as exc:
                    report.refuse(position, str(exc))
            except KafkaException as exc:
                report.refuse(position, str(_error(exc)))
        report.handed_over(len(messages))
        return report

    def _produce_when_room(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        callback: Callable[[Any, Any], None],
        extra: dict[str, Any],
    ) -> None:
        """The local queue is full: serve delivery reports until there is room, for up to
        the producer's timeout (then TransportTimeoutError): a publisher gives up and
        reports the event undelivered rather than wait for an absent broker."""
        deadline = time.monotonic() + self.timeout
        while True:
            self._producer.poll(0.05)
            try:
                self._producer.produce(topic, value, key, on_delivery=callback, **extra)
                return
            except BufferError:
                if time.monotonic() >= deadline:
                    raise TransportTimeoutError(
                        f"KafkaTimeoutError: the producer's queue stayed full for "
                        f"{self.timeout:g} s (is the broker away?)"
                    ) from None
            except KafkaException as exc:
                raise _error(exc) from exc

    def serve(self) -> None:
        """Serve the delivery reports that arrived (librdkafka calls back only in poll)."""
        self._producer.poll(0)

    def close(self, timeout: float) -> None:
        left = self._producer.flush(timeout)
        if left:
            log.warning(
                "closed the Kafka producer with %d unsent record(s); they were reported "
                "undelivered",
                left,
            )
        self._drop()

    def _drop(self) -> None:
        """Fail every message not yet delivered (its report says so) and serve the reports."""
        self._producer.purge()
        self._producer.flush(0)
