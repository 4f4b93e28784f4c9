"""What a report was computed from: window, reference data, chain heads, rows, time.

Every report states it the same way (issue 6): the window, the reference-data versions of
the rows it counted, each chain's head at generation time (sequence number and hash) with
the range of sequence numbers it counted, and when it was generated. :func:`read_provenance`
computes this inside the report's own read transaction, so the figures and the heads come
from one snapshot of the ledger.

The counted rows are given as a SQL subquery over ``disclosures`` returning at least
``chain_id, seq, occurred_at, reference_version``. Chain heads come from the ledger's
``chain_heads`` table, which the writer moves in the same transaction as the rows
(:mod:`ledger.derived`; ``check_derived`` compares it with the chains); a ledger written
before that table existed has its heads found by sequence number instead (``max(seq)`` per
chain, then the row at that number), which reads two narrow columns of every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from ledger.derived import has_derived
from reports.contracts import ChainSource, Source, Window
from reports.coverage import WindowCoverage, coverage_contract, coverage_lines
from reports.window import rfc3339 as rfc3339  # re-exported: the reports import it here


@dataclass(frozen=True)
class ChainRange:
    """A chain's head at generation time and the rows of it the report counted."""

    chain_id: str
    head_seq: int
    head_chain_hash: str
    events_counted: int
    first_seq_counted: int | None
    last_seq_counted: int | None

    def range_text(self) -> str:
        if self.first_seq_counted is None:
            return "-"
        return f"{self.first_seq_counted}..{self.last_seq_counted}"


@dataclass(frozen=True)
class Provenance:
    """The source statement every report carries."""

    generated_at: datetime
    as_of: datetime
    window_start: datetime | None  # None: from the first event the ledger holds
    window_end: datetime
    ledger_format_version: str | None
    reference_versions: tuple[str, ...]
    events_counted: int
    first_event_at: datetime | None
    last_event_at: datetime | None
    chains: tuple[ChainRange, ...]
    coverage: WindowCoverage | None = None  # how far the ledger is complete, for this window


