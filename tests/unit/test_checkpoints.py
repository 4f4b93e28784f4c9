"""Signed checkpoints: keys, the line format, when they are written, and `verify` with them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from ledger.checkpoints import (
    MAGIC,
    ChainHead,
    Checkpointer,
    generate_key_pair,
    key_id,
    ledger_checkpoint_lines,
    load_public_key,
    load_signing_key,
    parse_checkpoint,
    read_checkpoint_file,
    sign_checkpoint,
)
from ledger.errors import LedgerError
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
SIGNER = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)


def _messages(first: int, count: int, partition: int = 0) -> list[SourceMessage]:
    return [
        SourceMessage(TOPIC, partition, o, b"k", CODEC.encode(make_event().to_avro()))
        for o in range(first, first + count)
    ]


class FakeClock:
    def __init__(self) -> None:
        self.ms = 1_767_225_600_000

    def __call__(self) -> int:
        return self.ms


def test_keys_generate_writes_a_private_key_only_its_owner_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private = tmp_path / "keys" / "checkpoint.key"
    assert main(["keys", "generate", "--private-key", str(private)]) == 0
    public = private.with_name("checkpoint.key.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    signer = load_signing_key(private.read_bytes(), str(private))
    assert key_id(load_public_key(public)) == key_id(signer.public_key())
    assert key_id(signer.public_key()) in capsys.readouterr().out
    # a second run would orphan every checkpoint signed with the first key
    assert main(["keys", "generate", "--private-key", str(private)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_signing_keys_load_from_pem_or_hex_and_junk_is_a_clear_error(tmp_path: Path) -> None:
    generate_key_pair(tmp_path / "k", tmp_path / "k.pub")
    assert isinstance(load_signing_key((tmp_path / "k").read_bytes(), "file"), Ed25519PrivateKey)
    raw = (b"\x07" * 32).hex().encode()
    assert key_id(load_signing_key(raw, "env").public_key()) == key_id(SIGNER.public_key())
    with pytest.raises(LedgerError, match="keys generate"):
        load_signing_key(b"not a key", "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY")


def test_a_checkpoint_line_round_trips_and_its_signature_covers_every_field() -> None:
    heads = [ChainHead("t/1", 3, b"\x02" * 32), ChainHead("t/0", 10, b"\x01" * 32)]
    checkpoint = sign_checkpoint(SIGNER, heads, "2026.11.0+abc def", 1_767_225_600_123)
    line = checkpoint.line
    assert line.startswith(f"{MAGIC} at=2026-01-01T00:00:00.123Z ref=2026.11.0+abc%20def key=")
    assert line.index("t/0=10:") < line.index("t/1=3:")  # chains sorted by id
    assert "\n" not in line
    parsed = parse_checkpoint(line)
    assert parsed == checkpoint and parsed.reference_version == "2026.11.0+abc def"
    assert parsed.verify(SIGNER.public_key()) is None
    for before, after in [("=10:", "=11:"), ("00.123Z", "00.124Z"), ("abc%20", "abd%20")]:
        forged = parse_checkpoint(line.replace(before, after))
        assert forged.verify(SIGNER.public_key()) == (
            "the Ed25519 signature does not match the checkpoint's text"
        )
    other = Ed25519PrivateKey.generate().public_key()
    assert "not by the public key given" in (parsed.verify(other) or "")
    words = line.split(" ")
    words[4], words[5] = words[5], words[4]
    with pytest.raises(LedgerError, match="canonical"):
        parse_checkpoint(" ".join(words))
    with pytest.raises(LedgerError):
        parse_checkpoint("hello world")


def test_checkpoints_every_n_rows_and_on_shutdown_in_ledger_and_file(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    file = ledger_path.with_name("published.checkpoints")
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(
            ledger, SIGNER, file, reference_version=reference.version, every_rows=5
        )
        ingestor = Ingestor(ledger, key_store, reference, checkpointer=checkpointer)
        for first in range(0, 12, 3):  # 4 batches of 3 rows: due after 6 and 12 rows
            ingestor.ingest(_messages(first, 3))
        assert len(read_checkpoint_file(file)) == 2
        assert ingestor.shutdown() is None  # the last checkpoint is still current
        ingestor.ingest(_messages(12, 1))
        final = ingestor.shutdown()
        assert final is not None and final.heads == (
            ChainHead(f"{TOPIC}/0", 13, final.heads[0].head),
        )
        assert ingestor.shutdown() is None  # idempotent
        lines = ledger_checkpoint_lines(ledger)
    assert read_checkpoint_file(file) == lines and len(lines) == 3
    assert [parse_checkpoint(line).heads[0].length for line in lines] == [6, 12, 13]
    assert all(parse_checkpoint(line).reference_version == reference.version for line in lines)
    assert all(parse_checkpoint(line).verify(SIGNER.public_key()) is None for line in lines)


def test_checkpoints_every_t_seconds_only_when_rows_were_appended(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    clock = FakeClock()
    file = ledger_path.with_name("c.checkpoints")
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            file,
            reference_version=reference.version,
            every_rows=1_000,
            every_seconds=60,
            clock_ms=clock,
        )
        ingestor = Ingestor(ledger, key_store, reference, checkpointer=checkpointer)
        ingestor.ingest(_messages(0, 2))
        assert not file.exists()
        clock.ms += 61_000
        assert ingestor.checkpoint_if_due() is not None  # due by time, rows pending
        clock.ms += 61_000
        assert checkpointer.after_batch(0) is None  # nothing new: no checkpoint
        ingestor.ingest(_messages(2, 1, partition=1))  # over 60 s since the last: due
        assert checkpointer.last is not None and len(checkpointer.last.heads) == 2
    assert len(read_checkpoint_file(file)) == 2


def test_a_restart_checkpoints_chains_that_moved_without_one(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_path) as ledger:  # a run without checkpoints (or that crashed)
        Ingestor(ledger, key_store, reference).ingest(_messages(0, 2))
    file = ledger_path.with_name("c.checkpoints")
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(ledger, SIGNER, file, reference_version=reference.version)
        assert checkpointer.shutdown() is not None
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(ledger, SIGNER, file, reference_version=reference.version)
        assert checkpointer.shutdown() is None


def test_verify_cli_checks_checkpoints_and_signatures(
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    private, public = tmp_path / "ck", tmp_path / "ck.pub"
    generate_key_pair(private, public)
    signer = load_signing_key(private.read_bytes(), str(private))
    file = tmp_path / "published.checkpoints"
    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(
            ledger,
            key_store,
            reference,
            checkpointer=Checkpointer(ledger, signer, file, reference_version="r", every_rows=2),
        )
        ingestor.ingest(_messages(0, 4))
    args = ["verify", "--ledger", str(ledger_path), "--checkpoints", str(file)]
    assert main([*args, "--public-key", str(public)]) == 0
    out = capsys.readouterr().out
    assert "1 checkpoint(s) checked against the chains (signatures checked)" in out
    assert "verified" in out
    assert main(args) == 0  # without the public key: compared, and said so
    captured = capsys.readouterr()
    assert "signatures NOT checked" in captured.out and "--public-key" in captured.err
    other = tmp_path / "other"
    generate_key_pair(other, tmp_path / "other.pub")
    assert main([*args, "--public-key", str(tmp_path / "other.pub")]) == 1
    assert "bad signature" in capsys.readouterr().err


def test_consume_without_a_signing_key_is_a_clear_startup_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    subject_secret_env: str,
) -> None:
    monkeypatch.delenv("DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE", raising=False)
    ledger = tmp_path / "l.duckdb"
    code = main(["consume", "--ledger", str(ledger), "--bootstrap-servers", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE" in err and "--no-checkpoints" in err
    assert not ledger.exists()  # refused before opening anything
    monkeypatch.setenv("DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE", str(tmp_path / "none"))
    assert main(["consume", "--ledger", str(ledger), "--bootstrap-servers", "127.0.0.1:1"]) == 1
    assert "cannot read the checkpoint signing key file" in capsys.readouterr().err
