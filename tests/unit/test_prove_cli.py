"""``prove`` and ``verify-proof`` end to end through the CLI on a real ledger (no broker):
a bundle checked with either key file, each tampered part named, every refusal naming its
input and the fix; and ``report subject --with-proofs``, whose every row the person who
asked can check is about them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from disclosure_ledger.cli import main
from disclosure_ledger.service.client import LedgerClient
from ledger.proof_check import subject_pseudonym
from reference import ReferenceData
from reports.request_log import default_request_log
from tests.conftest import LedgerLocation, both_backends, file_unless_both
from tests.unit.proof_ledger import MEMBERS, ProofLedger, build_proof_ledger

CHAIN = "privacy.disclosures.v1/0"


@pytest.fixture
def ledger_backend(request: pytest.FixtureRequest) -> str:
    return file_unless_both(request)  # the file; both backends where marked @both_backends


@pytest.fixture
def proof_ledger(
    ledger_location: LedgerLocation, subject_secret_env: str, reference: ReferenceData
) -> ProofLedger:
    return build_proof_ledger(ledger_location, reference, subject_secret_env.encode())


def _prove(ledger: ProofLedger, out: Path, *argv: str) -> dict[str, Any]:
    assert main(["prove", "--ledger", ledger.argument, *argv, "--out", str(out)]) == 0
    bundle: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return bundle


def _verify(bundle: Path, key: Path, *argv: str) -> int:
    return main(["verify-proof", str(bundle), "--public-key", str(key), *argv])


@both_backends
def test_a_rows_bundle_verifies_with_either_key_file_and_states_its_limits(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = proof_ledger.covered[7]
    bundle = _prove(proof_ledger, tmp_path / "b.json", "--event-id", event)
    assert bundle["kind"] == "inclusion" and bundle["leaf"]["event_id"] == event
    assert proof_ledger.subjects[event] not in json.dumps(bundle)  # the pseudonym, never the id
    capsys.readouterr()
    for key in (proof_ledger.public_key, proof_ledger.note_key):
        assert _verify(tmp_path / "b.json", key) == 0
        out = capsys.readouterr().out
        assert f"verified: row {bundle['leaf']['seq']} of {bundle['chain']}" in out
        assert "It does not show that a list of rows is complete" in out
    assert main(["prove", "--ledger", proof_ledger.argument, "--event-id", event]) == 0
    assert json.loads(capsys.readouterr().out) == bundle  # standard output by default


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


TAMPERINGS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "a leaf field": ("leaf", lambda b: b["leaf"].__setitem__("recipient_id", "someone-else")),
    "the path": (
        "path",
        lambda b: b["inclusion_path"].__setitem__(0, _flip(b["inclusion_path"][0])),
    ),
    "the root": ("root", lambda b: b.__setitem__("root", _flip(b["root"]))),
    "the signed size": (
        "signature",
        lambda b: b.__setitem__("checkpoint", b["checkpoint"].replace("\n20\n", "\n21\n", 1)),
    ),
}


@pytest.mark.parametrize("what", TAMPERINGS)
def test_a_tampered_bundle_fails_at_the_step_that_shows_it(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    step, tamper = TAMPERINGS[what]
    bundle = _prove(proof_ledger, tmp_path / "b.json", "--event-id", proof_ledger.covered[0])
    assert "\n20\n" in bundle["checkpoint"], bundle["checkpoint"]
    tamper(bundle)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(bundle), encoding="utf-8")
    capsys.readouterr()
    assert _verify(forged, proof_ledger.public_key) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"FAIL {step}: {forged}: "), captured.err
    assert "verified" not in captured.out


def test_a_key_of_another_log_or_another_key_is_refused(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.notes import verifier_key
    from tests.unit.proof_ledger import SIGNER

    _prove(proof_ledger, tmp_path / "b.json", "--event-id", proof_ledger.covered[0])
    other_log = tmp_path / "other-log.vkey"
    other_log.write_text(verifier_key("other.example/log", SIGNER.public_key()))
    other_key = tmp_path / "other-key.vkey"
    other_key.write_text(
        verifier_key("ledger.example.com/proofs", Ed25519PrivateKey.generate().public_key())
    )
    capsys.readouterr()
    assert _verify(tmp_path / "b.json", other_log) == 1
    assert capsys.readouterr().err.startswith(f"FAIL key: {tmp_path / 'b.json'}: the verifier key")
    assert _verify(tmp_path / "b.json", other_key) == 1
    assert capsys.readouterr().err.startswith("FAIL signature: ")


@both_backends
def test_a_consistency_proof_between_two_checkpoints(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _prove(
        proof_ledger, tmp_path / "c.json", "--chain", CHAIN, "--from", "10", "--to", "20"
    )
    assert (bundle["kind"], bundle["old_size"], bundle["new_size"]) == ("consistency", 10, 20)
    capsys.readouterr()
    assert _verify(tmp_path / "c.json", proof_ledger.note_key) == 0
    out = capsys.readouterr().out
    assert "the log of 20 rows extends the log of 10 rows" in out
    assert "says nothing of rows that were never written" in out
    bundle["old_root"] = _flip(bundle["old_root"])
    (tmp_path / "c.json").write_text(json.dumps(bundle))
    assert _verify(tmp_path / "c.json", proof_ledger.note_key) == 1
    assert capsys.readouterr().err.startswith("FAIL root: ")


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) != 0
    return capsys.readouterr().err


def test_what_cannot_be_proven_is_refused_naming_the_input_and_the_fix(
    proof_ledger: ProofLedger, capsys: pytest.CaptureFixture[str]
) -> None:
    prove = ["prove", "--ledger", proof_ledger.argument]
    unknown = "00000000-0000-4000-8000-000000000000"
    err = _error(capsys, [*prove, "--event-id", unknown])
    assert f"event {unknown} is not in the ledger" in err and "status" in err
    late = proof_ledger.uncovered[0]
    err = _error(capsys, [*prove, "--event-id", late])
    assert f"event {late}: no signed checkpoint covers row" in err
    assert "ask again after the next one" in err
    err = _error(capsys, [*prove, "--chain", CHAIN, "--from", "11", "--to", "20"])
    assert "--from 11 --to 20 are not both checkpointed sizes" in err
    assert "Checkpointed sizes: 10, 20" in err
    err = _error(capsys, [*prove, "--event-id", late, "--chain", CHAIN])
    assert "prove needs --event-id ID" in err and "not both" in err


def test_a_file_that_is_no_bundle_or_no_key_is_named(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _prove(proof_ledger, tmp_path / "b.json", "--event-id", proof_ledger.covered[0])
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    err = _error(
        capsys, ["verify-proof", str(broken), "--public-key", str(proof_ledger.public_key)]
    )
    assert f"cannot read {broken} as a proof bundle" in err
    other = tmp_path / "other.json"
    other.write_text('{"report": "ccpa-report/1"}', encoding="utf-8")
    err = _error(capsys, ["verify-proof", str(other), "--public-key", str(proof_ledger.public_key)])
    assert f"{other} is not a disclosure-ledger-proof/1 bundle" in err
    bad_key = tmp_path / "bad.pub"
    bad_key.write_text("not a key\n", encoding="utf-8")
    err = _error(capsys, ["verify-proof", str(tmp_path / "b.json"), "--public-key", str(bad_key)])
    assert f"{bad_key} is neither an Ed25519 public key" in err and "keys generate" in err


def test_a_bundle_is_checked_to_be_about_the_person_given(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = _subject_answer(proof_ledger, tmp_path, capsys)
    subject_key = answer["proofs"]["pseudonym"]["subject_key"]
    row = next(r for r in answer["proofs"]["rows"] if r["bundle"] is not None)
    (tmp_path / "row.json").write_text(json.dumps(row["bundle"]), encoding="utf-8")
    key = proof_ledger.public_key
    about = ["--subject-key", subject_key, "--subject-id"]
    assert _verify(tmp_path / "row.json", key, *about, MEMBERS[0]) == 0
    assert "is that of member member-0" in capsys.readouterr().out
    assert _verify(tmp_path / "row.json", key, *about, MEMBERS[1]) == 1
    assert capsys.readouterr().err.startswith("FAIL subject: ")


def _subject_answer(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str], *more: str
) -> dict[str, Any]:
    out = tmp_path / "answer.json"
    argv = [
        "report",
        "subject",
        "--ledger",
        proof_ledger.argument,
        "--subject-id",
        MEMBERS[0],
        "--as-of",
        "2026-12-01",
        "--since",
        "2026-01-01",
        "--format",
        "json",
        "--with-proofs",
        "--output",
        str(out),
        *more,
    ]
    assert main(argv) == 0
    capsys.readouterr()
    answer: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return answer


@both_backends
def test_a_subject_answer_with_proofs_lets_the_person_check_every_row(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = _subject_answer(proof_ledger, tmp_path, capsys)
    proofs = answer["proofs"]
    person = proofs["pseudonym"]
    assert (person["subject_type"], person["subject_id"]) == ("member", MEMBERS[0])
    # What the person receives is enough to recompute their pseudonym from their own id.
    recomputed = subject_pseudonym(bytes.fromhex(person["subject_key"]), "member", MEMBERS[0])
    assert recomputed == person["pseudonym"]
    assert "HMAC-SHA-256" in person["formula"] and "link these rows" in person["consequences"]
    assert "never shows that this list is complete" in proofs["limits"]
    rows = proofs["rows"]
    theirs = [e for e, s in proof_ledger.subjects.items() if s == MEMBERS[0]]
    assert sorted(r["event_id"] for r in rows) == sorted(theirs)
    assert len(rows) == sum(c["events"] for c in answer["categories"])
    late = {r["event_id"]: r for r in rows if r["bundle"] is None}
    assert set(late) == set(proof_ledger.uncovered)  # said per row, the answer still given
    assert all("no signed checkpoint covers" in r["not_covered"] for r in late.values())
    for row in rows:
        if row["bundle"] is not None:
            assert row["bundle"]["leaf"]["subject_pseudonym"] == recomputed
    assert _verify(tmp_path / "answer.json", proof_ledger.note_key) == 0
    out = capsys.readouterr().out
    covered = len(rows) - len(late)
    assert f"{covered} of {len(rows)} rows verified, each about member {MEMBERS[0]}" in out
    assert f"{len(late)} not yet covered by a signed checkpoint; 0 failed" in out
    assert "never shows that this list is complete" in out


def test_an_answer_whose_person_was_changed_fails_its_rows(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = _subject_answer(proof_ledger, tmp_path, capsys)
    answer["proofs"]["pseudonym"]["subject_id"] = MEMBERS[1]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(answer), encoding="utf-8")
    assert _verify(forged, proof_ledger.public_key) == 1
    captured = capsys.readouterr()
    assert "FAIL subject: " in captured.err
    assert "0 of" in captured.out and "failed" in captured.out


def test_a_rows_bundle_swapped_for_another_rows_is_caught(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A valid bundle of someone else's row put in place of one of the person's."""
    answer = _subject_answer(proof_ledger, tmp_path, capsys)
    other = next(e for e in proof_ledger.covered if proof_ledger.subjects[e] != MEMBERS[0])
    stranger = _prove(proof_ledger, tmp_path / "other.json", "--event-id", other)
    row = next(r for r in answer["proofs"]["rows"] if r["bundle"] is not None)
    row["bundle"] = stranger
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(answer), encoding="utf-8")
    capsys.readouterr()
    assert _verify(forged, proof_ledger.public_key) == 1
    assert f"FAIL leaf: {forged} event {row['event_id']}: " in capsys.readouterr().err
    row["event_id"] = other  # the row relabelled too: its pseudonym is not the person's
    forged.write_text(json.dumps(answer), encoding="utf-8")
    assert _verify(forged, proof_ledger.public_key) == 1
    assert f"FAIL subject: {forged} event {other}: " in capsys.readouterr().err


