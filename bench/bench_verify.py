"""How fast ``verify`` is beside the ceiling DuckDB itself gives (issue 15: at least half).

Builds (once, then reuses) a ledger of ``--rows`` disclosures in three chains directly in
DuckDB SQL, not through Kafka, with the column sizes of the simulator's traffic (64-hex
pseudonyms over a pool of subjects, AES-GCM-sized context values, the reference data's
strings, 1 to 7 data categories and 1 to 6 CCPA letters a row: about 600 encoded bytes a
row, as in the demo's ledger), real leaf hashes (DuckDB's sha256 of the leaf encoding, held
to ledger.chain byte for byte by tests/unit/test_leaf_sql.py) and real chain hashes
(hashlib), and a stored next offset per partition so the offset accounting holds.

Then, ``--repeat`` times on the same ledger, alternately:

* the ceiling: ``SELECT count(sha256(<leaf bytes>)) FROM disclosures``, the very leaf
  expression verify uses (ledger/leaf_sql.py), on as many DuckDB threads as verify;
* ``verify_ledger``: leaves, links, order, derived data, checkpoints, offsets: everything
  ``disclosure-ledger verify`` does;

and prints the medians in rows per second and verify's share of the ceiling. Benchmarks
print figures; they assert nothing. The machine's load average is printed too: on a shared
machine it moves both figures.

    .venv/bin/python -m bench.bench_verify                   # 1M rows, 5 repetitions
    .venv/bin/python -m bench.bench_verify --rows 5000000    # longer
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ledger import chain  # noqa: E402
from ledger.chain import GENESIS  # noqa: E402
from ledger.leaf_sql import LEAF_BYTES_SQL, LEAF_HASH_SQL  # noqa: E402
from ledger.store import Ledger  # noqa: E402
from ledger.verify import available_cores, verify_ledger  # noqa: E402

TOPIC = "privacy.disclosures.v1"
CHAINS = 3
BUILD_BATCH = 250_000
CEILING_SQL = f"SELECT count(sha256({LEAF_BYTES_SQL})) FROM disclosures"

_ROWS_SQL = f"""
SELECT '{TOPIC}/' || (i % {CHAINS}) AS chain_id, i // {CHAINS} + 1 AS seq, '{TOPIC}' AS topic,
    (i % {CHAINS})::INTEGER AS kafka_partition, i // {CHAINS} AS kafka_offset,
    uuid() AS event_id,
    TIMESTAMP '2025-06-01' + to_milliseconds(i * 7) AS occurred_at,
    md5(((i * 7919) % 200003)::VARCHAR) || md5(((i * 7919) % 200003 + 1)::VARCHAR)
        AS subject_pseudonym,
    CASE WHEN i % 10 = 0 THEN 'guest' ELSE 'member' END AS subject_type,
    ['escalion', 'broadcaster-00069', 'paymentwall', 'docler-ip'][i % 4 + 1] AS recipient_id,
    ['payment_provider', 'broadcaster', 'payment_provider', 'group_entity'][i % 4 + 1]
        AS recipient_category,
    list_slice(['user.account.username', 'user.device.ip_address', 'user.payment',
                'user.behavior.purchase_history.broadcaster_category', 'user.device.cookie_id',
                'user.demographic.age_range', 'user.content.private', 'user.location.imprecise',
                'user.behavior.media_consumption', 'user.content.self_image'],
               1, 1 + (i * 7919) % 7) AS data_categories,
    ['essential.service', 'essential.service.operations', 'analytics.reporting',
     'essential.service.payment_processing'][i % 4 + 1] AS purpose, 'contract' AS legal_basis,
    NULL::VARCHAR AS legal_reference,
    'business_purpose' AS disclosure_kind, 'billing' AS producer_service,
    '1.4.2' AS producer_version,
    'aesgcm1:' || to_base64(unhex(md5(i::VARCHAR) || md5((i + 1)::VARCHAR)
        || md5((i + 2)::VARCHAR) || md5((i + 3)::VARCHAR))[:57]) AS context,
    1 AS schema_version, '2026.11.0+d772838d' AS reference_version,
    list_slice(['A', 'B', 'D', 'F', 'G', 'H', 'K', 'L'], 1, 1 + (i * 7919) % 6) AS ccpa_letters,
    '5' AS business_purpose, i % 17 = 0 AS sensitive, true AS declared,
    CASE WHEN i % 101 = 0 THEN ['undeclared_flow'] ELSE [] END::VARCHAR[] AS flags,
    TIMESTAMP '2026-01-01' + to_milliseconds(i // 10000) AS ingested_at
FROM range(?, ?) t(i)
"""


def build(path: Path, rows: int) -> None:
    """Rows in the order a consumer appends them (chains interleaved), hashed for real."""
    if path.exists():
        path.unlink()
    started = time.monotonic()
    heads = {f"{TOPIC}/{c}": GENESIS for c in range(CHAINS)}
    with Ledger(path) as ledger:
        con = ledger.con
        con.execute(f"CREATE TEMP TABLE staging AS {_ROWS_SQL}", [0, 0])
        for start in range(0, rows, BUILD_BATCH):
            stop = min(start + BUILD_BATCH, rows)
            con.execute("DELETE FROM staging")
            con.execute(f"INSERT INTO staging {_ROWS_SQL}", [start, stop])
            table = con.sql(
                f"SELECT chain_id, seq, {LEAF_HASH_SQL} AS leaf_hash FROM staging "
                "ORDER BY seq, chain_id"
            ).to_arrow_table()
            leaves = [bytes(leaf) for leaf in table.column("leaf_hash").to_pylist()]
            chain_ids = table.column("chain_id").to_pylist()
            links: list[bytes] = [b""] * len(leaves)
            for chain_id in heads:
                positions = [i for i, c in enumerate(chain_ids) if c == chain_id]
                chained = chain.link_hashes(heads[chain_id], [leaves[i] for i in positions])
                for i, link in zip(positions, chained, strict=True):
                    links[i] = link
                if positions:
                    heads[chain_id] = chained[-1]
            hashes = pa.table(
                {
                    "seq": table.column("seq"),
                    "chain_id": table.column("chain_id"),
                    "leaf_hash": pa.array(leaves, pa.binary()),
                    "chain_hash": pa.array(links, pa.binary()),
                }
            )
            con.register("_hashes", hashes)
            con.execute(
                "INSERT INTO disclosures BY NAME SELECT s.*, h.leaf_hash, h.chain_hash "
                "FROM staging s JOIN _hashes h USING (chain_id, seq) ORDER BY s.seq, s.chain_id"
            )
            con.unregister("_hashes")
            print(f"built {stop:,} of {rows:,} rows", file=sys.stderr, flush=True)
        con.execute(
            "INSERT INTO offsets SELECT topic, kafka_partition, max(kafka_offset) + 1, "
            "now()::TIMESTAMP FROM disclosures GROUP BY ALL"
        )
    print(f"built {path} in {time.monotonic() - started:.0f} s", file=sys.stderr)


def time_ceiling(path: Path, threads: int) -> tuple[float, float, int]:
    """Wall and CPU seconds of DuckDB's sha256 over every row's leaf bytes, and the rows."""
    with Ledger(path, read_only=True) as ledger:
        ledger.con.execute(f"SET threads = {threads}")
        started, cpu_started = time.perf_counter(), time.process_time()
        rows = int(ledger.con.execute(CEILING_SQL).fetchall()[0][0])
        return time.perf_counter() - started, time.process_time() - cpu_started, rows


def time_verify(path: Path, threads: int) -> tuple[float, float, int]:
    """Wall and CPU seconds of a whole verify, and the rows it checked."""
    with Ledger(path, read_only=True) as ledger:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = verify_ledger(ledger, threads=threads)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if not result.ok:
        raise SystemExit(f"the bench ledger does not verify: {result.failures[:3]}")
    return elapsed, cpu, result.rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: every core)")
    parser.add_argument("--ledger", type=Path, help="ledger file (default bench/results/...)")
    parser.add_argument("--rebuild", action="store_true", help="build the ledger again")
    args = parser.parse_args()
    path = args.ledger or ROOT / "bench" / "results" / f"verify-{args.rows}.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not path.exists():
        build(path, args.rows)
    threads = args.threads or available_cores()
    timed: dict[str, list[tuple[float, float]]] = {"ceiling": [], "verify": []}
    rows = 0
    for run in range(args.repeat):
        for name, measure in (("ceiling", time_ceiling), ("verify", time_verify)):
            elapsed, cpu, rows = measure(path, threads)
            timed[name].append((elapsed, cpu))
            print(
                f"run {run + 1} {name}: {rows:,} rows in {elapsed:.2f} s = "
                f"{rows / elapsed:,.0f} rows/s ({cpu:.1f} s of CPU on all threads)",
                file=sys.stderr,
                flush=True,
            )
    wall = {name: statistics.median(t for t, _ in runs) for name, runs in timed.items()}
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in timed.items()}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"verify bench: {rows:,} rows, {CHAINS} chains, {threads} DuckDB threads, "
        f"{os.cpu_count()} cores, median of {args.repeat}; load average {load}"
    )
    for name, label in (("ceiling", "DuckDB sha256 ceiling"), ("verify", "verify")):
        print(
            f"  {label:22} {rows / wall[name]:>12,.0f} rows/s  ({wall[name]:.2f} s wall, "
            f"{cpu[name]:.2f} s CPU)"
        )
    print(
        f"  verify / ceiling: {wall['ceiling'] / wall['verify']:.0%} of the rows/s "
        f"({cpu['ceiling'] / cpu['verify']:.0%} by CPU time)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
