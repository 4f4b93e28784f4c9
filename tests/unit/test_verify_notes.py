"""``verify`` recomputes the Merkle trees from the rows and checks every checkpoint note:
its signature, its root against the tree, and that each manifest lists every chain."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from ledger import tree
from ledger.checkpoint_notes import (
    Manifest,
    ManifestEntry,
    chain_origin,
    default_notes_dir,
    parse_manifest,
)
from ledger.checkpoints import Checkpointer, default_checkpoint_file
from ledger.notes import TreeHead, parse_note, sign_note
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import VerifyResult, verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CHAIN0, CHAIN1 = f"{TOPIC}/0", f"{TOPIC}/1"
CODEC = EventCodec()
SIGNER = Ed25519PrivateKey.from_private_bytes(b"\x0c" * 32)
ORIGIN = "ledger.example.com/verify-notes"


@pytest.fixture
def ledger_file(ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData) -> Path:
    """295 rows in chain 0 (a stored level-8 node), 5 in chain 1 from the second checkpoint."""
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            default_checkpoint_file(ledger_path),
            reference_version=reference.version,
            every_rows=10**9,
            origin=ORIGIN,
        )
        ingestor = Ingestor(ledger, key_store, reference, checkpointer=checkpointer)
        offsets = [0, 0]
        for partitions, count in (((0,), 290), ((0, 1), 10)):
            batch = []
            for i in range(count):
                partition = partitions[i % len(partitions)]
                event = make_event().to_avro()
                batch.append(
                    SourceMessage(TOPIC, partition, offsets[partition], b"k", CODEC.encode(event))
                )
                offsets[partition] += 1
            ingestor.ingest(batch)
            checkpointer.checkpoint()
    return ledger_path


def _verify(path: Path, **kwargs: object) -> VerifyResult:
    with Ledger(path, read_only=True) as ledger:
        return verify_ledger(ledger, public_key=SIGNER.public_key(), **kwargs)  # type: ignore[arg-type]


def _kinds(result: VerifyResult) -> set[tuple[str, str]]:
    return {(f.chain_id, f.kind) for f in result.failures}


def _insert_note(path: Path, kind: str, chain: str | None, size: int, note: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "INSERT INTO checkpoint_notes VALUES (now()::TIMESTAMP, ?, ?, ?, ?)",
            [kind, chain, size, note],
        )
    finally:
        con.close()


def test_an_untouched_ledger_verifies_its_trees_and_notes(ledger_file: Path) -> None:
    result = _verify(ledger_file, notes_dirs=[default_notes_dir(ledger_file)])
    assert result.ok, [str(f) for f in result.failures]
    assert result.notes_checked == 5  # 1 + 2 chain checkpoints, 2 manifests
    assert result.to_json()["checkpoint_notes"] == 5


def test_an_altered_tree_node_is_caught(ledger_file: Path) -> None:
    con = duckdb.connect(str(ledger_file))
    try:
        assert con.execute("SELECT count(*) FROM merkle_nodes").fetchone() == (1,)
        con.execute("UPDATE merkle_nodes SET hash = unhex(sha256('x'))")
    finally:
        con.close()
    result = _verify(ledger_file)
    assert _kinds(result) == {(CHAIN0, "tree altered")}
    assert "level 8 index 0" in result.failures[0].detail


def test_a_note_file_altered_is_a_bad_signature(ledger_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(default_notes_dir(ledger_file), copy)
    newest = copy / CHAIN0 / "checkpoint"
    note = parse_note(newest.read_text())
    lines = note.text.split("\n")
    lines[1] = str(int(lines[1]) - 1)  # the size, with the signature left as it was
    newest.write_text(newest.read_text().replace(note.text, "\n".join(lines)))
    result = _verify(ledger_file, notes_dirs=[copy])
    assert _kinds(result) == {("checkpoints", "bad signature")}
    assert str(newest) in result.failures[0].detail


def test_a_signed_root_the_rows_do_not_give_is_caught(ledger_file: Path) -> None:
    """A note signed with the right key but over another tree: the rows were rewritten."""
    lie = TreeHead(chain_origin(ORIGIN, CHAIN0), 290, b"\x05" * 32).sign(SIGNER)
    _insert_note(ledger_file, "checkpoint", CHAIN0, 290, lie.encoded)
    result = _verify(ledger_file)
    assert _kinds(result) == {(CHAIN0, "chain rewritten since a checkpoint")}
    assert result.failures[0].seq == 290


def test_a_note_beyond_the_rows_is_a_truncation(ledger_file: Path) -> None:
    beyond = TreeHead(chain_origin(ORIGIN, CHAIN1), 9, b"\x05" * 32).sign(SIGNER)
    _insert_note(ledger_file, "checkpoint", CHAIN1, 9, beyond.encoded)
    result = _verify(ledger_file)
    assert [(f.chain_id, f.kind, f.seq) for f in result.failures] == [
        (CHAIN1, "chain truncated below a checkpoint", 6)
    ]


def test_a_manifest_that_leaves_out_a_chain_is_noticed(ledger_file: Path) -> None:
    con = duckdb.connect(str(ledger_file), read_only=True)
    try:
        newest = con.execute(
            "SELECT note FROM checkpoint_notes WHERE kind = 'manifest' "
            "ORDER BY checkpoint_at DESC LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    assert newest is not None
    manifest = parse_manifest(parse_note(str(newest[0])).text)
    assert {e.chain_id for e in manifest.entries} == {CHAIN0, CHAIN1}
    later = Manifest(
        ORIGIN,
        manifest.at[:-4] + "999Z",
        manifest.reference_version,
        tuple(e for e in manifest.entries if e.chain_id != CHAIN1),
    )
    _insert_note(ledger_file, "manifest", None, 0, sign_note(later.text, ORIGIN, SIGNER).encoded)
    result = _verify(ledger_file)
    assert _kinds(result) == {(CHAIN1, "chain missing from a manifest")}
    # and a manifest whose entry does not match the tree
    wrong = Manifest(
        ORIGIN,
        manifest.at,
        manifest.reference_version,
        (*manifest.entries[:1], ManifestEntry(CHAIN1, 4, b"\x06" * 32, "tree")),
    )
    _insert_note(ledger_file, "manifest", None, 0, sign_note(wrong.text, ORIGIN, SIGNER).encoded)
    assert (CHAIN1, "chain rewritten since a checkpoint") in _kinds(_verify(ledger_file))


def test_a_note_of_another_log_is_refused(ledger_file: Path) -> None:
    other = TreeHead(f"elsewhere.example/{CHAIN0}", 290, b"\x05" * 32).sign(SIGNER)
    _insert_note(ledger_file, "checkpoint", CHAIN0, 290, other.encoded)
    result = _verify(ledger_file)
    assert _kinds(result) == {("checkpoints", "bad signature")}
    assert "not this ledger's log origin" in result.failures[0].detail


def test_without_a_key_the_notes_are_compared_and_the_answer_says_unsigned(
    ledger_file: Path,
) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        result = verify_ledger(ledger)
    assert result.ok and result.notes_checked == 5
    assert any("NOT checked" in note and "note" in note for note in result.notes)


def test_build_nodes_hashing_whole_levels_gives_the_nodes_ingest_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Across chunk boundaries that are not tile-aligned at level 16, and a partial tail."""
    size = 2 * 65536 + 3 * 256 + 7
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE disclosures AS SELECT 'c' AS chain_id, i AS seq, "
        f"unhex(sha256(i::VARCHAR)) AS leaf_hash FROM range(1, {size + 1}) t(i)"
    )
    query = con.execute("SELECT leaf_hash FROM disclosures ORDER BY seq")
    leaves = [bytes(r[0]) for r in query.fetchall()]
    expected = tree.extend(tree.Frontier(), "c", leaves)
    monkeypatch.setattr(tree, "_CHUNK_TILES", 3)
    built = tree.build_nodes(con, "c")
    got = list(
        zip(
            ["c"] * built.num_rows,
            built.column("level").to_pylist(),
            built.column("idx").to_pylist(),
            built.column("hash").to_pylist(),
            strict=True,
        )
    )
    assert sorted(got) == sorted(expected)
    assert {level for _, level, _, _ in got} == {8, 16}


def test_verify_notes_option_on_the_command_line(
    ledger_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    public = tmp_path / "key.pub"
    public.write_text(
        base64.b16encode(
            SIGNER.public_key().public_bytes_raw()  # 64 hex digits
        ).decode()
    )
    notes = default_notes_dir(ledger_file)
    args = ["verify", "--ledger", str(ledger_file), "--public-key", str(public)]
    assert main([*args, "--notes", str(notes)]) == 0
    assert "5 checkpoint note(s) checked against the Merkle trees" in capsys.readouterr().out
    assert main([*args, "--notes", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err
