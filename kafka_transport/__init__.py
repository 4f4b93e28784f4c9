"""One narrow interface through which the project talks to Kafka, and its two clients.

``producers/`` and ``consumers/`` use :class:`ConsumerTransport` and
:class:`ProducerTransport` and never a client library directly, so either client can carry
every guarantee: kafka-python (the design's client, always installed) and confluent-kafka
(librdkafka, the fast path, installed with ``pip install 'disclosure-ledger[librdkafka]'``).
:func:`resolve_client` turns the ``DISCLOSURE_LEDGER_KAFKA_CLIENT`` setting
(``auto|kafka-python|confluent-kafka``) into one of them; ``auto`` means confluent-kafka
when it is importable.

This package imports nothing of the project but the root error, so ``producers/`` (which
needs only ``schemas/``) and ``consumers/`` can both depend on it. Each client's connection
settings are built in one function of its module (``kafka_python.consumer_config`` /
``producer_config`` and ``confluent.consumer_config`` / ``producer_config``): the place TLS
and SASL settings are added. Every client error crosses the interface as
:class:`TransportError`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

from kafka_transport.delivery import Delivered
from kafka_transport.errors import (
    ClientConfigError,
    ClientNotInstalledError,
    TransportError,
    TransportTimeoutError,
)
from kafka_transport.group import DEFAULT_SESSION_TIMEOUT

__all__ = [
    "CLIENTS",
    "ClientConfigError",
    "ClientName",
    "ClientNotInstalledError",
    "ConsumerTransport",
    "Delivered",
    "Deliveries",
    "Delivery",
    "ProducerTransport",
    "PublishingTransport",
    "RebalanceListener",
    "TransportError",
    "TransportTimeoutError",
    "open_consumer",
    "open_producer",
    "resolve_client",
]

ClientName = Literal["kafka-python", "confluent-kafka"]
CLIENTS: tuple[ClientName, ...] = ("kafka-python", "confluent-kafka")
SETTING = "DISCLOSURE_LEDGER_KAFKA_CLIENT"
EXTRA = "pip install 'disclosure-ledger[librdkafka]'"

T = TypeVar("T")
Header = tuple[str, bytes]


def confluent_installed() -> bool:
    return importlib.util.find_spec("confluent_kafka") is not None


def resolve_client(name: str | None = "auto") -> ClientName:
    """The client a setting names: ``auto`` (or None) = confluent-kafka when importable,
    else kafka-python. A clear error when confluent-kafka is asked for but not installed."""
    wanted = (name or "auto").strip().lower()
    if wanted == "auto":
        return "confluent-kafka" if confluent_installed() else "kafka-python"
    if wanted == "kafka-python":
        return "kafka-python"
    if wanted == "confluent-kafka":
        if not confluent_installed():
            raise ClientNotInstalledError(
                f"{SETTING}=confluent-kafka, but confluent-kafka is not installed; install "
                f"the extra with `{EXTRA}`, or set {SETTING}=kafka-python (or auto)"
            )
        return "confluent-kafka"
    raise TransportError(
        f"{SETTING}={name!r} is not a Kafka client; use auto, kafka-python or confluent-kafka"
    )


class Delivery(Protocol):
    """The delivery report of one produced message, complete once the producer is flushed."""

    def succeeded(self) -> bool: ...

    def failed(self) -> bool: ...

    def done(self) -> bool:
        """Whether the report arrived, either way."""

    def error(self) -> str | None:
        """Why the message was not delivered, in the client's words (None unless failed)."""

    def get(self, timeout: float) -> Delivered:
        """Wait up to ``timeout`` seconds for the report: where the message landed, or
        :class:`TransportError` when it failed or the report did not arrive in time."""


