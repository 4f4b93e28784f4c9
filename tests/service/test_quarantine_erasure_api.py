"""``/api/v1/quarantine`` (metadata for investigators; a message's bytes only with a
reason, in the access log first) and ``POST /api/v1/erasures`` (admin, while the ledger
is open and served)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.service.auth.roles import Role
from ledger.key_check import KeyStoreAccess
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET
from tests.service.conftest import PASSWORD, TOPIC, ServiceClient, build_ledger, serving
from tests.service.test_requests_api import access_rows
from tests.unit.events import make_event

BAD_KEY = b"member-7"
BAD_VALUE = b"\x00not a single-object encoded event"


@pytest.fixture
def quarantined_client(tmp_path: Path, reference: ReferenceData) -> Iterator[ServiceClient]:
    """The test ledger plus one message the consumer quarantined: partition 0, offset 20."""
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    with (
        Ledger(path) as ledger,
        SubjectKeyStore(path.with_name(path.name + ".keys.sqlite"), TEST_SECRET) as keys,
    ):
        Ingestor(ledger, keys, reference).ingest([SourceMessage(TOPIC, 0, 20, BAD_KEY, BAD_VALUE)])
    with serving(path, reference) as client:
        yield client


def test_the_listing_shows_metadata_only(quarantined_client: ServiceClient) -> None:
    answer = quarantined_client.client.get(
        "/api/v1/quarantine", headers=quarantined_client.as_role(Role.investigator)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["total"], body["offset"], body["limit"]) == (1, 0, 100)
    (message,) = body["messages"]
    assert (message["topic"], message["partition"], message["offset"]) == (TOPIC, 0, 20)
    assert message["error"] and message["quarantined_at"]
    assert BAD_KEY.decode() not in answer.text and BAD_KEY.hex() not in answer.text
    assert access_rows(quarantined_client) == []


def test_the_listing_pages(quarantined_client: ServiceClient) -> None:
    page = quarantined_client.client.get(
        "/api/v1/quarantine",
        params={"offset": 1, "limit": 5},
        headers=quarantined_client.as_role(Role.investigator),
    ).json()
    assert (page["total"], page["messages"]) == (1, [])


def read_message(sc: ServiceClient, role: Role = Role.investigator, **overrides: Any) -> Any:
    body = {"topic": TOPIC, "partition": 0, "offset": 20, "reason": "INC-42", **overrides}
    return sc.client.post("/api/v1/quarantine/message", json=body, headers=sc.as_role(role))


def read_approved(sc: ServiceClient) -> Any:
    """Ask to read the message, have an admin approve, read it once: the read's answer."""
    asked = read_message(sc)
    assert asked.status_code == 202, asked.text
    approval = asked.json()["approval_id"]
    approved = sc.client.post(
        f"/api/v1/approvals/{approval}/approve", headers=sc.as_role(Role.admin)
    )
    assert approved.status_code == 200, approved.text
    return sc.client.post(
        f"/api/v1/approvals/{approval}/result", headers=sc.as_role(Role.investigator)
    )


def test_a_message_s_bytes_are_logged_before_they_are_given(
    quarantined_client: ServiceClient,
) -> None:
    asked = read_message(quarantined_client)
    assert asked.status_code == 202, asked.text
    approval = asked.json()["approval_id"]
    sc = quarantined_client
    approved = sc.client.post(
        f"/api/v1/approvals/{approval}/approve", headers=sc.as_role(Role.admin)
    )
    assert approved.status_code == 200, approved.text
    answer = sc.client.post(
        f"/api/v1/approvals/{approval}/result", headers=sc.as_role(Role.investigator)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert bytes.fromhex(body["key_hex"]) == BAD_KEY
    assert bytes.fromhex(body["value_hex"]) == BAD_VALUE
    *_, (actor, role, action, reason, pseudonym, rows, detail, _) = access_rows(sc)
    assert (role, action, reason, rows) == ("investigator", "quarantine bytes", "INC-42", 1)
    assert (actor.startswith("token:"), pseudonym) == (True, None)
    assert detail.startswith(f"{TOPIC}/0 offset 20; approval {approval}, approved by token:")


def test_a_message_about_an_erased_subject_is_listed_but_unreadable(
    quarantined_client: ServiceClient,
) -> None:
    """Its Kafka key names a held member: sealed under that member's key, so erasing the
    member reaches it. The listing still shows where it was and why; the bytes are gone."""
    listed = quarantined_client.client.get(
        "/api/v1/quarantine", headers=quarantined_client.as_role(Role.investigator)
    ).json()["messages"]
    assert listed[0]["sealed_with"] is not None
    done = erase(quarantined_client, subject_id=BAD_KEY.decode())
    assert done.status_code == 200, done.text
    assert done.json()["approval"]["outcome"]["erased"] is True
    answer = read_approved(quarantined_client)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["key_hex"], body["value_hex"]) == (None, None)
    assert body["unreadable"] == "sealed under an erased subject's key: unreadable"
    assert body["sealed_with"] == listed[0]["sealed_with"]


