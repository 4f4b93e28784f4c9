"""The DuckDB ledger file: append-only disclosures, offsets, quarantine, duplicates.

One writer per file (DuckDB's own file lock, turned into :class:`LedgerLockedError`);
readers open it read-only. Each :meth:`Ledger.append_batch` is one transaction holding the
batch's rows *and* the next offset of every source partition it read, so the ledger, not
Kafka, says where to resume. Bulk writes go through Arrow tables, never ``executemany``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import tenacity

from ledger.access_log import ACCESS_LOG_DDL
from ledger.chain import LEAF_TYPES
from ledger.checkpoint_notes import CHECKPOINT_NOTES_DDL
from ledger.coverage import WATERMARKS_DDL
from ledger.derived import APPEND_SELECT, append_derived, ensure_derived, with_derived
from ledger.errors import LedgerError, LedgerLockedError, LedgerVersionError
from ledger.fence import FencedError, claim, hold, owner_of
from ledger.lake import LakeLocation, attach_lake, cursor_of, lake_ddl, lock_lake_connection
from ledger.tree import MERKLE_DDL, NODE_COLUMNS, ensure_tree

FORMAT_VERSION = "1"

DISCLOSURE_COLUMNS = pa.schema(
    [
        ("chain_id", pa.string()),
        ("seq", pa.int64()),
        ("topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("event_id", pa.string()),
        ("occurred_at", pa.timestamp("ms")),
        ("subject_pseudonym", pa.string()),
        ("subject_type", pa.string()),
        ("recipient_id", pa.string()),
        ("recipient_category", pa.string()),
        ("data_categories", pa.list_(pa.string())),
        ("purpose", pa.string()),
        ("legal_basis", pa.string()),
        ("legal_reference", pa.string()),
        ("disclosure_kind", pa.string()),
        ("producer_service", pa.string()),
        ("producer_version", pa.string()),
        ("context", pa.string()),
        ("schema_version", pa.int32()),
        ("reference_version", pa.string()),
        ("ccpa_letters", pa.list_(pa.string())),
        ("business_purpose", pa.string()),
        ("sensitive", pa.bool_()),
        ("declared", pa.bool_()),
        ("flags", pa.list_(pa.string())),
        ("ingested_at", pa.timestamp("ms")),
        ("leaf_hash", pa.binary(32)),
        ("chain_hash", pa.binary(32)),
    ]
)

QUARANTINE_COLUMNS = pa.schema(
    [
        ("topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("message_key", pa.binary()),
        ("message_value", pa.binary()),
        ("error", pa.string()),
        ("quarantined_at", pa.timestamp("ms")),
        ("sealed_with", pa.string()),  # the subject key's id; null: the deployment key
    ]
)

DUPLICATE_COLUMNS = pa.schema(
    [
        ("topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("event_id", pa.string()),
        ("original_chain_id", pa.string()),
        ("original_seq", pa.int64()),
        ("recorded_at", pa.timestamp("ms")),
    ]
)

WATERMARK_COLUMNS = pa.schema(
    [
        ("topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("source", pa.string()),
        ("watermark_at", pa.timestamp("ms")),
        ("recorded_at", pa.timestamp("ms")),
    ]
)
"""Producer watermarks as consumed (table ``watermarks``, see :mod:`ledger.coverage`)."""

PROBE_COLUMNS = pa.schema(
    [
        ("topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("probed_at", pa.timestamp("ms")),
        ("end_offset", pa.int64()),
    ]
)
"""The end offsets the consumer probed (table ``partition_probes``)."""

PROBES_KEPT_UNREACHED = 100
"""Per partition, the probes kept that the committed position has not reached yet (the
oldest ones, which it reaches first, and the newest, which says the current lag). Of the
probes it has reached, only the newest says anything (it supersedes the older ones), so
the table stays bounded however long the consumer runs or lags."""

# Hashes and encrypted contexts are random bytes (the contexts in base64) that DuckDB's
# dictionary and FSST compression barely shrink (hashes not at all, contexts by about a sixth)
# but that verify then has to decompress: stored plain, DuckDB reads them 1.4 (hashes) to 1.9
# (contexts) times as fast (README, "Performance"). Older ledgers keep their compression.
_DDL = """
CREATE TABLE IF NOT EXISTS ledger_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS disclosures (
    chain_id VARCHAR NOT NULL, seq BIGINT NOT NULL,
    topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset BIGINT NOT NULL,
    event_id UUID NOT NULL, occurred_at TIMESTAMP NOT NULL,
    subject_pseudonym VARCHAR NOT NULL, subject_type VARCHAR NOT NULL,
    recipient_id VARCHAR NOT NULL, recipient_category VARCHAR NOT NULL,
    data_categories VARCHAR[] NOT NULL, purpose VARCHAR NOT NULL,
    legal_basis VARCHAR NOT NULL, legal_reference VARCHAR, disclosure_kind VARCHAR NOT NULL,
    producer_service VARCHAR NOT NULL, producer_version VARCHAR NOT NULL,
    context VARCHAR USING COMPRESSION uncompressed NOT NULL, schema_version INTEGER NOT NULL,
    reference_version VARCHAR NOT NULL, ccpa_letters VARCHAR[] NOT NULL,
    business_purpose VARCHAR NOT NULL, sensitive BOOLEAN NOT NULL, declared BOOLEAN NOT NULL,
    flags VARCHAR[] NOT NULL, ingested_at TIMESTAMP NOT NULL,
    leaf_hash BLOB USING COMPRESSION uncompressed NOT NULL,
    chain_hash BLOB USING COMPRESSION uncompressed NOT NULL,
    -- derived, not hashed: written by append_batch, checked by ledger.derived.check_derived
    ccpa_mask USMALLINT, subject_key UBIGINT
);
CREATE TABLE IF NOT EXISTS offsets (
    topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL, PRIMARY KEY (topic, kafka_partition)
);
CREATE TABLE IF NOT EXISTS quarantine (
    topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset BIGINT NOT NULL,
    message_key BLOB, message_value BLOB, error VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    -- see ledger/quarantine.py: which key sealed the bytes, and when they were purged
    sealed_with VARCHAR, purged_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS duplicates (
    topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset BIGINT NOT NULL,
    event_id UUID NOT NULL, original_chain_id VARCHAR NOT NULL, original_seq BIGINT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
"""

_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")
_STORAGE_VERSIONS = re.compile(r"version number (\d+), but we can only read versions? (.+?)\.")


def _unreadable_version(path: Path, duckdb_said: str) -> str:
    """What to tell a user whose ledger file this DuckDB cannot read (docs/duckdb-version.md).

    DuckDB writes its storage version and the library version that wrote the file into the
    file's header (``DUCK`` at byte 8, the version string at byte 52); the error names the
    former, the header the latter, which is what a user can act on."""
    writer = "another DuckDB version"
    try:
        with path.open("rb") as file:
            header = file.read(64)
        if header[8:12] == b"DUCK":
            name = header[52:64].split(b"\0", 1)[0].decode("ascii", "replace")
            if name:
                writer = f"DuckDB {name}"
    except OSError:
        pass
    found = _STORAGE_VERSIONS.search(duckdb_said)
    storage = (
        f" (storage version {found.group(1)}; DuckDB {duckdb.__version__} reads {found.group(2)})"
        if found
        else ""
    )
    return (
        f"ledger file {path} was written by {writer}{storage}, which this disclosure-ledger, "
        f"built on DuckDB {duckdb.__version__}, cannot read. Use the disclosure-ledger release "
        f"that wrote it, or move the data across with that DuckDB's EXPORT DATABASE and "
        f"DuckDB {duckdb.__version__}'s IMPORT DATABASE (docs/duckdb-version.md says why "
        "the project stays on this DuckDB version)"
    )


# The consumer's DuckDB settings (Ledger.bound_memory_for_streaming). With DuckDB's defaults
# its memory grows with the ledger (~2 KB per row):
# - max_vacuum_tasks 0: each auto-checkpoint writes the rows committed since the last one
#   (~40,000 at the 16 MB checkpoint_threshold) as a row group, and the vacuum then merges
#   those partial row groups, reading back and rewriting rows already on disk, more of them
#   as the ledger grows. Disclosures are never deleted, so vacuuming reclaims nothing here.
# - memory_limit: the buffer pool (default 80% of RAM) otherwise keeps every block written
#   at a checkpoint or scanned to deduplicate event ids. It must hold the committed rows
#   not yet checkpointed (~15 MB at that threshold, ~20 MB in DuckDB 1.5.5: raise it with
#   checkpoint_threshold), and a batch's working set; more spills to the ledger's .tmp
#   directory. Under DuckDB 1.5.5, 32 MB failed the fourth 5,000-event commit into a new
#   ledger ("could not allocate block": its in-memory rows are not spilled); 64 MB holds.
STREAMING_WRITER_SETTINGS: Mapping[str, str] = {"memory_limit": "64MB", "max_vacuum_tasks": "0"}


REFERENCE_TABLES = (
    "ref_recipients",
    "ref_categories",
    "ref_purposes",
    "ref_flows",
    "ref_sources",
)
"""The tables of :meth:`reference.ReferenceData.to_arrow_tables`, one set per version."""


def _open_lake(
    location: LakeLocation, *, read_only: bool, external_access: bool
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as its default catalog."""
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
        },
    )
    try:
        attach_lake(con, location, read_only=read_only)
        if not external_access:
            lock_lake_connection(con, location)
    except BaseException:
        con.close()
        raise
    return con


