"""Backups that keep erasures: back up, erase a subject, restore; the subject stays erased
(no key, on the suppression list), its rows stay unlinkable and verify is clean. A backup
whose files do not match its manifest is refused, and so is a restore under a service."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.backups import BackupError, BackupSources, restore_backup, take_backup
from disclosure_ledger.cli import main
from disclosure_ledger.service.state_file import remove_service_state, write_service_state
from ledger.checkpoints import Checkpointer, default_checkpoint_file, read_checkpoint_file
from ledger.erasure import erase_subject, journal
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import CheckpointSource, verify_ledger
from reference import ReferenceData
from reports.subject import subject_report
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET
from tests.unit.events import make_event
from tests.unit.ledger_rows import COMPLETE_THROUGH, record_coverage

TOPIC = "t.disclosures"
SIGNER = Ed25519PrivateKey.from_private_bytes(b"\x0a" * 32)
ERASED = ("member", "member-erased-after-the-backup")
KEPT = ("member", "member-who-stays")
AS_OF = date(2026, 6, 1)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", TEST_SECRET.decode())


def _keys(ledger_path: Path) -> SubjectKeyStore:
    return SubjectKeyStore(ledger_path.with_name(ledger_path.name + ".keys.sqlite"), TEST_SECRET)


def build(ledger_path: Path, reference: ReferenceData) -> Path:
    codec = EventCodec()
    messages = [
        SourceMessage(
            TOPIC,
            0,
            offset,
            ident.encode(),
            codec.encode(make_event(subject={"id": ident, "type": kind}).to_avro()),
        )
        for offset, (kind, ident) in enumerate([ERASED, KEPT] * 3)
    ]
    with Ledger(ledger_path) as ledger, _keys(ledger_path) as keys:
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            default_checkpoint_file(ledger_path),
            reference_version=reference.version,
            every_rows=2,
        )
        ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
        ingestor.ingest(messages)
        ingestor.shutdown()
    record_coverage(ledger_path, COMPLETE_THROUGH)
    return ledger_path


def erase(ledger_path: Path, subject: tuple[str, str]) -> None:
    with Ledger(ledger_path) as ledger, _keys(ledger_path) as keys:
        assert erase_subject(ledger, keys, *subject, actor="dpo", approved_by="second admin").erased


def assert_erased_and_clean(ledger_path: Path) -> None:
    """The erased subject has no key, is on the suppression list, a request to know finds no
    data; the other subject is still linked; verify (signatures too) is clean."""
    with Ledger(ledger_path, read_only=True) as ledger, _keys(ledger_path) as keys:
        assert keys.secrets_for(*ERASED) is None
        assert keys.is_suppressed(*ERASED)
        erased = subject_report(
            ledger, keys, subject_type=ERASED[0], subject_id=ERASED[1], as_of=AS_OF
        )
        kept = subject_report(ledger, keys, subject_type=KEPT[0], subject_id=KEPT[1], as_of=AS_OF)
        assert not erased.data_held
        assert kept.data_held
        assert [e.subject_type for e in journal(ledger)] == ["member"]
        checkpoint_file = default_checkpoint_file(ledger_path)
        result = verify_ledger(
            ledger,
            checkpoints=[CheckpointSource("file", read_checkpoint_file(checkpoint_file))],
            public_key=SIGNER.public_key(),
        )
    assert result.ok, [str(f) for f in result.failures]
    assert result.rows == 6 and result.checkpoints > 0


def test_backup_then_erasure_then_restore_keeps_the_subject_erased(
    tmp_path: Path, reference: ReferenceData, secret_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger_path = build(tmp_path / "ledger.duckdb", reference)
    backup = tmp_path / "backup"
    assert main(["backup", "--ledger", str(ledger_path), "--to", str(backup)]) == 0
    printed = capsys.readouterr().out
    assert "not included: the checkpoint signing private key" in printed
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["rows"] == 6 and manifest["erasure_journal"]["entries"] == 0
    roles = {f["role"] for f in manifest["files"]}
    assert {"ledger", "key_store", "checkpoints"} <= roles
    with _keys(ledger_path) as keys:
        assert keys.secrets_for(*ERASED) is not None  # the backup holds the key

    erase(ledger_path, ERASED)
    assert main(["restore", "--from", str(backup), "--ledger", str(ledger_path)]) == 0
    out = capsys.readouterr().out
    assert "1 recorded after the backup" in out and "1 key(s) it still held" in out
    assert "limits:" in out

    assert_erased_and_clean(ledger_path)
    with Ledger(ledger_path, read_only=True) as ledger:  # the journal survived the restore
        assert [e.approved_by for e in journal(ledger)] == ["second admin"]
    aside = [p for p in tmp_path.iterdir() if ".before-restore-" in p.name]
    assert len(aside) == 1 and (aside[0] / "ledger.duckdb").exists()  # nothing deleted


def test_a_restore_without_the_ledger_in_place_applies_the_snapshot_journal(
    tmp_path: Path, reference: ReferenceData
) -> None:
    """The disk lost, the backup taken after the erasure: its own journal is applied (the
    key store copied a moment later may not matter here, but the journal is what counts)."""
    ledger_path = build(tmp_path / "ledger.duckdb", reference)
    erase(ledger_path, ERASED)
    backup = tmp_path / "backup"
    take_backup(BackupSources.beside(ledger_path), backup)
    target = tmp_path / "new" / "ledger.duckdb"
    target.parent.mkdir()
    outcome = restore_backup(backup, BackupSources.beside(target), TEST_SECRET)
    assert not outcome.current_ledger_read and outcome.journal_entries == 1
    assert_erased_and_clean(target)


def test_a_backup_that_does_not_match_its_manifest_is_refused_and_nothing_moves(
    tmp_path: Path, reference: ReferenceData
) -> None:
    ledger_path = build(tmp_path / "ledger.duckdb", reference)
    backup = tmp_path / "backup"
    take_backup(BackupSources.beside(ledger_path), backup)
    erase(ledger_path, ERASED)
    store = backup / "keys.sqlite"
    data = bytearray(store.read_bytes())
    data[-1] ^= 0x01
    store.write_bytes(bytes(data))
    before = ledger_path.read_bytes()
    with pytest.raises(BackupError, match=r"keys\.sqlite: SHA-256 differs"):
        restore_backup(backup, BackupSources.beside(ledger_path), TEST_SECRET)
    assert ledger_path.read_bytes() == before
    assert not any(
        ".before-restore-" in p.name or ".restoring" in p.name for p in tmp_path.iterdir()
    )


def test_a_restore_is_refused_while_a_service_serves_the_ledger(
    tmp_path: Path, reference: ReferenceData
) -> None:
    ledger_path = build(tmp_path / "ledger.duckdb", reference)
    backup = tmp_path / "backup"
    take_backup(BackupSources.beside(ledger_path), backup)
    write_service_state(ledger_path, "http://127.0.0.1:1")
    try:
        with pytest.raises(BackupError, match=f"process {os.getpid()}.*stop it first"):
            restore_backup(backup, BackupSources.beside(ledger_path), TEST_SECRET)
    finally:
        remove_service_state(ledger_path)


def test_a_backup_needs_a_new_or_empty_absolute_directory(
    tmp_path: Path, reference: ReferenceData
) -> None:
    ledger_path = build(tmp_path / "ledger.duckdb", reference)
    used = tmp_path / "used"
    used.mkdir()
    (used / "other").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        take_backup(BackupSources.beside(ledger_path), used)
    with pytest.raises(BackupError, match="not an absolute path"):
        take_backup(BackupSources.beside(ledger_path), Path("relative/dir"))
    with pytest.raises(BackupError, match="parent"):
        take_backup(BackupSources.beside(ledger_path), tmp_path / "no" / "such")


def test_a_subject_erased_before_ever_seen_stays_on_the_suppression_list(
    tmp_path: Path, reference: ReferenceData
) -> None:
    """No key was held, so nothing was journalled: the list itself is carried over."""
    ledger_path = build(tmp_path / "ledger.duckdb", reference)
    backup = tmp_path / "backup"
    take_backup(BackupSources.beside(ledger_path), backup)
    unseen = ("guest", "guest-never-seen-yet")
    with Ledger(ledger_path) as ledger, _keys(ledger_path) as keys:
        assert not erase_subject(ledger, keys, *unseen, actor="dpo", approved_by="two").erased
    outcome = restore_backup(backup, BackupSources.beside(ledger_path), TEST_SECRET)
    assert outcome.suppressions_carried == 1
    with _keys(ledger_path) as keys:
        assert keys.is_suppressed(*unseen)
