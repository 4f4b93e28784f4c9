"""The Kafka side of ingestion: assign every partition, resume from the ledger's offsets,
poll in batches, hand each batch to the :class:`~consumers.pipeline.Ingestor`.

Kafka's committed group offsets are never read: the ledger says where to resume. What
this loop promises, and how:

- **Nothing lost, nothing doubled.** Each batch is one ledger transaction holding its
  rows and the next offset of every partition it read. A crash anywhere (even SIGKILL in
  the middle of a commit) leaves the ledger at the end of the last committed batch, and
  the next run starts exactly there.
- **Graceful stop.** ``stop`` (set by the CLI on SIGTERM or SIGINT) is checked between
  batches: the batch in hand is committed, the broker connection closed, and
  :func:`consume` returns normally.
- **Broker outages.** When the broker stops answering, the loop stops polling and probes
  it with a backoff (:class:`Backoff`, doubling up to a cap; tenacity runs the loop),
  logging one warning per attempt, sleeping in between (no busy loop), until it answers;
  then it seeks every partition back to the ledger's stored offsets and carries on.
  ``until_idle`` counts only time during which the broker answered and every partition
  was read to its end, so an outage never passes for "caught up". ``max_outage``
  (default: none) turns a long outage into a :class:`~consumers.errors.ConsumeError`;
  a stop signal during an outage still ends it cleanly.
- **Partition probes.** Every ``probe_every`` seconds, busy or idle, the end offset of
  each assigned partition is asked for and recorded (table ``partition_probes``) with the
  next transaction, or in one of its own when idle: a partition is complete through the
  latest probe whose end offset the committed position has reached (``ledger/coverage.py``).
- **Several services, one consumer group (optional).** With ``group`` (the
  ``DISCLOSURE_LEDGER_CONSUMER_GROUP`` setting), the consumer joins that Kafka consumer
  group instead of assigning every partition, and Kafka splits the partitions among the
  services sharing one lake (docs/scale.md). :class:`_GroupListener` is called on every
  rebalance: before a partition goes, the batch in flight commits (or is refused whole) and
  the ledger forgets its claim; when one comes, the ledger claims its chain (fencing the
  previous owner) and only then reads where it resumes. A batch refused because another
  instance claimed one of its chains (:class:`~ledger.fence.FencedError`) is dropped whole,
  and the consumer leaves and rejoins the group, resuming from the ledger: nothing lost,
  nothing doubled. So does it after a broker outage.
- **Dead letters (optional).** With ``dead_letter_topic``, every quarantined message is
  also copied there once its batch has committed, with headers naming its source topic,
  partition, offset and error, as Kafka Connect's dead-letter queue does. The copy carries
  the key and value **sealed exactly as the quarantine row stores them**, never the raw
  bytes (:mod:`ledger.quarantine`), and a header ``disclosure-ledger.sealed-with`` says
  under which key: ``subject-key:<key id>`` (erasing that subject makes the copy unreadable
  too) or ``deployment-key`` (subject unknown: the topic should keep copies no longer than
  the quarantine retention, docs/erasure-reach.md). The ledger's quarantine table stays
  the record; the copy is best effort (a crash between the commit and the copy loses the
  copy, never the quarantine row).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from consumers.decoding import DecodePool
from consumers.errors import ConsumeError
from consumers.pipeline import Ingestor, IngestStats, PreparedBatch, SourceMessage
from disclosure_ledger.errors import KafkaSecurityError
from disclosure_ledger.kafka_security import connection_config, connection_hint
from disclosure_ledger.settings import load_settings
from kafka_transport import (
    ClientName,
    ConsumerTransport,
    ProducerTransport,
    TransportError,
    open_consumer,
    open_producer,
    resolve_client,
)
from ledger.fence import FencedError
from ledger.quarantine import SealedMessage, sealed_quarantine

log = logging.getLogger(__name__)

T = TypeVar("T")

# Messages per batch (one ledger transaction). Two batches are alive at once (one
# committing, the next being prepared); 5,000 keeps the consumer under 300 MB resident where
# 10,000 reached ~306 MB, and is as fast (300k events: 16.8k vs 17.2k events/s).
DEFAULT_BATCH = 5_000

# Header names of Kafka Connect's dead-letter queue (errors.deadletterqueue.context...).
DLQ_HEADER_PREFIX = "__connect.errors."
# Our own header: the key a dead-letter copy's bytes are sealed under.
SEALED_WITH_HEADER = "disclosure-ledger.sealed-with"
DEPLOYMENT_KEY = "deployment-key"
SUBJECT_KEY_PREFIX = "subject-key:"


def sealed_with_header(sealed_with: str | None) -> bytes:
    """The value of :data:`SEALED_WITH_HEADER` for a quarantine row's ``sealed_with``."""
    return (DEPLOYMENT_KEY if sealed_with is None else SUBJECT_KEY_PREFIX + sealed_with).encode()


