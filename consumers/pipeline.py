"""Decode · classify · pseudonymise · deduplicate · chain · append: one batch at a time.

This knows nothing of Kafka: it takes source messages (topic, partition, offset, key,
value) and turns them into one ledger transaction in which every offset is accounted
for, as an accepted row, a duplicate of an earlier ``event_id``, a quarantined message
with its raw bytes (sealed under its subject's key when the subject can be known:
``ledger/quarantine.py``), or a producer watermark (``ledger/coverage.py``). An event that
arrives after a watermark it falls under (same source and partition, ``occurred_at``
before the latest watermark already consumed there) is accepted and flagged ``late``.
The end offsets the consumer probes (:meth:`Ingestor.note_probes`) travel with the next
transaction.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from consumers.decoding import EVENT, UNCLASSIFIABLE, UNDECODABLE, WATERMARK, decode_batch
from ledger.chain import GENESIS, link_hashes
from ledger.checkpoints import Checkpoint, Checkpointer
from ledger.context_crypto import encrypt_canonical_contexts
from ledger.coverage import LATE_FLAG
from ledger.erasure import AFTER_ERASURE_FLAG
from ledger.leaf_batch import batch_leaf_hashes
from ledger.pseudonyms import SubjectKeyStore, SubjectSecrets
from ledger.quarantine import (
    DEFAULT_RETENTION_DAYS,
    QuarantinePurge,
    purge_quarantine,
    seal,
    subject_of_kafka_key,
)
from ledger.store import (
    DISCLOSURE_COLUMNS,
    DUPLICATE_COLUMNS,
    PROBE_COLUMNS,
    QUARANTINE_COLUMNS,
    WATERMARK_COLUMNS,
    Batch,
    ChainHead,
    Ledger,
    chain_id_for,
    leaf_view,
    table_from_rows,
)
from ledger.tree import Frontier, NodeRow, TreeBuilder, node_table
from reference import ReferenceData
from schemas.codec import EventCodec

log = logging.getLogger(__name__)

PURGE_EVERY_MS = 3_600_000
"""How often a running consumer purges quarantined messages past the retention: hourly."""


class SourceMessage(NamedTuple):
    """One Kafka message as read (a tuple: built for every message polled, so it is cheap)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class IngestStats:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    watermarks: int = 0
    late: int = 0  # of the accepted, how many arrived after a watermark they fall under
    after_erasure: int = 0  # of the accepted, how many are about a subject erased before

    def add(self, other: IngestStats) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.watermarks += other.watermarks
        self.late += other.late
        self.after_erasure += other.after_erasure

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + self.quarantined + self.watermarks