@pytest.mark.parametrize(
    ("overrides", "status"),
    [({"reason": ""}, 422), ({"reason": " "}, 422), ({"offset": 21}, 404), ({"offset": -1}, 422)],
)
def test_a_message_without_reason_or_not_there_is_refused_and_not_logged(
    quarantined_client: ServiceClient, overrides: dict[str, Any], status: int
) -> None:
    answer = read_message(quarantined_client, **overrides)
    assert answer.status_code == status
    assert access_rows(quarantined_client) == []


@pytest.mark.parametrize("role", [Role.compliance, Role.auditor, Role.admin])
def test_only_investigators_browse_the_quarantine(
    quarantined_client: ServiceClient, role: Role
) -> None:
    listing = quarantined_client.client.get(
        "/api/v1/quarantine", headers=quarantined_client.as_role(role)
    )
    assert listing.status_code == 403
    assert read_message(quarantined_client, role).status_code == 403
    assert access_rows(quarantined_client) == []


def erase(sc: ServiceClient, role: Role = Role.admin, **overrides: Any) -> Any:
    """Ask for the erasure as ``role`` and, if that was accepted, approve it as a second
    admin: the approval's answer (the erasure's outcome under ``erasure``), else the
    refusal."""
    body = {"subject_type": "member", "subject_id": "member-1", "reason": "DSR-77", **overrides}
    asked = sc.client.post("/api/v1/erasures", json=body, headers=sc.as_role(role))
    if asked.status_code != 202:
        return asked
    return approve_as_second_admin(sc, asked.json()["approval_id"])


