"""Merkle trees kept with the rows, checkpoints as signed notes, and proof bundles that are
checked with no ledger at hand: every tampered part is caught, and named."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.pipeline import Ingestor, SourceMessage
from ledger.checkpoint_notes import ledger_notes, parse_manifest
from ledger.checkpoints import Checkpointer
from ledger.merkle import MemorySource, root
from ledger.notes import Verifier, parse_checkpoint_text, parse_note
from ledger.proofs import consistency_bundle, event_bundle, verify_bundle
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.tree import check_tree, ensure_tree
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import LedgerLocation
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
SIGNER = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
ORIGIN = "ledger.example.com/test"


def _ingest(
    ledger: Ledger, keys: SubjectKeyStore, reference: ReferenceData, sizes: list[int]
) -> tuple[Checkpointer, list[str]]:
    checkpointer = Checkpointer(
        ledger,
        SIGNER,
        ledger.path.with_name("cp"),
        reference_version=reference.version,
        every_rows=10**9,
        origin=ORIGIN,
    )
    ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
    offset, events = 0, []
    for size in sizes:
        batch = []
        for _ in range(size):
            event = make_event()
            events.append(event.event_id)
            batch.append(
                SourceMessage(TOPIC, offset % 2, offset, b"k", CODEC.encode(event.to_avro()))
            )
            offset += 1
        ingestor.ingest(batch)
        checkpointer.checkpoint()
    return checkpointer, events


def test_the_tree_grows_with_the_rows_and_checkpoints_are_signed_notes(
    ledger_location: LedgerLocation,
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
) -> None:
    with Ledger(ledger_location) as ledger:
        checkpointer, _ = _ingest(ledger, key_store, reference, [300, 400, 1])
        leaves = [
            bytes(r[0])
            for r in ledger.con.execute(
                f"SELECT leaf_hash FROM disclosures WHERE chain_id = '{TOPIC}/0' ORDER BY seq"
            ).fetchall()
        ]
        assert len(leaves) == 351
        assert ledger.con.execute("SELECT count(*) FROM merkle_nodes").fetchone() == (2,)
        assert check_tree(ledger.con) == []
        notes = checkpointer.last_notes
    by_chain = {n.chain_id: n for n in notes}
    head = parse_checkpoint_text(by_chain[f"{TOPIC}/0"].note.text)
    assert head.origin == f"{ORIGIN}/{TOPIC}/0" and head.size == 351
    assert head.root == root(351, MemorySource(leaves))
    by_chain[f"{TOPIC}/0"].note.verify(Verifier.of(head.origin, SIGNER.public_key()))
    manifest = parse_manifest(by_chain[None].note.text)
    assert [(e.chain_id, e.size, e.kind) for e in manifest.entries] == [
        (f"{TOPIC}/0", 351, "tree"),
        (f"{TOPIC}/1", 350, "tree"),
    ]
    files = ledger_path.with_name(ledger_path.name + ".checkpoint-notes")
    assert (files / TOPIC / "0" / "checkpoint").read_text() == by_chain[f"{TOPIC}/0"].encoded
    assert (files / TOPIC / "0" / "checkpoints" / "150").exists()
    assert (files / "manifest").read_text() == by_chain[None].encoded


def _bundles(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> tuple[dict[str, Any], dict[str, Any]]:
    with Ledger(ledger_location) as ledger:
        _, events = _ingest(ledger, key_store, reference, [300, 400])
        inclusion = event_bundle(ledger.con, events[123])
        consistency = consistency_bundle(ledger.con, f"{TOPIC}/1", 150, 350)
    return json.loads(json.dumps(inclusion)), json.loads(json.dumps(consistency))


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def test_bundles_verify_and_each_tampered_part_is_named(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    inclusion, consistency = _bundles(ledger_location, key_store, reference)
    key = SIGNER.public_key()
    assert verify_bundle(inclusion, key).ok, verify_bundle(inclusion, key)
    assert verify_bundle(consistency, key).ok, verify_bundle(consistency, key)
    assert "subject_id" not in json.dumps(inclusion)

    def tampered(change: Any, bundle: dict[str, Any] = inclusion) -> str | None:
        forged = copy.deepcopy(bundle)
        change(forged)
        return verify_bundle(forged, key).step

    assert tampered(lambda b: b["leaf"].__setitem__("recipient_id", "someone-else")) == "leaf"
    assert tampered(lambda b: b["leaf"].__setitem__("subject_id", "member-1")) == "leaf"
    assert (
        tampered(lambda b: b["inclusion_path"].__setitem__(0, _flip(b["inclusion_path"][0])))
        == "path"
    )
    assert tampered(lambda b: b.__setitem__("inclusion_path", b["inclusion_path"][:-1])) == "path"
    assert tampered(lambda b: b.__setitem__("root", _flip(b["root"]))) == "root"
    assert (
        tampered(lambda b: b.__setitem__("checkpoint", b["checkpoint"].replace("\n3", "\n4", 1)))
        == "signature"
    )
    other = Ed25519PrivateKey.generate().public_key()
    assert verify_bundle(inclusion, other).step == "signature"
    assert (
        tampered(
            lambda b: b["consistency_path"].__setitem__(0, _flip(b["consistency_path"][0])),
            consistency,
        )
        == "path"
    )
    assert (
        tampered(lambda b: b.__setitem__("old_root", _flip(b["old_root"])), consistency) == "root"
    )


def test_rows_loaded_without_nodes_get_them_when_a_writer_opens(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_location) as ledger:
        _ingest(ledger, key_store, reference, [600])
        before = ledger.con.execute("SELECT * FROM merkle_nodes ORDER BY ALL").fetchall()
        ledger.con.execute("DELETE FROM merkle_nodes")
        assert check_tree(ledger.con) != []
        assert ensure_tree(ledger.con) == 2
        assert ledger.con.execute("SELECT * FROM merkle_nodes ORDER BY ALL").fetchall() == before
        ledger.con.execute("UPDATE merkle_nodes SET hash = sha256('x')::BLOB WHERE idx = 0")
        assert "differ from the rows" in check_tree(ledger.con)[0][1]
    assert len(ledger_notes_of(ledger_location)) == 3  # two chains and the manifest


def ledger_notes_of(path: LedgerLocation) -> list[tuple[str, str, str | None, int, str]]:
    with Ledger(path, read_only=True) as ledger:
        notes = ledger_notes(ledger.con)
    for *_, note in notes:
        parse_note(note)
    return notes
