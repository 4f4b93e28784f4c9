"""What the service's status and metrics pay to count disclosures after an erasure.

``reports.after_erasure.count_after_erasure`` scans the ledger's ``flags`` column (no
derived count is kept). This builds a DuckDB file whose ``disclosures`` table holds that
column for ROWS rows (default 10 million; one in 50,000 flagged ``after_erasure``, one in
seven flagged otherwise), and prints the time of each count::

    python -m bench.bench_after_erasure [ROWS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from reports.after_erasure import count_after_erasure

ROWS = 10_000_000
RUNS = 5


def main(rows: int = ROWS) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flags.duckdb"
        con = duckdb.connect(str(path))
        con.execute(
            "CREATE TABLE disclosures AS SELECT CASE WHEN i % 50000 = 0 THEN ['after_erasure'] "
            "WHEN i % 7 = 0 THEN ['undeclared_flow'] ELSE []::VARCHAR[] END AS flags "
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
    print(
        f"count_after_erasure over {rows:,} rows: {found:,} flagged; "
        f"median {statistics.median(seconds) * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms over {RUNS} runs"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)