def test_report_subject_through_the_service_asks_for_the_proofs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[dict[str, Any]] = []

    def service(request: httpx2.Request) -> httpx2.Response:
        asked.append(json.loads(request.content))
        return httpx2.Response(200, text="{}")

    def client(_args: object) -> LedgerClient:
        return LedgerClient("http://ledger.test", "t", transport=httpx2.MockTransport(service))

    monkeypatch.setattr("disclosure_ledger.commands.reports.service_client", client)
    argv = ["report", "subject", "--server", "http://ledger.test", "--subject-id", MEMBERS[0]]
    argv += ["--as-of", "2026-12-01", "--reason", "DSAR-1", "--format", "json"]
    assert main([*argv, "--with-proofs"]) == 0
    assert main(argv) == 0
    assert asked[0]["with_proofs"] is True and "with_proofs" not in asked[1]


def test_proofs_are_refused_in_a_format_that_cannot_carry_them_before_anything_is_logged(
    proof_ledger: ProofLedger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "subject", "--ledger", proof_ledger.argument, "--subject-id", MEMBERS[0]]
    err = _error(capsys, [*argv, "--as-of", "2026-12-01", "--with-proofs", "--format", "md"])
    assert "--with-proofs" in err and "give --format json" in err
    assert not default_request_log(proof_ledger.path).exists()


