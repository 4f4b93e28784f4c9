"""The interface over kafka-python: the design's client, with the behaviour the consumer
and the dead-letter copy always had (moved here from consumers/consumer.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import InvalidSessionTimeoutError, KafkaError, KafkaTimeoutError

from kafka_transport.delivery import Delivered
from kafka_transport.errors import TransportError, TransportTimeoutError
from kafka_transport.group import (
    DEFAULT_SESSION_TIMEOUT,
    GroupTimeouts,
    Membership,
    PollingThread,
    member_name,
)

if TYPE_CHECKING:
    from kafka_transport import RebalanceListener

T = TypeVar("T")
log = logging.getLogger(__name__)

# Fetch sizes bound what kafka-python holds at once (each response is buffered and copied
# while it is parsed): 64 MB / 8 MB fetches cost the consumer ~150 MB of resident memory
# more than these, for no throughput gain (a 4 MB response already holds ~15,000 events).
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable_auto_commit": False,
    "group_id": None,
    "auto_offset_reset": "earliest",
    "fetch_max_bytes": 8 * 1024 * 1024,
    "max_partition_fetch_bytes": 1024 * 1024,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 200,
    "reconnect_backoff_ms": 200,
    "reconnect_backoff_max_ms": 5_000,
    "request_timeout_ms": 15_000,
}


def describe(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}"


@contextmanager
def translated() -> Iterator[None]:
    """kafka-python's errors as :class:`TransportError` (the original chained)."""
    try:
        yield
    except KafkaTimeoutError as exc:
        raise TransportTimeoutError(describe(exc)) from exc
    except KafkaError as exc:
        raise TransportError(describe(exc)) from exc


