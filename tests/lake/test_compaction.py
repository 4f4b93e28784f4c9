"""Compaction of a lake through DuckLake's own functions: many small batches become few
files, the catalog's inlined rows are flushed, and no leaf, link, Merkle node or proof
changes; an append of another instance, open while compaction commits, still commits.
Real DuckLake on the session's PostgreSQL server, two `Ledger` instances as two processes."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import ledger.store
from consumers.pipeline import Ingestor
from disclosure_ledger.service.compaction_job import CompactionJob
from ledger.checkpoints import Checkpointer
from ledger.compaction import CompactionStats, compact
from ledger.proofs import consistency_bundle, inclusion_bundle, verify_bundle
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from tests.conftest import LedgerLocation
from tests.lake.support import TOPIC, messages

SIGNER = Ed25519PrivateKey.generate()
pytestmark = pytest.mark.parametrize("ledger_backend", ["ducklake"], indirect=True)


def _evidence(con: duckdb.DuckDBPyConnection) -> tuple[list[Any], list[Any]]:
    """Every row's place, leaf and link, and every Merkle node."""
    rows = con.execute(
        "SELECT rowid, chain_id, seq, kafka_offset, leaf_hash, chain_hash FROM disclosures "
        "ORDER BY chain_id, seq"
    ).fetchall()
    nodes = con.execute(
        "SELECT chain_id, level, idx, hash FROM merkle_nodes ORDER BY ALL"
    ).fetchall()
    return rows, nodes


def _files(con: duckdb.DuckDBPyConnection) -> int:
    """The Parquet files the lake's current snapshot reads for the disclosures."""
    row = con.execute("SELECT count(*) FROM ducklake_list_files('lake', 'disclosures')").fetchone()
    return int(row[0]) if row else 0


def _proofs(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return [
        inclusion_bundle(con, f"{TOPIC}/0", 7),
        inclusion_bundle(con, f"{TOPIC}/1", 14),
        consistency_bundle(con, f"{TOPIC}/0", 8, 16),
    ]


def test_compaction_keeps_every_leaf_link_and_proof_while_another_instance_appends(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        checkpoints = Checkpointer(
            a,
            SIGNER,
            tmp_path / "ledger.checkpoints",
            reference_version=reference.version,
            every_rows=10**9,
            notes_dir=tmp_path / "notes",
        )
        ingest = Ingestor(a, key_store, reference)
        first = 0
        for batch in range(4):  # small batches: 4 rows inlined in the catalog, 12 a file
            size = 2 if batch % 2 else 6
            ingest.ingest(messages(first, size, 0) + messages(first, size, 1))
            first += size
            if batch in (1, 3):  # chains of 8 and 16 rows
                checkpoints.checkpoint()
        files = _files(a.con)
        assert files >= 2
        before, proofs = _evidence(a.con), _proofs(a.con)
        assert all(verify_bundle(p, SIGNER.public_key()).ok for p in proofs)

        # B takes partition 1 and appends; A compacts while B's append is open, its rows
        # inserted but not committed
        b.claim_partitions(TOPIC, [1])
        real_append_derived = ledger.store.append_derived
        compacted: list[CompactionStats] = []

        def insert_then_compact(
            con: duckdb.DuckDBPyConnection, source: str, *, insert_only: bool = False
        ) -> None:
            real_append_derived(con, source, insert_only=insert_only)
            compacted.append(compact(a))

        monkeypatch.setattr(ledger.store, "append_derived", insert_then_compact)
        Ingestor(b, key_store, reference).ingest(messages(16, 3, 1))  # commits
        monkeypatch.undo()
        assert len(compacted) == 1  # B's append committed at its first attempt
        stats = compacted[0]
        assert stats.conflicts == []
        assert stats.inlined_rows_flushed > 0
        assert _files(a.con) == 1  # B's new rows are inlined

        rows, nodes = _evidence(a.con)
        assert [r for r in rows if r[2] <= 16] == before[0]  # same rows, ids, leaves, links
        assert set(before[1]) <= set(nodes)  # the same Merkle nodes, and B's new ones
        assert [r[2] for r in rows if r[1] == f"{TOPIC}/1"][-3:] == [17, 18, 19]  # B's rows
        assert _proofs(a.con) == proofs
        assert all(verify_bundle(p, SIGNER.public_key()).ok for p in proofs)
        assert verify_ledger(a, public_key=SIGNER.public_key()).ok

        # with no retention (nothing else runs now), the replaced files leave the data path
        data = Path(str(ledger_location.data_path))  # type: ignore[union-attr]
        on_disk = len(list(data.rglob("*.parquet")))
        again = compact(a, retention=timedelta(0))
        assert again.files_deleted > 0
        assert len(list(data.rglob("*.parquet"))) < on_disk
        assert [r for r in _evidence(b.con)[0] if r[2] <= 16] == before[0]

        # the service's background job does the same, on a lake only
        with Ledger(tmp_path / "file.duckdb") as file:
            assert CompactionJob.for_ledger(file, 600) is None
        assert CompactionJob.for_ledger(a, 0) is None  # the setting's "never"
        job = CompactionJob.for_ledger(a, 0.01)
        assert job is not None
        job.start()
        deadline = time.monotonic() + 60
        while job.runs + job.failures == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        job.stop()
        assert job.failures == 0, job.last_error
        assert job.runs >= 1 and job.last is not None and job.last.conflicts == []
