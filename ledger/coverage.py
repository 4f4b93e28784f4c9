"""How far the ledger is complete: producer watermarks, partition status, and the coverage
every answer states.

Two kinds of evidence, both kept in the ledger beside the rows they speak for:

* **Producer watermarks** (table ``watermarks``). A source (a producer service) declares
  "everything I disclosed before T has been published" by sending a watermark to *every*
  partition of the topic, after ``flush()``. Consuming it on a partition proves that every
  earlier event of that source on that partition was consumed. So a source is complete
  through the minimum, over the topic's partitions, of the latest watermark consumed on
  each; a partition on which it never sent one holds it back entirely.
* **Partition status** (table ``partition_probes``). The consumer records, now and then, the
  end offset it saw on each partition and when. Under steady load the committed position
  never equals the end offset, so a partition counts as complete through the latest probe
  time whose probed end offset the committed position (``offsets.next_offset``) has since
  reached.

The ledger's **coverage** is the earliest of the expected sources' watermarks and the
partitions' probe times, less an allowance for late events (:data:`DEFAULT_ALLOWANCE`). The
expected sources are the reference data's (``ref_sources``, of the reference version the
newest row was classified with), unless the caller names them. A source that is expected
but never sent a watermark, or a topic partition with no watermark of an expected source,
leaves the ledger complete through nothing.

Nothing here imports Kafka, reports or the reference package: it reads tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import duckdb

DEFAULT_ALLOWANCE = timedelta(minutes=5)
"""Events may reach the topic a little after a watermark that covers them (a clock a few
seconds off, a retry in flight): coverage stays this far behind the evidence. An event that
arrives after a watermark it falls under is still accepted, and flagged ``late``."""

LATE_FLAG = "late"
"""The flag (``disclosures.flags``) of an event consumed after a watermark of its source, on
its partition, that is later than its ``occurred_at``: an answer given before it arrived
did not count it."""

WATERMARKS_DDL = """
CREATE TABLE IF NOT EXISTS watermarks (
    topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset BIGINT NOT NULL,
    source VARCHAR NOT NULL, watermark_at TIMESTAMP NOT NULL, recorded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS partition_probes (
    topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, probed_at TIMESTAMP NOT NULL,
    end_offset BIGINT NOT NULL
);
"""
"""The two tables coverage reads; :class:`ledger.store.Ledger` creates them. A watermark
occupies an offset of the topic like an event, and is accounted for as ``watermark``."""


@dataclass(frozen=True)
class Holdback:
    """One source or partition, and how far it is complete."""

    kind: Literal["source", "partition"]
    name: str  # a producer service, or "topic/partition"
    through: datetime | None  # None: complete through nothing
    detail: str  # a sentence a compliance officer can act on

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "through": iso_ms(self.through),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Coverage:
    """Up to when the ledger holds every disclosure of the expected sources."""

    complete_through: datetime | None  # tz-aware UTC; None: nothing is proven complete
    allowance: timedelta
    evidence: tuple[Holdback, ...] = field(default_factory=tuple)  # every source, partition
    computed_at: datetime | None = None

    @property
    def holding_back(self) -> tuple[Holdback, ...]:
        """What sets the coverage: the sources and partitions at or before it, earliest
        first (those complete through nothing before all)."""
        if self.complete_through is None:
            return tuple(h for h in self.evidence if h.through is None)
        limit = self.complete_through + self.allowance
        return tuple(
            sorted(
                (h for h in self.evidence if h.through is not None and h.through <= limit),
                key=lambda h: (h.through or datetime.min.replace(tzinfo=UTC), h.name),
            )
        )

    def covers(self, end: datetime) -> bool:
        """Whether every disclosure before ``end`` (exclusive) is known to be recorded."""
        if self.complete_through is None:
            return False
        return utc(end) <= self.complete_through

    def describe(self) -> str:
        """One paragraph: how far complete, and what holds it back."""
        held = "; ".join(f"{h.name}: {h.detail}" for h in self.holding_back)
        if self.complete_through is None:
            return f"the ledger is complete through no known time: {held or 'no evidence'}"
        minutes = int(self.allowance.total_seconds() // 60)
        return (
            f"the ledger is complete through {iso_ms(self.complete_through)} (the earliest "
            f"evidence less a {minutes}-minute allowance for late events); held back by: {held}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "complete_through": iso_ms(self.complete_through),
            "allowance_seconds": int(self.allowance.total_seconds()),
            "holding_back": [h.to_json() for h in self.holding_back],
            "evidence": [h.to_json() for h in self.evidence],
        }


def ledger_coverage(
    con: duckdb.DuckDBPyConnection,
    *,
    expected_sources: Sequence[str] | None = None,
    allowance: timedelta = DEFAULT_ALLOWANCE,
    now: datetime | None = None,
) -> Coverage:
    """The coverage of the ledger behind ``con``, read in the caller's transaction.

    ``expected_sources`` defaults to the reference data's (``ref_sources``) of the version
    the newest row was classified with; with none declared, nothing is proven complete.
    """
    tables = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    sources = (
        list(expected_sources) if expected_sources is not None else _expected_sources(con, tables)
    )
    evidence: list[Holdback] = []
    if not sources:
        evidence.append(
            Holdback(
                "source",
                "(expected sources)",
                None,
                "the reference data declares no expected sources, so no watermark can prove "
                "the ledger complete; list them in the reference data's sources.yaml",
            )
        )
    partitions = _topic_partitions(con, tables)
    evidence += _source_evidence(con, tables, sources, partitions)
    evidence += _partition_evidence(con, tables)
    throughs = [h.through for h in evidence]
    complete: datetime | None = None
    if throughs and all(t is not None for t in throughs):
        complete = min(t for t in throughs if t is not None) - allowance
    return Coverage(complete, allowance, tuple(evidence), now)


def _expected_sources(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[str]:
    if "ref_sources" not in tables:
        return []
    rows = con.execute(
        "SELECT DISTINCT source FROM ref_sources WHERE reference_version = coalesce("
        "(SELECT reference_version FROM disclosures ORDER BY rowid DESC LIMIT 1), "
        "(SELECT max(reference_version) FROM ref_sources)) ORDER BY source"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _topic_partitions(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[tuple[str, int]]:
    """Every partition the ledger knows of: read from (offsets) or probed."""
    parts = ["SELECT topic, kafka_partition FROM offsets"]
    if "partition_probes" in tables:
        parts.append("SELECT topic, kafka_partition FROM partition_probes")
    rows = con.execute(" UNION ".join(parts) + " ORDER BY ALL").fetchall()
    return [(str(t), int(p)) for t, p in rows]


def _source_evidence(
    con: duckdb.DuckDBPyConnection,
    tables: set[str],
    sources: Sequence[str],
    partitions: Sequence[tuple[str, int]],
) -> list[Holdback]:
    latest: dict[tuple[str, str, int], datetime] = {}
    if "watermarks" in tables and sources:
        for source, topic, partition, at in con.execute(
            "SELECT source, topic, kafka_partition, max(watermark_at) FROM watermarks "
            "WHERE source IN (SELECT unnest(?)) GROUP BY ALL",
            [list(sources)],
        ).fetchall():
            latest[(str(source), str(topic), int(partition))] = utc(at)
    evidence = []
    for source in sources:
        if not partitions:
            evidence.append(
                Holdback("source", source, None, "no partition of the topic has been read yet")
            )
            continue
        missing = [f"{t}/{p}" for t, p in partitions if (source, t, p) not in latest]
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if missing[5:] else ""
            )
            evidence.append(
                Holdback(
                    "source",
                    source,
                    None,
                    f"no watermark from {source} consumed on {shown}: it has not declared "
                    "what it published there (a stalled or unconfigured source)",
                )
            )
            continue
        through = min(latest[(source, t, p)] for t, p in partitions)
        evidence.append(
            Holdback("source", source, through, f"watermark {iso_ms(through)} on every partition")
        )
    return evidence


def _partition_evidence(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[Holdback]:
    if "partition_probes" not in tables:
        return []
    rows = con.execute(
        "SELECT p.topic, p.kafka_partition, max(p.probed_at) FILTER (WHERE p.end_offset <= "
        "coalesce(o.next_offset, 0)), max(p.probed_at), arg_max(p.end_offset, p.probed_at), "
        "any_value(coalesce(o.next_offset, 0)) FROM partition_probes p LEFT JOIN offsets o "
        "USING (topic, kafka_partition) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    evidence = []
    for topic, partition, reached, probed, end, position in rows:
        name = f"{topic}/{partition}"
        through = utc(reached) if reached is not None else None
        lag = max(0, int(end) - int(position))
        detail = (
            f"consumed through {iso_ms(through)}; lag {lag} at the last probe "
            f"({iso_ms(utc(probed))})"
            if through is not None
            else f"the committed position {position} has not reached any probed end offset; "
            f"lag {lag} at the last probe ({iso_ms(utc(probed))})"
        )
        evidence.append(Holdback("partition", name, through, detail))
    return evidence


def utc(value: datetime) -> datetime:
    """DuckDB TIMESTAMPs are naive UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_ms(value: datetime | None) -> str | None:
    if value is None:
        return None
    return utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