def aware(moment: datetime | None) -> datetime | None:
    """A naive UTC value read from the ledger as an aware datetime."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


CountedChain = tuple[str, int, int, int, datetime, datetime, Sequence[str]]
"""Rows counted on one chain: chain_id, count, first seq, last seq, first and last
occurred_at, reference versions."""


def read_provenance(
    cursor: duckdb.DuckDBPyConnection,
    counted_sql: str,
    params: Mapping[str, Any],
    *,
    as_of: datetime,
    window_start: datetime | None,
    window_end: datetime,
    generated_at: datetime,
    coverage: WindowCoverage | None = None,
) -> Provenance:
    """Provenance of a report whose counted rows are ``counted_sql`` (see module doc)."""
    counted = cursor.execute(
        f"""
        SELECT chain_id, count(*), min(seq), max(seq), min(occurred_at), max(occurred_at),
               list(DISTINCT reference_version)
        FROM ({counted_sql}) GROUP BY chain_id
        """,
        dict(params),
    ).fetchall()
    return provenance_from_counts(
        cursor,
        counted,
        as_of=as_of,
        window_start=window_start,
        window_end=window_end,
        generated_at=generated_at,
        coverage=coverage,
    )


def count_chains(
    rows: Iterable[tuple[str, int, int, int, datetime, datetime, str]],
) -> list[CountedChain]:
    """Merge (chain_id, count, first seq, last seq, first at, last at, version) groups."""
    merged: dict[str, list[Any]] = {}
    for chain, n, lo, hi, first, last, version in rows:
        m = merged.get(chain)
        if m is None:
            merged[chain] = [chain, n, lo, hi, first, last, {version}]
            continue
        m[1] += n
        m[2], m[3] = min(m[2], lo), max(m[3], hi)
        m[4], m[5] = min(m[4], first), max(m[5], last)
        m[6].add(version)
    return [(m[0], m[1], m[2], m[3], m[4], m[5], sorted(m[6])) for m in merged.values()]


def provenance_from_counts(
    cursor: duckdb.DuckDBPyConnection,
    counted: Sequence[Sequence[Any]],
    *,
    as_of: datetime,
    window_start: datetime | None,
    window_end: datetime,
    generated_at: datetime,
    coverage: WindowCoverage | None = None,
) -> Provenance:
    """Provenance from per-chain counts already computed (:data:`CountedChain` rows)."""
    heads = chain_heads(cursor)
    meta = cursor.execute("SELECT value FROM ledger_meta WHERE key = 'format_version'").fetchone()
    by_chain = {row[0]: row for row in counted}
    chains = []
    for chain_id, head_seq, head_hash in heads:
        row = by_chain.get(chain_id)
        chains.append(
            ChainRange(
                chain_id=chain_id,
                head_seq=head_seq,
                head_chain_hash=head_hash.hex(),
                events_counted=0 if row is None else int(row[1]),
                first_seq_counted=None if row is None else int(row[2]),
                last_seq_counted=None if row is None else int(row[3]),
            )
        )
    firsts = [row[4] for row in counted]
    lasts = [row[5] for row in counted]
    versions = sorted({str(v) for row in counted for v in row[6] or ()})
    return Provenance(
        generated_at=generated_at.astimezone(UTC),
        as_of=as_of,
        window_start=window_start,
        window_end=window_end,
        ledger_format_version=None if meta is None else str(meta[0]),
        reference_versions=tuple(versions),
        events_counted=sum(c.events_counted for c in chains),
        first_event_at=aware(min(firsts)) if firsts else None,
        last_event_at=aware(max(lasts)) if lasts else None,
        chains=tuple(chains),
        coverage=coverage,
    )


def chain_heads(cursor: duckdb.DuckDBPyConnection) -> list[tuple[str, int, bytes]]:
    """(chain_id, head seq, head chain_hash) of every chain, sorted by chain_id."""
    if has_derived(cursor):
        return [
            (str(c), int(s), bytes(h))
            for c, s, h in cursor.execute(
                "SELECT chain_id, head_seq, head_chain_hash FROM chain_heads ORDER BY chain_id"
            ).fetchall()
        ]
    tops = cursor.execute("SELECT chain_id, max(seq) FROM disclosures GROUP BY chain_id").fetchall()
    head_seqs = {str(chain): int(seq) for chain, seq in tops}
    if not head_seqs:
        return []
    # a constant bound on seq lets DuckDB skip every row group below it
    found = cursor.execute(
        "SELECT chain_id, seq, chain_hash FROM disclosures "
        "WHERE seq >= $low AND list_contains($seqs, seq)",
        {"low": min(head_seqs.values()), "seqs": sorted(set(head_seqs.values()))},
    ).fetchall()
    return sorted(
        (str(c), int(s), bytes(h)) for c, s, h in found if head_seqs.get(str(c)) == int(s)
    )


def source_contract(p: Provenance) -> Source:
    """The ``source`` object of a report over the ledger (:class:`reports.contracts.Source`)."""
    return Source(
        ledger_format_version=p.ledger_format_version,
        reference_versions=list(p.reference_versions),
        events_counted=p.events_counted,
        first_event_at=rfc3339(p.first_event_at),
        last_event_at=rfc3339(p.last_event_at),
        chains=[
            ChainSource(
                chain_id=c.chain_id,
                head_seq=c.head_seq,
                head_chain_hash=c.head_chain_hash,
                events_counted=c.events_counted,
                first_seq_counted=c.first_seq_counted,
                last_seq_counted=c.last_seq_counted,
            )
            for c in p.chains
        ],
    )


def window_contract(p: Provenance) -> Window:
    return Window(start=rfc3339(p.window_start), end=rfc3339(p.window_end))


def ledger_report_fields(p: Provenance) -> dict[str, Any]:
    """The fields every report over the ledger opens with, after ``report``
    (:class:`~reports.contracts.LedgerReport`): when, over which window and rows, and how
    far the ledger is complete."""
    return {
        "generated_at": rfc3339(p.generated_at),
        "as_of": rfc3339(p.as_of),
        "window": window_contract(p),
        "source": source_contract(p),
        "coverage": coverage_contract(p.coverage),
    }


def provenance_lines(p: Provenance, *, counts_note: str | None = None) -> list[str]:
    """The statement as sentences (Markdown and HTML print them as a list)."""
    start = (
        "the first event the ledger holds"
        if p.window_start is None
        else f"{rfc3339(p.window_start)} (included)"
    )
    lines = [
        f"Window: from {start} to {rfc3339(p.window_end)} (excluded), UTC.",
        f"Generated at: {rfc3339(p.generated_at)}.",
        f"Events counted: {p.events_counted}"
        + (
            f", which occurred from {rfc3339(p.first_event_at)} to {rfc3339(p.last_event_at)}."
            if p.first_event_at and p.last_event_at
            else "."
        ),
        "Reference data version(s) of the events counted: "
        + (", ".join(p.reference_versions) or "none")
        + ".",
        f"Ledger format version: {p.ledger_format_version or 'unknown'}.",
        *coverage_lines(p.coverage),
    ]
    if counts_note:
        lines.append(counts_note)
    return lines


CHAIN_HEADERS = ("Chain", "Head seq", "Head chain hash", "Events counted", "Seq range counted")


def chain_rows(p: Provenance) -> list[list[str]]:
    return [
        [
            c.chain_id,
            str(c.head_seq),
            c.head_chain_hash,
            str(c.events_counted),
            c.range_text(),
        ]
        for c in p.chains
    ]