LAKE_LOG_DDL = """
CREATE TABLE IF NOT EXISTS offset_log (
    topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE VIEW IF NOT EXISTS offsets AS
    SELECT topic, kafka_partition, max(next_offset) AS next_offset,
        max(updated_at) AS updated_at
    FROM offset_log GROUP BY topic, kafka_partition;
CREATE TABLE IF NOT EXISTS chain_head_log (
    chain_id VARCHAR NOT NULL, head_seq BIGINT NOT NULL, head_chain_hash BLOB NOT NULL
);
CREATE VIEW IF NOT EXISTS chain_heads AS
    SELECT chain_id, max(head_seq) AS head_seq,
        arg_max(head_chain_hash, head_seq) AS head_chain_hash
    FROM chain_head_log GROUP BY chain_id;
CREATE TABLE IF NOT EXISTS reference_fence (stored BIGINT NOT NULL);
INSERT INTO reference_fence SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM reference_fence);
CREATE TABLE IF NOT EXISTS access_log_fence (appended BIGINT NOT NULL);
INSERT INTO access_log_fence SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM access_log_fence);
"""
"""On a lake, where several writers append at once (docs/scale.md): the next offset of each
partition and the head of each chain are *appended* to a log by the batch that moves them,
and read through views of the same names as the one-file ledger's tables (a partition's
offset only grows, and so does a chain's head seq, so the newest row is the largest). A
MERGE into one shared table would make every two writers' commits conflict (DuckLake counts
an UPDATE as a delete), while inserts never do. Only the chain's owner appends its rows
(ledger/fence.py). ``reference_fence`` is the one row every batch that stores a reference
version updates: two writers storing the same version at once conflict, and the retried
one then finds it stored. ``access_log_fence`` is the same for the access log's chain
(:class:`ledger.access_log.AccessLog`)."""


