"""The request register: deadlines, the one extension, identity before an answer, the
answer's hash, the 7102 metrics from the register, and an erased person unlinked."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from reports.errors import ReportError
from reports.request_log import ReceivedVia, RequestKind, RequestLog
from reports.request_metrics import requests_json, requests_report
from reports.request_register import (
    DenialGround,
    Law,
    RequestRegister,
    Status,
    select_entries,
    sha256_of_file,
)
from reports.subject import deny_subject_request
from tests.conftest import TEST_SECRET

OPENED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def register(tmp_path: Path) -> RequestRegister:
    return RequestRegister(tmp_path / "ledger.duckdb.requests.sqlite", TEST_SECRET)


def _open(
    register: RequestRegister,
    received_on: date,
    *,
    law: Law = Law.ccpa,
    kind: RequestKind = RequestKind.know,
    subject_id: str = "member-0000001",
) -> str:
    entry = register.open_request(
        kind=kind,
        law=law,
        subject_type="member",
        subject_id=subject_id,
        received_on=received_on,
        received_via=ReceivedVia.email,
        opened_by="carol",
        opened_at=OPENED_AT,
    )
    return entry.request_id


@pytest.mark.parametrize(
    ("law", "received", "due", "extended"),
    [
        (Law.ccpa, date(2026, 1, 31), date(2026, 3, 17), date(2026, 5, 1)),
        (Law.ccpa, date(2026, 11, 20), date(2027, 1, 4), date(2027, 2, 18)),
        (Law.gdpr, date(2026, 1, 15), date(2026, 2, 15), date(2026, 4, 15)),
        (Law.gdpr, date(2026, 1, 31), date(2026, 2, 28), date(2026, 4, 30)),
        (Law.gdpr, date(2024, 1, 31), date(2024, 2, 29), date(2024, 4, 30)),
        (Law.gdpr, date(2026, 3, 31), date(2026, 4, 30), date(2026, 6, 30)),
        (Law.gdpr, date(2026, 11, 30), date(2026, 12, 30), date(2027, 2, 28)),
    ],
)
def test_the_deadline_and_the_one_extension_are_exact(
    register: RequestRegister, law: Law, received: date, due: date, extended: date
) -> None:
    request_id = _open(register, received, law=law)
    assert register.entry(request_id).deadline == due
    after = register.extend(request_id, notice_sent_on=received, reason="many systems to search")
    assert after.status is Status.extended
    assert after.due_on == due and after.deadline == extended
    with pytest.raises(ReportError, match="one extension"):
        register.extend(request_id, notice_sent_on=received, reason="again")


def test_the_extension_notice_must_go_out_within_the_first_period(
    register: RequestRegister,
) -> None:
    request_id = _open(register, date(2026, 1, 31), law=Law.gdpr)
    with pytest.raises(ReportError, match="first deadline \\(2026-02-28\\)"):
        register.extend(request_id, notice_sent_on=date(2026, 3, 1), reason="late notice")
    assert register.entry(request_id).status is Status.open


def test_an_overdue_request_is_listed_and_one_due_soon_too(register: RequestRegister) -> None:
    overdue = _open(register, date(2026, 9, 1))  # due 2026-10-16
    soon = _open(register, date(2026, 10, 20), subject_id="member-2")  # due 2026-12-04
    later = _open(register, date(2026, 11, 30), law=Law.gdpr, subject_id="m3")  # 2026-12-30
    as_of = date(2026, 12, 1)
    entries = register.register_entries()
    assert [e.request_id for e in select_entries(entries, as_of=as_of, overdue=True)] == [overdue]
    within = select_entries(entries, as_of=as_of, due_within=7)
    assert [e.request_id for e in within] == [overdue, soon]
    everything = select_entries(entries, as_of=as_of)
    assert [e.request_id for e in everything] == [overdue, soon, later]
    # on its deadline day a request is still in time
    assert not register.entry(soon).overdue_on(date(2026, 12, 4))
    assert register.entry(soon).overdue_on(date(2026, 12, 5))


def test_no_answer_before_the_identity_is_verified(
    register: RequestRegister, tmp_path: Path
) -> None:
    request_id = _open(register, date(2026, 11, 20))
    answer = tmp_path / "answer.pdf"
    answer.write_bytes(b"%PDF- the categories disclosed")
    digest = sha256_of_file(answer)
    with pytest.raises(ReportError, match="identity is verified"):
        register.answer(
            request_id,
            answered_by="carol",
            document_sha256=digest,
            stored_at=None,
            response_detail="sent",
        )
    assert register.entry(request_id).status is Status.open
    register.verify_identity(
        request_id, method="email code", verified_by="dave", verified_at=OPENED_AT
    )
    done = register.answer(
        request_id,
        answered_by="carol",
        document_sha256=digest,
        stored_at="s3://answers/1.pdf",
        response_detail="sent",
        recorded_at=OPENED_AT,
    )
    assert done.status is Status.answered
    assert done.answer_sha256 == hashlib.sha256(b"%PDF- the categories disclosed").hexdigest()
    assert done.answer_stored_at == "s3://answers/1.pdf"
    assert done.identity is not None and done.identity.verified_by == "dave"
    assert done.responded_on == date(2026, 12, 1)
    with pytest.raises(ReportError, match="already answered"):
        register.deny(request_id, ground=DenialGround.other, basis="x", denied_by="carol")


def test_a_ccpa_opt_out_needs_no_identity_check(register: RequestRegister) -> None:
    request_id = _open(register, date(2026, 11, 20), kind=RequestKind.opt_out)
    done = register.answer(
        request_id,
        answered_by="carol",
        document_sha256="0" * 64,
        stored_at=None,
        response_detail="opted out",
    )
    assert done.status is Status.answered


def test_a_deletion_answered_by_an_erasure_names_it(register: RequestRegister) -> None:
    request_id = _open(register, date(2026, 11, 20), kind=RequestKind.delete)
    register.verify_identity(request_id, method="account login", verified_by="dave")
    done = register.answer(
        request_id,
        answered_by="carol",
        document_sha256=None,
        stored_at=None,
        response_detail="erased",
        erasure_id="erasure-123",
    )
    assert done.erasure_id == "erasure-123"


def test_metrics_come_from_the_register(register: RequestRegister) -> None:
    # one answered late, one denied as unverifiable, one open and overdue, one open in time
    late = _open(register, date(2026, 6, 1))
    register.verify_identity(late, method="email code", verified_by="dave")
    register.answer(
        late,
        answered_by="carol",
        document_sha256="1" * 64,
        stored_at=None,
        response_detail="sent",
        answered_on=date(2026, 7, 20),
        recorded_at=OPENED_AT,
    )
    denied = _open(register, date(2026, 6, 2), kind=RequestKind.delete, subject_id="m2")
    register.deny(
        denied,
        ground=DenialGround.not_verifiable,
        basis="no answer to the verification email",
        denied_by="carol",
        denied_on=date(2026, 6, 30),
    )
    _open(register, date(2026, 9, 1), subject_id="m3")  # overdue on 2026-12-01
    _open(register, date(2026, 11, 25), kind=RequestKind.opt_out, subject_id="m4")
    # a request logged the old way (answered at once) is still counted
    deny_subject_request(
        register,
        kind=RequestKind.know,
        subject_type="member",
        subject_id="m5",
        received_on=date(2026, 3, 1),
        received_via=ReceivedVia.mail,
        basis="not verifiable",
        generated_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    report = requests_json(requests_report(register, 2026, generated_at=OPENED_AT))
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert report["open_counted_on"] == "2026-12-01"
    assert kinds["know"]["received"] == 3
    assert kinds["know"]["complied_in_whole"] == 1
    assert kinds["know"]["answered_late"] == 1
    assert kinds["know"]["median_days_to_respond"] == 25.0  # 49 and 1
    assert kinds["know"]["denied_ground_not_recorded"] == 1
    assert kinds["know"]["open_at_period_end"] == 1
    assert kinds["know"]["overdue_at_period_end"] == 1
    assert kinds["delete"]["denied"] == kinds["delete"]["denied_not_verifiable"] == 1
    assert kinds["opt_out"]["open_at_period_end"] == 1
    assert kinds["opt_out"]["overdue_at_period_end"] == 0


def test_a_log_written_before_the_register_is_read_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "old.requests.sqlite"
    with RequestLog(path, TEST_SECRET) as log:
        deny_subject_request(
            log,
            kind=RequestKind.recipients,
            subject_type="member",
            subject_id="m1",
            received_on=date(2026, 3, 1),
            received_via=ReceivedVia.mail,
            basis="not verifiable",
        )
    with RequestRegister(path, TEST_SECRET) as register:
        (entry,) = register.register_entries()
        assert entry.status is Status.denied and entry.law is None
        with pytest.raises(ReportError, match="before the request register existed"):
            register.extend(entry.request_id, notice_sent_on=date(2026, 3, 2), reason="x")


def test_forget_subject_leaves_no_token_computable_from_the_id(
    register: RequestRegister,
) -> None:
    kept = _open(register, date(2026, 11, 1), subject_id="member-keep")
    gone = _open(register, date(2026, 11, 2), subject_id="member-gone")
    register.verify_identity(gone, method="email code", verified_by="dave")
    register.answer(
        gone, answered_by="carol", document_sha256="2" * 64, stored_at=None, response_detail="x"
    )
    deny_subject_request(
        register,
        kind=RequestKind.know,
        subject_type="member",
        subject_id="member-gone",
        received_on=date(2026, 3, 1),
        received_via=ReceivedVia.mail,
        basis="not verifiable",
    )
    old_token = register.requester("member", "member-gone")
    assert register.forget_subject("member", "member-gone") == 3  # 2 log rows, 1 register row
    db = sqlite3.connect(register.path)
    everything = [
        str(value)
        for table in ("requests", "register", "answer_watch", "reissues")
        for row in db.execute(f"SELECT * FROM {table}")
        for value in row
    ]
    forgotten = [
        str(token)
        for table in ("requests", "register")
        for (token,) in db.execute(f"SELECT requester FROM {table} WHERE requester LIKE 'forgot%'")
    ]
    (kept_token,) = db.execute("SELECT requester FROM register WHERE request_id = ?", (kept,))
    db.close()
    assert old_token not in everything
    assert not any("member-gone" in value for value in everything)
    # the rows stay (11 CCR 7101), each with a random token of its own
    assert len(register.register_entries()) == 3
    assert len(forgotten) == len(set(forgotten)) == 3
    assert kept_token[0] == register.requester("member", "member-keep")
    assert register.entry(gone).status is Status.answered
