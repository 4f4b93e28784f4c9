"""Operating the checkpoint notes: verifier keys from `keys`, and `migrate` writing signed
notes beside one-line checkpoints made before the notes existed."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from ledger.checkpoint_notes import default_notes_dir, ledger_notes, parse_manifest
from ledger.checkpoints import (
    Checkpointer,
    default_checkpoint_file,
    generate_key_pair,
    ledger_checkpoint_lines,
    load_public_key,
    load_signing_key,
)
from ledger.notes import Verifier, parse_checkpoint_text, parse_note
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
ORIGIN = "ledger.example.com/ops"


def _ledger(path: Path, private: Path, keys: SubjectKeyStore, reference: ReferenceData) -> None:
    """Two chains, two checkpoints (3 rows, then 5), signed with the key in ``private``."""
    signer = load_signing_key(private.read_bytes(), str(private))
    with Ledger(path) as ledger:
        checkpointer = Checkpointer(
            ledger,
            signer,
            default_checkpoint_file(path),
            reference_version=reference.version,
            every_rows=10**9,
            origin=ORIGIN,
        )
        ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
        for first, count in ((0, 3), (3, 2)):
            ingestor.ingest(
                [
                    SourceMessage(TOPIC, p, o, b"k", CODEC.encode(make_event().to_avro()))
                    for o in range(first, first + count)
                    for p in (0, 1)
                ]
            )
            checkpointer.checkpoint()


def _make_old(path: Path) -> None:
    """As a ledger written before the notes and the tree existed."""
    con = duckdb.connect(str(path))
    try:
        con.execute("DELETE FROM checkpoint_notes")
        con.execute("DROP TABLE merkle_nodes")
    finally:
        con.close()
    shutil.rmtree(default_notes_dir(path))


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    generate_key_pair(tmp_path / "k" / "cp.key", tmp_path / "k" / "cp.key.pub")
    return tmp_path / "k"


def test_keys_generate_writes_the_verifier_key_of_the_log_origin(
    tmp_path: Path,
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
) -> None:
    private = tmp_path / "new" / "cp.key"
    assert main(["keys", "generate", "--private-key", str(private), "--origin", ORIGIN]) == 0
    vkey_file = private.with_name("cp.key.pub.vkey")
    vkey = vkey_file.read_text().strip()
    assert vkey in capsys.readouterr().out
    verifier = Verifier.parse(vkey)
    assert verifier.name == ORIGIN
    _ledger(ledger_path, private, key_store, reference)
    manifest = next(n for _, kind, _, _, n in reversed(ledger_notes_of(ledger_path)) if kind)
    parse_note(manifest).verify(verifier)  # the manifest note verifies with the .vkey
    # without an origin, nothing to write the verifier key for: it says how to get it later
    other = tmp_path / "other" / "cp.key"
    assert main(["keys", "generate", "--private-key", str(other)]) == 0
    assert "keys verifier-key" in capsys.readouterr().out
    assert not other.with_name("cp.key.pub.vkey").exists()
    assert main(["keys", "generate", "--private-key", str(other) + "2", "--origin", "a b"]) == 1
    assert "not a log origin" in capsys.readouterr().err


def ledger_notes_of(path: Path) -> list[tuple[str, str, str | None, int, str]]:
    with Ledger(path, read_only=True) as ledger:
        return [n for n in ledger_notes(ledger.con) if n[1] == "manifest"]


def test_keys_verifier_key_prints_the_manifest_and_every_chain(
    ledger_path: Path,
    keys_dir: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _ledger(ledger_path, keys_dir / "cp.key", key_store, reference)
    public = str(keys_dir / "cp.key.pub")
    assert main(["keys", "verifier-key", "--public-key", public, "--ledger", str(ledger_path)]) == 0
    vkeys = capsys.readouterr().out.split()
    verifiers = [Verifier.parse(v) for v in vkeys]
    assert [v.name for v in verifiers] == [ORIGIN, f"{ORIGIN}/{TOPIC}/0", f"{ORIGIN}/{TOPIC}/1"]
    with Ledger(ledger_path, read_only=True) as ledger:
        for _, kind, chain, _, encoded in ledger_notes(ledger.con):
            name = ORIGIN if kind == "manifest" else f"{ORIGIN}/{chain}"
            parse_note(encoded).verify(next(v for v in verifiers if v.name == name))
    assert main(["keys", "verifier-key", "--public-key", public, "--origin", ORIGIN]) == 0
    assert capsys.readouterr().out.split() == vkeys[:1]
    assert main(["keys", "verifier-key", "--public-key", public]) == 1
    assert "log origin" in capsys.readouterr().err


def test_migrate_signs_notes_beside_old_checkpoints(
    ledger_path: Path,
    keys_dir: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _ledger(ledger_path, keys_dir / "cp.key", key_store, reference)
    with Ledger(ledger_path, read_only=True) as ledger:
        before = ledger_notes(ledger.con)
        lines = ledger_checkpoint_lines(ledger)
    checkpoint_text = default_checkpoint_file(ledger_path).read_text()
    _make_old(ledger_path)
    monkeypatch.delenv("DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE", raising=False)
    assert main(["migrate", "--ledger", str(ledger_path)]) == 0
    assert "NOT done: 2 old checkpoint(s) have no signed notes" in capsys.readouterr().out
    monkeypatch.setenv("DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE", str(keys_dir / "cp.key"))
    assert main(["migrate", "--ledger", str(ledger_path)]) == 0
    assert "signed notes written beside 2 old checkpoint(s)" in capsys.readouterr().out
    with Ledger(ledger_path, read_only=True) as ledger:
        after = ledger_notes(ledger.con)
        assert ledger_checkpoint_lines(ledger) == lines  # the old form is left as it was
        result = verify_ledger(
            ledger,
            public_key=load_public_key(keys_dir / "cp.key.pub"),
            notes_dirs=[default_notes_dir(ledger_path)],
        )
    assert default_checkpoint_file(ledger_path).read_text() == checkpoint_text
    assert result.ok, [str(f) for f in result.failures]
    assert result.notes_checked == 6
    # the same texts as when the notes were made with the checkpoints: sizes, roots, times
    assert [(at, kind, chain, size) for at, kind, chain, size, _ in after] == [
        (at, kind, chain, size) for at, kind, chain, size, _ in before
    ]
    assert [parse_note(n).text for *_, n in after] == [parse_note(n).text for *_, n in before]
    manifest = parse_manifest(parse_note(after[-1][4]).text)
    assert manifest.reference_version == reference.version
    head = parse_checkpoint_text(parse_note(after[0][4]).text)
    assert head.origin.startswith(ORIGIN + "/")
    # a second run has nothing left to do
    assert main(["migrate", "--ledger", str(ledger_path)]) == 0
    assert "signed notes" not in capsys.readouterr().out


def test_migrate_signs_no_note_for_a_checkpoint_the_rows_no_longer_extend(
    ledger_path: Path,
    keys_dir: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _ledger(ledger_path, keys_dir / "cp.key", key_store, reference)
    _make_old(ledger_path)
    con = duckdb.connect(str(ledger_path))
    try:  # the last row of chain 1 rewritten
        con.execute(
            f"UPDATE disclosures SET chain_hash = sha256('x')::BLOB "
            f"WHERE chain_id = '{TOPIC}/1' AND seq = 5"
        )
    finally:
        con.close()
    monkeypatch.setenv("DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE", str(keys_dir / "cp.key"))
    assert main(["migrate", "--ledger", str(ledger_path)]) == 0
    out = capsys.readouterr().out
    assert "signed notes written beside 1 old checkpoint(s)" in out
    assert "NOT done: no notes for the checkpoint of" in out
    assert f"chain {TOPIC}/1 no longer extends it" in out


def test_a_verifier_key_whose_base64_holds_a_plus_parses() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.notes import verifier_key

    for seed in range(256):
        public = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key()
        vkey = verifier_key(ORIGIN, public)
        if "+" in vkey.split("+", 2)[2]:
            assert Verifier.parse(vkey) == Verifier.of(ORIGIN, public)
            return
    pytest.fail("no seed gave a key with '+' in its base64")