def create_lake_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every ledger table a lake lacks, as DuckLake takes them (:func:`lake_ddl`):
    each module's own ``CREATE TABLE IF NOT EXISTS`` then finds it there (the views of
    :data:`LAKE_LOG_DDL` first, so ``offsets`` and ``chain_heads`` are never tables)."""
    from ledger.checkpoints import CHECKPOINT_FENCES_DDL, CHECKPOINTS_DDL  # they build on this
    from ledger.derived import DERIVED_DDL
    from ledger.erasure import ERASURES_DDL
    from ledger.event_claims import EVENT_CLAIMS_DDL

    # one transaction: one catalog commit for the whole schema, not one per statement
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(LAKE_LOG_DDL)
        con.execute(EVENT_CLAIMS_DDL)
        for ddl in (
            _DDL,
            WATERMARKS_DDL,
            ACCESS_LOG_DDL,
            ERASURES_DDL,
            MERKLE_DDL,
            CHECKPOINT_NOTES_DDL,
            DERIVED_DDL,
            CHECKPOINTS_DDL,
            CHECKPOINT_FENCES_DDL,
        ):
            con.execute(lake_ddl(ddl))
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def chain_id_for(topic: str, partition: int) -> str:
    """One chain per source partition."""
    return f"{topic}/{partition}"


@dataclass(frozen=True)
class ChainHead:
    seq: int
    chain_hash: bytes


@dataclass
class Batch:
    """What one transaction appends. Tables follow the ``*_COLUMNS`` schemas."""

    accepted: pa.Table
    quarantined: pa.Table
    duplicates: pa.Table
    next_offsets: Mapping[tuple[str, int], int] = field(default_factory=dict)
    reference_tables: Mapping[str, pa.Table] = field(default_factory=dict)
    watermarks: pa.Table | None = None  # WATERMARK_COLUMNS: each an offset of the topic
    probes: pa.Table | None = None  # PROBE_COLUMNS
    merkle_nodes: pa.Table | None = None  # ledger.tree.NODE_COLUMNS: the tiles rows complete


def empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


class Ledger:
    """A ledger file opened as its one writer, or read-only."""

    def __init__(
        self,
        path: Path | LakeLocation,
        *,
        read_only: bool = False,
        external_access: bool = True,
    ) -> None:
        """Open ``path``, a ledger file or a DuckLake (:mod:`ledger.lake`);
        ``external_access=False`` (the service) opens a database instance that can never read
        or write any file but the ledger, for its whole life: DuckDB refuses to turn external
        access back on while the database runs."""
        self.lake = path if isinstance(path, LakeLocation) else None
        # a lake's local_path names the files kept beside it as if it were a ledger file
        self.path = path.local_path if isinstance(path, LakeLocation) else Path(path)
        self.location = str(path)
        self.read_only = read_only
        self._closed = False
        self._owner = True
        self._reader: duckdb.DuckDBPyConnection | None = None
        self._views = threading.Lock()
        self._epochs: dict[str, int] = {}  # a lake's chains this writer claimed (ledger.fence)
        self._released: set[str] = set()  # ... and those Kafka took from it since
        self._claims = threading.Lock()  # claims come from the preparing and committing threads
        self._claimer: duckdb.DuckDBPyConnection | None = None
        self._settler: duckdb.DuckDBPyConnection | None = None  # event claims (preparing)
        if self.lake is not None:
            self.con = _open_lake(self.lake, read_only=read_only, external_access=external_access)
        else:
            self.con = self._open_file(read_only=read_only, external_access=external_access)
        self._finish_opening(read_only=read_only)

    def _open_file(self, *, read_only: bool, external_access: bool) -> duckdb.DuckDBPyConnection:
        if read_only and not self.path.exists():
            raise LedgerError(
                f"ledger file {self.path} does not exist; check --ledger, or ingest into it "
                "first with `disclosure-ledger consume`"
            )
        try:
            return duckdb.connect(
                str(self.path),
                read_only=read_only,
                config={
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "python_enable_replacements": False,
                    **({} if external_access else {"enable_external_access": False}),
                },
            )
        except duckdb.IOException as exc:
            text = str(exc)
            if "database file with version number" in text:
                raise LedgerVersionError(_unreadable_version(self.path, text)) from exc
            if "Could not set lock" in text:
                holder = _LOCK_HOLDER.search(text)
                who = f"process {holder.group(1)}" if holder else "another process"
                raise LedgerLockedError(
                    f"ledger file {self.path} is held by {who}: one writer per ledger file, and "
                    "readers wait until it stops (DuckDB allows one writing process, or any "
                    f"number of read-only ones). DuckDB said: {text}"
                ) from exc
            raise LedgerError(
                f"cannot open ledger file {self.path}: {text}; is it a DuckDB ledger file, "
                "whole and uncorrupted? Restore it from a copy if not"
            ) from exc
        except duckdb.Error as exc:
            raise LedgerError(
                f"cannot open ledger file {self.path}: {exc}; is it a DuckDB ledger file?"
            ) from exc

    def _finish_opening(self, *, read_only: bool) -> None:
        if not read_only:
            if self.lake is not None:
                create_lake_tables(self.con)
            self.con.execute(_DDL)
            self.con.execute(WATERMARKS_DDL)
            self.con.execute(ACCESS_LOG_DDL)  # readers always find it, empty or not
            from ledger.erasure import ensure_erasure_tables  # it builds on this module

            ensure_erasure_tables(self.con)
            from ledger.quarantine import ensure_quarantine_columns  # it builds on this module

            ensure_quarantine_columns(self.con)
            self.con.execute(MERKLE_DDL)
            self.con.execute(CHECKPOINT_NOTES_DDL)
            self.con.execute(
                "MERGE INTO ledger_meta USING (SELECT 'format_version' AS key, ?::VARCHAR AS value)"
                " USING (key) WHEN NOT MATCHED THEN INSERT",
                [FORMAT_VERSION],
            )
            try:
                # migrates an older file; derives bulk-loaded rows; refreshes the heavy set
                ensure_derived(self.con, opening=True)
                ensure_tree(self.con)  # rows appended without their Merkle nodes
            except duckdb.Error as exc:
                self.con.close()
                raise LedgerError(
                    f"cannot bring the derived data of ledger file {self.path} up to date: {exc}"
                ) from exc
            except BaseException:
                self.con.close()
                raise
        else:
            tables = {
                r[0] for r in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            if "disclosures" not in tables:
                self.con.close()
                raise LedgerError(
                    f"{self.location} is a DuckDB database but not a disclosure ledger"
                )
        self._view_root: duckdb.DuckDBPyConnection | None = cursor_of(self.con)

    def view(self, *, writable: bool = False) -> Ledger:
        """Another :class:`Ledger` over this same database instance, with a cursor of its own.

        The service (:mod:`disclosure_ledger.service`) gives one to each request while its
        consumer appends through this one: a thread may use only its own DuckDB connection,
        and DuckDB's MVCC gives each transaction of the view one consistent snapshot. A view
        is read-only (``read_only`` is True, so nothing derives or migrates on close) unless
        ``writable`` (erasure, the access log); closing it closes only its cursor."""
        if self._closed:
            raise LedgerError(f"ledger file {self.path} is closed")
        view = Ledger.__new__(Ledger)
        view.path = self.path
        view.lake = self.lake
        view.location = self.location
        view.read_only = not writable
        view._closed = False
        view._owner = False
        view._reader = None
        view._views = self._views
        view._epochs, view._claims, view._claimer = {}, threading.Lock(), None  # never claims
        view._settler = None
        view._released = set()
        with self._views:  # views come from one root cursor, never from the owner's ``con``,
            if self._view_root is None:  # which another thread (the consumer) may be using
                raise LedgerError(f"ledger file {self.path}: views come from its owner")
            view.con = cursor_of(self._view_root)
        view._view_root = None
        return view

    @property
    def reader(self) -> duckdb.DuckDBPyConnection:
        """A second connection to the same database for the reads a writer makes while an
        append may be committing on another thread (:meth:`find_event_ids`,
        :meth:`chain_heads`). A DuckDB connection object serves one thread at a time; this one
        sees what :attr:`con` has committed, never its open transaction."""
        if self._reader is None:
            self._reader = cursor_of(self.con)
        return self._reader

    def _close_connections(self) -> None:
        try:
            for cursor in (self._claimer, self._settler):
                if cursor is not None:
                    cursor.close()
            if self._reader is not None:
                self._reader.close()
            if self._view_root is not None:
                self._view_root.close()
        finally:
            self.con.close()

    def close(self) -> None:
        """Close; the writer first derives any rows inserted without derived data."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self.read_only and self._owner:
                ensure_derived(self.con)
        finally:
            self._close_connections()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        elif not self._closed:
            self._closed = True
            self._close_connections()

    def bound_memory_for_streaming(self) -> None:
        """DuckDB settings for a long-lived writer of many small batches (the consumer),
        whose memory must not grow with the ledger. See :data:`STREAMING_WRITER_SETTINGS`."""
        for name, value in STREAMING_WRITER_SETTINGS.items():
            self.con.execute(f"SET {name} = '{value}'")

    # -- fencing (a lake may have other writers: ledger/fence.py, docs/scale.md) ---------
    def claim_partitions(self, topic: str, partitions: Sequence[int]) -> None:
        """Before reading where to resume: :meth:`claim_chains` of these partitions (Kafka
        gave them to this writer: claimed again even if released before)."""
        self.claim_chains([chain_id_for(topic, p) for p in partitions], reclaim=True)

    def release_partitions(self, topic: str, partitions: Sequence[int]) -> None:
        """Kafka took these partitions from this writer (a rebalance): forget its claims, and
        never claim them again on its own (a batch still holding their rows is refused with
        :class:`FencedError`) until :meth:`claim_partitions` names them again."""
        with self._claims:
            for chain in (chain_id_for(topic, p) for p in partitions):
                self._epochs.pop(chain, None)
                self._released.add(chain)

    def claim_chains(self, chain_ids: Sequence[str], *, reclaim: bool = False) -> None:
        """On a lake: make this writer the owner of each chain not yet claimed, so that a
        writer that owned it before can no longer append to it (its commit is refused), and
        only then read its head or offset (:meth:`chain_heads` claims before it reads;
        ledger/fence.py). Chains released (:meth:`release_partitions`) are claimed only when
        ``reclaim``. A no-op on a ledger file, whose one writer DuckDB's file lock ensures."""
        if self.lake is None or self.read_only or not self._owner:
            return
        wanted = sorted(
            {c for c in chain_ids if c not in self._epochs and (reclaim or c not in self._released)}
        )
        if not wanted:
            return
        owner = f"{socket.gethostname()}:{os.getpid()}"
        with self._claims:
            if self._claimer is None:
                self._claimer = cursor_of(self.con)
            for chain in wanted:
                if chain not in self._epochs:
                    self._epochs[chain] = claim(self._claimer, chain, owner)
                    self._released.discard(chain)

    def held_chains(self) -> dict[str, int]:
        """The chains this writer claimed on a lake, each with its fence epoch (what its
        appends and checkpoints hold); empty on a ledger file."""
        with self._claims:
            return dict(self._epochs)

    @staticmethod
    def _batch_chains(batch: Batch) -> list[str]:
        """The chains a batch writes: its rows', and those of the partitions it moves the
        offset of (a partition whose messages were all quarantined or duplicates)."""
        chains = {chain_id_for(t, p) for t, p in batch.next_offsets}
        if batch.accepted.num_rows:
            chains.update(batch.accepted.column("chain_id").unique().to_pylist())
        return sorted(chains)

    def _hold_chains(self, con: duckdb.DuckDBPyConnection, chains: Sequence[str]) -> None:
        """Inside the append's transaction on a lake: hold the fence of every chain the
        batch writes (:func:`ledger.fence.hold`), so the commit fails if another writer
        claimed one since."""
        for chain in chains:
            epoch = self._epochs.get(chain)
            if epoch is None:
                raise FencedError(
                    f"chain {chain} was released by this writer (Kafka gave its partition to "
                    "another instance): the batch holding its rows is not appended"
                )
            hold(con, chain, epoch)

    # -- reads ---------------------------------------------------------------------------
    def stored_offsets(self, topic: str) -> dict[int, int]:
        rows = self.con.execute(
            "SELECT kafka_partition, next_offset FROM offsets WHERE topic = ?", [topic]
        ).fetchall()
        return {int(p): int(o) for p, o in rows}

    def chain_heads(self, chain_ids: Sequence[str]) -> dict[str, ChainHead]:
        if not chain_ids:
            return {}
        self.claim_chains(chain_ids)  # on a lake, a head is read only once the chain is ours
        rows = self.reader.execute(
            "SELECT chain_id, max(seq), arg_max(chain_hash, seq) FROM disclosures "
            "WHERE chain_id IN (SELECT unnest(?)) GROUP BY chain_id",
            [list(chain_ids)],
        ).fetchall()
        return {c: ChainHead(int(s), bytes(h)) for c, s, h in rows}

    def find_event_ids(self, event_ids: pa.Array) -> dict[str, tuple[str, int]]:
        """Which of these event ids the ledger already holds, with their (chain, seq)."""
        if len(event_ids) == 0:
            return {}
        reader = self.reader
        reader.register("_probe_event_ids", pa.table({"event_id": event_ids}))
        try:
            rows = reader.execute(
                "SELECT d.event_id::VARCHAR, d.chain_id, d.seq FROM disclosures d "
                "SEMI JOIN _probe_event_ids p ON d.event_id = p.event_id::UUID"
            ).fetchall()
        finally:
            reader.unregister("_probe_event_ids")
        return {e: (c, int(s)) for e, c, s in rows}

    def settle_event_ids(
        self, event_ids: Sequence[str], chains: Sequence[str], offsets: Sequence[int]
    ) -> dict[str, tuple[str, int]]:
        """On a lake, where other instances append other chains: claim these new events (each
        at its first position in the batch), and return those another instance claimed
        first, with the (chain, seq) of their row once it is in the lake
        (:mod:`ledger.event_claims`). Nothing to do on a ledger file: {}."""
        if self.lake is None or self.read_only or not event_ids:
            return {}
        from ledger.event_claims import claimable, settle

        self.claim_chains(chains)
        epochs = {c: self._epochs.get(c) for c in set(chains)}
        lost = sorted(c for c, e in epochs.items() if e is None)
        if lost:
            raise FencedError(
                f"chain {lost[0]} was released by this writer (Kafka gave its partition to "
                "another instance): the batch holding its messages is not prepared"
            )
        if self._settler is None:
            self._settler = cursor_of(self.con)
        return settle(
            self._settler,
            claimable(event_ids, chains, offsets),
            {c: e for c, e in epochs.items() if e is not None},
            self.find_event_ids,
        )

    def latest_watermarks(self) -> dict[tuple[str, str, int], int]:
        """The latest watermark consumed per (source, topic, partition), in epoch ms."""
        tables = {
            r[0] for r in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if "watermarks" not in tables:  # a read-only ledger older than watermarks
            return {}
        rows = self.con.execute(
            "SELECT source, topic, kafka_partition, epoch_ms(max(watermark_at)) FROM watermarks "
            "GROUP BY ALL"
        ).fetchall()
        return {(str(s), str(t), int(p)): int(at) for s, t, p, at in rows}

    def has_reference_version(self, version: str) -> bool:
        """Whether the reference tables already hold this version (stored with its first
        batch), so a restarted consumer does not store them again."""
        return _holds_reference(self.con, version)

    # -- the one write -------------------------------------------------------------------
    @contextmanager
    def _transaction(self, chains: Sequence[str] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction. On a lake, a refused commit is a :class:`FencedError` when one
        of ``chains`` was claimed by another writer since this one claimed it, and a
        :class:`_LakeConflict` (the caller tries again) when this writer still owns them all:
        another writer's commit touched a table this one also deleted from."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        try:
            self.con.execute("COMMIT")
        except duckdb.TransactionException as exc:
            if self.lake is None:
                raise
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            lost = [
                c for c in chains if (owner_of(self.con, c) or (0, ""))[0] != self._epochs.get(c)
            ]
            if not lost:
                raise _LakeConflict(str(exc)) from exc
            for chain in lost:
                self._epochs.pop(chain, None)
            raise FencedError(
                f"the append to ledger {self.location} was refused: another writer claimed "
                f"{', '.join(lost)} while this batch was being written ({exc}); nothing of "
                "the batch was appended"
            ) from exc

    def append_batch(self, batch: Batch) -> None:
        """Append rows, quarantine, duplicates, watermarks, probes and next offsets in one
        transaction."""
        if self.read_only:
            raise LedgerError(f"ledger {self.path} is open read-only; it cannot be appended to")
        incoming = {
            "_incoming_disclosures": with_derived(batch.accepted),
            "_incoming_quarantine": batch.quarantined,
            "_incoming_duplicates": batch.duplicates,
            "_incoming_watermarks": batch.watermarks
            if batch.watermarks is not None
            else WATERMARK_COLUMNS.empty_table(),
            "_incoming_probes": batch.probes
            if batch.probes is not None
            else PROBE_COLUMNS.empty_table(),
            "_incoming_merkle_nodes": batch.merkle_nodes
            if batch.merkle_nodes is not None
            else NODE_COLUMNS.empty_table(),
            "_incoming_offsets": pa.table(
                {
                    "topic": pa.array([t for t, _ in batch.next_offsets], pa.string()),
                    "kafka_partition": pa.array([p for _, p in batch.next_offsets], pa.int32()),
                    "next_offset": pa.array(list(batch.next_offsets.values()), pa.int64()),
                }
            ),
        }
        # only what has rows is registered: quarantine and duplicates are usually empty, and
        # each registration and its removal cost about 0.1 ms
        incoming = {name: table for name, table in incoming.items() if table.num_rows}
        for name, table in incoming.items():
            self.con.register(name, table)
        try:
            # chains not claimed yet (the consumer and the pipeline claim theirs before they
            # read offsets and heads; a batch written directly is claimed here)
            chains = self._batch_chains(batch) if self.lake is not None else []
            self.claim_chains(chains)
            if self.lake is None:
                self._append_once(batch, incoming, chains)
                return
            retrying = tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(_LakeConflict),
                stop=tenacity.stop_after_attempt(LAKE_COMMIT_ATTEMPTS),
                wait=tenacity.wait_random_exponential(multiplier=0.02, max=0.5),
                reraise=True,
            )
            try:
                retrying(self._append_once, batch, incoming, chains)
            except _LakeConflict as exc:
                raise LedgerError(
                    f"the append to ledger {self.location} conflicted with other writers' "
                    f"commits {LAKE_COMMIT_ATTEMPTS} times in a row, though this writer still "
                    f"owns its chains ({exc.__cause__}); nothing of the batch was appended, "
                    "and it is read again from Kafka"
                ) from exc
        finally:
            for name in incoming:
                self.con.unregister(name)

    def _append_once(
        self, batch: Batch, incoming: Mapping[str, pa.Table], chains: Sequence[str]
    ) -> None:
        """One attempt at the append's transaction (a lake retries it: :meth:`append_batch`)."""
        lake = self.lake is not None
        stored = False  # the batch's reference version, already in the lake
        with self._transaction(chains) as con:
            if chains:
                self._hold_chains(con, chains)
            if batch.reference_tables and lake:
                # two writers storing a version at once conflict here; the retry finds it
                con.execute("UPDATE reference_fence SET stored = stored + 1")
                version = _reference_version(batch.reference_tables)
                stored = version is not None and _holds_reference(con, version)
            for name, table in batch.reference_tables.items() if not stored else ():
                _append_reference(con, name, table)
            if "_incoming_disclosures" in incoming:
                con.execute(
                    f"INSERT INTO disclosures BY NAME {APPEND_SELECT} FROM _incoming_disclosures"
                )
                append_derived(con, "_incoming_disclosures", insert_only=lake)
            for target, source in (
                ("quarantine", "_incoming_quarantine"),
                ("duplicates", "_incoming_duplicates"),
                ("watermarks", "_incoming_watermarks"),
                ("partition_probes", "_incoming_probes"),
                ("merkle_nodes", "_incoming_merkle_nodes"),
            ):
                if source in incoming:
                    con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}")
            if "_incoming_offsets" in incoming:
                if lake:  # LAKE_LOG_DDL: the offsets view reads the newest
                    con.execute(
                        "INSERT INTO offset_log BY NAME SELECT *, now()::TIMESTAMP AS updated_at "
                        "FROM _incoming_offsets"
                    )
                else:
                    con.execute(
                        "MERGE INTO offsets USING (SELECT *, now()::TIMESTAMP AS updated_at "
                        "FROM _incoming_offsets) AS s USING (topic, kafka_partition) "
                        "WHEN MATCHED THEN UPDATE SET next_offset = s.next_offset, "
                        "updated_at = s.updated_at WHEN NOT MATCHED THEN INSERT BY NAME"
                    )
            # On a lake the probes are not pruned per batch: a DELETE of the shared table
            # would conflict with every other writer's; readers take the newest probes.
            if "_incoming_probes" in incoming and not lake:
                con.execute(_PRUNE_PROBES, [PROBES_KEPT_UNREACHED])


