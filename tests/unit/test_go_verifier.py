"""Proof bundles, checkpoints and manifests are checked by code this project did not write.

``tests/go_verifier`` is a small Go program on ``golang.org/x/mod/sumdb/note`` (signatures),
``golang.org/x/mod/sumdb/tlog`` and ``github.com/transparency-dev/merkle`` (proofs), with the
leaf encoding written from its specification; it imports nothing of this project. ``make
setup`` builds it (``make go-verifier``: the Go modules come at setup, never in a test).

Here a real ledger is built in-process through the pipeline, with real checkpoints; the Go
program must accept every valid bundle and note, and reject every tampered one at the step
that :func:`ledger.proofs.verify_bundle` names for it, so the two implementations agree.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consumers.pipeline import Ingestor, SourceMessage
from ledger.checkpoint_notes import default_notes_dir
from ledger.checkpoints import Checkpointer
from ledger.notes import NoteError, Verifier, parse_note, verifier_key
from ledger.proofs import consistency_bundle, event_bundle, inclusion_bundle, verify_bundle
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import ROOT, TEST_SECRET, skip_missing_part
from tests.unit.events import make_event

GO_VERIFIER = ROOT / ".local" / "bin" / "dl-go-verifier"
GO_SOURCES = ROOT / "tests" / "go_verifier"
GO_INSTALL = "Go 1.26 or later, then `make go-verifier` (`make setup` runs it)"

TOPIC = "t.disclosures"
ORIGIN = "ledger.example.com/go-test"
SIGNER = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
OTHER = Ed25519PrivateKey.from_private_bytes(b"\x08" * 32)
# Rows per batch, alternating between two partitions; a checkpoint after each batch gives
# chain sizes 150, 350 and 354 (chain 0) or 353 (chain 1).
BATCHES = (300, 400, 7)


@pytest.fixture(scope="module")
def go_verifier() -> Path:
    if not GO_VERIFIER.exists():
        detail = f"{GO_VERIFIER.relative_to(ROOT)} is not built"
        if shutil.which("go") is None:
            detail += ", and no `go` is on PATH"
        skip_missing_part("the Go proof verifier", GO_INSTALL, detail=detail)
    built = GO_VERIFIER.stat().st_mtime
    sources = [p for p in GO_SOURCES.iterdir() if p.suffix in (".go", ".mod", ".sum")]
    if any(p.stat().st_mtime > built for p in sources):
        skip_missing_part(
            "an up-to-date Go proof verifier",
            "make go-verifier",
            detail="tests/go_verifier changed since it was built",
        )
    return GO_VERIFIER


@dataclass(frozen=True)
class Evidence:
    """What a ledger hands out: bundles and the checkpoint-notes directory."""

    inclusion: dict[str, dict[str, Any]]
    consistency: dict[str, dict[str, Any]]
    notes_dir: Path
    keys: dict[str, Path]  # key files, by form


def _pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> Evidence:
    tmp = tmp_path_factory.mktemp("go-verifier")
    path = tmp / "ledger.duckdb"
    codec = EventCodec()
    events: list[str] = []
    with (
        SubjectKeyStore(tmp / "ledger.duckdb.keys.sqlite", TEST_SECRET) as keys,
        Ledger(path) as ledger,
    ):
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            tmp / "checkpoints",
            reference_version=reference.version,
            every_rows=10**9,
            origin=ORIGIN,
        )
        ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
        offset = 0
        for size in BATCHES:
            batch = []
            for _ in range(size):
                event = make_event(subject={"id": f"member-{offset % 5}", "type": "member"})
                events.append(event.event_id)
                batch.append(
                    SourceMessage(TOPIC, offset % 2, offset, b"k", codec.encode(event.to_avro()))
                )
                offset += 1
            ingestor.ingest(batch)
            checkpointer.checkpoint()
        chain0, chain1 = f"{TOPIC}/0", f"{TOPIC}/1"
        inclusion = {
            "first row": inclusion_bundle(ledger.con, chain0, 1),
            "a middle row": event_bundle(ledger.con, events[123]),
            "the last row": inclusion_bundle(ledger.con, chain0, 354),
            "a row of an odd-sized tree": inclusion_bundle(ledger.con, chain1, 200),
        }
        consistency = {
            "150 to 354": consistency_bundle(ledger.con, chain0, 150, 354),
            "350 to 354": consistency_bundle(ledger.con, chain0, 350, 354),
            "150 to 350": consistency_bundle(ledger.con, chain1, 150, 350),
            "350 to 353": consistency_bundle(ledger.con, chain1, 350, 353),
            "354 to 354": consistency_bundle(ledger.con, chain0, 354, 354),
        }
    origins = [ORIGIN, f"{ORIGIN}/{chain0}", f"{ORIGIN}/{chain1}"]
    key_files = {
        "pem": (tmp / "ledger.pub", _pem(SIGNER.public_key())),
        "hex": (tmp / "ledger.hex", _hex(SIGNER.public_key()).encode()),
        "vkeys": (
            tmp / "ledger.vkeys",
            "".join(f"{verifier_key(o, SIGNER.public_key())}\n" for o in origins).encode(),
        ),
        "other pem": (tmp / "other.pub", _pem(OTHER.public_key())),
        "other vkeys": (
            tmp / "other.vkeys",
            "".join(f"{verifier_key(o, OTHER.public_key())}\n" for o in origins).encode(),
        ),
    }
    for file, data in key_files.values():
        file.write_bytes(data)
    # Through JSON, as a bundle travels.
    return Evidence(
        json.loads(json.dumps(inclusion)),
        json.loads(json.dumps(consistency)),
        default_notes_dir(path),
        {form: file for form, (file, _) in key_files.items()},
    )


def run_go(binary: Path, *args: str, stdin: str | None = None) -> str | None:
    """None if the Go verifier accepts, else the step it names as failed."""
    run = subprocess.run(
        [str(binary), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if run.returncode == 0:
        assert "FAIL" not in run.stderr, run.stderr
        return None
    assert run.returncode == 1, f"exit {run.returncode}: {run.stdout}{run.stderr}"
    failed = [line for line in run.stderr.splitlines() if line.startswith("FAIL ")]
    assert len(failed) == 1, run.stderr
    return failed[0].removeprefix("FAIL ").split(":", 1)[0]


def go_bundle(binary: Path, bundle: dict[str, Any], key_file: Path) -> str | None:
    return run_go(binary, "bundle", "-key", str(key_file), "-", stdin=json.dumps(bundle))


@pytest.mark.parametrize("form", ["pem", "hex", "vkeys"])
def test_go_accepts_every_valid_bundle_as_python_does(
    go_verifier: Path, evidence: Evidence, form: str
) -> None:
    bundles = {**evidence.inclusion, **evidence.consistency}
    for name, bundle in bundles.items():
        assert verify_bundle(bundle, SIGNER.public_key()).ok, name
        assert go_bundle(go_verifier, bundle, evidence.keys[form]) is None, name


def _flip(b64: str, at: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def _resign_size(note: str) -> str:
    """The note with its tree size changed and its signature kept."""
    origin, size, rest = note.split("\n", 2)
    return f"{origin}\n{int(size) + 1}\n{rest}"


def _flip_signature(note: str) -> str:
    """The note with one bit of its Ed25519 signature flipped (after the 4-byte key ID)."""
    text, _, line = note[:-1].rpartition("\n")
    dash, name, blob = line.split(" ")
    return f"{text}\n{dash} {name} {_flip(blob, 4 + 10)}\n"


Tamper = Callable[[dict[str, Any]], None]


def _set(key: str, value: Callable[[Any], Any]) -> Tamper:
    return lambda b: b.__setitem__(key, value(b[key]))


def _set_leaf(field: str, value: Callable[[Any], Any]) -> Tamper:
    return lambda b: b["leaf"].__setitem__(field, value(b["leaf"][field]))


def _swap_old_new(b: dict[str, Any]) -> None:
    for name in ("size", "root", "checkpoint"):
        b[f"old_{name}"], b[f"new_{name}"] = b[f"new_{name}"], b[f"old_{name}"]


INCLUSION_TAMPERS: dict[str, tuple[Tamper, str]] = {
    "recipient changed": (_set_leaf("recipient_id", lambda _: "someone-else"), "leaf"),
    "time changed by 1 ms": (_set_leaf("occurred_at_ms", lambda t: t + 1), "leaf"),
    "a data category added": (_set_leaf("data_categories", lambda c: [*c, "user.contact"]), "leaf"),
    "a null field given a value": (_set_leaf("legal_reference", lambda _: ""), "leaf"),
    "sensitive flipped": (_set_leaf("sensitive", lambda s: not s), "leaf"),
    "leaf hash flipped": (_set("leaf_hash", _flip), "leaf"),
    "another leaf index": (_set("leaf_index", lambda i: i + 1), "leaf"),
    "a path hash flipped": (_set("inclusion_path", lambda p: [_flip(p[0]), *p[1:]]), "path"),
    "the last path hash flipped": (
        _set("inclusion_path", lambda p: [*p[:-1], _flip(p[-1])]),
        "path",
    ),
    "path cut short": (_set("inclusion_path", lambda p: p[:-1]), "path"),
    "path lengthened": (_set("inclusion_path", lambda p: [*p, p[0]]), "path"),
    "root flipped": (_set("root", _flip), "root"),
    "tree size changed": (_set("tree_size", lambda s: s + 1), "root"),
    "checkpoint text changed": (_set("checkpoint", _resign_size), "signature"),
    "checkpoint signature flipped": (_set("checkpoint", _flip_signature), "signature"),
}

CONSISTENCY_TAMPERS: dict[str, tuple[Tamper, str]] = {
    "a proof hash flipped": (_set("consistency_path", lambda p: [_flip(p[0]), *p[1:]]), "path"),
    "proof cut short": (_set("consistency_path", lambda p: p[:-1]), "path"),
    "old and new swapped": (_swap_old_new, "path"),
    "old root flipped": (_set("old_root", _flip), "root"),
    "new root flipped": (_set("new_root", _flip), "root"),
    "new size changed": (_set("new_size", lambda s: s + 1), "root"),
    "old checkpoint text changed": (_set("old_checkpoint", _resign_size), "signature"),
    "new checkpoint signature flipped": (_set("new_checkpoint", _flip_signature), "signature"),
}
EMPTY_PROOF_UNTOUCHED = ("a proof hash flipped", "proof cut short", "old and new swapped")


@pytest.mark.parametrize("case", sorted(INCLUSION_TAMPERS))
def test_go_rejects_a_tampered_inclusion_bundle_at_the_step_python_names(
    go_verifier: Path, evidence: Evidence, case: str
) -> None:
    change, step = INCLUSION_TAMPERS[case]
    for name, bundle in evidence.inclusion.items():
        forged = copy.deepcopy(bundle)
        change(forged)
        assert verify_bundle(forged, SIGNER.public_key()).step == step, name
        assert go_bundle(go_verifier, forged, evidence.keys["pem"]) == step, name


@pytest.mark.parametrize("case", sorted(CONSISTENCY_TAMPERS))
def test_go_rejects_a_tampered_consistency_bundle_at_the_step_python_names(
    go_verifier: Path, evidence: Evidence, case: str
) -> None:
    change, step = CONSISTENCY_TAMPERS[case]
    for name, bundle in evidence.consistency.items():
        if name == "354 to 354" and case in EMPTY_PROOF_UNTOUCHED:
            continue  # equal sizes: the proof is empty, and old and new are the same
        forged = copy.deepcopy(bundle)
        change(forged)
        assert verify_bundle(forged, SIGNER.public_key()).step == step, name
        assert go_bundle(go_verifier, forged, evidence.keys["pem"]) == step, name


def test_a_checkpoint_of_another_chain_fails_the_signature(
    go_verifier: Path, evidence: Evidence
) -> None:
    bundle = copy.deepcopy(evidence.inclusion["a row of an odd-sized tree"])
    bundle["checkpoint"] = evidence.inclusion["the last row"]["checkpoint"]
    assert verify_bundle(bundle, SIGNER.public_key()).step == "signature"
    assert go_bundle(go_verifier, bundle, evidence.keys["pem"]) == "signature"


@pytest.mark.parametrize("form", ["other pem", "other vkeys"])
def test_go_rejects_every_bundle_under_a_wrong_key(
    go_verifier: Path, evidence: Evidence, form: str
) -> None:
    for name, bundle in {**evidence.inclusion, **evidence.consistency}.items():
        assert verify_bundle(bundle, OTHER.public_key()).step == "signature", name
        assert go_bundle(go_verifier, bundle, evidence.keys[form]) == "signature", name


def _python_note(path: Path, key: Ed25519PublicKey) -> str | None:
    encoded = path.read_text(encoding="utf-8")
    try:
        parse_note(encoded).verify(Verifier.of(encoded.split("\n", 1)[0], key))
    except NoteError:
        return "signature"
    return None


def test_go_opens_the_checkpoint_and_manifest_files_unmodified(
    go_verifier: Path, evidence: Evidence, tmp_path: Path
) -> None:
    notes = evidence.notes_dir
    chains = [notes / TOPIC / "0" / "checkpoint", notes / TOPIC / "1" / "checkpoint"]
    manifest = notes / "manifest"
    for form in ("pem", "hex", "vkeys"):
        key = str(evidence.keys[form])
        for checkpoint in chains:
            assert run_go(go_verifier, "checkpoint", "-key", key, str(checkpoint)) is None
        assert (
            run_go(go_verifier, "manifest", "-key", key, str(manifest), *map(str, chains)) is None
        )
    pem = str(evidence.keys["pem"])
    # An older checkpoint is signed, but is not the one the newest manifest lists.
    older = notes / TOPIC / "0" / "checkpoints" / "150"
    assert run_go(go_verifier, "checkpoint", "-key", pem, str(older)) is None
    assert run_go(go_verifier, "manifest", "-key", pem, str(manifest), str(older)) == "manifest"
    for mode, source, change_text in (
        ("checkpoint", chains[0], _resign_size),
        ("manifest", manifest, _retime),
    ):
        for form in ("other pem", "other vkeys"):
            other = str(evidence.keys[form])
            assert run_go(go_verifier, mode, "-key", other, str(source)) == "signature"
        assert _python_note(source, OTHER.public_key()) == "signature"
        for tamper in (change_text, _flip_signature):
            forged = tmp_path / f"{source.name}.forged"
            forged.write_text(tamper(source.read_text(encoding="utf-8")), encoding="utf-8")
            assert _python_note(forged, SIGNER.public_key()) == "signature"
            assert run_go(go_verifier, mode, "-key", pem, str(forged)) == "signature"


def _retime(note: str) -> str:
    """The manifest with its time changed and its signature kept."""
    return note.replace("\ntime 2", "\ntime 1", 1)


def test_go_refuses_what_the_leaf_hash_does_not_cover(
    go_verifier: Path, evidence: Evidence
) -> None:
    """Stricter than needed for the hash: a field shown beside the leaf but not hashed (a
    subject id, say) would read as proven, and a number sent as a text hides its kind."""
    bundle = evidence.inclusion["a middle row"]
    unhashed = copy.deepcopy(bundle)
    unhashed["leaf"]["subject_id"] = "member-1"
    assert go_bundle(go_verifier, unhashed, evidence.keys["pem"]) == "leaf"
    as_text = copy.deepcopy(bundle)
    as_text["leaf"]["kafka_offset"] = str(as_text["leaf"]["kafka_offset"])
    assert go_bundle(go_verifier, as_text, evidence.keys["pem"]) == "leaf"
    elsewhere = copy.deepcopy(bundle)
    elsewhere["origin"] = ORIGIN + "/another/0"
    assert go_bundle(go_verifier, elsewhere, evidence.keys["pem"]) == "bundle"