@dataclass(frozen=True)
class Backoff:
    """Seconds between reconnection attempts: ``initial`` doubling to ``maximum``."""

    initial: float = 0.5
    maximum: float = 10.0


@dataclass
class ConsumeStats(IngestStats):
    batches: int = 0
    partitions: list[int] = field(default_factory=list)
    outages: int = 0
    reconnect_attempts: int = 0
    dead_lettered: int = 0


def ingest_workers(workers: int | None = None) -> int:
    """How many decode processes the consumer starts: ``workers``, or the setting
    ``DISCLOSURE_LEDGER_INGEST_WORKERS`` when None. Refused when negative."""
    if workers is None:
        workers = load_settings().ingest_workers
    if workers < 0:
        raise ConsumeError(
            f"DISCLOSURE_LEDGER_INGEST_WORKERS must be 0 (decode in the consumer's process) or "
            f"a number of decode processes, not {workers}. Nothing was read"
        )
    return workers


def _outage_retrying(
    bootstrap_servers: str,
    backoff: Backoff,
    max_outage: float | None,
    stop: threading.Event,
    stats: ConsumeStats,
    where: str,
) -> tenacity.Retrying:
    """tenacity's retry loop for one period without a broker.

    Each failed attempt (a :class:`TransportError`) is counted and logged as one numbered
    warning; the wait doubles from ``backoff.initial`` to ``backoff.maximum`` and is slept
    in ``stop.wait``, so a stop ends it at once (the attempt after it returns ``None``
    without calling the broker, see :func:`_unless_stopped`). Once the outage has lasted
    ``max_outage`` seconds, the next failure raises :class:`ConsumeError`; a stop set
    meanwhile makes the loop return ``None`` instead.
    """

    def count(state: tenacity.RetryCallState) -> None:
        if state.attempt_number == 1:
            stats.outages += 1
        stats.reconnect_attempts += 1

    def warn(state: tenacity.RetryCallState) -> None:
        log.warning(
            "Kafka at %s unreachable (attempt %d, down %.1f s): %s; retrying in %.1f s. %s",
            bootstrap_servers,
            state.attempt_number,
            state.seconds_since_start or 0.0,
            _describe(_failure(state), bootstrap_servers),
            state.upcoming_sleep,
            where,
        )

    def give_up(state: tenacity.RetryCallState) -> None:
        if stop.is_set():
            return None
        raise ConsumeError(
            f"Kafka at {bootstrap_servers} has not answered for "
            f"{state.seconds_since_start or 0.0:.0f} s ({state.attempt_number} attempts; last "
            f"error: {_describe(_failure(state), bootstrap_servers)}); giving up after "
            f"--max-outage {max_outage:g} s. {where}. Start the broker (or check "
            "KAFKA_BOOTSTRAP_SERVERS) and run consume again: it resumes there"
        ) from _failure(state)

    def nap(seconds: float) -> None:
        stop.wait(seconds)  # a stop wakes it at once

    give_up_after: tenacity.stop.stop_base = tenacity.stop_when_event_set(stop)
    if max_outage is not None:
        give_up_after = give_up_after | tenacity.stop_after_delay(max_outage)
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransportError),
        wait=tenacity.wait_exponential(multiplier=backoff.initial, max=backoff.maximum),
        stop=give_up_after,
        sleep=nap,
        after=count,
        before_sleep=warn,
        retry_error_callback=give_up,
    )


