"""Checkpoint notes copied, as they are made, to a second place (``checkpoint_copy_to``): a
failed copy stops nothing, is counted, and the next checkpoint copies what is missing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.settings import Settings
from ledger.checkpoint_notes import default_notes_dir
from ledger.checkpoints import Checkpointer
from ledger.errors import LedgerError
from ledger.notes import Verifier, parse_checkpoint_text, parse_note
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
SIGNER = Ed25519PrivateKey.from_private_bytes(b"\x0b" * 32)
ORIGIN = "ledger.example.com/copies"


def _files(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): p.read_text()
        for p in directory.rglob("*")
        if p.is_file()
    }


def _ingest(ingestor: Ingestor, first: int, count: int) -> None:
    ingestor.ingest(
        [
            SourceMessage(TOPIC, 0, o, b"k", CODEC.encode(make_event().to_avro()))
            for o in range(first, first + count)
        ]
    )


def test_settings_name_the_origin_notes_directory_and_copy_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_CHECKPOINT_ORIGIN", "example.com/ledger")
    monkeypatch.setenv("DISCLOSURE_LEDGER_CHECKPOINT_NOTES_DIR", "/srv/notes")
    monkeypatch.setenv("DISCLOSURE_LEDGER_CHECKPOINT_COPY_TO", "s3://witness/ledger")
    settings = Settings()
    assert settings.checkpoint_origin == "example.com/ledger"
    assert settings.checkpoint_notes_dir == Path("/srv/notes")
    assert settings.checkpoint_copy_to == "s3://witness/ledger"


@pytest.mark.parametrize("as_url", [False, True])
def test_every_checkpoint_is_copied_as_it_is_made(
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    tmp_path: Path,
    as_url: bool,
) -> None:
    witness = tmp_path / "witness"
    target = witness.as_uri() if as_url else str(witness)
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            ledger_path.with_name("cp"),
            reference_version=reference.version,
            origin=ORIGIN,
            copy_to=target,
        )
        ingestor = Ingestor(ledger, key_store, reference, checkpointer=checkpointer)
        _ingest(ingestor, 0, 3)
        checkpointer.checkpoint()
        _ingest(ingestor, 3, 2)
        checkpointer.checkpoint()
    copied = _files(witness)
    assert copied == _files(default_notes_dir(ledger_path))
    assert {f"{TOPIC}/0/checkpoints/3", f"{TOPIC}/0/checkpoints/5", "manifest"} <= set(copied)
    newest = parse_note(copied[f"{TOPIC}/0/checkpoint"])
    head = parse_checkpoint_text(newest.text)
    assert head.size == 5
    newest.verify(Verifier.of(head.origin, SIGNER.public_key()))
    status = checkpointer.copy_status
    assert status is not None and status.failures == 0 and status.pending_files == 0


def test_a_failed_copy_stops_nothing_and_the_next_checkpoint_copies_what_is_missing(
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    witness = tmp_path / "witness"
    witness.write_text("a file where the directory should be")  # the copy target is broken
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            ledger_path.with_name("cp"),
            reference_version=reference.version,
            origin=ORIGIN,
            copy_to=str(witness),
        )
        ingestor = Ingestor(ledger, key_store, reference, checkpointer=checkpointer)
        _ingest(ingestor, 0, 3)
        with caplog.at_level(logging.WARNING, logger="ledger.checkpoint_copy"):
            checkpointer.checkpoint()  # does not raise
        assert "not copied" in caplog.text
        status = checkpointer.copy_status
        assert status is not None and status.failures == 1 and status.pending_files > 0
        # the checkpoint itself is kept: in the ledger and in the notes directory
        assert ledger.con.execute("SELECT count(*) FROM checkpoint_notes").fetchone() == (2,)
        _ingest(ingestor, 3, 1)  # ingest goes on
        witness.unlink()  # the target is back
        checkpointer.checkpoint()
        assert status.failures == 1 and status.pending_files == 0
    copied = _files(witness)
    assert {f"{TOPIC}/0/checkpoints/3", f"{TOPIC}/0/checkpoints/4"} <= set(copied)
    assert copied == _files(default_notes_dir(ledger_path))


def test_a_restarted_writer_copies_what_an_earlier_one_left_behind(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData, tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(
            ledger, SIGNER, ledger_path.with_name("cp"), reference_version="r", origin=ORIGIN
        )
        ingestor = Ingestor(ledger, key_store, reference, checkpointer=checkpointer)
        _ingest(ingestor, 0, 2)
        checkpointer.checkpoint()  # no copy target yet
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            ledger_path.with_name("cp"),
            reference_version="r",
            origin=ORIGIN,
            copy_to=str(witness),
        )
        ingestor = Ingestor(ledger, key_store, reference, checkpointer=checkpointer)
        _ingest(ingestor, 2, 1)
        checkpointer.checkpoint()
    assert {f"{TOPIC}/0/checkpoints/2", f"{TOPIC}/0/checkpoints/3"} <= set(_files(witness))


def test_a_copy_target_that_cannot_be_used_is_refused_at_start(
    ledger_path: Path, tmp_path: Path
) -> None:
    with Ledger(ledger_path) as ledger, pytest.raises(LedgerError, match="COPY_TO"):
        Checkpointer(
            ledger,
            SIGNER,
            ledger_path.with_name("cp"),
            reference_version="r",
            copy_to="nosuchscheme://x/y",
        )


def test_an_unreachable_object_store_is_a_counted_failure_not_a_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 code path up to the network: a local port nothing listens on (no network
    beyond this machine). Nothing is asked at construction; the copy fails, is counted and
    stays pending."""
    from ledger.checkpoint_copy import CheckpointCopy

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / "manifest").write_text("a note\n")
    copy = CheckpointCopy(
        tmp_path, "s3://audit/ledger?region=us-east-1&scheme=http&endpoint_override=127.0.0.1:9"
    )
    assert copy.copy(["manifest"]) is False
    assert copy.status.failures == 1 and copy.status.pending_files == 1
    assert copy.status.last_error is not None and "127.0.0.1:9" in copy.status.last_error
