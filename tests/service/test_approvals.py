"""Two people for the irreversible acts: an erasure and a quarantined message's bytes wait
for a second admin (``/api/v1/approvals``); every step is in the access log."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from disclosure_ledger.service import approvals as approvals_module
from disclosure_ledger.service.approvals import default_approval_store
from disclosure_ledger.service.auth.roles import Role
from ledger.key_check import KeyStoreAccess
from reference import ReferenceData
from tests.service.conftest import ServiceClient, build_ledger, serving
from tests.service.test_console import sign_in
from tests.service.test_quarantine_erasure_api import (
    BAD_KEY,
    BAD_VALUE,
    TOPIC,
    quarantined_client,  # noqa: F401  (a fixture)
)
from tests.service.test_requests_api import access_rows

SUBJECT = "member-1"


def second_admin(sc: ServiceClient) -> dict[str, str]:
    """Headers of another admin's token (the fixture's admin token is the first)."""
    token = sc.accounts.issue_token(Role.admin, label="second admin", created_by="test").token
    return {"Authorization": f"Bearer {token}"}


def ask_erasure(sc: ServiceClient, subject_id: str = SUBJECT) -> Any:
    body = {"subject_type": "member", "subject_id": subject_id, "reason": "DSR-77"}
    answer = sc.client.post("/api/v1/erasures", json=body, headers=sc.as_role(Role.admin))
    assert answer.status_code == 202, answer.text
    return answer.json()


def key_held(sc: ServiceClient, subject_id: str = SUBJECT) -> bool:
    service = sc.service
    with service.view() as view, service.subject_keys(KeyStoreAccess.read, view) as keys:
        return keys.pseudonym("member", subject_id) is not None


def actions(sc: ServiceClient) -> list[tuple[str, str]]:
    return [(row[0], row[2]) for row in access_rows(sc)]


def decide(sc: ServiceClient, approval_id: str, verb: str, headers: dict[str, str]) -> Any:
    return sc.client.post(f"/api/v1/approvals/{approval_id}/{verb}", headers=headers)


def test_an_erasure_waits_for_a_second_admin(service_client: ServiceClient) -> None:
    sc = service_client
    asked = ask_erasure(sc)
    assert asked["status"] == "pending" and asked["summary"] == "subject_type member"
    assert SUBJECT not in str(asked)
    assert key_held(sc)  # nothing erased yet

    listing = sc.client.get("/api/v1/approvals", headers=second_admin(sc)).json()
    assert [a["approval_id"] for a in listing["approvals"]] == [asked["approval_id"]]
    assert SUBJECT not in str(listing)

    own = decide(sc, asked["approval_id"], "approve", sc.as_role(Role.admin))
    assert own.status_code == 403
    assert own.json()["error"] == "self_approval"
    assert "cannot approve their own request" in own.json()["detail"]
    assert key_held(sc)

    approver = second_admin(sc)
    done = decide(sc, asked["approval_id"], "approve", approver)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["approval"]["status"] == "executed"
    assert body["lines"][0].startswith("erased the key of one member; 6 ledger row(s)")
    assert not key_held(sc)
    asker, approved_by = asked["requested_by"], body["approval"]["decided_by"]
    with sc.service.view() as view:
        journal = view.con.execute("SELECT actor, approved_by FROM erasures").fetchall()
    assert journal == [(asker, approved_by)] and asker != approved_by

    logged = actions(sc)
    assert (asker, "request erasure") in logged
    assert (approved_by, "approve erasure request") in logged
    assert (asker, "erase subject") in logged
    assert logged.index((approved_by, "approve erasure request")) < logged.index(
        (asker, "erase subject")
    )
    again = decide(sc, asked["approval_id"], "approve", approver)
    assert (again.status_code, again.json()["error"]) == (409, "not_pending")


def test_a_rejected_erasure_leaves_the_key(service_client: ServiceClient) -> None:
    sc = service_client
    asked = ask_erasure(sc)
    assert decide(sc, asked["approval_id"], "reject", sc.as_role(Role.admin)).status_code == 403
    rejected = decide(sc, asked["approval_id"], "reject", second_admin(sc))
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["approval"]["status"] == "rejected"
    assert key_held(sc)
    assert "reject erasure request" in [action for _, action in actions(sc)]
    with sc.service.view() as view:
        tables = {
            r[0] for r in view.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if "erasures" in tables:
            assert view.con.execute("SELECT count(*) FROM erasures").fetchone() == (0,)


def test_only_the_asker_withdraws(service_client: ServiceClient) -> None:
    sc = service_client
    asked = ask_erasure(sc)
    other = decide(sc, asked["approval_id"], "withdraw", second_admin(sc))
    assert (other.status_code, other.json()["error"]) == (403, "not_yours")
    own = decide(sc, asked["approval_id"], "withdraw", sc.as_role(Role.admin))
    assert own.json()["approval"]["status"] == "withdrawn"
    late = decide(sc, asked["approval_id"], "approve", second_admin(sc))
    assert late.status_code == 409
    assert key_held(sc)


@pytest.mark.parametrize("role", [Role.compliance, Role.investigator, Role.auditor])
def test_only_admins_approve(service_client: ServiceClient, role: Role) -> None:
    asked = ask_erasure(service_client)
    refused = decide(service_client, asked["approval_id"], "approve", service_client.as_role(role))
    assert refused.status_code == 403
    assert key_held(service_client)


def test_the_pending_subject_id_is_sealed_and_deleted_when_decided(
    service_client: ServiceClient,
) -> None:
    sc = service_client
    path = default_approval_store(sc.service.config.ledger)
    subject = "member-7-a-distinctive-id"
    asked = ask_erasure(sc, subject)
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert subject.encode() not in raw
    with closing(sqlite3.connect(path)) as db:
        (sealed,) = db.execute("SELECT sealed_parameters FROM approvals").fetchone()
    assert sealed.startswith(b"aesgcm1:")
    decide(sc, asked["approval_id"], "withdraw", sc.as_role(Role.admin))
    with closing(sqlite3.connect(path)) as db:
        sealed = db.execute(
            "SELECT sealed_parameters FROM approvals WHERE approval_id = ?",
            [asked["approval_id"]],
        ).fetchone()
    assert sealed == (None,)
    assert path.stat().st_mode & 0o077 == 0


def test_a_pending_request_expires(
    service_client: ServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = service_client
    asked = ask_erasure(sc)
    later = datetime.now(UTC) + timedelta(days=7, minutes=1)
    monkeypatch.setattr(approvals_module, "_utc_now", lambda: later)
    late = decide(sc, asked["approval_id"], "approve", second_admin(sc))
    assert (late.status_code, late.json()["error"]) == (409, "not_pending")
    assert "expired" in late.json()["detail"]
    assert key_held(sc)
    assert ("service", "expire erasure request") in actions(sc)
    shown = sc.client.get(
        f"/api/v1/approvals/{asked['approval_id']}", headers=sc.as_role(Role.admin)
    ).json()
    assert shown["status"] == "expired"


def test_pending_requests_survive_a_restart(tmp_path: Path, reference: ReferenceData) -> None:
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    with serving(path, reference) as sc:
        asked = ask_erasure(sc)
    (tmp_path / "ledger.duckdb.users.sqlite").unlink()  # serving() makes its users afresh
    with serving(path, reference) as sc:
        done = decide(sc, asked["approval_id"], "approve", second_admin(sc))
        assert done.json()["approval"]["status"] == "executed", done.text
        assert not key_held(sc)


# -- unsealing a quarantined message ----------------------------------------------------
def ask_read(sc: ServiceClient) -> Any:
    body = {"topic": TOPIC, "partition": 0, "offset": 20, "reason": "INC-42"}
    answer = sc.client.post(
        "/api/v1/quarantine/message", json=body, headers=sc.as_role(Role.investigator)
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_unsealing_needs_an_admin_and_reads_once(
    quarantined_client: ServiceClient,  # noqa: F811
) -> None:
    sc = quarantined_client
    investigator = sc.as_role(Role.investigator)
    asked = ask_read(sc)
    assert asked["status"] == "pending" and BAD_KEY.hex() not in str(asked)
    early = decide(sc, asked["approval_id"], "result", investigator)
    assert (early.status_code, early.json()["error"]) == (409, "not_pending")
    assert decide(sc, asked["approval_id"], "approve", investigator).status_code == 403

    approved = decide(sc, asked["approval_id"], "approve", sc.as_role(Role.admin))
    assert approved.json()["approval"]["status"] == "approved", approved.text
    not_theirs = decide(sc, asked["approval_id"], "result", second_investigator(sc))
    assert (not_theirs.status_code, not_theirs.json()["error"]) == (403, "not_yours")

    read = decide(sc, asked["approval_id"], "result", investigator)
    assert read.status_code == 200, read.text
    assert bytes.fromhex(read.json()["key_hex"]) == BAD_KEY
    assert bytes.fromhex(read.json()["value_hex"]) == BAD_VALUE
    assert decide(sc, asked["approval_id"], "result", investigator).status_code == 409

    rows = access_rows(sc)
    logged = [row[2] for row in rows]
    assert logged == [
        "request quarantine bytes",
        "approve quarantine bytes request",
        "quarantine bytes",
    ]
    assert "approved by token:" in rows[-1][6]


def second_investigator(sc: ServiceClient) -> dict[str, str]:
    token = sc.accounts.issue_token(Role.investigator, label="another", created_by="test").token
    return {"Authorization": f"Bearer {token}"}


def test_an_approved_read_lapses_after_its_window(
    quarantined_client: ServiceClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sc = quarantined_client
    asked = ask_read(sc)
    decide(sc, asked["approval_id"], "approve", sc.as_role(Role.admin))
    later = datetime.now(UTC) + timedelta(hours=1, minutes=1)
    monkeypatch.setattr(approvals_module, "_utc_now", lambda: later)
    late = decide(sc, asked["approval_id"], "result", sc.as_role(Role.investigator))
    assert late.status_code == 409
    assert "quarantine bytes" not in [row[2] for row in access_rows(sc)]


def test_the_console_asks_approves_and_reads_once(
    quarantined_client: ServiceClient,  # noqa: F811
) -> None:
    sc = quarantined_client
    client = sc.client
    csrf = sign_in(client, Role.investigator)
    form = {"csrf_token": csrf, "topic": TOPIC, "partition": "0", "offset": "20", "reason": "C-5"}
    asked = client.post("/quarantine/message", data=form)
    assert asked.status_code == 200, asked.text
    assert "Submitted for approval" in asked.text and BAD_KEY.decode() not in asked.text
    found = re.search(r"quarantine bytes request ([0-9a-f]{16})", asked.text)
    assert found
    approval = found[1]
    early = client.post(f"/approvals/{approval}/result", data={"csrf_token": csrf})
    assert early.status_code == 409

    decided = decide(sc, approval, "approve", sc.as_role(Role.admin))
    assert decided.status_code == 200, decided.text
    page = client.get("/quarantine")
    assert f'id="read-{approval}"' in page.text
    forged = client.post(f"/approvals/{approval}/result", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    read = client.post(f"/approvals/{approval}/result", data={"csrf_token": csrf})
    assert read.status_code == 200, read.text
    assert BAD_KEY.decode() in read.text
    again = client.post(f"/approvals/{approval}/result", data={"csrf_token": csrf})
    assert again.status_code == 409 and "its one read was made" in again.text