def _failure(state: tenacity.RetryCallState) -> BaseException:
    """The error of the attempt that just failed."""
    assert state.outcome is not None and state.outcome.failed
    error = state.outcome.exception()
    assert error is not None
    return error


def _unless_stopped(stop: threading.Event, attempt: Callable[[], T]) -> Callable[[], T | None]:
    """``attempt``, or ``None`` without calling it once ``stop`` is set: tenacity makes one
    more attempt after a sleep a stop cut short, and that one must not wait on the broker."""

    def guarded() -> T | None:
        return None if stop.is_set() else attempt()

    return guarded


def _describe(error: BaseException, bootstrap_servers: str) -> str:
    """The error, and the connection setting to fix when one is to blame (TLS, SASL)."""
    text = str(error)
    if isinstance(error, TransportError):  # already names the client's own error, which
        described = text  # (chained) is what tells a refused login or TLS apart
        hint = connection_hint(bootstrap_servers, error.__cause__ or error)
    else:
        name = type(error).__name__
        described = text if text.startswith(name) else f"{name}: {text}"
        hint = connection_hint(bootstrap_servers, error)
    return f"{described} ({hint})" if hint else described


def _client_for(setting: str | None) -> tuple[ClientName, dict[str, Any]]:
    """The client the setting names, and its connection arguments (TLS, SASL), which mean
    the same for both clients. Settings that cannot work, or OAUTHBEARER with kafka-python,
    are refused here, before any connection is tried, naming the variable to set."""
    chosen = resolve_client(setting)
    try:
        return chosen, connection_config(chosen)
    except KafkaSecurityError as exc:
        raise ConsumeError(f"{exc}. Nothing was read") from exc


def _open_consumer(
    client: ClientName,
    bootstrap_servers: str,
    max_batch: int,
    timeout_s: float,
    connection: Mapping[str, Any] | None = None,
) -> ConsumerTransport:
    """A connected consumer, or TransportError if the broker did not answer within
    ``timeout_s``."""
    return open_consumer(
        client, bootstrap_servers, max_batch=max_batch, timeout=timeout_s, connection=connection
    )


def _connect(
    client: ClientName,
    bootstrap_servers: str,
    max_batch: int,
    stop: threading.Event,
    backoff: Backoff,
    max_outage: float | None,
    probe_timeout: float,
    stats: ConsumeStats,
    connection: Mapping[str, Any] | None = None,
) -> ConsumerTransport | None:
    """Connect, retrying with backoff while the broker is away; None if stopped first."""
    where = (
        "Nothing read yet; start the local broker with `disclosure-ledger broker "
        "start` or set KAFKA_BOOTSTRAP_SERVERS"
    )
    retrying = _outage_retrying(bootstrap_servers, backoff, max_outage, stop, stats, where)
    consumer = retrying(
        _unless_stopped(
            stop,
            lambda: _open_consumer(client, bootstrap_servers, max_batch, probe_timeout, connection),
        )
    )
    failed = retrying.statistics["attempt_number"] - 1
    if consumer is not None and failed:
        log.info(
            "Kafka at %s answers after %.1f s and %d attempt(s)",
            bootstrap_servers,
            time.monotonic() - retrying.statistics["start_time"],
            failed,
        )
    return consumer


