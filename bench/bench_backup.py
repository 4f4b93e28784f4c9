"""How long a backup through the service holds ingestion still, on a ledger of ``--rows``.

    python -m bench.bench_backup [--rows 1000000] [--subjects 1000000] [--repeat 5]
                                 [--dir .local/bench]
        -> one JSON line: rows, ledger and key store bytes, each backup's writers-paused
           milliseconds and their median, and each backup's whole duration

The ledger is built (or reused) as ``bench.bench_reports`` builds its own, and its key
store padded with random keys to ``--subjects`` (its size is part of the pause). A
:class:`LedgerService` is opened over it in this process (no broker: the pause does not
depend on what ingest does, only on what the backup does while writers wait: ``CHECKPOINT``
and the copy of the ledger file and the SQLite stores). The ingest thread waits at most
this long, plus the batch it has in hand when the backup starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.bench_reports import ROOT, SECRET, build_ledger
from disclosure_ledger.backups import take_backup
from disclosure_ledger.service.api.backups import service_sources
from disclosure_ledger.service.config import ServiceConfig
from disclosure_ledger.service.runtime import LedgerService
from ledger.pseudonyms import KEY_ID_BYTES, SubjectKeyStore
from reference import load_reference


def _pad_key_store(path: Path, subjects: int) -> None:
    """Random keys up to ``subjects`` rows (they belong to no one; only their bytes count)."""
    with SubjectKeyStore(path, SECRET):  # the store's tables, as the service finds them
        pass
    with sqlite3.connect(path) as db:
        held = int(db.execute("SELECT count(*) FROM subject_keys").fetchone()[0])
        db.executemany(
            "INSERT INTO subject_keys (lookup, subject_key, key_id) VALUES (?, ?, ?)",
            (
                (os.urandom(32), key, os.urandom(KEY_ID_BYTES))
                for key in (os.urandom(32) for _ in range(max(0, subjects - held)))
            ),
        )
    db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=ROOT / ".local" / "bench")
    args = parser.parse_args(argv)
    ledger = args.dir / f"backup-{args.rows}.duckdb"
    bench = build_ledger(ledger, args.rows, 24, date(2026, 11, 1))
    _pad_key_store(bench.key_store, args.subjects)
    service = LedgerService(
        ServiceConfig(ledger=bench.path, memory_limit="1GB"),
        reference=load_reference(),
        subject_secret=SECRET,
        key_store=bench.key_store,
        ingest=None,
        signer=None,
    )
    paused: list[float] = []
    whole: list[float] = []
    try:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
                began = time.perf_counter()
                view = service.ledger.view(writable=True)
                try:
                    manifest = take_backup(
                        service_sources(service),
                        Path(scratch) / "backup",
                        owner=view,
                        pause=service.writers_paused,
                    )
                finally:
                    view.close()
                whole.append((time.perf_counter() - began) * 1000)
                assert manifest.writers_paused_ms is not None
                paused.append(manifest.writers_paused_ms)
                shutil.rmtree(Path(scratch) / "backup")
    finally:
        service.stop()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "ledger_bytes": bench.path.stat().st_size,
                "subjects": args.subjects,
                "key_store_bytes": bench.key_store.stat().st_size,
                "writers_paused_ms": paused,
                "writers_paused_median_ms": statistics.median(paused),
                "backup_ms": [round(w, 1) for w in whole],
                "backup_median_ms": round(statistics.median(whole), 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