def approve_as_second_admin(sc: ServiceClient, approval_id: str) -> Any:
    token = sc.accounts.issue_token(Role.admin, label="approver", created_by="test").token
    return sc.client.post(
        f"/api/v1/approvals/{approval_id}/approve",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_an_erasure_while_the_ledger_is_served(service_client: ServiceClient) -> None:
    know = {"subject_id": "member-1", "reason": "CASE-1", "as_of": "2026-12-01T00:00:00Z"}
    compliance = service_client.as_role(Role.compliance)
    before = service_client.client.post("/api/v1/requests/know", json=know, headers=compliance)
    assert before.json()["data_held"] is True

    answer = erase(service_client)
    assert answer.status_code == 200, answer.text
    body = answer.json()["approval"]["outcome"]
    assert (body["erased"], body["ledger_rows"], body["request_log_links"]) == (True, 6, 1)
    assert answer.json()["lines"][0].startswith("erased the key of one member; 6 ledger row(s)")
    assert "member-1" not in answer.text

    after = service_client.client.post("/api/v1/requests/know", json=know, headers=compliance)
    assert after.json()["data_held"] is False
    with service_client.service.view() as view:
        erasures = view.con.execute(
            "SELECT actor, subject_type, ledger_rows FROM erasures"
        ).fetchall()
    assert erasures == [(body["actor"], "member", 6)]
    actions = [(row[2], row[3]) for row in access_rows(service_client)]
    assert ("erase subject", "DSR-77") in actions

    again = erase(service_client)
    assert again.json()["approval"]["outcome"]["erased"] is False
    assert again.json()["lines"][0].startswith("no key held for that member")


def test_an_erasure_states_what_it_cannot_reach_and_the_request_log_keeps_it(
    quarantined_client: ServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)  # this service has no broker
    monkeypatch.delenv("DISCLOSURE_LEDGER_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    answer = erase(quarantined_client, subject_id=BAD_KEY.decode())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    reach = body["approval"]["outcome"]["outside_reach"]
    (source,) = reach["source_topics"]
    assert source["topic"] == TOPIC
    assert source["retention"]["asked"] is False
    assert "no broker configured" in source["retention"]["problem"]
    assert reach["quarantine"]["sealed_under_erased_key"] == 1
    assert "outside this erasure's reach:" in body["lines"]
    assert any("no broker configured" in line for line in body["lines"])
    service = quarantined_client.service
    with service.view() as view:
        (erasure_id,) = view.con.execute("SELECT erasure_id FROM erasures").fetchone() or ()
    with service.request_log() as log:
        assert log.erasure_statement(str(erasure_id)) == reach


@pytest.mark.parametrize("role", [Role.compliance, Role.investigator, Role.auditor])
def test_only_admins_erase(service_client: ServiceClient, role: Role) -> None:
    assert erase(service_client, role).status_code == 403
    with service_client.service.view() as view:
        tables = {
            r[0] for r in view.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if "erasures" in tables:
            assert view.con.execute("SELECT count(*) FROM erasures").fetchone() == (0,)


def test_an_erasure_needs_a_reason(service_client: ServiceClient) -> None:
    answer = erase(service_client, reason="")
    assert answer.status_code == 422
    assert "member-1" not in answer.text


def test_an_admin_session_must_send_its_csrf_token(service_client: ServiceClient) -> None:
    actor = service_client.accounts.authenticate("user-admin", PASSWORD)
    assert actor is not None
    session, csrf = service_client.accounts.open_session(actor)
    client = service_client.client
    client.cookies.set("dl_session", session)
    body = {"subject_type": "member", "subject_id": "member-2", "reason": "DSR-78"}
    try:
        refused = client.post("/api/v1/erasures", json=body)
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]
        done = client.post("/api/v1/erasures", json=body, headers={"X-CSRF-Token": csrf})
        assert done.status_code == 202
        assert done.json()["requested_by"] == "user-admin"
    finally:
        client.cookies.clear()


def test_an_erasure_while_ingestion_appends(
    service_client: ServiceClient, reference: ReferenceData
) -> None:
    """The ingest thread keeps appending through the owner connection before, during and
    after an erasure made through the API on a view of the same instance."""
    service = service_client.service
    codec = EventCodec()
    batches: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()
    after_erasure = threading.Event()
    erased = threading.Event()

    def ingest() -> None:  # what the service's ingest thread does, batch after batch
        try:
            with service.subject_keys(KeyStoreAccess.derive, service.ledger) as keys:
                ingestor = Ingestor(service.ledger, keys, reference)
                offset = 20  # the test ledger's partition 0 holds offsets 0-19
                while not stop.is_set():
                    events = [
                        make_event(
                            subject={"id": "member-5", "type": "member"},
                            occurred_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
                        )
                        for _ in range(5)
                    ]
                    ingestor.ingest(
                        [
                            SourceMessage(TOPIC, 0, offset + i, b"key", codec.encode(e.to_avro()))
                            for i, e in enumerate(events)
                        ]
                    )
                    offset += len(events)
                    batches.append(offset)
                    if erased.is_set():
                        after_erasure.set()
        except BaseException as exc:
            failures.append(exc)
            after_erasure.set()

    thread = threading.Thread(target=ingest, name="test-ingest")
    thread.start()
    try:
        while not batches and not failures:
            stop.wait(0.01)
        answer = erase(service_client)
        erased.set()
        after_erasure.wait(60)
    finally:
        stop.set()
        thread.join(60)
    assert failures == []
    assert after_erasure.is_set(), "no batch was appended after the erasure"
    assert answer.status_code == 200, answer.text
    assert answer.json()["approval"]["outcome"]["erased"] is True
    with service.view() as view:
        rows = view.con.execute("SELECT count(*) FROM disclosures").fetchone()
    assert rows == (60 + batches[-1] - 20,)