@dataclass(frozen=True)
class PreparedBatch:
    """One batch ready to append: see :meth:`Ingestor.prepare` and :meth:`Ingestor.commit`."""

    batch: Batch | None
    stats: IngestStats
    carries_reference: bool
    heads_before: dict[str, ChainHead] = field(default_factory=dict)
    watermarks_before: dict[tuple[str, str, int], int] = field(default_factory=dict)
    trees_before: dict[str, Frontier] = field(default_factory=dict)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Ingestor:
    """Turns batches of source messages into ledger transactions (the single writer)."""

    def __init__(
        self,
        ledger: Ledger,
        keys: SubjectKeyStore,
        reference: ReferenceData,
        *,
        codec: EventCodec | None = None,
        clock_ms: Callable[[], int] = _now_ms,
        checkpointer: Checkpointer | None = None,
        quarantine_retention_days: int | None = DEFAULT_RETENTION_DAYS,
    ) -> None:
        """``quarantine_retention_days``: the purge of quarantined messages of unknown
        subject (:func:`ledger.quarantine.purge_quarantine`) runs after the first commit and
        then every :data:`PURGE_EVERY_MS`, on the committing thread; None: never."""
        self.ledger = ledger
        self.quarantine_retention_days = quarantine_retention_days
        self._next_purge_ms = 0
        if not ledger.read_only:
            ledger.bound_memory_for_streaming()  # memory independent of the ledger's size
        self.keys = keys
        self.reference = reference
        self.codec = codec or EventCodec()
        self._clock_ms = clock_ms
        self.checkpointer = checkpointer
        self._heads: dict[str, ChainHead] = {}
        self._trees = TreeBuilder(ledger.reader)
        # event_id -> (chain, seq) of the last prepared batch, which may still be committing
        self._in_flight: dict[str, tuple[str, int]] = {}
        self._reference_stored = ledger.has_reference_version(reference.version)
        self._sealing_key = keys.quarantine_key
        # (source, topic, partition) -> the latest watermark consumed there, epoch ms
        self._watermarks = ledger.latest_watermarks()
        self._pending_probes: list[tuple[str, int, int, int]] = []

    def forget_partitions(self, topic: str, partitions: Sequence[int]) -> None:
        """Kafka moved these partitions (a rebalance of the consumer group): what this
        ingestor knew of their chains (head, Merkle frontier) and the watermarks may be
        stale, as another instance may have appended since. They are read from the ledger
        again when next needed. Call it between batches (none preparing or committing)."""
        for partition in partitions:
            chain = chain_id_for(topic, partition)
            self._heads.pop(chain, None)
            self._trees.frontiers.pop(chain, None)
        self._watermarks = self.ledger.latest_watermarks()

    def note_probes(self, probes: Sequence[tuple[str, int, int, int]]) -> None:
        """End offsets probed on the topic, as (topic, partition, probed_at ms, end offset):
        stored with the next batch (or by :meth:`prepare` of no messages when idle)."""
        self._pending_probes.extend(probes)

    @property
    def has_pending_probes(self) -> bool:
        return bool(self._pending_probes)

    def _take_probes(self) -> pa.Table | None:
        if not self._pending_probes:
            return None
        probes, self._pending_probes = self._pending_probes, []
        return pa.table(
            {
                "topic": pa.array([t for t, _, _, _ in probes], pa.string()),
                "kafka_partition": pa.array([p for _, p, _, _ in probes], pa.int32()),
                "probed_at": pa.array([at for _, _, at, _ in probes], pa.timestamp("ms")),
                "end_offset": pa.array([end for _, _, _, end in probes], pa.int64()),
            },
            schema=PROBE_COLUMNS,
        )

    def ingest(self, messages: Sequence[SourceMessage]) -> IngestStats:
        """Append one batch in one transaction; returns what became of its messages."""
        return self.commit(self.prepare(messages))

    def prepare(
        self, messages: Sequence[SourceMessage], decoded: pa.RecordBatch | None = None
    ) -> PreparedBatch:
        """Everything but the write: decode, classify, deduplicate, pseudonymise, sequence and
        chain one batch. The chain heads move on in memory at once, so the next batch can be
        prepared while this one commits (on another thread: see
        :func:`consumers.consumer.consume`); pass the result to :meth:`commit`, in order.

        ``decoded``: the messages' values already decoded and classified
        (:func:`consumers.decoding.decode_batch`, in a worker process); None: done here."""
        probes = self._take_probes()
        if not messages:
            if probes is None:
                return PreparedBatch(None, IngestStats(), False)
            only_probes = Batch(
                accepted=DISCLOSURE_COLUMNS.empty_table(),
                quarantined=QUARANTINE_COLUMNS.empty_table(),
                duplicates=DUPLICATE_COLUMNS.empty_table(),
                probes=probes,
            )
            return PreparedBatch(
                only_probes, IngestStats(), False, dict(self._heads), dict(self._watermarks)
            )
        if decoded is None:
            decoded = decode_batch(self.codec, self.reference, [m.value for m in messages])
        if decoded.num_rows != len(messages):
            raise ValueError(f"{decoded.num_rows} decoded rows for {len(messages)} messages")
        now = self._clock_ms()
        candidates: list[int] = []  # positions of decoded, classified events
        # (message, error, (subject type, id) if the body decoded)
        to_quarantine: list[tuple[SourceMessage, str, tuple[str, str] | None]] = []
        watermark_rows: list[dict[str, Any]] = []
        watermarks_before = dict(self._watermarks)
        latest = self._watermarks
        late: set[tuple[str, int, int]] = set()
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            position = (message.topic, message.partition)
            next_offsets[position] = max(next_offsets.get(position, 0), message.offset + 1)
        kinds = decoded.column("kind").to_pylist()
        column = decoded.column
        if not latest and all(kind == EVENT for kind in kinds):
            candidates = list(range(len(kinds)))  # the usual batch: every message an event
        else:
            errors = column("error").to_pylist()
            subject_types = column("subject_type").to_pylist()
            subject_ids = column("subject_id").to_pylist()
            services = column("producer_service").to_pylist()
            occurred = column("occurred_at").cast(pa.int64()).to_pylist()
            mark_sources = column("watermark_source").to_pylist()
            mark_ats = column("watermark_at").to_pylist()
            for i, (message, kind) in enumerate(zip(messages, kinds, strict=True)):
                if kind == UNDECODABLE:
                    to_quarantine.append((message, errors[i], None))
                elif kind == UNCLASSIFIABLE:
                    to_quarantine.append((message, errors[i], (subject_types[i], subject_ids[i])))
                elif kind == WATERMARK:
                    # messages come in offset order per partition: every event after this
                    # one here is judged against it
                    mark = (mark_sources[i], message.topic, message.partition)
                    latest[mark] = max(latest.get(mark, mark_ats[i]), mark_ats[i])
                    watermark_rows.append(
                        _watermark_row(message, mark_sources[i], mark_ats[i], now)
                    )
                else:
                    if latest:
                        mark_at = latest.get((services[i], message.topic, message.partition))
                        if mark_at is not None and occurred[i] < mark_at:
                            late.add((message.topic, message.partition, message.offset))
                    candidates.append(i)

        # Deduplicate by event_id: against the ledger, set-wise, against the batch that may
        # still be committing, and within the batch.
        all_event_ids = column("event_id").to_pylist()
        event_ids = [all_event_ids[i] for i in candidates]
        known = self.ledger.find_event_ids(pa.array(event_ids, pa.string()))
        if self._in_flight:
            in_flight = self._in_flight
            known.update((e, in_flight[e]) for e in event_ids if e in in_flight)
        if self.ledger.lake is not None:  # other instances may hold the same events
            known.update(self._settle(messages, candidates, event_ids, known))
        first_in_batch: dict[str, int] = {}
        accepted: list[int] = []
        later_duplicates: list[tuple[SourceMessage, str, int]] = []
        duplicate_rows: list[dict[str, Any]] = []
        for i, event_id in zip(candidates, event_ids, strict=True):
            if event_id in known:
                chain, seq = known[event_id]
                duplicate_rows.append(_duplicate_row(messages[i], event_id, chain, seq, now))
            elif event_id in first_in_batch:
                later_duplicates.append((messages[i], event_id, first_in_batch[event_id]))
            else:
                first_in_batch[event_id] = len(accepted)
                accepted.append(i)

        rows_of = (
            decoded
            if len(accepted) == decoded.num_rows
            else decoded.take(pa.array(accepted, pa.int64()))
        )
        accepted_messages = [messages[i] for i in accepted]
        subjects = self.keys.derive(
            list(
                zip(
                    rows_of.column("subject_type").to_pylist(),
                    rows_of.column("subject_id").to_pylist(),
                    strict=True,
                )
            )
        )
        # after the accepted subjects have their keys: a Kafka key may name one of them
        quarantined = self._quarantine_rows(to_quarantine, now)
        heads_before = dict(self._heads)
        trees_before = self._trees.snapshot()
        rows, accepted_table, nodes = self._rows(accepted_messages, rows_of, subjects, now, late)
        for message, event_id, index in later_duplicates:
            chain, seq = rows[index]
            duplicate_rows.append(_duplicate_row(message, event_id, chain, seq, now))
        self._in_flight = dict(zip(first_in_batch, rows, strict=True))

        carries_reference = not self._reference_stored
        batch = Batch(
            accepted=accepted_table,
            quarantined=table_from_rows(quarantined, QUARANTINE_COLUMNS),
            duplicates=table_from_rows(duplicate_rows, DUPLICATE_COLUMNS),
            next_offsets=next_offsets,
            reference_tables=self.reference.to_arrow_tables() if carries_reference else {},
            watermarks=table_from_rows(watermark_rows, WATERMARK_COLUMNS)
            if watermark_rows
            else None,
            probes=probes,
            merkle_nodes=node_table(nodes) if nodes else None,
        )
        self._reference_stored = True
        late_accepted = (
            sum(
                1
                for message in accepted_messages
                if (message.topic, message.partition, message.offset) in late
            )
            if late
            else 0
        )
        stats = IngestStats(
            len(rows),
            len(duplicate_rows),
            len(quarantined),
            len(watermark_rows),
            late_accepted,
            sum(1 for subject in subjects if subject.after_erasure),
        )
        return PreparedBatch(
            batch, stats, carries_reference, heads_before, watermarks_before, trees_before
        )

    def _settle(
        self,
        messages: Sequence[SourceMessage],
        candidates: Sequence[int],
        event_ids: Sequence[str],
        known: dict[str, tuple[str, int]],
    ) -> dict[str, tuple[str, int]]:
        """On a lake: the batch's new events that another instance claimed first, each with
        its row's (chain, seq) (:mod:`ledger.event_claims`)."""
        first: dict[str, SourceMessage] = {}
        for i, event_id in zip(candidates, event_ids, strict=True):
            if event_id not in known and event_id not in first:
                first[event_id] = messages[i]
        if not first:
            return {}
        return self.ledger.settle_event_ids(
            list(first),
            [chain_id_for(m.topic, m.partition) for m in first.values()],
            [m.offset for m in first.values()],
        )

    def _quarantine_rows(
        self,
        to_quarantine: Sequence[tuple[SourceMessage, str, tuple[str, str] | None]],
        now: int,
    ) -> list[dict[str, Any]]:
        """Quarantine rows, each sealed under its subject's key when the subject can be known
        (the decoded record's subject, or the one held subject the Kafka key names), else
        under the deployment key (:mod:`ledger.quarantine` says why, and for how long)."""
        if not to_quarantine:
            return []
        known = [subject for _, _, subject in to_quarantine if subject is not None]
        derived = dict(zip(known, self.keys.derive(known), strict=True)) if known else {}
        rows = []
        for message, error, subject in to_quarantine:
            secrets = (
                derived[subject]
                if subject is not None
                else subject_of_kafka_key(self.keys, message.key)
            )
            key = None if secrets is None else self.keys.subject_quarantine_key(secrets.key_id)
            if secrets is None or key is None:
                rows.append(_quarantine_row(message, error, now, self._sealing_key, None))
            else:
                rows.append(_quarantine_row(message, error, now, key, secrets.key_id))
        return rows

    def commit(self, prepared: PreparedBatch) -> IngestStats:
        """Append a prepared batch in one transaction; returns what became of its messages.

        If the transaction fails, the batches prepared after this one are void: the
        in-memory chain heads go back to before it, and the caller must prepare them again.
        """
        if prepared.batch is None:
            return prepared.stats
        try:
            self.ledger.append_batch(prepared.batch)
        except BaseException:
            # the transaction rolled back; so do the heads and what it was to store
            self._heads = dict(prepared.heads_before)
            self._trees.restore(prepared.trees_before)
            self._watermarks = dict(prepared.watermarks_before)
            self._in_flight = {}
            if prepared.carries_reference:
                self._reference_stored = False
            raise
        stats = prepared.stats
        if stats.quarantined:
            log.warning("quarantined %d message(s); see the quarantine table", stats.quarantined)
        if self.checkpointer is not None:
            self.checkpointer.after_batch(stats.accepted)
        self.purge_quarantine_if_due()
        return stats

    def checkpoint_if_due(self) -> Checkpoint | None:
        """When a poll brings nothing: the time-based checkpoint, if rows await one (and the
        quarantine purge, if due)."""
        self.purge_quarantine_if_due()
        return self.checkpointer.after_batch(0) if self.checkpointer is not None else None

    def purge_quarantine_if_due(self) -> QuarantinePurge | None:
        """Purge the bytes of quarantined messages of unknown subject past the retention, if
        the last purge was :data:`PURGE_EVERY_MS` ago. A failure is logged, never raised:
        ingestion (evidence) goes on, and the next attempt comes an interval later."""
        days = self.quarantine_retention_days
        now = self._clock_ms()
        if days is None or self.ledger.read_only or now < self._next_purge_ms:
            return None
        self._next_purge_ms = now + PURGE_EVERY_MS
        try:
            done = purge_quarantine(
                self.ledger, retention_days=days, now=datetime.fromtimestamp(now / 1000, UTC)
            )
        except Exception:
            log.exception(
                "the quarantine purge failed; quarantined messages of unknown subject older "
                "than %d days are still held: run `disclosure-ledger quarantine purge` with the "
                "ledger not in use, or wait for the next attempt",
                days,
            )
            return None
        if done.purged:
            log.info(
                "purged the bytes of %d quarantined message(s) of unknown subject older than "
                "%d days",
                done.purged,
                days,
            )
        return done

    def shutdown(self) -> Checkpoint | None:
        """On a clean stop: the final checkpoint (None if no checkpointer, or nothing moved)."""
        return self.checkpointer.shutdown() if self.checkpointer is not None else None

    def _rows(
        self,
        messages: Sequence[SourceMessage],
        decoded: pa.RecordBatch,
        subjects: Sequence[SubjectSecrets],
        now: int,
        late: set[tuple[str, int, int]],
    ) -> tuple[list[tuple[str, int]], pa.Table, list[NodeRow]]:
        """The accepted rows (``messages`` and their ``decoded`` rows, :data:`DECODED`) as
        one disclosures table, in batch order, sequenced and chained; with each row's
        (chain, seq), and the Merkle nodes the rows complete (:mod:`ledger.tree`). The
        decoded columns pass through as Arrow arrays; only what this process decides (chain,
        sequence, pseudonym, encrypted context, flags) is built here."""
        n = len(messages)
        chain_names: dict[tuple[str, int], str] = {}
        chains = [
            chain_names.get((m.topic, m.partition))
            or chain_names.setdefault((m.topic, m.partition), chain_id_for(m.topic, m.partition))
            for m in messages
        ]
        by_chain: dict[str, list[int]] = defaultdict(list)  # chain -> positions in the batch
        for i, chain in enumerate(chains):
            by_chain[chain].append(i)
        missing = [c for c in by_chain if c not in self._heads]
        self._heads.update(self.ledger.chain_heads(missing))
        seqs = [0] * n
        for chain, positions in by_chain.items():
            head = self._heads.get(chain, ChainHead(0, GENESIS))
            for seq, i in enumerate(positions, start=head.seq + 1):
                seqs[i] = seq
        event_ids = decoded.column("event_id").to_pylist()
        texts = decoded.column("context_text").to_pylist()
        class_flags = decoded.column("class_flags")
        flags: pa.Array | list[tuple[str, ...]] = class_flags
        if late or any(s.after_erasure for s in subjects):
            flags = _flags(messages, class_flags.to_pylist(), subjects, late)
        built: dict[str, Any] = {
            "chain_id": chains,
            "seq": seqs,
            "topic": [m.topic for m in messages],
            "kafka_partition": [m.partition for m in messages],
            "kafka_offset": [m.offset for m in messages],
            "subject_pseudonym": [subject.pseudonym for subject in subjects],
            # Encrypted under the subject's key: erasing the key erases the context too.
            "context": encrypt_canonical_contexts(
                [
                    (subject.context_key, event_id, text)
                    for subject, event_id, text in zip(subjects, event_ids, texts, strict=True)
                ]
            ),
            "reference_version": [self.reference.version] * n,
            "flags": flags,
            "ingested_at": [now] * n,
        }
        body = pa.table(
            [
                decoded.column(f.name)
                if f.name not in built
                else built[f.name]
                if isinstance(built[f.name], pa.Array)
                else pa.array(built[f.name], f.type)
                for f in _BODY_COLUMNS
            ],
            schema=_BODY_COLUMNS,
        )
        # Every leaf of the batch in one DuckDB query (ledger.leaf_batch), read from the very
        # columns that are appended, then each chain's links.
        leaves = batch_leaf_hashes(leaf_view(body))
        links: list[bytes] = [b""] * n
        nodes: list[NodeRow] = []
        for chain, positions in by_chain.items():
            head = self._heads.get(chain, ChainHead(0, GENESIS))
            chain_leaves = [leaves[i] for i in positions]
            chained = link_hashes(head.chain_hash, chain_leaves)
            nodes += self._trees.extend(chain, head.seq, chain_leaves)
            for i, link in zip(positions, chained, strict=True):
                links[i] = link
            self._heads[chain] = ChainHead(head.seq + len(positions), chained[-1])
        table = body.append_column(
            DISCLOSURE_COLUMNS.field("leaf_hash"), pa.array(leaves, pa.binary(32))
        ).append_column(DISCLOSURE_COLUMNS.field("chain_hash"), pa.array(links, pa.binary(32)))
        return list(zip(chains, seqs, strict=True)), table, nodes


