"""``/api/v1/proofs``: the bundles ``prove`` writes, served from the ledger the service holds;
a row's bundle only to the roles that read disclosure rows, and recorded in the access log;
and a request to know answered with a bundle per row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from disclosure_ledger.service.auth.roles import Role
from ledger.checkpoints import load_public_key
from ledger.proofs import event_bundle, verify_bundle
from ledger.store import Ledger
from reference import ReferenceData
from tests.conftest import TEST_SECRET
from tests.service.conftest import ServiceClient, serving
from tests.unit.proof_ledger import MEMBERS, ProofLedger, build_proof_ledger

CHAIN = "privacy.disclosures.v1/0"


@pytest.fixture
def proof_ledger(tmp_path: Path, reference: ReferenceData) -> ProofLedger:
    return build_proof_ledger(tmp_path / "ledger.duckdb", reference, TEST_SECRET)


@pytest.fixture
def served(proof_ledger: ProofLedger, reference: ReferenceData) -> Iterator[ServiceClient]:
    with serving(proof_ledger.path, reference) as client:
        yield client


def _access_log(served: ServiceClient) -> list[dict[str, object]]:
    answer = served.client.get(
        "/api/v1/access-log", params={"since": "2000-01-01"}, headers=served.as_role(Role.admin)
    )
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, object]] = answer.json()["entries"]
    return entries


def test_a_rows_bundle_is_the_files_and_its_read_is_logged(
    served: ServiceClient, proof_ledger: ProofLedger
) -> None:
    event = proof_ledger.covered[3]
    for role in (Role.compliance, Role.investigator):
        answer = served.client.get(
            f"/api/v1/proofs/events/{event}",
            params={"reason": "CASE-7"},
            headers=served.as_role(role),
        )
        assert answer.status_code == 200, answer.text
        bundle = answer.json()
        assert verify_bundle(bundle, load_public_key(proof_ledger.public_key)).ok
    logged = [e for e in _access_log(served) if e["action"] == "prove"]
    served.service.stop()
    with Ledger(proof_ledger.path, read_only=True) as ledger:
        assert bundle == event_bundle(ledger.con, event)
    assert [(e["role"], e["reason"], e["rows_returned"]) for e in logged] == [
        ("compliance", "CASE-7", 1),
        ("investigator", "CASE-7", 1),
    ]
    assert logged[0]["subject_pseudonym"] == bundle["leaf"]["subject_pseudonym"]


def test_a_rows_bundle_is_refused_without_a_reason_or_to_roles_reading_no_rows(
    served: ServiceClient, proof_ledger: ProofLedger
) -> None:
    path = f"/api/v1/proofs/events/{proof_ledger.covered[0]}"
    for role in (Role.auditor, Role.admin):
        answer = served.client.get(path, params={"reason": "x"}, headers=served.as_role(role))
        assert answer.status_code == 403, (role, answer.text)
    answer = served.client.get(path, headers=served.as_role(Role.compliance))
    assert answer.status_code == 422
    assert _access_log(served) == []


def test_what_cannot_be_proven_is_refused_naming_the_input(
    served: ServiceClient, proof_ledger: ProofLedger
) -> None:
    headers = served.as_role(Role.investigator)
    unknown = "00000000-0000-4000-8000-000000000000"
    answer = served.client.get(
        f"/api/v1/proofs/events/{unknown}", params={"reason": "x"}, headers=headers
    )
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert f"event {unknown} is not in the ledger" in answer.json()["detail"]
    late = proof_ledger.uncovered[0]
    answer = served.client.get(
        f"/api/v1/proofs/events/{late}", params={"reason": "x"}, headers=headers
    )
    assert answer.status_code == 422
    assert f"event {late}: no signed checkpoint covers row" in answer.json()["detail"]
    answer = served.client.get(
        "/api/v1/proofs/consistency",
        params={"chain": CHAIN, "from": 5, "to": 20},
        headers=headers,
    )
    assert answer.status_code == 422
    assert "Checkpointed sizes: 10, 20" in answer.json()["detail"]
    assert _access_log(served) == []


def test_a_consistency_proof_for_every_role(
    served: ServiceClient, proof_ledger: ProofLedger
) -> None:
    key = load_public_key(proof_ledger.public_key)
    for role in Role:
        answer = served.client.get(
            "/api/v1/proofs/consistency",
            params={"chain": CHAIN, "from": 10, "to": 20},
            headers=served.as_role(role),
        )
        assert answer.status_code == 200, (role, answer.text)
        assert verify_bundle(answer.json(), key).ok
    assert _access_log(served) == []  # no row read


def _know(served: ServiceClient, **more: object) -> dict[str, object]:
    return {
        "subject_id": MEMBERS[0],
        "reason": "DSAR-1",
        "as_of": "2026-12-01T00:00:00Z",
        "since": "2026-01-01T00:00:00Z",
        **more,
    }


def test_a_request_to_know_with_proofs_gives_a_bundle_per_row(
    served: ServiceClient, proof_ledger: ProofLedger
) -> None:
    headers = served.as_role(Role.compliance)
    answer = served.client.post(
        "/api/v1/requests/know", json=_know(served, with_proofs=True), headers=headers
    )
    assert answer.status_code == 200, answer.text
    proofs = answer.json()["proofs"]
    theirs = {e for e, s in proof_ledger.subjects.items() if s == MEMBERS[0]}
    assert {r["event_id"] for r in proofs["rows"]} == theirs
    key = load_public_key(proof_ledger.public_key)
    for row in proofs["rows"]:
        if row["event_id"] in proof_ledger.uncovered:
            assert row["bundle"] is None and "no signed checkpoint" in row["not_covered"]
        else:
            assert verify_bundle(row["bundle"], key).ok
    assert proofs["pseudonym"]["subject_id"] == MEMBERS[0]
    plain = served.client.post("/api/v1/requests/know", json=_know(served), headers=headers)
    assert "proofs" not in plain.json()
    refused = served.client.post(
        "/api/v1/requests/know",
        json=_know(served, with_proofs=True, format="md"),
        headers=headers,
    )
    assert refused.status_code == 422 and "format json" in refused.json()["detail"]
    details = [e["detail"] for e in _access_log(served) if e["action"] == "report subject"]
    assert len(details) == 2 and "with proofs" in str(details[0])
    assert "with proofs" not in str(details[1])