class RebalanceListener(Protocol):
    """What a member of a consumer group is told as the group moves partitions
    (:meth:`ConsumerTransport.subscribe`). Both methods run on the polling thread, inside
    ``poll`` (or ``close``), never with an empty list. An exception either raises goes out
    of that ``poll`` (and every later one): see :mod:`kafka_transport.group`."""

    def assigned(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        """The group gave this member these partitions (all of its partitions: the
        rebalance is eager). Returns where each starts (None: the earliest offset); the
        transport seeks there before any message of them is returned."""

    def revoked(self, topic: str, partitions: list[int]) -> None:
        """These partitions go to the group (a rebalance, or this member leaving, on close;
        also when they were lost: the session expired). No message of them is returned
        after this, until a later ``assigned`` gives them back."""


class ConsumerTransport(Protocol):
    """A consumer: partitions are either assigned and sought by the caller (:meth:`assign`,
    the ledger says where to resume), or split by a consumer group (:meth:`subscribe`), the
    listener saying where each starts. Nothing is committed to Kafka. Every method raises
    :class:`TransportError` when the broker does not answer within ``timeout`` seconds."""

    def probe(self, timeout: float) -> None:
        """Ask the broker for its metadata: returns when it answered."""

    def partitions(self, topic: str, timeout: float) -> set[int]:
        """The partitions of ``topic``; empty when the topic does not exist (yet)."""

    def assign(self, topic: str, starts: dict[int, int | None]) -> None:
        """Read exactly these partitions of ``topic``, each from its offset (None: from the
        beginning); what was fetched before is dropped."""

    def subscribe(
        self,
        topic: str,
        group: str,
        listener: RebalanceListener,
        *,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        heartbeat_interval: float | None = None,
    ) -> None:
        """Join consumer group ``group`` on ``topic`` (instead of :meth:`assign`, once per
        consumer): the group splits the partitions among its members, and ``listener`` is
        told what this member gains and loses. The member joins in the next :meth:`poll`.
        ``session_timeout``: seconds without a heartbeat after which the group drops this
        member and gives its partitions to the others (the broker bounds it: 6 s to 30 min
        by default); ``heartbeat_interval``: None = a third of it, at most 3 s."""

    def assignment(self, topic: str) -> set[int]:
        """The partitions of ``topic`` this consumer reads now: those assigned, or those
        the group gave it (as its listener was told)."""

    def position(self, topic: str, partition: int, timeout: float) -> int:
        """The offset of the next message to be read from the partition."""

    def end_offsets(self, topic: str, partitions: Sequence[int], timeout: float) -> dict[int, int]:
        """The offset the next message appended to each partition will get."""

    def poll(
        self,
        timeout: float,
        max_records: int,
        make: Callable[[str, int, int, bytes | None, bytes | None], T],
    ) -> list[T]:
        """Up to ``max_records`` messages, each built by ``make(topic, partition, offset,
        key, value)``, in offset order per partition; waits at most ``timeout``."""

    def close(self) -> None: ...


class ProducerTransport(Protocol):
    """A producer with delivery reports."""

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[Header] | None = None,
        partition: int | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> Delivery:
        """Queue one message; its delivery report completes by :meth:`flush`.
        ``on_failure`` is called when the report says it failed, before the flush that
        served the report returns (on the client's thread with kafka-python)."""

    def flush(self, timeout: float) -> None:
        """Wait until every queued message has its delivery report (TransportError if not
        within ``timeout``)."""

    def partitions(self, topic: str, timeout: float) -> set[int]: ...

    def close(self, timeout: float) -> None: ...


def open_consumer(
    client: ClientName,
    bootstrap_servers: str,
    *,
    max_batch: int,
    timeout: float,
    connection: Mapping[str, Any] | None = None,
) -> ConsumerTransport:
    """A connected consumer of ``client``, or TransportError if the broker did not answer
    within ``timeout`` seconds. ``connection``: the TLS/SASL arguments under kafka-python's
    names (:func:`disclosure_ledger.kafka_security.connection_config`), which
    :func:`kafka_transport.confluent.connection_config` maps to librdkafka's; dotted keys are
    librdkafka's own and reach confluent-kafka only (the OAUTHBEARER pass-through)."""
    if client == "confluent-kafka":
        from kafka_transport import confluent

        return confluent.Consumer(
            bootstrap_servers, max_batch=max_batch, timeout=timeout, connection=connection
        )
    from kafka_transport import kafka_python

    return kafka_python.Consumer(
        bootstrap_servers, max_batch=max_batch, timeout=timeout, connection=connection
    )


def open_producer(
    client: ClientName,
    bootstrap_servers: str,
    *,
    timeout: float,
    acks: str = "all",
    connection: Mapping[str, Any] | None = None,
) -> ProducerTransport:
    """A producer of ``client`` whose sends and flushes give up after ``timeout`` seconds
    (``connection`` as for :func:`open_consumer`)."""
    if client == "confluent-kafka":
        from kafka_transport import confluent

        return confluent.Producer(
            bootstrap_servers, timeout=timeout, acks=acks, connection=connection
        )
    from kafka_transport import kafka_python

    return kafka_python.Producer(
        bootstrap_servers, timeout=timeout, acks=acks, connection=connection
    )


def open_publishing_producer(
    client: ClientName,
    bootstrap_servers: str,
    *,
    timeout: float,
    settings: Mapping[str, Any],
    connection: Mapping[str, Any] | None = None,
) -> PublishingTransport:
    """The publisher's producer: ``acks=all``, the client's own ``settings`` (in that
    client's names: idempotence, linger, batch size, ...) over the defaults, connected
    (TransportError when no broker answered within ``timeout`` seconds). Its ``close``
    flushes up to its timeout, then fails whatever is still unsent (each of those delivery
    reports says so) instead of raising."""
    if client == "confluent-kafka":
        from kafka_transport import confluent

        return confluent.PublishingProducer(
            bootstrap_servers, timeout=timeout, settings=settings, connection=connection
        )
    from kafka_transport import kafka_python

    return kafka_python.PublishingProducer(
        bootstrap_servers, timeout=timeout, settings=settings, connection=connection
    )


def open_admin(
    client: ClientName,
    bootstrap_servers: str,
    *,
    timeout: float,
    connection: Mapping[str, Any] | None = None,
) -> AdminTransport:
    """An admin client of ``client`` (topics and their configuration), connected, or
    TransportError when no broker answered within ``timeout`` seconds."""
    from kafka_transport import admin

    return admin.open_admin(client, bootstrap_servers, timeout=timeout, connection=connection)


class AdminTransport(Protocol):
    """Topics and their configuration. Every method raises :class:`TransportError` when
    the broker does not answer within ``timeout`` seconds."""

    def topics(self, timeout: float) -> set[str]:
        """The names of the cluster's topics."""

    def create_topic(
        self, topic: str, partitions: int, replication_factor: int, timeout: float
    ) -> bool:
        """Create ``topic``; False when it exists already."""

    def topic_configs(self, topics: Sequence[str], timeout: float) -> dict[str, dict[str, str]]:
        """Each topic's configuration (every entry, defaults included: ``retention.ms``,
        ``cleanup.policy``, ...); a topic the broker does not know maps to ``{}``."""

    def close(self) -> None: ...


def client_for(setting: str | None, connection: Mapping[str, Any] | None = None) -> ClientName:
    """The client for ``setting`` (see :func:`resolve_client`); both clients take every
    connection setting (TLS, SASL), so ``connection`` no longer changes the choice."""
    del connection
    return resolve_client(setting)


class Deliveries(Protocol):
    """The delivery reports of messages sent together (:meth:`PublishingTransport.send_batch`),
    by their position in the batch."""

    def attempted(self) -> int:
        """How many were handed to the client: all, unless queueing gave up (:meth:`stopped`);
        those after were not sent."""

    def stopped(self) -> str | None:
        """Why queueing gave up early (the producer's queue stayed full: the broker is away),
        or None."""

    def done(self) -> bool:
        """Whether every message handed over has its report."""

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds until :meth:`done`."""

    def failures(self) -> dict[int, str]:
        """Position -> why, of each message refused when queued or reported undelivered."""

    def unreported(self) -> list[int] | None:
        """The positions handed over without a report yet; None when the client counts
        acknowledgements without telling which (librdkafka here: then, while not
        :meth:`done`, any position not in :meth:`failures` may be one of them)."""


class PublishingTransport(ProducerTransport, Protocol):
    """The publisher's producer (:func:`open_publishing_producer`): a batch send for volume."""

    def send_batch(
        self,
        topic: str,
        messages: Sequence[tuple[bytes | None, bytes]],
        on_failure: Callable[[int], None] | None = None,
    ) -> Deliveries:
        """Queue ``(key, value)`` messages in order; ``on_failure(position)`` as for
        :meth:`ProducerTransport.send`. A message the client refuses is a failure and the
        rest are still sent, except when the queue stays full for the producer's timeout:
        then queueing stops there (:meth:`Deliveries.stopped`)."""


def hint_source(error: TransportError) -> BaseException:
    """The error to hand ``connection_hint``: the client's own (kafka-python's, whose class
    names tell a refused login from an unreachable broker; librdkafka's, with the reason its
    error callback kept), else the TransportError itself."""
    return error.__cause__ or error