def consume(
    bootstrap_servers: str,
    topic: str,
    ingestor: Ingestor,
    *,
    until_idle: float | None = None,
    max_batch: int = DEFAULT_BATCH,
    linger: float = 0.2,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
    max_outage: float | None = None,
    probe_timeout: float = 5.0,
    dead_letter_topic: str | None = None,
    probe_every: float = 10.0,
    stats: ConsumeStats | None = None,
    client: str | None = "auto",
    workers: int | None = None,
    group: str | None = None,
) -> ConsumeStats:
    """Ingest ``topic`` until ``stop`` is set, or until every partition has been read to
    its end and nothing new arrived for ``until_idle`` seconds.

    Every batch is one ledger transaction; a stop or crash between batches loses nothing.
    ``stats``, if given, is counted into as batches commit (the service reads it live).
    While the broker is unreachable this retries with ``backoff`` (see the module
    docstring) and raises :class:`ConsumeError` only after ``max_outage`` seconds.
    ``client`` is the Kafka client (``auto``, ``kafka-python`` or ``confluent-kafka``: the
    ``DISCLOSURE_LEDGER_KAFKA_CLIENT`` setting); every guarantee holds with either.
    ``workers``: decode processes (:mod:`consumers.decoding`); None: the
    ``DISCLOSURE_LEDGER_INGEST_WORKERS`` setting (default 0); 0: decode in this process.
    ``group``: join this Kafka consumer group and ingest the partitions it gives (the module
    docstring); None: every partition of the topic.
    """
    if probe_every <= 0:
        raise ConsumeError(f"probe_every (--probe-every) must be positive, not {probe_every:g}")
    # incomplete TLS/SASL settings fail here, before any retrying
    chosen, connection = _client_for(client)
    workers = ingest_workers(workers)
    stop = stop or threading.Event()
    backoff = backoff or Backoff()
    stats = stats if stats is not None else ConsumeStats()
    log.info("Kafka client: %s", chosen)

    def connect() -> ConsumerTransport | None:
        return _connect(
            chosen,
            bootstrap_servers,
            max_batch,
            stop,
            backoff,
            max_outage,
            probe_timeout,
            stats,
            connection,
        )

    consumer = connect()
    if consumer is None:
        return stats
    dead_letters = (
        _DeadLetters(chosen, bootstrap_servers, dead_letter_topic, probe_timeout, connection)
        if dead_letter_topic
        else None
    )
    assigned: list[int] = []
    reseek = False
    last_refresh = last_probe = last_end_probe = 0.0
    last_activity = time.monotonic()
    caught_up = False
    decoder = DecodePool(workers, ingestor.reference, ingestor.codec) if workers else None
    collector = _BatchCollector()
    commits = _Commits(ingestor, stats, dead_letters, collector, decoder)
    listener = _GroupListener(topic, ingestor, commits) if group else None
    closed = False
    if listener is not None:
        _subscribe(consumer, listener, group)
    try:
        while not stop.is_set():
            try:
                if listener is not None:
                    if reseek:  # leave and join again: the group gives partitions afresh
                        commits.wait()
                        rejoined = _rejoin(consumer, listener, group, connect)
                        if rejoined is None:  # stopped while the broker was away
                            closed = True
                            break
                        consumer, reseek = rejoined, False
                    assigned = sorted(listener.partitions)
                elif reseek or time.monotonic() - last_refresh > (1.0 if not assigned else 10.0):
                    commits.wait()  # seeking reads the offsets the batch in flight stores
                    if not assigned:  # fails within probe_timeout when the broker is away
                        consumer.probe(probe_timeout)
                    assigned = _assign(
                        consumer, topic, ingestor, assigned, probe_timeout, reseek=reseek
                    )
                    reseek, last_refresh = False, time.monotonic()
                if assigned and time.monotonic() - last_end_probe >= probe_every:
                    ingestor.note_probes(_probe_ends(consumer, topic, assigned, probe_timeout))
                    last_end_probe = time.monotonic()
                messages = (
                    _poll_batch(consumer, max_batch, linger, listener)
                    if assigned or listener is not None
                    else []
                )
                if not messages:
                    commits.wait()
                    if time.monotonic() - last_probe >= 1.0:
                        collector.collect()
                        # Nothing new: is the broker still there, and is every partition read?
                        caught_up, probes = _caught_up(consumer, topic, assigned, probe_timeout)
                        last_probe = time.monotonic()
                        if probes and last_probe - last_end_probe >= probe_every:
                            ingestor.note_probes(probes)
                            last_end_probe = last_probe
                    if ingestor.has_pending_probes:
                        commits.submit([])  # the probes alone, while nothing else comes
            except FencedError as exc:
                if listener is None:
                    raise
                # another instance claimed a chain of the batch: the batch was dropped whole
                log.warning("%s; leaving and rejoining the consumer group", exc)
                reseek, caught_up = True, False
                continue
            except TransportError as exc:
                commits.wait()  # what was read before the outage is still good
                if not _ride_out(
                    consumer,
                    exc,
                    stop,
                    backoff,
                    max_outage,
                    probe_timeout,
                    bootstrap_servers,
                    topic,
                    ingestor,
                    stats,
                ):
                    break
                # Back: start again exactly where the ledger says, whatever was buffered.
                reseek, caught_up = True, False
                last_activity = time.monotonic()
                continue
            if messages:
                try:
                    commits.submit(messages)
                except FencedError as exc:
                    if listener is None:
                        raise
                    # a batch refused (or one waiting on another instance too long): dropped
                    log.warning("%s; leaving and rejoining the consumer group", exc)
                    reseek = True
                last_activity = time.monotonic()
                caught_up = False
                continue
            if (
                until_idle is not None
                and caught_up
                and time.monotonic() - last_activity >= until_idle
            ):
                log.info("caught up with %s and idle for %.1f s: stopping", topic, until_idle)
                break
            if not assigned:
                stop.wait(0.5)
        commits.wait()
        if stop.is_set():
            log.info("stopped on request; the ledger holds every batch read so far")
    finally:
        try:
            commits.close()  # on an error too: the batch in flight commits or fails whole
        finally:
            collector.close()
            if decoder is not None:
                decoder.close()
            if not closed:
                consumer.close()
            if dead_letters is not None:
                dead_letters.close()
    stats.partitions = sorted(assigned)
    return stats