_PRUNE_PROBES = """
DELETE FROM partition_probes WHERE rowid IN (
    SELECT rid FROM (
        SELECT p.rowid AS rid, p.end_offset <= coalesce(o.next_offset, 0) AS reached,
            row_number() OVER (PARTITION BY p.topic, p.kafka_partition, reached
                               ORDER BY p.probed_at DESC) AS newest,
            row_number() OVER (PARTITION BY p.topic, p.kafka_partition, reached
                               ORDER BY p.probed_at) AS oldest
        FROM partition_probes p LEFT JOIN offsets o USING (topic, kafka_partition)
    )
    WHERE (reached AND newest > 1) OR (NOT reached AND newest > 1 AND oldest >= $1)
)
"""


LAKE_COMMIT_ATTEMPTS = 8
"""How often an append whose commit conflicted, while this writer still owns every chain of
the batch, is tried again on a lake (:meth:`Ledger.append_batch`)."""


class _LakeConflict(LedgerError):
    """A lake refused the commit, but not because a chain was claimed: try again."""


def _reference_version(tables: Mapping[str, pa.Table]) -> str | None:
    for table in tables.values():
        if "reference_version" in table.column_names and table.num_rows:
            return str(table.column("reference_version")[0].as_py())
    return None


def _holds_reference(con: duckdb.DuckDBPyConnection, version: str) -> bool:
    present = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    } & set(REFERENCE_TABLES)
    return any(
        con.execute(f"SELECT 1 FROM {t} WHERE reference_version = ? LIMIT 1", [version]).fetchall()
        for t in present
    )


def _append_reference(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Reference tables are versioned: created on first use, appended per new version."""
    if not re.fullmatch(r"ref_[a-z_]+", name):
        raise LedgerError(f"reference table name {name!r} must look like ref_something")
    view = f"_incoming_{name}"
    con.register(view, table)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM {view} LIMIT 0")
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {view}")
    finally:
        con.unregister(view)


# Disclosures columns stored under another name or type than the leaf encoding reads them.
_LEAF_SOURCE = {"occurred_at_ms": "occurred_at", "ingested_at_ms": "ingested_at"}


def leaf_view(table: pa.Table) -> pa.Table:
    """The leaf fields of disclosures columns, as :func:`ledger.chain.leaf_hashes` takes them
    (timestamps as epoch milliseconds, integers as int64): the Arrow twin of
    :data:`ledger.leaf_sql.LEAF_SELECT`."""
    return pa.table(
        {
            name: table.column(_LEAF_SOURCE.get(name, name)).cast(kind)
            for name, kind in LEAF_TYPES.items()
        }
    )


def table_from_rows(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """A small Arrow table from row dicts (quarantine and duplicates are few)."""
    return pa.Table.from_pylist(list(rows), schema=schema)
