"""A ledger for the proof tests: ingested through the real pipeline with a real signing key,
checkpointed after the first batch only, so some rows are covered by a signed checkpoint
and the last ones are not yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.commands.key_material import default_key_store
from ledger.checkpoints import Checkpointer
from ledger.lake import LakeLocation
from ledger.notes import verifier_key
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import LedgerLocation, cli_argument
from tests.unit.events import make_event
from tests.unit.ledger_rows import record_coverage_in

TOPIC = "privacy.disclosures.v1"
ORIGIN = "ledger.example.com/proofs"
SIGNER = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
MEMBERS = [f"member-{i}" for i in range(5)]


@dataclass(frozen=True)
class ProofLedger:
    path: Path  # the ledger file, or the lake's local path its key store is named after
    covered: list[str]  # event ids of rows a signed checkpoint covers
    uncovered: list[str]  # event ids appended after the last checkpoint
    subjects: dict[str, str]  # event id -> subject id
    public_key: Path  # PEM, as `keys generate` writes it
    note_key: Path  # the note verifier key of the log origin
    argument: str  # what `--ledger` is given: the file, or the lake's location


def build_proof_ledger(
    location: LedgerLocation,
    reference: ReferenceData,
    secret: bytes,
    *,
    covered: int = 40,
    later: int = 5,
) -> ProofLedger:
    """``covered`` events (member-0 ... member-4, in 2026), checkpointed twice (after 20 and
    after all of them), then ``later`` events of member-0 no checkpoint covers yet."""
    codec = EventCodec()
    ids: list[str] = []
    subjects: dict[str, str] = {}

    def messages(first: int, count: int, member: str | None) -> list[SourceMessage]:
        batch = []
        for i in range(first, first + count):
            subject = member or MEMBERS[i % len(MEMBERS)]
            event = make_event(
                subject={"id": subject, "type": "member"},
                occurred_at=datetime(2026, 1 + i % 10, 1 + i % 27, 12, 0, tzinfo=UTC),
            )
            ids.append(str(event.event_id))
            subjects[str(event.event_id)] = subject
            batch.append(SourceMessage(TOPIC, i % 2, i // 2, b"key", codec.encode(event.to_avro())))
        return batch

    path = location.local_path if isinstance(location, LakeLocation) else location
    keys_path = default_key_store(location)  # beside a lake: in its PostgreSQL
    with Ledger(location) as ledger, SubjectKeyStore(keys_path, secret) as keys:
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            path.with_name(path.name + ".checkpoints"),
            reference_version=reference.version,
            every_rows=10**9,
            origin=ORIGIN,
        )
        ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
        half = covered // 2
        ingestor.ingest(messages(0, half, None))
        checkpointer.checkpoint()
        ingestor.ingest(messages(half, covered - half, None))
        checkpointer.checkpoint()
        ingestor.ingest(messages(covered, later, MEMBERS[0]))
        record_coverage_in(ledger.con, datetime(2100, 1, 1))
    public_key = path.with_name("checkpoint.pub")
    public_key.write_bytes(
        SIGNER.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    note_key = path.with_name("checkpoint.vkey")
    note_key.write_text(verifier_key(ORIGIN, SIGNER.public_key()) + "\n", encoding="utf-8")
    return ProofLedger(
        path, ids[:covered], ids[covered:], subjects, public_key, note_key, cli_argument(location)
    )