class _GroupListener:
    """What a rebalance of the consumer group does to this service's ledger (the module
    docstring). Called by the transport inside ``poll``, on the polling thread."""

    def __init__(self, topic: str, ingestor: Ingestor, commits: _Commits) -> None:
        self.topic = topic
        self.ingestor = ingestor
        self.commits = commits
        self.partitions: set[int] = set()
        self.generation = 0  # moves on every change: a batch polled across one is dropped

    def assigned(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        self.commits.wait()
        self.generation += 1
        ledger = self.ingestor.ledger
        # fence the previous owner first; only then read the chains' heads and offsets
        ledger.claim_partitions(topic, sorted(partitions))
        self.ingestor.forget_partitions(topic, partitions)
        stored = ledger.stored_offsets(topic)
        self.partitions.update(partitions)
        starts = {p: stored.get(p) for p in partitions}
        log.info("the group gave %s partitions %s; resuming at %s", topic, sorted(starts), starts)
        return starts

    def revoked(self, topic: str, partitions: list[int]) -> None:
        self.generation += 1
        self.partitions.difference_update(partitions)
        try:
            self.commits.wait()  # the batch in flight commits, or is refused whole
        finally:
            self.ingestor.ledger.release_partitions(topic, partitions)
            self.ingestor.forget_partitions(topic, partitions)
            log.info("the group took %s partitions %s", topic, sorted(partitions))

    def leave(self) -> None:
        """Before this service rejoins: it owns nothing until the group says again."""
        self.generation += 1
        gone, self.partitions = sorted(self.partitions), set()
        self.ingestor.ledger.release_partitions(self.topic, gone)
        self.ingestor.forget_partitions(self.topic, gone)


def _rejoin(
    consumer: ConsumerTransport,
    listener: _GroupListener,
    group: str | None,
    connect: Callable[[], ConsumerTransport | None],
) -> ConsumerTransport | None:
    """Close the consumer, forget every partition, connect and join the group again: its
    rebalance gives partitions afresh, each resuming where the ledger says. None if stopped
    while reconnecting."""
    assert group is not None
    try:
        consumer.close()
    except (TransportError, FencedError) as exc:  # leaving may fail as the batch did
        log.info("closing the consumer before rejoining: %s", exc)
    listener.leave()
    fresh = connect()
    if fresh is not None:
        _subscribe(fresh, listener, group)
    return fresh


def _subscribe(consumer: ConsumerTransport, listener: _GroupListener, group: str | None) -> None:
    assert group is not None
    timeout = load_settings().group_session_timeout
    consumer.subscribe(listener.topic, group, listener, session_timeout=timeout)
    log.info(
        "joining consumer group %s on %s (session timeout %g s)", group, listener.topic, timeout
    )


class _BatchCollector:
    """Python's cyclic garbage collector, run between batches rather than during them.

    A batch allocates hundreds of thousands of dicts, lists and tuples, and each 700
    allocations set off a collection that walks every young object, the batch's included;
    every few of those, a full one walks everything alive, the reference data and loaded
    modules too (offline, 200,000 events: 18,594 events/s with automatic collection, 20,938
    with this). Here what exists when consuming starts is frozen (never scanned again),
    automatic collection is off while consuming, and :meth:`collect` runs one after each
    batch is prepared (and about once a second when idle): the young generations then, all
    of them every ``full_every`` calls. The batch's own objects are freed by reference
    counting as always; this only bounds how long a reference cycle can outlive its batch.
    The previous state is restored on :meth:`close`.
    """

    def __init__(self, full_every: int = 50) -> None:
        self.full_every = full_every
        self._calls = 0
        self._was_enabled = gc.isenabled()
        gc.freeze()
        gc.disable()

    def collect(self) -> None:
        self._calls += 1
        gc.collect(2 if self._calls % self.full_every == 0 else 1)

    def close(self) -> None:
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()


class _Commits:
    """Batch N commits on a worker thread while the main thread polls and prepares N+1.

    DuckDB releases the GIL while it inserts and commits, so the write overlaps the Python
    work of the next batch (decode, classify, pseudonymise, chain) on the other core. At most
    one batch is in flight: :meth:`submit` prepares the new batch, then waits for the one
    before it, then hands the new one over. :meth:`wait` is called before anything that
    reads the ledger's offsets (seeking after an outage, a new partition) and whenever a poll
    brings nothing, so a batch never waits long for its commit. If a commit fails, the batch
    prepared after it is dropped (its chain positions assumed the failed one) and the error
    propagates; the ledger holds every batch before it, and a restart resumes there.

    With a :class:`~consumers.decoding.DecodePool`, a batch is first sent to a decode worker
    and prepared only once the next ones are sent too (up to one per worker ahead), so the
    workers decode while this process prepares and commits; the batches still reach
    :meth:`Ingestor.prepare` and the ledger one by one, in the order they were polled.
    :meth:`wait` prepares and commits every batch sent. After a failure the batches still
    being decoded are void, like the one prepared.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        stats: ConsumeStats,
        dead_letters: _DeadLetters | None,
        collector: _BatchCollector,
        decoder: DecodePool | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.stats = stats
        self.dead_letters = dead_letters
        self.collector = collector
        self.decoder = decoder
        self._decoding: deque[Sequence[SourceMessage]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-commit")
        self._in_flight: tuple[Future[IngestStats], Sequence[SourceMessage]] | None = None

    def submit(self, messages: Sequence[SourceMessage]) -> None:
        if self.decoder is None or not messages:
            self._drain_decoding()  # the probes alone go after every batch sent
            self._hand_over(messages, self.ingestor.prepare(messages))
            return
        self.decoder.submit([m.value for m in messages])
        self._decoding.append(messages)
        if len(self._decoding) > self.decoder.workers:
            self._prepare_oldest()

    def _prepare_oldest(self) -> None:
        assert self.decoder is not None
        messages = self._decoding.popleft()
        try:
            decoded = self.decoder.result()
            prepared = self.ingestor.prepare(messages, decoded)
        except BaseException:
            self._void_decoding()
            raise
        self._hand_over(messages, prepared)

    def _drain_decoding(self) -> None:
        while self._decoding:
            self._prepare_oldest()

    def _void_decoding(self) -> None:
        self._decoding.clear()
        if self.decoder is not None:
            self.decoder.discard()

    def _hand_over(self, messages: Sequence[SourceMessage], prepared: PreparedBatch) -> None:
        self.collector.collect()  # while the batch before commits
        try:
            self._wait_commit()
        except BaseException:
            self._void_decoding()
            raise
        self._in_flight = (self._pool.submit(self.ingestor.commit, prepared), messages)

    def wait(self) -> None:
        """Until every batch sent has committed; raises what a commit raised."""
        self._drain_decoding()
        self._wait_commit()

    def _wait_commit(self) -> None:
        """Until the batch in flight (if any) has committed; raises what its commit raised."""
        if self._in_flight is None:
            return
        future, messages = self._in_flight
        self._in_flight = None
        result = future.result()
        self.stats.add(result)
        if result.total:
            self.stats.batches += 1
        if result.total:
            log.info(
                "batch of %d: %d accepted (%d late), %d duplicate, %d quarantined, %d watermark(s)",
                result.total,
                result.accepted,
                result.late,
                result.duplicates,
                result.quarantined,
                result.watermarks,
            )
        if self.dead_letters is not None and result.quarantined:
            self.stats.dead_lettered += self.dead_letters.forward(self.ingestor, messages)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def _ride_out(
    consumer: ConsumerTransport,
    error: TransportError,
    stop: threading.Event,
    backoff: Backoff,
    max_outage: float | None,
    probe_timeout: float,
    bootstrap_servers: str,
    topic: str,
    ingestor: Ingestor,
    stats: ConsumeStats,
) -> bool:
    """Probe the broker with backoff until it answers (True) or stop is set (False)."""
    where = f"The ledger resumes {topic} at {ingestor.ledger.stored_offsets(topic)}"
    began = [error]

    def probe() -> bool:
        if began:  # the failure that began the outage counts as attempt 1
            raise began.pop()
        consumer.probe(probe_timeout)
        return True

    retrying = _outage_retrying(bootstrap_servers, backoff, max_outage, stop, stats, where)
    if retrying(_unless_stopped(stop, probe)) is None:
        return False
    log.info(
        "Kafka at %s answers again after %.1f s and %d attempt(s); resuming from the "
        "ledger's offsets",
        bootstrap_servers,
        time.monotonic() - retrying.statistics["start_time"],
        retrying.statistics["attempt_number"] - 1,
    )
    return True


def _assign(
    consumer: ConsumerTransport,
    topic: str,
    ingestor: Ingestor,
    assigned: list[int],
    timeout: float,
    *,
    reseek: bool = False,
) -> list[int]:
    """Assign every partition of the topic, each starting where the ledger says.

    Without ``reseek``, nothing changes unless the topic gained partitions.
    """
    partitions = consumer.partitions(topic, timeout)
    if not partitions:
        return assigned
    if partitions == set(assigned) and not reseek:
        return assigned
    # on a lake, a writer that owned these chains before can append no more, and only then
    # are the offsets read (ledger/fence.py); a no-op on a ledger file
    ingestor.ledger.claim_partitions(topic, sorted(partitions))
    stored = ingestor.ledger.stored_offsets(topic)
    consumer.assign(topic, {p: stored.get(p) for p in partitions})
    log.info("assigned %s partitions %s; resuming at %s", topic, sorted(partitions), stored)
    return sorted(partitions)


def _caught_up(
    consumer: ConsumerTransport, topic: str, assigned: Sequence[int], timeout: float
) -> tuple[bool, list[tuple[str, int, int, int]]]:
    """Whether every assigned partition has been read to its end, and the end offsets seen
    (as probes); TransportError if the broker does not answer within ``timeout``."""
    if not assigned:
        consumer.probe(timeout)
        return True, []
    probes = _probe_ends(consumer, topic, assigned, timeout)
    ends = {partition: end for _, partition, _, end in probes}
    done = all(consumer.position(topic, p, timeout) >= ends[p] for p in assigned)
    return done, probes


def _probe_ends(
    consumer: ConsumerTransport, topic: str, assigned: Sequence[int], timeout: float
) -> list[tuple[str, int, int, int]]:
    """(topic, partition, probed_at ms, end offset) of every assigned partition. The time is
    taken before asking: every message appended before it lies below the end offset."""
    probed_at = time.time_ns() // 1_000_000
    ends = consumer.end_offsets(topic, assigned, timeout)
    return [(topic, p, probed_at, ends[p]) for p in assigned]


def _poll_batch(
    consumer: ConsumerTransport,
    max_batch: int,
    linger: float,
    listener: _GroupListener | None = None,
) -> list[SourceMessage]:
    """Poll until ``max_batch`` messages or ``linger`` seconds; in offset order per partition.
    In a consumer group, the messages polled before a rebalance are dropped (their
    partitions were sought afresh from the ledger by it), and only messages of partitions
    the group gives this service are kept."""
    messages: list[SourceMessage] = []
    deadline = time.monotonic() + linger
    while len(messages) < max_batch:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        generation = listener.generation if listener is not None else 0
        polled = consumer.poll(remaining, max_batch - len(messages), SourceMessage)
        if listener is not None:
            if listener.generation != generation:
                messages = []
            polled = [m for m in polled if m.partition in listener.partitions]
        if not polled:
            break
        messages.extend(polled)
    return messages


class _DeadLetters:
    """Copies quarantined messages to a dead-letter topic, Kafka Connect style."""

    def __init__(
        self,
        client: ClientName,
        bootstrap_servers: str,
        topic: str,
        timeout: float,
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.connection = connection
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.timeout = timeout
        self._producer: ProducerTransport | None = None

    def _connect(self) -> ProducerTransport:
        if self._producer is None:
            self._producer = open_producer(
                self.client,
                self.bootstrap_servers,
                timeout=self.timeout,
                acks="all",
                connection=self.connection,
            )
        return self._producer

    def forward(self, ingestor: Ingestor, messages: Sequence[SourceMessage]) -> int:
        """Send this committed batch's quarantined messages; returns how many were acked."""
        spans: dict[tuple[str, int], tuple[int, int]] = {}
        for m in messages:
            low, high = spans.get((m.topic, m.partition), (m.offset, m.offset))
            spans[(m.topic, m.partition)] = (min(low, m.offset), max(high, m.offset))
        rows: list[SealedMessage] = []
        for (topic, partition), (low, high) in spans.items():
            # as stored: sealed under the subject's key or the deployment key, never raw
            rows.extend(
                sealed_quarantine(
                    ingestor.ledger, topic=topic, partition=partition, offsets=(low, high)
                )
            )
        try:
            producer = self._connect()
            futures = [
                producer.send(
                    self.topic,
                    row.value,
                    key=row.key,
                    headers=[
                        (DLQ_HEADER_PREFIX + "topic", row.topic.encode()),
                        (DLQ_HEADER_PREFIX + "partition", str(row.partition).encode()),
                        (DLQ_HEADER_PREFIX + "offset", str(row.offset).encode()),
                        (DLQ_HEADER_PREFIX + "exception.message", row.error.encode()),
                        (SEALED_WITH_HEADER, sealed_with_header(row.sealed_with)),
                    ],
                )
                for row in rows
            ]
            producer.flush(self.timeout)
        except TransportError as exc:
            log.error(
                "could not copy %d quarantined message(s) to dead-letter topic %s: %s; they "
                "stay in the ledger's quarantine table",
                len(rows),
                self.topic,
                _describe(exc, self.bootstrap_servers),
            )
            return 0
        delivered = sum(1 for f in futures if f.succeeded())
        if delivered < len(rows):
            log.error(
                "%d of %d quarantined message(s) were not copied to dead-letter topic %s; "
                "they stay in the ledger's quarantine table",
                len(rows) - delivered,
                len(rows),
                self.topic,
            )
        return delivered

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(self.timeout)
