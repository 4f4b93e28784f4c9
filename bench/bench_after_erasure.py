"""What the service's status and metrics pay to count disclosures after an erasure.

``reports.after_erasure.count_after_erasure`` scans the ledger's ``flags`` column (no
derived count is kept). This builds a DuckDB file whose ``disclosures`` table holds the
two columns the count reads (flags, ingested_at) for ROWS rows (default 10 million; one
in 50,000 flagged ``after_erasure``, one in seven flagged otherwise), and prints the time
of a full count, and of the service's tally
(:class:`~reports.after_erasure.AfterErasureTally`) once 1,000 rows were appended::

    python -m bench.bench_after_erasure [ROWS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from reports.after_erasure import AfterErasureTally, count_after_erasure

ROWS = 10_000_000
RUNS = 5


def main(rows: int = ROWS) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flags.duckdb"
        con = duckdb.connect(str(path))
        con.execute(
            "CREATE TABLE disclosures AS SELECT CASE WHEN i % 50000 = 0 THEN ['after_erasure'] "
            "WHEN i % 7 = 0 THEN ['undeclared_flow'] ELSE []::VARCHAR[] END AS flags, "
            "TIMESTAMP '2026-01-01' + to_milliseconds(i) AS ingested_at "
            f"FROM range({rows}) t(i)"
        )
        con.execute("CHECKPOINT")
        con.close()
        con = duckdb.connect(str(path), read_only=True)
        seconds = []
        for _ in range(RUNS):
            started = time.perf_counter()
            found = count_after_erasure(con)
            seconds.append(time.perf_counter() - started)
        con.close()
        con = duckdb.connect(str(path))
        tally = AfterErasureTally()
        tally.count(con)
        tail = []
        for _ in range(RUNS):
            con.execute(
                "INSERT INTO disclosures SELECT ['after_erasure'], now()::TIMESTAMP "
                "FROM range(1) UNION ALL SELECT []::VARCHAR[], now()::TIMESTAMP FROM range(999)"
            )
            started = time.perf_counter()
            tallied = tally.count(con)
            tail.append(time.perf_counter() - started)
        assert tallied == count_after_erasure(con)
        con.close()
    print(
        f"count_after_erasure over {rows:,} rows: {found:,} flagged; "
        f"median {statistics.median(seconds) * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms over {RUNS} runs"
    )
    print(
        f"the tally after 1,000 more rows: median {statistics.median(tail) * 1000:.1f} ms, "
        f"max {max(tail) * 1000:.1f} ms over {RUNS} looks"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)
