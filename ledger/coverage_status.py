"""The evidence behind the coverage, source by source and partition by partition, as
``disclosure-ledger status`` shows it.

:func:`ledger.coverage.ledger_coverage` says how far the ledger is complete and what
holds it back; this adds the detail a person checks it against: each expected source's
latest watermark on each partition, and each partition's committed position, last
probed end offset, lag and the time it is complete through. Reads tables only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
from tabulate import tabulate

from ledger.coverage import Coverage, iso_ms, ledger_coverage, utc


@dataclass(frozen=True)
class SourceStatus:
    """One producer service: its latest watermark per partition, and the earliest."""

    source: str
    expected: bool
    watermarks: dict[str, datetime]  # "topic/partition" -> latest watermark consumed there
    missing: tuple[str, ...]  # partitions with no watermark of it

    @property
    def through(self) -> datetime | None:
        """The earliest of its partitions' watermarks; None while one has none."""
        if self.missing or not self.watermarks:
            return None
        return min(self.watermarks.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "expected": self.expected,
            "through": iso_ms(self.through),
            "watermarks": {p: iso_ms(at) for p, at in sorted(self.watermarks.items())},
            "missing_partitions": list(self.missing),
        }


@dataclass(frozen=True)
class PartitionStatus:
    """One partition: where the ledger stands, and what the last probe saw."""

    partition: str  # "topic/partition"
    position: int  # the committed next offset
    end_offset: int | None  # at the last probe
    probed_at: datetime | None  # the last probe
    complete_through: datetime | None  # the latest probe the position has reached

    @property
    def lag(self) -> int | None:
        return None if self.end_offset is None else max(0, self.end_offset - self.position)

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "position": self.position,
            "end_offset": self.end_offset,
            "lag": self.lag,
            "probed_at": iso_ms(self.probed_at),
            "complete_through": iso_ms(self.complete_through),
        }


@dataclass(frozen=True)
class CoverageStatus:
    coverage: Coverage
    sources: tuple[SourceStatus, ...]
    partitions: tuple[PartitionStatus, ...]

    @property
    def complete(self) -> bool:
        return self.coverage.complete_through is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "coverage": self.coverage.to_json(),
            "description": self.coverage.describe(),
            "sources": [s.to_json() for s in self.sources],
            "partitions": [p.to_json() for p in self.partitions],
        }

    def lines(self) -> list[str]:
        """The status as text: the coverage, then a table of sources and of partitions."""
        out = [f"Coverage: {self.coverage.describe()}", ""]
        if self.coverage.holding_back:
            out.append("Held back by:")
            out += [f"  {h.kind} {h.name}: {h.detail}" for h in self.coverage.holding_back]
            out.append("")
        out.append("Sources (complete through the earliest of their partitions' watermarks):")
        rows: list[tuple[str, ...]] = [
            ("SOURCE", "EXPECTED", "THROUGH", "PARTITIONS WITH A WATERMARK", "MISSING ON")
        ]
        for s in self.sources:
            rows.append(
                (
                    s.source,
                    "yes" if s.expected else "no",
                    iso_ms(s.through) or "-",
                    str(len(s.watermarks)),
                    ", ".join(s.missing) or "-",
                )
            )
        out += _table(rows)
        out += ["", "Partitions (complete through the last probe the position has reached):"]
        rows = [("PARTITION", "POSITION", "END OFFSET", "LAG", "PROBED AT", "COMPLETE THROUGH")]
        for p in self.partitions:
            rows.append(
                (
                    p.partition,
                    str(p.position),
                    "-" if p.end_offset is None else str(p.end_offset),
                    "-" if p.lag is None else str(p.lag),
                    iso_ms(p.probed_at) or "never probed",
                    iso_ms(p.complete_through) or "-",
                )
            )
        out += _table(rows)
        return out


def coverage_status(con: duckdb.DuckDBPyConnection) -> CoverageStatus:
    """The coverage of the ledger behind ``con`` and the evidence for it, in one snapshot."""
    coverage = ledger_coverage(con, now=datetime.now(UTC))
    expected = [h.name for h in coverage.evidence if h.kind == "source" and h.name[:1] != "("]
    tables = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not {"watermarks", "partition_probes"} <= tables:  # a ledger older than coverage
        return CoverageStatus(coverage, (), ())
    partitions = _partitions(con)
    names = [p.partition for p in partitions]
    latest: dict[str, dict[str, datetime]] = {}
    for source, topic, partition, at in con.execute(
        "SELECT source, topic, kafka_partition, max(watermark_at) FROM watermarks "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        latest.setdefault(str(source), {})[f"{topic}/{partition}"] = utc(at)
    sources = [
        SourceStatus(
            source,
            source in expected,
            latest.get(source, {}),
            tuple(n for n in names if n not in latest.get(source, {})),
        )
        for source in [*expected, *sorted(s for s in latest if s not in expected)]
    ]
    return CoverageStatus(coverage, tuple(sources), tuple(partitions))


def _partitions(con: duckdb.DuckDBPyConnection) -> list[PartitionStatus]:
    rows = con.execute(
        """
        WITH known AS (
            SELECT topic, kafka_partition FROM offsets
            UNION SELECT topic, kafka_partition FROM partition_probes
        )
        SELECT k.topic, k.kafka_partition, coalesce(any_value(o.next_offset), 0),
            arg_max(p.end_offset, p.probed_at), max(p.probed_at),
            max(p.probed_at) FILTER (WHERE p.end_offset <= coalesce(o.next_offset, 0))
        FROM known k
        LEFT JOIN offsets o USING (topic, kafka_partition)
        LEFT JOIN partition_probes p USING (topic, kafka_partition)
        GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    return [
        PartitionStatus(
            f"{topic}/{partition}",
            int(position),
            None if end is None else int(end),
            None if probed is None else utc(probed),
            None if reached is None else utc(reached),
        )
        for topic, partition, position, end, probed, reached in rows
    ]


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows (the first is the header) as a text table, indented; tabulate lays it out."""
    text = tabulate(list(rows[1:]), headers=list(rows[0]), tablefmt="simple", disable_numparse=True)
    return ["  " + line for line in text.splitlines()]
