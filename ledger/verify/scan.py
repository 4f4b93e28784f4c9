"""The scan: every leaf recomputed and every link, sequence number and offset checked, by
DuckDB's vectorised engine on every core, over DuckDB SQL and its ``sha256``.

Rows are read in ranges of consecutive row ids (storage order: the order the consumer
appended them, which is sequence order within each chain). For each range one query

* recomputes every row's leaf with :data:`ledger.leaf_sql.LEAF_HEX_SQL` and compares it
  with the stored ``leaf_hash``;
* checks, within each chain, that every row follows the one before it: ``seq`` one more,
  ``kafka_offset`` higher, ``chain_hash = SHA-256(0x01 || previous chain_hash ||
  leaf_hash)`` (``lag()`` over a window per chain, in storage order);
* returns per chain only its first and last row, whether every row in between was linked,
  and the rows whose leaf is wrong.

The first row of each chain in a range is linked here, with :mod:`hashlib`, to the last
row of that chain in the ranges before it. A chain in which anything is out of order or
unlinked is marked dirty and diagnosed afterwards, alone and in sequence order
(:mod:`ledger.verify.diagnosis`). Ranges bound the memory a scan needs and let it report
progress between them; within a range DuckDB spreads the rows over its threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ledger.chain import GENESIS, link_hash
from ledger.errors import LedgerError
from ledger.leaf_sql import LEAF_HEX_SQL
from ledger.verify.result import Failure, VerifyResult

RANGE_ROWS = 4 * 122_880
"""Rows a range holds: four of DuckDB's row groups, so ranges start where groups do and
each query has a row group for each of several threads."""

_RANGE_SQL = f"""
WITH checked AS (
    SELECT rowid AS r, chain_id, seq, kafka_offset, leaf_hash, chain_hash,
           coalesce({LEAF_HEX_SQL} = lower(hex(leaf_hash)), false) AS leaf_ok
    FROM disclosures WHERE rowid >= $low AND rowid < $high
),
linked AS (
    SELECT *,
        row_number() OVER w = 1
        OR coalesce(
            seq = lag(seq) OVER w + 1
            AND kafka_offset > lag(kafka_offset) OVER w
            AND sha256('\\x01'::BLOB || lag(chain_hash) OVER w || leaf_hash)
                = lower(hex(chain_hash)),
            false) AS follows
    FROM checked WINDOW w AS (PARTITION BY chain_id ORDER BY r)
)
SELECT chain_id, count(*), bool_and(follows),
    arg_min([seq, kafka_offset], r), arg_min([leaf_hash, chain_hash], r),
    arg_max([seq, kafka_offset], r), arg_max(chain_hash, r),
    list([seq, kafka_offset] ORDER BY r) FILTER (WHERE NOT leaf_ok)
FROM linked GROUP BY chain_id
"""


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one (Linux),
    else every core of the machine (macOS and Windows have no ``os.sched_getaffinity``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass
class ChainState:
    """Where a chain stands after the rows scanned so far."""

    seq: int = 0
    offset: int = -1
    head: bytes = GENESIS
    dirty: bool = False  # something is out of order or unlinked: diagnose in seq order


@dataclass
class ScanFindings:
    rows: int = 0
    chains: dict[str, ChainState] = field(default_factory=dict)
    leaf_bad: dict[str, set[tuple[int, int]]] = field(default_factory=dict)  # {(seq, offset)}


def scan_chains(
    con: duckdb.DuckDBPyConnection,
    *,
    range_rows: int = RANGE_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> ScanFindings:
    """Check every row of ``disclosures``; ``progress(rows_done, rows_total)`` after each
    range of ``range_rows`` rows."""
    if range_rows < 1:
        raise ValueError(f"range_rows must be at least 1, not {range_rows}")
    counted, last = con.execute("SELECT count(*), max(rowid) FROM disclosures").fetchall()[0]
    total = int(counted)
    findings = ScanFindings()
    for low in range(0, -1 if last is None else int(last) + 1, range_rows):
        try:
            found = con.execute(_RANGE_SQL, {"low": low, "high": low + range_rows}).fetchall()
        except duckdb.Error as exc:
            raise LedgerError(
                f"cannot read the disclosures of the ledger as the leaf encoding reads them "
                f"(were its columns altered?): {exc}"
            ) from exc
        for row in found:
            _take(findings, *row)
        if progress is not None:
            progress(findings.rows, total)
    return findings


def _take(
    findings: ScanFindings,
    chain: str,
    rows: int,
    follows: bool,
    first: list[int],
    first_hashes: list[bytes | None],
    last: list[int],
    head: bytes | None,
    bad_leaves: list[list[int]] | None,
) -> None:
    """One chain's findings in one range, after those of the ranges before it."""
    findings.rows += rows
    state = findings.chains.setdefault(chain, ChainState())
    (seq, offset), (leaf, link) = first, first_hashes
    linked = (
        seq == state.seq + 1
        and offset > state.offset
        and leaf is not None
        and link is not None
        and link_hash(state.head, leaf) == link
    )
    state.dirty = state.dirty or not follows or not linked
    last_seq, last_offset = last
    if last_seq is None or last_offset is None or head is None:  # a column made nullable
        state.dirty = True
    else:
        state.seq, state.offset, state.head = last_seq, last_offset, head
    for bad_seq, bad_offset in bad_leaves or []:
        findings.leaf_bad.setdefault(chain, set()).add((bad_seq, bad_offset))


def verify_whole_milliseconds(con: duckdb.DuckDBPyConnection, result: VerifyResult) -> None:
    """The leaf encodes times in milliseconds, so a sub-millisecond part is an edit."""
    rows = con.execute(
        "SELECT chain_id, seq FROM disclosures WHERE epoch_us(occurred_at) % 1000 <> 0 "
        "OR epoch_us(ingested_at) % 1000 <> 0 ORDER BY ALL"
    ).fetchall()
    for chain, seq in rows:
        result.failures.append(
            Failure(
                str(chain),
                int(seq),
                "row altered",
                "a timestamp has a sub-millisecond part; the consumer writes whole milliseconds",
            )
        )


def use_threads(con: duckdb.DuckDBPyConnection, threads: int) -> Callable[[], None]:
    """Set DuckDB's worker threads to ``threads``; returns what puts the setting back."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    before: Any = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute(f"SET threads = {int(threads)}")

    def restore() -> None:
        con.execute(f"SET threads = {int(before)}")

    return restore