def consumer_config(
    bootstrap_servers: str,
    *,
    max_batch: int,
    timeout: float,
    connection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """kafka-python's consumer settings; ``connection`` adds TLS/SASL arguments."""
    return {
        "bootstrap_servers": bootstrap_servers,
        "max_poll_records": max_batch,
        "bootstrap_timeout_ms": int(timeout * 1000),
        **CONSUMER_DEFAULTS,
        **(connection or {}),
    }


def producer_config(
    bootstrap_servers: str,
    *,
    timeout: float,
    acks: str,
    connection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """kafka-python's producer settings; ``connection`` adds TLS/SASL arguments."""
    return {
        "bootstrap_servers": bootstrap_servers,
        "acks": acks,
        "bootstrap_timeout_ms": int(timeout * 1000),
        "max_block_ms": int(timeout * 1000),
        **(connection or {}),
    }


def _connected(config: Mapping[str, Any]) -> KafkaConsumer:
    """A KafkaConsumer of ``config``, connected (TransportError if no broker answered)."""
    # kafka-python connects in __init__ and, when that fails, leaves its network thread
    # running; building in two steps lets us close it on that path too.
    consumer = KafkaConsumer.__new__(KafkaConsumer)
    try:
        with translated():
            consumer.__init__(**config)
    except BaseException:
        client = getattr(consumer, "_client", None)
        if client is not None:
            client.close()
        raise
    return consumer


def group_config(config: Mapping[str, Any], group: str, timeouts: GroupTimeouts) -> dict[str, Any]:
    """:func:`consumer_config` as a member of ``group`` (kafka_transport/group.py)."""
    return {
        **config,
        "group_id": group,
        "client_id": member_name(),
        "enable_auto_commit": False,  # the ledger holds the offsets; the group only splits
        "session_timeout_ms": timeouts.session_ms,
        "heartbeat_interval_ms": timeouts.heartbeat_ms,
        "partition_assignment_strategy": [RangePartitionAssignor],
    }


def keep_unfinished_joins(coordinator: Any) -> None:
    """kafka-python 3.0.12 can leave a member with no partitions while the group gave it
    some: a rejoin the leader starts because the topic's metadata changed (the first join
    before the partitions were known, or partitions added) stops being needed once it has
    computed the assignment, so when the poll's timeout ends the wait just as SyncGroup
    answers, later polls never finish the join (``need_rejoin`` False, the finished join
    never read) and the partitions go unread until the next rebalance. A join under way
    keeps the member rejoining here: it joins again (one more rebalance) instead of
    stalling. Its 2.x clients checked for a pending join the same way
    (https://github.com/dpkp/kafka-python/pull/1695, "also check that join_future is not
    pending in ensure_active_group"). It reads the coordinator's private ``_join_task``: a
    unit test fails if an upgrade renames it."""
    need_rejoin = coordinator.need_rejoin

    def unless_a_join_is_unfinished() -> bool:
        return coordinator._join_task is not None or bool(need_rejoin())

    coordinator.need_rejoin = unless_a_join_is_unfinished


class _Rebalance(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """kafka-python's callbacks (on its I/O thread) handed to the polling thread. They are
    coroutines, so the I/O thread heartbeats while the listener works."""

    def __init__(
        self, consumer: KafkaConsumer, polling: PollingThread, membership: Membership
    ) -> None:
        self._consumer = consumer
        self._polling = polling
        self._membership = membership

    async def _on_polling_thread(self, call: Callable[[], T]) -> T | None:
        ask = self._polling.ask(call)
        while not ask.done.is_set():
            await self._consumer._net.sleep(0.005)
        return ask.value

    def _mine(self, tps: Any) -> list[TopicPartition]:
        return [tp for tp in tps if tp.topic == self._membership.topic]

    async def on_partitions_revoked(self, revoked: Any) -> None:
        partitions = [tp.partition for tp in self._mine(revoked)]
        await self._on_polling_thread(lambda: self._membership.revoked(partitions))

    async def on_partitions_lost(self, lost: Any) -> None:
        await self.on_partitions_revoked(lost)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        tps = self._mine(assigned)
        partitions = [tp.partition for tp in tps]
        starts = await self._on_polling_thread(lambda: self._membership.assigned(partitions))
        if starts is None:  # the listener failed: read none of them (poll raises its error)
            self._consumer.pause(*tps)
            return
        # before kafka-python fetches (it would start at the group's committed offsets)
        _seek(self._consumer, tps, starts)


def _seek(
    consumer: KafkaConsumer, tps: list[TopicPartition], starts: dict[int, int | None]
) -> None:
    """Each partition to its start (None: its earliest offset)."""
    for tp in tps:
        start = starts[tp.partition]
        if start is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, start)


class Consumer:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        max_batch: int,
        timeout: float,
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self._config = consumer_config(
            bootstrap_servers, max_batch=max_batch, timeout=timeout, connection=connection
        )
        self._consumer = _connected(self._config)
        self._membership: Membership | None = None
        self._polling: PollingThread | None = None

    def subscribe(
        self,
        topic: str,
        group: str,
        listener: RebalanceListener,
        *,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        heartbeat_interval: float | None = None,
    ) -> None:
        if self._membership is not None or self._consumer.assignment():
            raise RuntimeError("subscribe() once, on a consumer that assign() was not used on")
        timeouts = GroupTimeouts.of(session_timeout, heartbeat_interval)
        # the group id is fixed when kafka-python's consumer is made: a new one, a member
        member = _connected(group_config(self._config, group, timeouts))
        keep_unfinished_joins(member._coordinator)
        self._consumer.close()
        self._consumer = member
        self._timeouts = timeouts
        self._membership = membership = Membership(topic, listener)
        self._polling = polling = PollingThread("kafka-python-poll")
        with translated():
            member.subscribe([topic], listener=_Rebalance(member, polling, membership))

    def assignment(self, topic: str) -> set[int]:
        if self._membership is not None:
            return set(self._membership.owned) if topic == self._membership.topic else set()
        return {tp.partition for tp in self._consumer.assignment() if tp.topic == topic}

    def probe(self, timeout: float) -> None:
        with translated():
            self._consumer.bootstrap(timeout_ms=int(timeout * 1000), refresh=True)

    def partitions(self, topic: str, timeout: float) -> set[int]:
        with translated():
            return set(self._consumer.partitions_for_topic(topic) or ())

    def assign(self, topic: str, starts: dict[int, int | None]) -> None:
        tps = [TopicPartition(topic, p) for p in sorted(starts)]
        with translated():
            self._consumer.assign(tps)
            _seek(self._consumer, tps, starts)

    def position(self, topic: str, partition: int, timeout: float) -> int:
        with translated():
            return int(
                self._consumer.position(
                    TopicPartition(topic, partition), timeout_ms=int(timeout * 1000)
                )
            )

    def end_offsets(self, topic: str, partitions: Sequence[int], timeout: float) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in partitions]
        with translated():
            ends = self._consumer.end_offsets(tps, timeout_ms=int(timeout * 1000))
        return {tp.partition: int(ends[tp]) for tp in tps}

    def poll(
        self,
        timeout: float,
        max_records: int,
        make: Callable[[str, int, int, bytes | None, bytes | None], T],
    ) -> list[T]:
        if self._polling is None:
            with translated():
                polled = self._consumer.poll(
                    timeout_ms=int(timeout * 1000), max_records=max_records
                )
        else:
            polled = self._group_call(
                lambda: self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
            )
        out: list[T] = []
        for records in polled.values():
            out.extend(make(r.topic, r.partition, r.offset, r.key, r.value) for r in records)
        return out

    def _group_call(self, call: Callable[[], T]) -> T:
        """A call that may rebalance (the listener runs on this thread meanwhile); the
        listener's failure, if any, raised rather than the client's words for it."""
        assert self._polling is not None and self._membership is not None
        self._membership.check()
        try:
            with translated():
                try:
                    return self._polling.call(call)
                except InvalidSessionTimeoutError as exc:
                    raise self._timeouts.refused(describe(exc)) from exc
        finally:
            self._membership.check()

    def close(self) -> None:
        if self._polling is None:
            self._consumer.close()
            return
        assert self._membership is not None
        before = self._membership.failure
        try:
            # revokes what this member owns (the listener is told), then leaves the group
            with translated():
                self._polling.call(self._consumer.close)
        finally:
            self._polling.close()
        if self._membership.failure is not before:  # the listener failed in this close
            self._membership.check()


class _Future:
    __slots__ = ("_future",)

    def __init__(self, future: Any) -> None:
        self._future = future

    def succeeded(self) -> bool:
        return bool(self._future.succeeded())

    def failed(self) -> bool:
        return bool(self._future.failed())

    def done(self) -> bool:
        return bool(self._future.is_done)

    def error(self) -> str | None:
        exc = self._future.exception if self._future.is_done else None
        return None if exc is None else describe(exc)

    def get(self, timeout: float) -> Delivered:
        with translated():
            metadata = self._future.get(timeout=timeout)
        return Delivered(metadata.topic, metadata.partition, metadata.offset)


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
        with translated():
            self._producer = KafkaProducer(
                **producer_config(
                    bootstrap_servers, timeout=timeout, acks=acks, connection=connection
                )
            )

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> _Future:
        with translated():
            future = self._producer.send(
                topic,
                key=key,
                value=value,
                headers=list(headers) if headers is not None else None,
                partition=partition,
            )
        if on_failure is not None:
            future.add_errback(lambda _exc: on_failure())
        return _Future(future)

    def flush(self, timeout: float) -> None:
        with translated():
            self._producer.flush(timeout=timeout)

    def partitions(self, topic: str, timeout: float) -> set[int]:
        with translated():
            return set(self._producer.partitions_for(topic) or ())

    def close(self, timeout: float) -> None:
        with translated():
            self._producer.close(timeout=timeout)


class _FutureBatch:
    """:class:`kafka_transport.Deliveries` over kafka-python's futures."""

    def __init__(self) -> None:
        self.futures: list[tuple[int, Any]] = []
        self.failed: dict[int, str] = {}  # refused when queued
        self.stop_reason: str | None = None
        self.count = 0

    def attempted(self) -> int:
        return self.count

    def stopped(self) -> str | None:
        return self.stop_reason

    def done(self) -> bool:
        return all(future.is_done for _, future in self.futures)

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for _, future in self.futures:
            if not future.is_done:
                with suppress(Exception):  # the outcome is read by failures()
                    future.get(timeout=max(0.0, deadline - time.monotonic()))

    def unreported(self) -> list[int] | None:
        return [position for position, future in self.futures if not future.is_done]

    def failures(self) -> dict[int, str]:
        out = dict(self.failed)
        for position, future in self.futures:
            if future.is_done and future.failed():
                out[position] = describe(future.exception)
        return out


class PublishingProducer(Producer):
    """The publisher's producer (``kafka_transport.open_publishing_producer``): the
    publisher's ``settings`` over :func:`producer_config`, and a close that fails what is
    left unsent instead of raising."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout: float,
        settings: Mapping[str, Any],
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self.timeout = timeout
        config = {
            **producer_config(
                bootstrap_servers, timeout=timeout, acks="all", connection=connection
            ),
            **settings,
        }
        with translated():
            self._producer = KafkaProducer(**config)

    def send_batch(
        self,
        topic: str,
        messages: Sequence[tuple[bytes | None, bytes]],
        on_failure: Callable[[int], None] | None = None,
    ) -> _FutureBatch:
        """kafka-python's futures, one per message (its sends cost more than they do)."""
        batch = _FutureBatch()
        send = self._producer.send
        futures = batch.futures
        for position, (key, value) in enumerate(messages):
            try:
                future = send(topic, key=key, value=value)
            except KafkaTimeoutError as exc:  # no metadata in time: the broker is away
                batch.failed[position] = describe(exc)
                batch.stop_reason = describe(exc)
                batch.count = position + 1
                return batch
            except KafkaError as exc:
                batch.failed[position] = describe(exc)
                continue
            if on_failure is not None:
                future.add_errback(lambda _exc, at=position: on_failure(at))
            futures.append((position, future))
        batch.count = len(messages)
        return batch

    def close(self, timeout: float) -> None:
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
