"""Compaction of a DuckLake ledger, through DuckLake's own functions (docs/ducklake.md).

Every append on a lake writes small Parquet files, or, for a commit of few rows, rows
inlined into the catalog database. :func:`compact` runs, on the tables appends only insert
into (:data:`INSERT_ONLY_TABLES`):

1. ``ducklake_flush_inlined_data``: the catalog's inlined rows into Parquet files;
2. ``ducklake_merge_adjacent_files``: small files into larger ones. DuckLake keeps every
   row's ``rowid`` and every snapshot's view of the table, so no leaf, link, Merkle node or
   proof changes (and ``verify``'s row-id ranges hold);

then, for the whole lake, ``ducklake_expire_snapshots`` and ``ducklake_cleanup_old_files``
with a retention (a day by default): files replaced by a merge are deleted from the data
path once nothing may still read them.

Why only insert-only tables: DuckLake makes a flush or a merge of a table conflict with a
concurrent transaction that deletes from (or updates) it. The fence tables, which every
append updates (:mod:`ledger.fence`), and the tables updated in place are left alone, so
a compaction never makes an append of any instance fail; concurrent inserts do not
conflict. A step that does conflict (with a rare writer: an erasure, a tree rebuild) is
skipped and counted, and the next run does it. Why the retention: DuckLake decides whether
an open transaction conflicts from the snapshots committed since it began; expiring those
while a fenced append is still open could hide a claim from it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from ledger.errors import LedgerError
from ledger.lake import CATALOG, cursor_of
from ledger.store import REFERENCE_TABLES, Ledger

log = logging.getLogger(__name__)

INSERT_ONLY_TABLES = (
    "disclosures",
    "merkle_nodes",
    "offset_log",
    "chain_head_log",
    "event_claims",
    "partition_probes",  # pruned on a ledger file only
    "heavy_subject_rows",  # a row is deleted only on a 64-bit subject key collision
    "quarantine",
    "duplicates",
    "watermarks",
    "access_log",
    "checkpoints",
    "checkpoint_notes",
    "checkpoint_fences",
    "erasures",
    "erasure_recipients",
    "erasure_notices",
    *REFERENCE_TABLES,
)
"""The tables an append only ever inserts into: the bulk of a lake's rows and files."""

RETENTION = timedelta(days=1)
"""How long a snapshot is kept, and a replaced file left on disk, before it is removed."""


@dataclass
class CompactionStats:
    """What one :func:`compact` did."""

    tables: int = 0  # tables compacted
    files_before: int = 0  # data files of those tables before (the catalog's count)
    files_after: int = 0
    inlined_rows_flushed: int = 0
    snapshots_expired: int = 0
    files_deleted: int = 0  # removed from the data path
    conflicts: list[str] = field(default_factory=list)  # steps refused; the next run redoes them
    seconds: float = 0.0

    def __str__(self) -> str:
        text = (
            f"{self.tables} table(s): {self.files_before} data files -> {self.files_after}, "
            f"{self.inlined_rows_flushed} inlined rows flushed, {self.snapshots_expired} "
            f"snapshots expired, {self.files_deleted} old files deleted in {self.seconds:.1f} s"
        )
        if self.conflicts:
            text += f"; skipped after a conflict, for the next run: {', '.join(self.conflicts)}"
        return text


def compact(ledger: Ledger, *, retention: timedelta = RETENTION) -> CompactionStats:
    """Flush inlined rows and merge small files of the lake's insert-only tables, then
    expire snapshots and delete replaced files older than ``retention``. Safe while other
    instances append; changes no row, ``rowid``, leaf, link or proof."""
    if ledger.lake is None:
        raise LedgerError(
            f"{ledger.location} is a ledger file: compaction is for a DuckLake ledger "
            "(a DuckDB file compacts itself on CHECKPOINT)"
        )
    if ledger.read_only:
        raise LedgerError(f"ledger {ledger.location} is open read-only: it cannot be compacted")
    started = time.monotonic()
    stats = CompactionStats()
    con = cursor_of(ledger.con)
    try:
        present = {
            str(r[0])
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [CATALOG]
            ).fetchall()
        }
        tables = [t for t in INSERT_ONLY_TABLES if t in present]
        stats.tables = len(tables)
        stats.files_before = _data_files(con, tables)
        for table in tables:
            flushed = _step(
                con,
                stats,
                f"flush {table}",
                "SELECT coalesce(sum(rows_flushed), 0) FROM "
                f"ducklake_flush_inlined_data('{CATALOG}', table_name => '{table}')",
            )
            stats.inlined_rows_flushed += flushed
            _step(
                con,
                stats,
                f"merge {table}",
                f"SELECT count(*) FROM ducklake_merge_adjacent_files('{CATALOG}', '{table}')",
            )
        cutoff = datetime.now(UTC) - retention
        stats.snapshots_expired = _step(
            con,
            stats,
            "expire snapshots",
            f"SELECT count(*) FROM ducklake_expire_snapshots('{CATALOG}', older_than => ?)",
            [cutoff],
        )
        stats.files_deleted = _step(
            con,
            stats,
            "clean up old files",
            f"SELECT count(*) FROM ducklake_cleanup_old_files('{CATALOG}', older_than => ?)",
            [cutoff],
        )
        stats.files_after = _data_files(con, tables)
    finally:
        con.close()
    stats.seconds = time.monotonic() - started
    return stats


def _step(
    con: duckdb.DuckDBPyConnection,
    stats: CompactionStats,
    name: str,
    sql: str,
    parameters: list[object] | None = None,
) -> int:
    """One DuckLake maintenance call in a transaction of its own; a conflict with another
    commit is skipped (logged, counted) rather than raised."""
    try:
        # fetchall: a result left unread keeps the statement's transaction open, and the
        # next statement on the connection then loses what it did
        rows = con.execute(sql, parameters or []).fetchall()
    except duckdb.TransactionException as exc:
        log.info(
            "compaction: %s conflicted with another commit, left for the next run: %s", name, exc
        )
        stats.conflicts.append(name)
        return 0
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _data_files(con: duckdb.DuckDBPyConnection, tables: list[str]) -> int:
    """The data files the lake's current snapshot reads for ``tables`` (one catalog read)."""
    rows = con.execute(
        f"SELECT coalesce(sum(file_count), 0) FROM ducklake_table_info('{CATALOG}') "
        "WHERE table_name IN (SELECT unnest(?::VARCHAR[]))",
        [tables],
    ).fetchall()
    return int(rows[0][0]) if rows else 0
