"""Rotating the checkpoint signing key: a rotated key still verifies the old checkpoints
(each with the key in force at its time, from the key history), a checkpoint signed with
the old key after the rotation point fails, and the history's own signatures are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from disclosure_ledger.service.state_file import remove_service_state, write_service_state
from ledger.checkpoints import (
    Checkpointer,
    current_heads,
    default_checkpoint_file,
    read_checkpoint_file,
    sign_checkpoint,
    store_checkpoint,
)
from ledger.errors import LedgerError
from ledger.key_history import key_history_file, read_key_history, rotate_key
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import CheckpointSource, VerifyResult, verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET
from tests.unit.events import make_event

TOPIC = "t.disclosures"
OLD = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
NEW = Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)


def ingest(
    ledger_path: Path, reference: ReferenceData, signer: Ed25519PrivateKey, offsets: range
) -> None:
    """Append one event per offset, a checkpoint every two rows, signed by ``signer``."""
    codec = EventCodec()
    messages = [
        SourceMessage(
            TOPIC,
            0,
            offset,
            b"k",
            codec.encode(make_event(subject={"id": f"m-{offset}", "type": "member"}).to_avro()),
        )
        for offset in offsets
    ]
    with (
        Ledger(ledger_path) as ledger,
        SubjectKeyStore(
            ledger_path.with_name(ledger_path.name + ".keys.sqlite"), TEST_SECRET
        ) as keys,
    ):
        checkpointer = Checkpointer(
            ledger,
            signer,
            default_checkpoint_file(ledger_path),
            reference_version=reference.version,
            every_rows=2,
        )
        ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
        for offset in range(0, len(messages), 2):
            ingestor.ingest(messages[offset : offset + 2])
        ingestor.shutdown()


def verify(
    ledger_path: Path, public: Ed25519PrivateKey | None, *, history: bool = True
) -> VerifyResult:
    checkpoint_file = default_checkpoint_file(ledger_path)
    with Ledger(ledger_path, read_only=True) as ledger:
        return verify_ledger(
            ledger,
            checkpoints=[CheckpointSource("file", read_checkpoint_file(checkpoint_file))],
            public_key=public.public_key() if public is not None else None,
            key_history=read_key_history(key_history_file(checkpoint_file)) if history else None,
        )


@pytest.fixture
def rotated(tmp_path: Path, reference: ReferenceData) -> Path:
    """A ledger with 2 checkpoints by OLD, a rotation to NEW, 2 checkpoints by NEW."""
    ledger_path = tmp_path / "ledger.duckdb"
    ingest(ledger_path, reference, OLD, range(4))
    rotate_key(default_checkpoint_file(ledger_path), OLD, NEW)
    ingest(ledger_path, reference, NEW, range(4, 8))
    return ledger_path


def test_a_rotated_key_still_verifies_the_old_checkpoints(rotated: Path) -> None:
    keys_used = [
        line.split(" ")[3] for line in read_checkpoint_file(default_checkpoint_file(rotated))
    ]
    assert len(set(keys_used)) == 2 and len(keys_used) == 4
    for anchor in (NEW, OLD):  # any key of the history anchors it
        result = verify(rotated, anchor)
        assert result.ok, [str(f) for f in result.failures]
        assert result.checkpoints == 4 and result.signatures_checked


def test_the_newest_key_alone_explains_that_older_checkpoints_need_the_history(
    rotated: Path,
) -> None:
    result = verify(rotated, NEW, history=False)
    assert {f.kind for f in result.failures} == {"bad signature"}
    lines = [f for f in result.failures if "checkpoint_notes" not in f.detail]
    assert len(lines) == 4  # the two older checkpoints, in the table and the file
    assert len(result.failures) > 4  # and their signed notes
    assert all("--key-history" in f.detail for f in result.failures)


def test_a_checkpoint_signed_with_the_old_key_after_the_rotation_fails(
    rotated: Path, reference: ReferenceData
) -> None:
    with pytest.raises(LedgerError, match="superseded"):
        ingest(rotated, reference, OLD, range(8, 10))  # the old key refuses to sign
    with Ledger(rotated) as ledger:
        late = sign_checkpoint(OLD, current_heads(ledger), reference.version, 4_102_444_800_000)
        store_checkpoint(ledger, late, default_checkpoint_file(rotated))
    result = verify(rotated, NEW)
    assert [f.kind for f in result.failures] == ["bad signature"] * 2  # the table, the file
    assert all("not in force at that time" in f.detail for f in result.failures)
    assert all(late.at in f.detail for f in result.failures)


def test_the_key_history_signatures_are_checked(rotated: Path) -> None:
    history = key_history_file(default_checkpoint_file(rotated))
    lines = history.read_text().splitlines()
    # move the rotation point: every signature over the entry no longer matches
    first_new = read_checkpoint_file(default_checkpoint_file(rotated))[2].split(" ")[1][3:]
    forged_at = lines[1].replace(lines[1].split(" ")[1], f"after={first_new}")
    history.write_text("\n".join([lines[0], forged_at]) + "\n")
    result = verify(rotated, NEW)
    kinds = [f.kind for f in result.failures]
    assert kinds.count("bad key history") == 2  # sig and cosig
    # a history whose new key was swapped for an attacker's: the old key never signed it
    attacker = Ed25519PrivateKey.generate()
    raw = attacker.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    swapped = lines[1].replace(lines[1].split(" pub=")[1][:64], raw.hex())
    history.write_text("\n".join([lines[0], swapped]) + "\n")
    details = " ".join(f.detail for f in verify(rotated, OLD).failures)
    assert "key= is not the id of pub=" in details and "sig (by the key before it)" in details


def test_a_public_key_outside_the_history_does_not_anchor_it(rotated: Path) -> None:
    result = verify(rotated, Ed25519PrivateKey.generate())
    assert any(f.kind == "bad key history" and "not in" in f.detail for f in result.failures)


def test_keys_rotate_cli_generates_the_new_key_and_refuses_under_a_service(
    tmp_path: Path,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger_path = tmp_path / "ledger.duckdb"
    ingest(ledger_path, reference, OLD, range(4))
    old_file = tmp_path / "old.key"
    old_file.write_text(OLD.private_bytes_raw().hex())
    monkeypatch.setenv("DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE", str(old_file))
    args = [
        "keys",
        "rotate",
        "--ledger",
        str(ledger_path),
        "--private-key",
        str(tmp_path / "new.key"),
    ]
    write_service_state(ledger_path, "http://127.0.0.1:1")
    try:
        assert main(args) != 0
        assert "stop it, rotate" in capsys.readouterr().err
    finally:
        remove_service_state(ledger_path)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "in force for every checkpoint after checkpoint 2" in out
    assert (tmp_path / "new.key.pub").exists()
    history = read_key_history(key_history_file(default_checkpoint_file(ledger_path)))
    assert len(history.entries) == 2 and not history.problems()
    assert main(args) != 0  # the old key is no longer the key in force
    assert "the key in force is" in capsys.readouterr().err
    public = tmp_path / "new.key.pub"
    assert main(["verify", "--ledger", str(ledger_path), "--public-key", str(public)]) == 0


def test_checkpoint_notes_follow_the_key_history_and_a_superseded_key_fails(
    rotated: Path, reference: ReferenceData
) -> None:
    from ledger.checkpoint_notes import default_notes_dir, log_origin, sign_notes, store_notes

    result = verify(rotated, NEW)
    assert result.ok and result.notes_checked == 8  # 4 checkpoints: a chain and a manifest
    with Ledger(rotated) as ledger:  # notes signed by the old key long after the rotation
        late = sign_checkpoint(OLD, current_heads(ledger), reference.version, 4_102_444_800_000)
        notes = sign_notes(
            ledger.con,
            OLD,
            log_origin(ledger.con, None),
            [(h.chain_id, h.length, h.head) for h in late.heads],
            at=late.at,
            reference_version=reference.version,
        )
        store_notes(ledger.con, notes, late.at, default_notes_dir(rotated))
    result = verify(rotated, NEW)
    assert [f.kind for f in result.failures] == ["bad signature"] * 2  # the chain, the manifest
    assert all("superseded" in f.detail for f in result.failures)
