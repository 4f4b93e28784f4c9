"""Erasure by key destruction: the key's bytes are gone, its rows unlinkable and their
context unreadable, a request to know says "no data held", aggregates and verification are
unchanged, and the erasure itself is recorded without the raw id."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from disclosure_ledger.commands.key_material import default_key_store
from ledger.checkpoints import Checkpointer
from ledger.context_crypto import context_key, decrypt_context
from ledger.erasure import erase_subject
from ledger.errors import LedgerError
from ledger.pseudonyms import SubjectKeyStore, decrypt_subject_context
from ledger.store import Ledger
from ledger.verify import CheckpointSource, verify_ledger
from reference import ReferenceData
from reports.ccpa import ccpa_report
from reports.subject import subject_report
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET, LedgerLocation, cli_argument
from tests.unit.events import make_event
from tests.unit.ledger_rows import COMPLETE_THROUGH, record_coverage

TOPIC = "t.disclosures"
CODEC = EventCodec()
SIGNER = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
ERASED = ("member", "member-to-forget-7731")
KEPT = ("member", "member-who-stays-2200")
AS_OF = date(2026, 6, 1)


def _ingest(
    path: LedgerLocation, keys: SubjectKeyStore, reference: ReferenceData
) -> LedgerLocation:
    messages = []
    for offset in range(6):
        kind, ident = ERASED if offset % 2 else KEPT
        event = make_event(
            subject={"id": ident, "type": kind},
            context={"order_id": f"o-{offset}", "note": f"call back on 555-01{offset:02d}"},
        )
        messages.append(
            SourceMessage(TOPIC, 0, offset, ident.encode(), CODEC.encode(event.to_avro()))
        )
    with Ledger(path) as ledger:
        checkpointer = Checkpointer(
            ledger, SIGNER, _file(ledger.path), reference_version=reference.version, every_rows=2
        )
        ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
        ingestor.ingest(messages)
        ingestor.shutdown()
    record_coverage(path, COMPLETE_THROUGH)
    return path


def _file(path: Path) -> Path:
    return path.with_name(path.name + ".checkpoints")


def _raw_key(keys: SubjectKeyStore, subject: tuple[str, str]) -> bytes:
    import hashlib
    import hmac

    lookup = hmac.new(
        TEST_SECRET, subject[0].encode() + b"\x00" + subject[1].encode(), hashlib.sha256
    )
    with sqlite3.connect(keys.path) as db:
        found = db.execute(
            "SELECT subject_key FROM subject_keys WHERE lookup = ?", (lookup.digest(),)
        ).fetchone()
    assert found is not None
    return bytes(found[0])


def _key_store_bytes(keys: SubjectKeyStore) -> bytes:
    """The key store file and any journal or write-ahead log beside it, as on disk."""
    paths = [keys.path, *(Path(f"{keys.path}{suffix}") for suffix in ("-journal", "-wal", "-shm"))]
    return b"".join(p.read_bytes() for p in paths if p.exists())


def test_erasure_destroys_the_key_bytes_and_records_who_when_and_which_pseudonym(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
) -> None:
    _ingest(ledger_location, key_store, reference)
    erased_key = _raw_key(key_store, ERASED)
    kept_key = _raw_key(key_store, KEPT)
    pseudonym = key_store.pseudonym(*ERASED)
    assert erased_key in _key_store_bytes(key_store)
    with Ledger(ledger_location) as ledger:
        erasure = erase_subject(ledger, key_store, *ERASED, actor="dpo@example.org")
        assert erasure.erased and erasure.ledger_rows == 3
        recorded = ledger.con.execute(
            "SELECT actor, subject_type, subject_pseudonym, ledger_rows FROM erasures"
        ).fetchall()
    assert recorded == [("dpo@example.org", "member", pseudonym, 3)]
    on_disk = _key_store_bytes(key_store)
    assert erased_key not in on_disk  # not in a live row, a free page nor a journal
    assert kept_key in on_disk
    assert key_store.pseudonym(*ERASED) is None
    assert key_store.pseudonym(*KEPT) is not None


def test_after_erasure_the_context_cannot_be_decrypted_by_any_key_left(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
) -> None:
    _ingest(ledger_location, key_store, reference)
    pseudonym = key_store.pseudonym(*ERASED)
    with Ledger(ledger_location, read_only=True) as ledger:
        rows = ledger.con.execute(
            "SELECT event_id::VARCHAR, context FROM disclosures WHERE subject_pseudonym = ?",
            [pseudonym],
        ).fetchall()
    event_id, stored = rows[0]
    assert "555-01" not in stored and stored.startswith("aesgcm1:")
    before = decrypt_subject_context(key_store, *ERASED, event_id, stored)
    assert before is not None and before["note"].startswith("call back on 555-01")
    with Ledger(ledger_location) as ledger:
        erase_subject(ledger, key_store, *ERASED, actor="dpo")
    assert decrypt_subject_context(key_store, *ERASED, event_id, stored) is None
    with sqlite3.connect(key_store.path) as db:
        remaining = [bytes(k) for (k,) in db.execute("SELECT subject_key FROM subject_keys")]
    assert remaining  # the other subject's key is still there, and opens nothing of these
    for key in remaining:
        with pytest.raises(LedgerError, match="does not decrypt"):
            decrypt_context(context_key(key), event_id, stored)


def test_after_erasure_no_data_held_aggregates_unchanged_and_verify_passes(
    ledger_location: LedgerLocation,
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
) -> None:
    _ingest(ledger_location, key_store, reference)
    with Ledger(ledger_location, read_only=True) as ledger:
        before = ccpa_report(ledger, AS_OF, generated_at=None)
        held = subject_report(
            ledger, key_store, subject_type=ERASED[0], subject_id=ERASED[1], as_of=AS_OF
        )
    assert held.data_held and held.categories
    with Ledger(ledger_location) as ledger:
        erase_subject(ledger, key_store, *ERASED, actor="dpo")
    with Ledger(ledger_location, read_only=True) as ledger:
        after = ccpa_report(ledger, AS_OF, generated_at=None)
        answer = subject_report(
            ledger, key_store, subject_type=ERASED[0], subject_id=ERASED[1], as_of=AS_OF
        )
        checkpoints = [CheckpointSource("file", _file(ledger_path).read_text().splitlines())]
        verified = verify_ledger(ledger, checkpoints=checkpoints, public_key=SIGNER.public_key())
    assert not answer.data_held and not answer.categories and not answer.recipients
    assert _comparable(after) == _comparable(before)
    assert verified.ok, [str(f) for f in verified.failures]
    assert verified.rows == 6


def _comparable(report: object) -> object:
    """The report without when and from what snapshot it was produced."""
    fields = dict(vars(report))
    for volatile in ("generated_at", "source", "provenance"):
        fields.pop(volatile, None)
    return fields


def test_erase_subject_cli_records_the_os_user_and_prints_neither_id_nor_pseudonym(
    ledger_location: LedgerLocation,
    ledger_path: Path,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "cli-secret-" + "x" * 24
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", secret)
    monkeypatch.setattr("getpass.getuser", lambda: "auditor-os-user")
    keys_path = default_key_store(ledger_location)  # beside a lake: in its PostgreSQL
    with SubjectKeyStore(keys_path, secret.encode()) as keys:
        _ingest(ledger_location, keys, reference)
        pseudonym = keys.pseudonym(*ERASED)
    args = ["erase-subject", "--ledger", cli_argument(ledger_location), "--subject-type", ERASED[0]]
    assert main([*args, "--subject-id", ERASED[1], "--approved-by", "cpo"]) == 0
    out = capsys.readouterr().out
    assert "3 ledger row(s)" in out and "auditor-os-user" in out and "approved by cpo" in out
    assert ERASED[1] not in out and str(pseudonym) not in out
    assert main([*args, "--subject-id", ERASED[1], "--actor", "dpo", "--approved-by", "cpo"]) == 0
    assert "nothing to erase" in capsys.readouterr().out
    with Ledger(ledger_location, read_only=True) as ledger:
        journal = ledger.con.execute("SELECT actor, approved_by FROM erasures").fetchall()
    assert journal == [("auditor-os-user", "cpo")]


def test_erase_subject_cli_on_a_file_needs_a_second_person(
    ledger_path: Path,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "cli-secret-" + "x" * 24
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", secret)
    keys_path = ledger_path.with_name(ledger_path.name + ".keys.sqlite")
    with SubjectKeyStore(keys_path, secret.encode()) as keys:
        _ingest(ledger_path, keys, reference)
    args = ["erase-subject", "--ledger", str(ledger_path), "--subject-type", ERASED[0]]
    args += ["--subject-id", ERASED[1], "--actor", "dpo"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "needs --approved-by NAME: the second person, not dpo" in err
    assert main([*args, "--approved-by", "dpo"]) == 1
    assert "dpo cannot approve their own erasure" in capsys.readouterr().err
    with SubjectKeyStore(keys_path, secret.encode()) as keys:
        assert keys.pseudonym(*ERASED) is not None  # nothing erased


def test_an_erasure_needs_a_writable_ledger_and_an_actor(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    _ingest(ledger_path, key_store, reference)
    with (
        Ledger(ledger_path, read_only=True) as ledger,
        pytest.raises(LedgerError, match="read-only"),
    ):
        erase_subject(ledger, key_store, *ERASED, actor="dpo")
    with Ledger(ledger_path) as ledger, pytest.raises(LedgerError, match="actor"):
        erase_subject(ledger, key_store, *ERASED, actor=" ")
    assert key_store.pseudonym(*ERASED) is not None


def test_an_event_after_an_erasure_is_recorded_and_flagged_after_erasure(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    path = _ingest(tmp_path / "ledger.duckdb", key_store, reference)
    with Ledger(path) as ledger:
        erasure = erase_subject(ledger, key_store, *ERASED, actor="dpo", approved_by="cpo")
        assert erasure.erasure_id and erasure.approved_by == "cpo"
        assert key_store.is_suppressed(*ERASED) and not key_store.is_suppressed(*KEPT)
        later = [
            SourceMessage(
                TOPIC,
                0,
                6 + i,
                ident.encode(),
                CODEC.encode(make_event(subject={"id": ident, "type": kind}).to_avro()),
            )
            for i, (kind, ident) in enumerate([ERASED, KEPT, ERASED])
        ]
        stats = Ingestor(ledger, key_store, reference).ingest(later)
        assert stats.accepted == 3 and stats.after_erasure == 2
        flagged = ledger.con.execute(
            "SELECT kafka_offset FROM disclosures "
            "WHERE list_contains(flags, 'after_erasure') ORDER BY 1"
        ).fetchall()
        assert flagged == [(6,), (8,)]
        # the fresh key stays marked: a later batch, derived from the cache or not, flags too
        again = Ingestor(ledger, key_store, reference).ingest(
            [
                SourceMessage(
                    TOPIC,
                    0,
                    9,
                    ERASED[1].encode(),
                    CODEC.encode(make_event(subject={"id": ERASED[1], "type": "member"}).to_avro()),
                )
            ]
        )
        assert again.after_erasure == 1


def test_the_journal_holds_the_key_id_and_recipients_and_nothing_a_candidate_id_matches(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    from ledger.erasure import journal

    path = _ingest(tmp_path / "ledger.duckdb", key_store, reference)
    held = key_store.secrets_for(*ERASED)
    assert held is not None
    with Ledger(path) as ledger:
        erasure = erase_subject(ledger, key_store, *ERASED, actor="dpo")
        entries = journal(ledger)
        recipients = ledger.con.execute(
            "SELECT sum(ledger_rows) FROM erasure_recipients WHERE erasure_id = ?",
            [erasure.erasure_id],
        ).fetchall()
        everything = str(ledger.con.execute("SELECT * FROM erasures").fetchall())
    assert [e.key_id for e in entries] == [held.key_id]
    assert recipients == [(erasure.ledger_rows,)] and erasure.ledger_rows == 3
    for computable in (
        ERASED[1],
        key_store.key_lookup(*ERASED),
        key_store.suppression_token(*ERASED),
    ):
        assert computable not in everything


def test_an_erasure_cannot_be_approved_by_the_person_who_asked(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    path = _ingest(tmp_path / "ledger.duckdb", key_store, reference)
    with Ledger(path) as ledger, pytest.raises(LedgerError, match="cannot approve their own"):
        erase_subject(ledger, key_store, *ERASED, actor="dpo", approved_by="dpo")
    assert key_store.secrets_for(*ERASED) is not None


def test_a_restored_key_store_gets_the_journal_s_erasures_again(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    import shutil

    from ledger.erasure import journal, reapply_erasures

    path = _ingest(tmp_path / "ledger.duckdb", key_store, reference)
    backup = tmp_path / "keys-backup.sqlite"
    shutil.copy(key_store.path, backup)
    with Ledger(path) as ledger:
        erase_subject(ledger, key_store, *ERASED, actor="dpo")
        entries = journal(ledger)
    with SubjectKeyStore(backup, TEST_SECRET) as restored:
        assert restored.secrets_for(*ERASED) is not None  # the backup brings the key back
        assert reapply_erasures(restored, entries) == 1
        assert restored.secrets_for(*ERASED) is None
        assert restored.is_suppressed(*ERASED)
        assert restored.secrets_for(*KEPT) is not None
