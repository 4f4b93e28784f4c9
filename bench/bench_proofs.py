"""Proofs on a 10M-row ledger (issue 19, section 5): what making and checking them costs,
what the Merkle tree costs ingest and storage, and what building and checking it costs.

    .venv/bin/python -m bench.bench_proofs                       # 10M rows, the defaults
    .venv/bin/python -m bench.bench_proofs --rows 1000000 --requests 100 --ingest-runs 3

The ledger (built once, then reused, in ``--dir``) is the one ``bench.bench_verify`` builds:
three chains, rows as heavy as the simulator's, real leaf and link hashes, so the bundles made
from it verify. Rows bulk-loaded that way have no Merkle nodes: the first writer to open the
file builds them (:func:`ledger.tree.ensure_tree`), which is timed, as is ``ensure_tree``
again from an empty node table (``--tree-runs`` times: what ``migrate``, or the first writer
open of a ledger older than the tree, costs). Then, with a throwaway Ed25519 key, each chain
gets signed checkpoint notes at eight sizes (an eighth of its rows, two eighths, …, all), and:

* proof generation per request, on a ledger opened read-only as ``prove`` opens it: the
  inclusion bundle by event id (:func:`ledger.proofs.event_bundle`), by ``(chain, seq)``
  (:func:`ledger.proofs.inclusion_bundle`; the difference is the event id's lookup, which is
  also timed alone), and the consistency bundle between two checkpointed sizes; ``--requests``
  rows drawn at random (after a warm-up of ten), median and 90th percentile;
* the same, opening the ledger for each request (what one ``prove`` command pays, less the
  interpreter's start);
* proof verification (:func:`ledger.proofs.verify_bundle`) of every bundle made;
* :func:`ledger.tree.check_tree` over every row (what it adds to ``verify``);
* storage: ``merkle_nodes`` and ``checkpoint_notes`` each copied into a DuckDB file of its
  own, beside the ledger's file size;
* ``--explore-index``: on a copy of the ledger, an ART index on ``event_id``: its build, the
  lookup and the bundle by event id with it, and what it adds to an append;
* the tree's share of ingest: ``bench.ingest_offline`` (the pipeline alone, 100,000 events)
  in separate processes, alternately with the tree and with ``--no-tree`` (extend stubbed
  out: no nodes computed nor inserted), ``--ingest-runs`` each; plus one ``--stages`` run
  that times ``TreeBuilder.extend`` inside the real ingest.

Prints a table of medians and writes ``bench/results/proofs.json``. Benchmarks print figures;
they assert nothing (a bundle that does not verify, or a tree that does not check, stops the
run: the figures would be meaningless).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_verify import build  # noqa: E402
from consumers.consumer import DEFAULT_BATCH  # noqa: E402
from ledger.checkpoint_notes import log_origin, sign_notes, store_notes  # noqa: E402
from ledger.proofs import (  # noqa: E402
    consistency_bundle,
    event_bundle,
    inclusion_bundle,
    locate_event,
    verify_bundle,
)
from ledger.store import Ledger  # noqa: E402
from ledger.tree import check_tree, ensure_tree, node_table  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CHECKPOINTS = 8  # signed sizes per chain: k/8 of its rows, k = 1..8
TARGET_PROOF_MS = 10.0
TARGET_TREE_SHARE = 0.10


def _median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def _p90_ms(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the ledger and its tree -----------------------------------------------------------------
def ledger_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with duckdb.connect(str(path), read_only=True) as con:
        found = con.execute("SELECT count(*) FROM disclosures").fetchone()
    return int(found[0]) if found else 0


def prepare(path: Path, rows: int, tree_runs: int) -> dict[str, Any]:
    """Build or reuse the ledger; time its first writer open and ``ensure_tree``."""
    figures: dict[str, Any] = {}
    if ledger_rows(path) != rows:
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path, rows)
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        nodes = (
            int(con.execute("SELECT count(*) FROM merkle_nodes").fetchall()[0][0])
            if "merkle_nodes" in tables
            else 0
        )
    if nodes == 0:  # bulk-loaded rows: the first writer open builds their tree
        started = time.perf_counter()
        with Ledger(path):
            pass
        figures["first_writer_open_s"] = time.perf_counter() - started
        _log(f"first writer open (builds the tree): {figures['first_writer_open_s']:.1f} s")
    runs: list[float] = []
    with Ledger(path) as ledger:
        con = ledger.con
        for run in range(tree_runs):
            con.execute("DROP TABLE merkle_nodes")  # as a ledger older than the tree
            started = time.perf_counter()
            written = ensure_tree(con)
            runs.append(time.perf_counter() - started)
            _log(f"ensure_tree run {run + 1}: {written:,} node rows in {runs[-1]:.1f} s")
        started = time.perf_counter()
        ensure_tree(con)  # nothing to do: what every later writer open pays
        figures["ensure_tree_current_ms"] = (time.perf_counter() - started) * 1000
    figures["ensure_tree_s"] = runs
    return figures


def sign_checkpoints(path: Path, notes_dir: Path) -> tuple[bytes, dict[str, list[int]]]:
    """Signed checkpoint notes at :data:`CHECKPOINTS` sizes per chain, with a throwaway key
    (the ledger's earlier bench notes are replaced); the public key and the sizes."""
    signer = Ed25519PrivateKey.generate()
    shutil.rmtree(notes_dir, ignore_errors=True)
    sizes: dict[str, list[int]] = {}
    with Ledger(path) as ledger:
        con = ledger.con
        origin = log_origin(con, None)
        con.execute("DELETE FROM checkpoint_notes")
        heads = con.execute(
            "SELECT chain_id, max(seq) FROM disclosures GROUP BY chain_id ORDER BY 1"
        ).fetchall()
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for k in range(1, CHECKPOINTS + 1):
            stamp = (at + timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            chosen = [(str(c), int(n) * k // CHECKPOINTS, b"\0" * 32) for c, n in heads]
            for chain_id, size, _ in chosen:
                sizes.setdefault(chain_id, []).append(size)
            notes = sign_notes(con, signer, origin, chosen, at=stamp, reference_version="bench")
            store_notes(con, notes, stamp, notes_dir)
    public = signer.public_key()
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw, sizes


# -- proofs ----------------------------------------------------------------------------------
def time_each(
    calls: list[Callable[[], Any]], warmup: int = 10, cpu: list[float] | None = None
) -> tuple[list[float], list[Any]]:
    """Wall seconds of each call (after ``warmup`` calls) and the results; the CPU seconds of
    the process (DuckDB's threads included) go into ``cpu``."""
    for call in calls[:warmup]:
        call()
    seconds: list[float] = []
    results: list[Any] = []
    for call in calls:
        started, cpu_started = time.perf_counter(), time.process_time()
        results.append(call())
        seconds.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.process_time() - cpu_started)
    return seconds, results


def time_proofs(
    path: Path, public: bytes, sizes: dict[str, list[int]], requests: int
) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(public)
    rng = random.Random(19)
    figures: dict[str, Any] = {}
    with Ledger(path, read_only=True) as ledger:
        con = ledger.con
        sample = [
            (str(e), str(c), int(s))
            for e, c, s in con.execute(
                "SELECT event_id::VARCHAR, chain_id, seq FROM disclosures "
                f"USING SAMPLE reservoir({requests} ROWS) REPEATABLE (19)"
            ).fetchall()
        ]
        pairs = []
        for _ in range(requests):
            chain_id = rng.choice(sorted(sizes))
            old, new = sorted(rng.sample(sizes[chain_id], 2))
            pairs.append((chain_id, old, new))
        calls: dict[str, list[Callable[[], Any]]] = {
            "event id lookup (locate_event)": [
                lambda e=e: locate_event(con, e) for e, _, _ in sample
            ],
            "inclusion bundle by (chain, seq)": [
                lambda c=c, s=s: inclusion_bundle(con, c, s) for _, c, s in sample
            ],
            "inclusion bundle by event id": [
                lambda e=e: event_bundle(con, e) for e, _, _ in sample
            ],
            "consistency bundle": [
                lambda c=c, o=o, n=n: consistency_bundle(con, c, o, n) for c, o, n in pairs
            ],
        }
        timed: dict[str, tuple[list[float], list[Any]]] = {}
        cpu: dict[str, list[float]] = {}
        for name, each in calls.items():
            timed[name] = time_each(each, cpu=cpu.setdefault(name, []))
    for name, (seconds, _) in timed.items():
        figures[name] = {
            "median_ms": _median_ms(seconds),
            "p90_ms": _p90_ms(seconds),
            "cpu_median_ms": _median_ms(cpu[name]),
        }
        _log(
            f"{name}: median {_median_ms(seconds):.2f} ms, p90 {_p90_ms(seconds):.2f} ms, "
            f"CPU {_median_ms(cpu[name]):.2f} ms"
        )

    def opened(event_id: str) -> Any:
        with Ledger(path, read_only=True) as ledger:
            return event_bundle(ledger.con, event_id)

    seconds, _ = time_each([lambda e=e: opened(e) for e, _, _ in sample[:20]], warmup=2)
    figures["open + inclusion bundle by event id"] = {
        "median_ms": _median_ms(seconds),
        "p90_ms": _p90_ms(seconds),
    }
    bundles = timed["inclusion bundle by event id"][1] + timed["consistency bundle"][1]
    for kind in ("inclusion", "consistency"):
        chosen = [b for b in bundles if b["kind"] == kind]
        spent: list[float] = []
        seconds, checked = time_each([lambda b=b: verify_bundle(b, key) for b in chosen], cpu=spent)
        failed = [c for c in checked if not c.ok]
        if failed:
            raise SystemExit(f"a {kind} bundle does not verify: {failed[0]}")
        figures[f"verify_bundle ({kind})"] = {
            "median_ms": _median_ms(seconds),
            "p90_ms": _p90_ms(seconds),
            "cpu_median_ms": _median_ms(spent),
        }
        sizes_b = [len(json.dumps(b)) for b in chosen]
        figures[f"{kind} bundle bytes"] = statistics.median(sizes_b)
    return figures


def time_check_tree(path: Path, runs: int) -> list[float]:
    seconds = []
    for run in range(runs):
        with Ledger(path, read_only=True) as ledger:
            started = time.perf_counter()
            problems = check_tree(ledger.con)
            seconds.append(time.perf_counter() - started)
        if problems:
            raise SystemExit(f"the bench ledger's tree does not check: {problems[:3]}")
        _log(f"check_tree run {run + 1}: {seconds[-1]:.1f} s")
    return seconds


# -- storage ---------------------------------------------------------------------------------
def storage(path: Path, notes_dir: Path) -> dict[str, Any]:
    """Bytes of each tree table, copied into a DuckDB file of its own (less an empty file's
    size), beside the ledger's own file size."""
    figures: dict[str, Any] = {"ledger_file_bytes": path.stat().st_size}
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.duckdb"
        duckdb.connect(str(empty)).close()
        base = empty.stat().st_size
        for table in ("merkle_nodes", "checkpoint_notes"):
            copy = Path(folder) / f"{table}.duckdb"
            with duckdb.connect(str(copy)) as con:
                con.execute(f"ATTACH '{path}' AS l (READ_ONLY)")
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM l.{table}")
                rows = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
                con.execute("DETACH l")
                con.execute("CHECKPOINT")
            figures[f"{table}_rows"] = rows
            figures[f"{table}_bytes"] = copy.stat().st_size - base
    figures["notes_dir_bytes"] = sum(p.stat().st_size for p in notes_dir.rglob("*") if p.is_file())
    return figures


# -- the tree's share of ingest --------------------------------------------------------------
def ingest_run(events: int, messages: Path, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest_offline", "--events", str(events), "--messages",
         str(messages), *extra],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["stderr"] = done.stderr
    return figures


def node_insert_ms(nodes_per_batch: int, batches: int = 200) -> float:
    """Median CPU milliseconds that a batch's node rows add to its commit, as
    :meth:`ledger.store.Ledger.append_batch` inserts them (register the Arrow table, insert,
    unregister, inside the batch's transaction, which commits anyway): timed in a ledger of its
    own, since inside the real commit the statement is not timed apart."""
    spent: list[float] = []
    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "l.duckdb") as ledger:
        con = ledger.con
        for batch in range(batches):
            first = batch * nodes_per_batch
            rows = [
                (f"bench/{i % 4}", 8, first + i, hashlib.sha256(b"%d" % (first + i)).digest())
                for i in range(nodes_per_batch)
            ]
            con.execute("BEGIN TRANSACTION")
            started = time.process_time()
            con.register("_incoming_merkle_nodes", node_table(rows))
            con.execute("INSERT INTO merkle_nodes BY NAME SELECT * FROM _incoming_merkle_nodes")
            con.unregister("_incoming_merkle_nodes")
            spent.append(time.process_time() - started)
            con.execute("COMMIT")
    return statistics.median(spent) * 1000


def _stage_cpu_us(stderr: str, prefix: str) -> float:
    """The CPU µs/event of a stage in ``ingest_offline --stages`` output (0 if absent)."""
    for line in stderr.splitlines():
        if line.startswith(prefix):
            return float(line[40:].split()[0])
    return 0.0


def tree_share(events: int, runs: int) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    messages = RESULTS / f"ingest-messages-{events}.pickle"
    ingest_run(min(events, 1000), RESULTS / "ingest-messages-warmup.pickle")
    with_tree: list[dict[str, Any]] = []
    without: list[dict[str, Any]] = []
    for run in range(runs):
        order = [(with_tree, ()), (without, ("--no-tree",))]
        for into, extra in order if run % 2 == 0 else reversed(order):
            into.append(ingest_run(events, messages, *extra))
        _log(
            f"ingest run {run + 1}: with the tree {with_tree[-1]['eps']:,.0f} events/s "
            f"({with_tree[-1]['cpu_s']:.2f} s CPU), without {without[-1]['eps']:,.0f} "
            f"events/s ({without[-1]['cpu_s']:.2f} s CPU)"
        )
    staged = ingest_run(events, messages, "--stages")
    _log(staged["stderr"])
    extend_cpu_us = _stage_cpu_us(staged["stderr"], "merkle tree (TreeBuilder.extend)")
    rows_cpu_us = _stage_cpu_us(staged["stderr"], "merkle node rows (node_table)")
    total_cpu_us = _stage_cpu_us(staged["stderr"], "total")
    batches = -(-events // DEFAULT_BATCH)
    nodes_per_batch = max(1, events // 255 // batches)
    insert_ms = node_insert_ms(nodes_per_batch)
    insert_cpu_us = insert_ms * 1000 * batches / events
    tree_cpu_us = extend_cpu_us + rows_cpu_us + insert_cpu_us
    wall = [w["seconds"] / v["seconds"] - 1 for w, v in zip(with_tree, without, strict=True)]
    cpu = [w["cpu_s"] / v["cpu_s"] - 1 for w, v in zip(with_tree, without, strict=True)]
    return {
        "events": events,
        "runs": runs,
        "with_tree_eps": statistics.median(r["eps"] for r in with_tree),
        "without_tree_eps": statistics.median(r["eps"] for r in without),
        "with_tree_cpu_s": statistics.median(r["cpu_s"] for r in with_tree),
        "without_tree_cpu_s": statistics.median(r["cpu_s"] for r in without),
        "share_wall": 1
        - statistics.median(r["seconds"] for r in without)
        / statistics.median(r["seconds"] for r in with_tree),
        "share_cpu": 1
        - statistics.median(r["cpu_s"] for r in without)
        / statistics.median(r["cpu_s"] for r in with_tree),
        "paired_wall_extra": wall,
        "paired_cpu_extra": cpu,
        "extend_cpu_us_per_event": extend_cpu_us,
        "node_rows_cpu_us_per_event": rows_cpu_us,
        "nodes_per_batch": nodes_per_batch,
        "insert_ms_per_batch": insert_ms,
        "insert_cpu_us_per_event": insert_cpu_us,
        "tree_cpu_us_per_event": tree_cpu_us,
        "total_cpu_us_per_event": total_cpu_us,
        "tree_share_cpu_timed": tree_cpu_us / total_cpu_us,
    }


# -- an index on event_id, on a copy --------------------------------------------------------
def explore_event_index(path: Path, requests: int) -> dict[str, Any]:
    """What an ART index on ``disclosures.event_id`` would give the event id's lookup, and
    cost: its build, and appends of ``DEFAULT_BATCH`` rows with and without it. On a copy of
    the ledger, never on the ledger."""
    copy = path.with_name(path.name + ".index-copy.duckdb")
    shutil.copyfile(path, copy)
    figures: dict[str, Any] = {}
    try:
        with duckdb.connect(str(copy)) as con:
            sample = [
                str(r[0])
                for r in con.execute(
                    "SELECT event_id::VARCHAR FROM disclosures "
                    f"USING SAMPLE reservoir({requests} ROWS) REPEATABLE (7)"
                ).fetchall()
            ]
            con.execute(
                "CREATE TEMP TABLE batch AS SELECT * REPLACE ('bench/appended' AS chain_id) "
                "FROM disclosures "
                f"USING SAMPLE reservoir({DEFAULT_BATCH} ROWS) REPEATABLE (7)"
            )

            def appends() -> float:
                spent = []
                for _ in range(10):
                    con.execute("BEGIN TRANSACTION")
                    started = time.perf_counter()
                    con.execute(
                        "INSERT INTO disclosures SELECT * REPLACE (uuid() AS event_id) FROM batch"
                    )
                    spent.append(time.perf_counter() - started)
                    con.execute("COMMIT")
                return statistics.median(spent) * 1000

            figures["append_ms_without"] = appends()
            started = time.perf_counter()
            con.execute("CREATE INDEX bench_event_id ON disclosures (event_id)")
            con.execute("CHECKPOINT")
            figures["index_build_s"] = time.perf_counter() - started
            figures["append_ms_with"] = appends()
        with Ledger(copy, read_only=True) as ledger:
            first = time.perf_counter()
            locate_event(ledger.con, sample[0])
            figures["first_lookup_ms"] = (time.perf_counter() - first) * 1000
            seconds, _ = time_each([lambda e=e: locate_event(ledger.con, e) for e in sample])
            figures["lookup_median_ms"] = _median_ms(seconds)
            seconds, _ = time_each([lambda e=e: event_bundle(ledger.con, e) for e in sample])
            figures["event_bundle_median_ms"] = _median_ms(seconds)
    finally:
        for leftover in (copy, copy.with_name(copy.name + ".wal")):
            leftover.unlink(missing_ok=True)
    _log(f"event_id index (on a copy): {figures}")
    return figures


# -- the whole benchmark ---------------------------------------------------------------------
def print_table(figures: dict[str, Any]) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"proofs bench: {figures['rows']:,} rows, 3 chains, {os.cpu_count()} cores, DuckDB "
        f"{duckdb.__version__}; load average {load}"
    )
    proofs = figures.get("proofs", {})
    for name in (
        "inclusion bundle by event id",
        "inclusion bundle by (chain, seq)",
        "event id lookup (locate_event)",
        "consistency bundle",
        "open + inclusion bundle by event id",
        "verify_bundle (inclusion)",
        "verify_bundle (consistency)",
    ):
        if name in proofs:
            f = proofs[name]
            target = f"  (target <= {TARGET_PROOF_MS:.0f} ms)" if "bundle" in name else ""
            if name.startswith("verify") or name.startswith("open"):
                target = ""
            cpu = f"   CPU {f['cpu_median_ms']:6.2f} ms" if "cpu_median_ms" in f else ""
            print(
                f"  {name:38} median {f['median_ms']:8.2f} ms   p90 {f['p90_ms']:8.2f} ms"
                f"{cpu}{target}"
            )
    for kind in ("inclusion", "consistency"):
        if f"{kind} bundle bytes" in proofs:
            size = proofs[f"{kind} bundle bytes"]
            print(f"  {kind + ' bundle size (JSON)':38} {size:>12,.0f} B")
    tree = figures.get("tree", {})
    if "first_writer_open_s" in tree:
        print(f"  first writer open, tree built          {tree['first_writer_open_s']:8.1f} s")
    if tree.get("ensure_tree_s"):
        runs = tree["ensure_tree_s"]
        print(
            f"  {'ensure_tree, no tree yet':38} {statistics.median(runs):8.1f} s "
            f"(median of {len(runs)})"
        )
        print(f"  ensure_tree, tree current              {tree['ensure_tree_current_ms']:8.1f} ms")
    if figures.get("check_tree_s"):
        runs = figures["check_tree_s"]
        print(f"  {'check_tree':38} {statistics.median(runs):8.1f} s (median of {len(runs)})")
    space = figures.get("storage")
    if space:
        ledger_bytes = space["ledger_file_bytes"]
        for table in ("merkle_nodes", "checkpoint_notes"):
            print(
                f"  {table:38} {space[f'{table}_bytes']:>12,} B ({space[f'{table}_rows']:,} rows)"
                f" = {space[f'{table}_bytes'] / ledger_bytes:.3%} of the ledger file "
                f"({ledger_bytes:,} B)"
            )
        print(f"  checkpoint notes as files              {space['notes_dir_bytes']:>12,} B")
    index = figures.get("event_index")
    if index:
        print(
            f"  with an ART index on event_id (a copy): lookup {index['lookup_median_ms']:.2f} ms"
            f" (first {index['first_lookup_ms']:.1f} ms), bundle by event id "
            f"{index['event_bundle_median_ms']:.2f} ms; build {index['index_build_s']:.1f} s; "
            f"append of {DEFAULT_BATCH:,} rows {index['append_ms_without']:.0f} -> "
            f"{index['append_ms_with']:.0f} ms"
        )
    share = figures.get("ingest")
    if share:
        print(
            f"  ingest with the tree {share['with_tree_eps']:,.0f} events/s "
            f"({share['with_tree_cpu_s']:.2f} s CPU), without {share['without_tree_eps']:,.0f} "
            f"events/s ({share['without_tree_cpu_s']:.2f} s CPU), median of {share['runs']}"
        )
        print(
            f"  tree share of ingest, with vs --no-tree: {share['share_wall']:.1%} of wall time, "
            f"{share['share_cpu']:.1%} of CPU time (target <= {TARGET_TREE_SHARE:.0%})"
        )
        print(
            f"  tree share of ingest, timed parts: extend {share['extend_cpu_us_per_event']:.2f}"
            f" + node rows {share['node_rows_cpu_us_per_event']:.2f} + insert "
            f"{share['insert_cpu_us_per_event']:.2f} ({share['insert_ms_per_batch']:.2f} ms per "
            f"batch of {share['nodes_per_batch']} nodes) = {share['tree_cpu_us_per_event']:.2f}"
            f" of {share['total_cpu_us_per_event']:.1f} CPU µs/event = "
            f"{share['tree_share_cpu_timed']:.1%} (target <= {TARGET_TREE_SHARE:.0%})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=ROOT / ".local" / "bench")
    parser.add_argument("--requests", type=int, default=200, help="proofs timed per kind")
    parser.add_argument("--tree-runs", type=int, default=3, help="ensure_tree/check_tree runs")
    parser.add_argument("--ingest-runs", type=int, default=5, help="ingest runs, each way")
    parser.add_argument("--ingest-events", type=int, default=100_000)
    parser.add_argument(
        "--explore-index",
        action="store_true",
        help="also try an ART index on event_id, on a copy of the ledger",
    )
    parser.add_argument(
        "--only",
        choices=("proofs", "ingest"),
        help="only the proofs on the 10M-row ledger, or only the tree's share of ingest",
    )
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"rows": args.rows, "at": datetime.now(UTC).isoformat()}
    if args.only != "ingest":
        path = args.dir / f"proofs-{args.rows}.duckdb"
        notes_dir = args.dir / f"proofs-{args.rows}.checkpoint-notes"
        figures["tree"] = prepare(path, args.rows, args.tree_runs)
        public, sizes = sign_checkpoints(path, notes_dir)
        figures["proofs"] = time_proofs(path, public, sizes, args.requests)
        figures["check_tree_s"] = time_check_tree(path, args.tree_runs)
        figures["storage"] = storage(path, notes_dir)
        if args.explore_index:
            figures["event_index"] = explore_event_index(path, args.requests)
    if args.only != "proofs":
        figures["ingest"] = tree_share(args.ingest_events, args.ingest_runs)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proofs.json").write_text(json.dumps(figures, indent=2) + "\n")
    print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
