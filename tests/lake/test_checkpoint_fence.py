"""Signed checkpoints on a lake of several writers: each instance checkpoints the chains it
holds, stored in a transaction that holds their fences; an instance whose chain was claimed
by another can neither store nor publish a checkpoint covering it, and the new owner's
checkpoints verify beside the old owner's earlier ones. Real DuckLake on the session's
PostgreSQL server, two `Ledger` instances as two processes are."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import ledger.checkpoints
from consumers.pipeline import Ingestor
from ledger.checkpoints import Checkpointer, parse_checkpoint, read_checkpoint_file
from ledger.fence import FencedError
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from ledger.verify.result import CheckpointSource
from reference import ReferenceData
from tests.conftest import LedgerLocation
from tests.lake.support import TOPIC, messages
from tests.unit.test_go_verifier import GO_VERIFIER, run_go

SIGNER = Ed25519PrivateKey.generate()
pytestmark = pytest.mark.parametrize("ledger_backend", ["ducklake"], indirect=True)


def _checkpointer(ledger: Ledger, place: Path, reference: ReferenceData) -> Checkpointer:
    """Each instance's own checkpoint file, notes directory and copy, as on its machine."""
    return Checkpointer(
        ledger,
        SIGNER,
        place / "ledger.checkpoints",
        reference_version=reference.version,
        every_rows=10**9,
        notes_dir=place / "notes",
        origin="example.com/lake-test",
        copy_to=str(place / "copy"),
    )


def _stored(ledger: Ledger) -> tuple[int, int, int]:
    counts = [
        ledger.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        for table in ("checkpoints", "checkpoint_notes", "checkpoint_fences")
    ]
    return tuple(int(c[0]) for c in counts if c)  # type: ignore[return-value]


def _chain_one_sizes(ledger: Ledger) -> list[int]:
    """The size of each checkpoint note of chain 1 in the lake, oldest first."""
    rows = ledger.con.execute(
        "SELECT size FROM checkpoint_notes WHERE chain_id = ? ORDER BY checkpoint_at",
        [f"{TOPIC}/1"],
    ).fetchall()
    return [int(r[0]) for r in rows]


def _files(place: Path) -> list[str]:
    return sorted(str(p.relative_to(place)) for p in place.rglob("*") if p.is_file())


def _verify(ledger: Ledger, *places: Path) -> None:
    result = verify_ledger(
        ledger,
        checkpoints=[
            CheckpointSource(str(p), read_checkpoint_file(p / "ledger.checkpoints")) for p in places
        ],
        public_key=SIGNER.public_key(),
        notes_dirs=[d for p in places for d in (p / "notes", p / "copy")],
    )
    assert result.ok, result.failures
    assert result.checkpoints >= 2 and result.notes_checked >= 4


def test_a_fenced_instance_cannot_store_a_checkpoint_and_the_new_owners_verify(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        at_a, at_b = tmp_path / "a", tmp_path / "b"
        checkpoints_a = _checkpointer(a, at_a, reference)
        Ingestor(a, key_store, reference).ingest(messages(0, 3, 0) + messages(0, 4, 1))
        first = checkpoints_a.checkpoint()  # A holds both chains: its checkpoint has both
        assert first is not None
        assert [h.chain_id for h in first.heads] == [f"{TOPIC}/0", f"{TOPIC}/1"]
        stored, files_a = _stored(a), _files(at_a)

        # partition 1 moves to B while A's next checkpoint is being stored: its commit fails
        real_hold = ledger.checkpoints.hold

        def hold_then_rebalance(con: object, chain: str, epoch: int) -> None:
            real_hold(con, chain, epoch)  # type: ignore[arg-type]
            if chain == f"{TOPIC}/1":
                b.claim_partitions(TOPIC, [1])  # B's claim commits while A's is open

        monkeypatch.setattr(ledger.checkpoints, "hold", hold_then_rebalance)
        Ingestor(a, key_store, reference).ingest(messages(3, 1, 0))
        with pytest.raises(FencedError, match=r"checkpoint .* was refused"):
            checkpoints_a.checkpoint()
        monkeypatch.undo()
        assert _stored(a) == stored  # nothing stored in the lake
        assert _files(at_a) == files_a  # nothing written to A's file, notes or copy

        # B appends to chain 1 and checkpoints it; A's next checkpoint leaves chain 1 out
        checkpoints_b = _checkpointer(b, at_b, reference)
        Ingestor(b, key_store, reference).ingest(messages(4, 1, 1))
        second = checkpoints_b.checkpoint()
        assert second is not None
        assert [(h.chain_id, h.length) for h in second.heads] == [(f"{TOPIC}/1", 5)]
        lines = read_checkpoint_file(at_b / "ledger.checkpoints")
        assert [parse_checkpoint(line) for line in lines] == [second]
        third = checkpoints_a.checkpoint()
        assert third is not None
        assert [(h.chain_id, h.length) for h in third.heads] == [(f"{TOPIC}/0", 4)]
        assert _stored(b) == (3, 7, 4)  # 3 lines; 2 + 1 + 1 chain notes and 3 manifests
        assert _chain_one_sizes(a) == [4, 5]  # A's first, B's: none more of A's
        assert not (at_a / "notes" / TOPIC / "1" / "checkpoints" / "5").exists()
        # the old owner's checkpoints (both chains, then chain 0 only) and the new owner's
        # (chain 1 only) verify together: each manifest lists the chains its writer holds
        _verify(b, at_a, at_b)
        if GO_VERIFIER.exists():  # each instance's manifest and notes, by the Go verifier too
            key = tmp_path / "checkpoint.pub"
            key.write_bytes(
                SIGNER.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            for notes, chains in ((at_a / "notes", (0,)), (at_b / "notes", (1,))):
                notes_of = [str(notes / TOPIC / str(c) / "checkpoint") for c in chains]
                manifest = str(notes / "manifest")
                assert (
                    run_go(GO_VERIFIER, "manifest", "-key", str(key), manifest, *notes_of) is None
                )