def _flags(
    messages: Sequence[SourceMessage],
    class_flags: Sequence[Sequence[str]],
    subjects: Sequence[SubjectSecrets],
    late: set[tuple[str, int, int]],
) -> list[tuple[str, ...]]:
    """Each row's flags: its classification's, then ``late`` (it arrived after a watermark
    it falls under) and ``after_erasure`` (its subject was erased before it arrived)."""
    flags = [tuple(f) for f in class_flags]
    for i, (m, subject) in enumerate(zip(messages, subjects, strict=True)):
        if late and (m.topic, m.partition, m.offset) in late:
            flags[i] = (*flags[i], LATE_FLAG)
        if subject.after_erasure:
            flags[i] = (*flags[i], AFTER_ERASURE_FLAG)
    return flags


def _quarantine_row(
    message: SourceMessage, error: str, now: int, key: bytes, sealed_with: str | None
) -> dict[str, Any]:
    position = (message.topic, message.partition, message.offset)
    return {
        "topic": message.topic,
        "kafka_partition": message.partition,
        "kafka_offset": message.offset,
        # sealed: the raw bytes name the person (see ledger/quarantine.py)
        "message_key": seal(key, *position, "key", message.key),
        "message_value": seal(key, *position, "value", message.value),
        "error": error,
        "quarantined_at": now,
        "sealed_with": sealed_with,  # the subject key's id; None: the deployment key
    }


def _watermark_row(message: SourceMessage, source: str, at_ms: int, now: int) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "kafka_partition": message.partition,
        "kafka_offset": message.offset,
        "source": source,
        "watermark_at": at_ms,
        "recorded_at": now,
    }


def _duplicate_row(
    message: SourceMessage, event_id: str, chain: str, seq: int, now: int
) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "kafka_partition": message.partition,
        "kafka_offset": message.offset,
        "event_id": event_id,
        "original_chain_id": chain,
        "original_seq": seq,
        "recorded_at": now,
    }


_BODY_COLUMNS = pa.schema(
    [f for f in DISCLOSURE_COLUMNS if f.name not in ("leaf_hash", "chain_hash")]
)
