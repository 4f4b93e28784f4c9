"""``python -m bench``: every benchmark, one after the other (see docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "bench.bench_encode",
    "bench.bench_publish",  # each Kafka client installed, beside its bare ceiling
    "bench.bench_ingest",
    "bench.bench_verify",
    "bench.bench_proofs",
    "bench.bench_reports",
    "bench.bench_after_erasure",
    "bench.bench_service",
    "bench.bench_second_client",  # prints how to install confluent-kafka when it is absent
    # issue 21, a DuckLake beside the file: PostgreSQL's server binaries and the ducklake extra
    "bench.bench_lake_reports",
    "bench.bench_lake_ingest",
    "bench.bench_lake_commits",
)


def main() -> int:
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        done = subprocess.run([sys.executable, "-m", module], check=False)
        if done.returncode:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
