"""Offset accounting: every Kafka offset of every partition up to the stored next offset is
accepted, a duplicate of an earlier event, quarantined, or a producer watermark, exactly
once."""

from __future__ import annotations

import duckdb

from ledger.verify.result import Failure, VerifyResult

_NO_WATERMARKS = (
    "(SELECT NULL::VARCHAR AS topic, NULL::INTEGER AS kafka_partition, "
    "NULL::BIGINT AS kafka_offset WHERE false)"
)

_ACCOUNTING = """
WITH accounted AS (
    SELECT topic, kafka_partition, kafka_offset, 'accepted' AS outcome FROM disclosures
    UNION ALL SELECT topic, kafka_partition, kafka_offset, 'duplicate' FROM duplicates
    UNION ALL SELECT topic, kafka_partition, kafka_offset, 'quarantined' FROM quarantine
    UNION ALL SELECT topic, kafka_partition, kafka_offset, 'watermark' FROM {watermarks}
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


_ALL_ACCOUNTED = """
WITH counted AS (
    SELECT topic, kafka_partition, count(*) AS n, min(kafka_offset) AS lo,
           max(kafka_offset) AS hi FROM disclosures GROUP BY ALL
    UNION ALL SELECT topic, kafka_partition, count(*), min(kafka_offset), max(kafka_offset)
    FROM duplicates GROUP BY ALL
    UNION ALL SELECT topic, kafka_partition, count(*), min(kafka_offset), max(kafka_offset)
    FROM quarantine GROUP BY ALL
    UNION ALL SELECT topic, kafka_partition, count(*), min(kafka_offset), max(kafka_offset)
    FROM {watermarks} GROUP BY ALL
),
per AS (SELECT topic, kafka_partition, sum(n) AS n, min(lo) AS lo, max(hi) AS hi
        FROM counted GROUP BY ALL),
small AS (SELECT topic, kafka_partition, kafka_offset FROM duplicates
          UNION ALL SELECT topic, kafka_partition, kafka_offset FROM quarantine)
SELECT
    (SELECT count(*) FROM per FULL JOIN offsets o USING (topic, kafka_partition)
     WHERE per.n IS NULL OR o.next_offset IS NULL OR per.n <> per.hi - per.lo + 1
        OR per.hi + 1 <> o.next_offset)
  + (SELECT count(*) FROM (SELECT 1 FROM small GROUP BY ALL HAVING count(*) > 1))
  + (SELECT count(*) FROM disclosures d SEMI JOIN small s
     ON d.topic = s.topic AND d.kafka_partition = s.kafka_partition
        AND d.kafka_offset = s.kafka_offset)
"""


def verify_offsets(
    con: duckdb.DuckDBPyConnection, result: VerifyResult, *, accepted_unique: bool
) -> None:
    """Every offset accepted, a duplicate, quarantined or a watermark, exactly once.

    When the scan found every chain's offsets strictly increasing (``accepted_unique``),
    counts settle it: no two records share an offset and, per partition, as many records
    as offsets from the first to the stored next one. Only otherwise is the detailed
    query run that names each missing or doubled offset."""
    tables = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    # a ledger written before producer watermarks has no table for them, and none to count
    watermarks = "watermarks" if "watermarks" in tables else _NO_WATERMARKS
    if accepted_unique and con.execute(_ALL_ACCOUNTED.format(watermarks=watermarks)).fetchall() == [
        (0,)
    ]:
        return
    accounting = _ACCOUNTING.format(watermarks=watermarks)
    for kind, topic, partition, first, last, outcomes in con.execute(accounting).fetchall():
        span = f"offset {first}" if first == last else f"offsets {first} to {last}"
        detail = f"{span} of {topic} partition {partition}"
        if outcomes:
            detail += f" is recorded more than once ({outcomes})"
        elif kind == "offset missing":
            detail += " is neither accepted, a duplicate, quarantined nor a watermark"
        else:
            detail += " is recorded but the stored next offset is lower"
        result.failures.append(Failure(f"{topic}/{partition}", None, kind, detail))