def test_prove_through_the_service_asks_its_routes(
    proof_ledger: ProofLedger,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI's side: the paths and parameters the service's /proofs routes take
    (tests/service/test_proofs_api.py serves them for real)."""
    asked: list[tuple[str, dict[str, str]]] = []

    def service(request: httpx2.Request) -> httpx2.Response:
        asked.append((request.url.path, dict(request.url.params)))
        return httpx2.Response(200, json={"format": "disclosure-ledger-proof/1", "kind": "x"})

    def client(_args: object) -> LedgerClient:
        return LedgerClient("http://ledger.test", "t", transport=httpx2.MockTransport(service))

    monkeypatch.setattr("disclosure_ledger.commands.proofs.service_client", client)
    served = ["prove", "--server", "http://ledger.test"]
    err = _error(capsys, [*served, "--event-id", proof_ledger.covered[0]])
    assert "give --reason" in err
    assert main([*served, "--event-id", proof_ledger.covered[0], "--reason", "CASE-1"]) == 0
    assert main([*served, "--chain", CHAIN, "--from", "10", "--to", "20"]) == 0
    assert asked == [
        (f"/api/v1/proofs/events/{proof_ledger.covered[0]}", {"reason": "CASE-1"}),
        ("/api/v1/proofs/consistency", {"chain": CHAIN, "from": "10", "to": "20"}),
    ]
