"""How fast ``verify`` is on a large ledger (issue 5: at least 1,000,000 rows per second).

Builds (once, then reuses) a ledger of ``--rows`` disclosures in three chains directly in
DuckDB SQL, not through Kafka, with the column sizes of the simulator's traffic (64-hex
pseudonyms over a pool of subjects, AES-GCM-sized context values, the reference data's
strings, 1 to 7 data categories and 1 to 6 CCPA letters a row: about 600 encoded bytes a
row, as in the demo's ledger) and REAL leaf and chain hashes, computed with the same code
``verify`` checks them with, and a stored next offset per partition so the offset
accounting holds. Then times ``verify_ledger`` (leaves,
links, order, checkpoints, offsets: everything ``disclosure-ledger verify`` does), best of
``--repeat`` runs, and prints rows per second. Benchmarks print figures; they assert nothing.
The machine's load average is printed too: on a shared 2-core machine it moves the figure.

    .venv/bin/python bench/bench_verify.py                   # 5M rows
    .venv/bin/python bench/bench_verify.py --rows 20000000   # longer
    .venv/bin/python bench/bench_verify.py --arrow           # the Arrow scan, not DuckDB's
    .venv/bin/python bench/bench_verify.py --python          # without the native helper
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

from ledger import chain, verify  # noqa: E402
from ledger.chain import GENESIS  # noqa: E402
from ledger.store import Ledger  # noqa: E402
from ledger.verify import LEAF_SELECT, verify_ledger  # noqa: E402

TOPIC = "privacy.disclosures.v1"
CHAINS = 3
BUILD_BATCH = 300_000

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
                f"SELECT {LEAF_SELECT} FROM staging ORDER BY seq, chain_id"
            ).to_arrow_table()
            leaves = _leaves(table)
            chain_ids = table.column("chain_id").to_pylist()
            links: list[bytes] = [b""] * len(leaves)
            for chain in heads:
                positions = [i for i, c in enumerate(chain_ids) if c == chain]
                chained = _links(heads[chain], [leaves[i] for i in positions])
                for i, link in zip(positions, chained, strict=True):
                    links[i] = link
                if positions:
                    heads[chain] = chained[-1]
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


def _leaves(table: pa.Table) -> list[bytes]:
    return chain.leaf_hashes(table)  # the ingest path's own code (native when built)


def _links(previous: bytes, leaves: list[bytes]) -> list[bytes]:
    return chain.link_hashes(previous, leaves)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ledger", type=Path, help="ledger file (default bench/results/...)")
    parser.add_argument("--rebuild", action="store_true", help="build the ledger again")
    parser.add_argument("--python", action="store_true", help="without the native helper")
    parser.add_argument(
        "--arrow", action="store_true", help="the Arrow scan, not the scan inside DuckDB"
    )
    args = parser.parse_args()
    path = args.ledger or ROOT / "bench" / "results" / f"verify-{args.rows}.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not path.exists():
        build(path, args.rows)
    native = verify.NATIVE and not args.python
    times = []
    for run in range(args.repeat):
        with Ledger(path, read_only=True) as ledger:
            started, cpu_started = time.perf_counter(), time.process_time()
            result = verify_ledger(
                ledger, native=native, through_duckdb=False if args.arrow else None
            )
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if not result.ok:
            print(f"the bench ledger does not verify: {result.failures[:3]}", file=sys.stderr)
            return 1
        times.append(elapsed)
        print(
            f"run {run + 1}: {result.rows:,} rows in {elapsed:.2f} s = "
            f"{result.rows / elapsed:,.0f} rows/s ({cpu:.1f} s of CPU on all threads)",
            file=sys.stderr,
        )
    best = min(times)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    scan = "Arrow batches" if args.arrow or not native else "inside DuckDB"
    print(
        f"verify: {result.rows:,} rows, {len(result.chains)} chains, native helper: {native}, "
        f"scan: {scan}"
    )
    print(
        f"  best {best:.2f} s = {result.rows / best:,.0f} rows/s; median "
        f"{statistics.median(times):.2f} s; {os.cpu_count()} cores; load average {load}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
