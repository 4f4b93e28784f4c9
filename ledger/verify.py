"""Recompute every leaf and link of every chain, and account for every offset.

``verify_ledger`` streams the ledger in Arrow batches (it never loads it whole) and
returns every failure it finds, each with its chain, sequence and kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.chain import GENESIS, LEAF_FIELDS, leaf_hash, link_hash
from ledger.store import Ledger

# How each leaf field is read back from its column.
_READ_AS = {
    "event_id": "event_id::VARCHAR AS event_id",
    "occurred_at_ms": "epoch_ms(occurred_at) AS occurred_at_ms",
    "ingested_at_ms": "epoch_ms(ingested_at) AS ingested_at_ms",
}


@dataclass(frozen=True)
class Failure:
    chain_id: str
    seq: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.chain_id} seq {self.seq}" if self.seq is not None else self.chain_id
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class VerifyResult:
    rows: int = 0
    chains: dict[str, tuple[int, str]] = field(default_factory=dict)  # chain -> (length, head)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def verify_ledger(
    ledger: Ledger,
    *,
    batch_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    result = VerifyResult()
    _verify_chains(ledger, result, batch_rows, progress)
    _verify_offsets(ledger, result)
    return result


def _verify_chains(
    ledger: Ledger,
    result: VerifyResult,
    batch_rows: int,
    progress: Callable[[int], None] | None,
) -> None:
    select = ", ".join(_READ_AS.get(name, name) for name in LEAF_FIELDS)
    reader = ledger.con.sql(
        f"SELECT {select}, leaf_hash, chain_hash FROM disclosures ORDER BY chain_id, seq"
    ).to_arrow_reader(batch_rows)
    chain: str | None = None
    expected_seq = 1
    previous = GENESIS
    for record_batch in reader:
        columns = record_batch.to_pydict()
        names = list(columns)
        for values in zip(*columns.values(), strict=True):
            row = dict(zip(names, values, strict=True))
            if row["chain_id"] != chain:
                if chain is not None:
                    result.chains[chain] = (expected_seq - 1, previous.hex())
                chain, expected_seq, previous = row["chain_id"], 1, GENESIS
            seq = row["seq"]
            if seq != expected_seq:
                kind = "row deleted" if seq > expected_seq else "row inserted"
                result.failures.append(
                    Failure(str(chain), seq, kind, f"expected sequence {expected_seq}, found {seq}")
                )
            leaf = leaf_hash(row)
            if leaf != row["leaf_hash"]:
                result.failures.append(
                    Failure(
                        str(chain), seq, "row altered", "stored leaf hash does not match the row"
                    )
                )
            link = link_hash(previous, row["leaf_hash"])
            if link != row["chain_hash"]:
                result.failures.append(
                    Failure(
                        str(chain),
                        seq,
                        "chain broken",
                        "chain hash does not link to the previous row (rows reordered, "
                        "inserted or removed before it)",
                    )
                )
            previous = row["chain_hash"]
            expected_seq = seq + 1
            result.rows += 1
        if progress is not None:
            progress(result.rows)
    if chain is not None:
        result.chains[chain] = (expected_seq - 1, previous.hex())


_ACCOUNTING = """
WITH accounted AS (
    SELECT topic, kafka_partition, kafka_offset, 'accepted' AS outcome FROM disclosures
    UNION ALL SELECT topic, kafka_partition, kafka_offset, 'duplicate' FROM duplicates
    UNION ALL SELECT topic, kafka_partition, kafka_offset, 'quarantined' FROM quarantine
),
doubled AS (
    SELECT topic, kafka_partition, kafka_offset, string_agg(outcome, ', ') AS outcomes
    FROM accounted GROUP BY ALL HAVING count(*) > 1
),
ordered AS (
    SELECT DISTINCT topic, kafka_partition, kafka_offset FROM accounted
),
gaps AS (
    SELECT topic, kafka_partition, kafka_offset + 1 AS gap_from, next - 1 AS gap_to
    FROM (SELECT *, lead(kafka_offset) OVER (PARTITION BY topic, kafka_partition
                                             ORDER BY kafka_offset) AS next FROM ordered)
    WHERE next > kafka_offset + 1
),
bounds AS (
    SELECT o.topic, o.kafka_partition, o.next_offset, max(a.kafka_offset) AS last_seen
    FROM offsets o LEFT JOIN ordered a USING (topic, kafka_partition) GROUP BY ALL
)
SELECT 'offset doubled', topic, kafka_partition, kafka_offset, kafka_offset, outcomes
FROM doubled
UNION ALL
SELECT 'offset missing', topic, kafka_partition, gap_from, gap_to, '' FROM gaps
UNION ALL
SELECT 'offset missing', topic, kafka_partition, coalesce(last_seen + 1, 0), next_offset - 1, ''
FROM bounds WHERE coalesce(last_seen + 1, 0) < next_offset
UNION ALL
SELECT 'offset beyond stored position', topic, kafka_partition, next_offset, last_seen, ''
FROM bounds WHERE last_seen >= next_offset
ORDER BY 2, 3, 4
"""


def _verify_offsets(ledger: Ledger, result: VerifyResult) -> None:
    for kind, topic, partition, first, last, outcomes in ledger.con.execute(_ACCOUNTING).fetchall():
        span = f"offset {first}" if first == last else f"offsets {first} to {last}"
        detail = f"{span} of {topic} partition {partition}"
        if outcomes:
            detail += f" is recorded more than once ({outcomes})"
        elif kind == "offset missing":
            detail += " is neither accepted, a duplicate nor quarantined"
        else:
            detail += " is recorded but the stored next offset is lower"
        result.failures.append(Failure(f"{topic}/{partition}", None, kind, detail))
