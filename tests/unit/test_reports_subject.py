"""The request to know, the Art. 19 recipients list, and the request log behind them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger.derived import check_derived, rebuild_heavy, subject_lookup
from ledger.lake import cursor_of
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from reports.document import REPORT_FORMATS
from reports.errors import ReportError
from reports.request_log import (
    ReceivedVia,
    RequestKind,
    RequestLog,
    Response,
    default_request_log,
)
from reports.subject import (
    LOOKBACK_FLOOR,
    SubjectReport,
    answer_subject_request,
    deny_subject_request,
    recipients_report,
    render_denial,
    render_recipients,
    render_subject,
    subject_report,
)
from tests.conftest import TEST_SECRET, LedgerLocation, both_backends, file_unless_both
from tests.unit.golden.fixed_ledger import store_reference
from tests.unit.ledger_rows import disclosure_row, write_ledger

AS_OF = date(2026, 3, 1)
GENERATED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MEMBER = ("member", "member-0000042")


@pytest.fixture
def ledger_backend(request: pytest.FixtureRequest) -> str:
    return file_unless_both(request)  # the file; both backends where marked @both_backends


@pytest.fixture
def ledger_file(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> tuple[LedgerLocation, str]:
    pseudonym = key_store.pseudonyms([MEMBER])[0]
    other = key_store.pseudonyms([("member", "member-0000043")])[0]
    guest_same_id = key_store.pseudonyms([("guest", MEMBER[1])])[0]
    v = reference.version
    rows = [
        # card payments through Escalion: B, D
        disclosure_row(
            subject_pseudonym=pseudonym,
            ccpa_letters=["B", "D"],
            reference_version=v,
            occurred_at=datetime(2025, 4, 2, 10, 0),
        ),
        disclosure_row(
            subject_pseudonym=pseudonym,
            ccpa_letters=["B", "D"],
            reference_version=v,
            occurred_at=datetime(2026, 2, 27, 18, 30),
        ),
        # a broadcaster, addressed by its platform id
        disclosure_row(
            subject_pseudonym=pseudonym,
            recipient_id="broadcaster-00042",
            recipient_category="broadcaster",
            data_categories=["user.account.username"],
            ccpa_letters=["A", "L", "A"],
            reference_version=v,
            occurred_at=datetime(2025, 12, 24, 21, 0),
        ),
        # long ago: only a lookback reaches it
        disclosure_row(
            subject_pseudonym=pseudonym,
            recipient_id="hotjar",
            recipient_category="service_provider",
            data_categories=["user.device.ip_address"],
            ccpa_letters=["A", "F"],
            reference_version=v,
            occurred_at=datetime(2023, 6, 1),
        ),
        # at as_of: outside the window
        disclosure_row(
            subject_pseudonym=pseudonym, reference_version=v, occurred_at=datetime(2026, 3, 1)
        ),
        # other people, and a guest with the same id string
        disclosure_row(subject_pseudonym=other, occurred_at=datetime(2025, 6, 1)),
        disclosure_row(
            subject_pseudonym=guest_same_id,
            subject_type="guest",
            occurred_at=datetime(2025, 6, 1),
        ),
    ]
    path = write_ledger(ledger_location, rows)
    store_reference(path, reference)
    return path, pseudonym


def _report(
    path: LedgerLocation, keys: SubjectKeyStore, since: date | None = None
) -> SubjectReport:
    with Ledger(path, read_only=True) as ledger:
        return subject_report(
            ledger,
            keys,
            subject_type=MEMBER[0],
            subject_id=MEMBER[1],
            as_of=AS_OF,
            since=since,
            generated_at=GENERATED,
        )


@both_backends
def test_categories_recipients_and_dates_of_one_person(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    path, _ = ledger_file
    with Ledger(path, read_only=True) as ledger:
        report = subject_report(
            ledger, key_store, subject_type="member", subject_id=MEMBER[1], as_of=AS_OF
        )
    assert report.data_held
    assert (report.source.window_start, report.source.window_end) == (
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    by_letter = {c.letter: c for c in report.categories}
    assert list(by_letter) == ["A", "B", "D", "L"]
    b = by_letter["B"]
    assert b.recipient_categories == ("payment_provider",)
    assert [(r.recipient_id, r.name, r.events) for r in b.recipients] == [
        ("escalion", "Escalion S.à r.l.", 2)
    ]
    assert (b.first_disclosed, b.last_disclosed) == (
        datetime(2025, 4, 2, 10, 0, tzinfo=UTC),
        datetime(2026, 2, 27, 18, 30, tzinfo=UTC),
    )
    a = by_letter["A"]
    assert a.events == 1  # a letter repeated in one row counts once
    assert [(r.recipient_id, r.name) for r in a.recipients] == [
        ("broadcaster-00042", "broadcaster-00042")
    ]
    recipients = {r.recipient_id: r for r in report.recipients}
    assert recipients["escalion"].registered and recipients["escalion"].country == "LU"
    assert not recipients["broadcaster-00042"].registered
    assert report.source.events_counted == 3
    assert sum(c.events_counted for c in report.source.chains) == 3


def test_the_pseudonym_is_never_printed_beside_the_id(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    path, pseudonym = ledger_file
    with Ledger(path, read_only=True) as ledger:
        report = subject_report(
            ledger, key_store, subject_type="member", subject_id=MEMBER[1], as_of=AS_OF
        )
        listed = recipients_report(
            ledger, key_store, subject_type="member", subject_id=MEMBER[1], as_of=AS_OF
        )
    for fmt in REPORT_FORMATS:
        for text in (render_subject(report, fmt), render_recipients(listed, fmt)):
            assert MEMBER[1] in text
            assert pseudonym not in text


def test_a_lookback_before_2022_is_clamped_and_says_so(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    path, _ = ledger_file
    report = _report(path, key_store, since=date(2019, 5, 1))
    assert report.since_clamped
    assert report.source.window_start == LOOKBACK_FLOOR
    assert "F" in {c.letter for c in report.categories}
    md = render_subject(report, "md")
    assert "You asked for disclosures from 1 May 2019" in md
    assert "from 1 January 2022 on, so this answer starts there" in md
    data = json.loads(render_subject(report, "json"))
    assert data["lookback"] == {
        "since_requested": "2019-05-01T00:00:00Z",
        "clamped": True,
        "floor": "2022-01-01T00:00:00Z",
    }


def test_a_lookback_after_2022_is_not_clamped(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    path, _ = ledger_file
    report = _report(path, key_store, since=date(2023, 1, 1))
    assert not report.since_clamped
    assert report.source.window_start == datetime(2023, 1, 1, tzinfo=UTC)


def test_since_after_as_of_is_refused(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    with pytest.raises(ReportError, match="must be before"):
        _report(ledger_file[0], key_store, since=date(2026, 4, 1))


def test_a_person_without_a_key_has_no_data_held(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    path, _ = ledger_file
    with Ledger(path, read_only=True) as ledger:
        report = subject_report(
            ledger, key_store, subject_type="member", subject_id="member-7777777", as_of=AS_OF
        )
    assert not report.data_held and report.categories == () and report.recipients == ()
    assert "We hold no record of disclosures" in render_subject(report, "md")
    assert json.loads(render_subject(report, "json"))["data_held"] is False


def test_a_guest_with_the_same_id_string_is_another_person(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    path, _ = ledger_file
    with Ledger(path, read_only=True) as ledger:
        report = subject_report(
            ledger, key_store, subject_type="guest", subject_id=MEMBER[1], as_of=AS_OF
        )
    assert report.source.events_counted == 1


@both_backends
def test_recipients_report_lists_every_recipient_ever(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    path, _ = ledger_file
    with Ledger(path, read_only=True) as ledger:
        report = recipients_report(
            ledger, key_store, subject_type="member", subject_id=MEMBER[1], as_of=AS_OF
        )
    assert report.source.window_start is None
    by_id = {r.recipient_id: r for r in report.recipients}
    assert set(by_id) == {"broadcaster-00042", "escalion", "hotjar"}
    assert by_id["hotjar"].address and by_id["hotjar"].role == "processor"
    assert by_id["escalion"].last_disclosed == datetime(2026, 2, 27, 18, 30, tzinfo=UTC)
    assert json.loads(render_recipients(report, "json"))["window"]["start"] is None


# -- the request log ----------------------------------------------------------------------
def test_the_third_request_within_12_months_is_answered_and_flagged(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore, tmp_path: Path
) -> None:
    path, _ = ledger_file
    with RequestLog(default_request_log(tmp_path / "ledger.duckdb"), TEST_SECRET) as log:
        numbers = []
        for received in (date(2025, 2, 1), date(2025, 4, 1), date(2025, 9, 1), date(2026, 2, 1)):
            report = answer_subject_request(
                _report(path, key_store),
                log,
                received_on=received,
                received_via=ReceivedVia.email,
            )
            assert report.request is not None
            numbers.append(
                (report.request.number_in_12_months, report.request.beyond_statutory_obligation)
            )
    # 2025-02-01 falls out of the 12 months before 2026-02-01
    assert numbers == [(1, False), (2, False), (3, True), (3, True)]
    md = render_subject(report, "md")
    assert "This is request number 3 from this consumer within 12 months" in md
    assert "beyond the statutory obligation" in md
    html = render_subject(report, "html")
    assert 'class="notice"' in html
    assert default_request_log(tmp_path / "ledger.duckdb").name == "ledger.duckdb.requests.sqlite"


def test_recipients_requests_do_not_count_towards_requests_to_know(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore, tmp_path: Path
) -> None:
    path, _ = ledger_file
    with (
        Ledger(path, read_only=True) as ledger,
        RequestLog(tmp_path / "log.sqlite", TEST_SECRET) as log,
    ):
        for _ in range(3):
            listed = recipients_report(
                ledger, key_store, subject_type="member", subject_id=MEMBER[1], as_of=AS_OF
            )
            listed = answer_subject_request(
                listed, log, received_on=date(2026, 1, 5), received_via=ReceivedVia.web_form
            )
        assert listed.request is not None
        assert listed.request.kind is RequestKind.recipients
        assert not listed.request.beyond_statutory_obligation
        first_know = answer_subject_request(
            subject_report(
                ledger, key_store, subject_type="member", subject_id=MEMBER[1], as_of=AS_OF
            ),
            log,
            received_on=date(2026, 1, 6),
            received_via=ReceivedVia.web_form,
        )
    assert first_know.request is not None and first_know.request.number_in_12_months == 1


def test_the_log_records_nature_and_response_but_never_the_id(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore, tmp_path: Path
) -> None:
    path, pseudonym = ledger_file
    log_path = tmp_path / "log.sqlite"
    with RequestLog(log_path, TEST_SECRET) as log:
        answer_subject_request(
            _report(path, key_store, since=date(2020, 1, 1)),
            log,
            received_on=date(2026, 2, 20),
            received_via=ReceivedVia.toll_free_phone,
        )
        (entry,) = log.entries(date(2026, 1, 1), date(2027, 1, 1))
    assert entry.response is Response.complied_in_part  # the lookback was clamped
    assert "clamped to 2022-01-01" in entry.response_detail
    assert entry.received_via is ReceivedVia.toll_free_phone
    assert entry.days_to_respond == (GENERATED.date() - date(2026, 2, 20)).days
    raw = log_path.read_bytes()
    assert MEMBER[1].encode() not in raw and pseudonym.encode() not in raw


def test_the_log_keeps_24_months(tmp_path: Path) -> None:
    with RequestLog(tmp_path / "log.sqlite", TEST_SECRET) as log:
        log.record(
            kind=RequestKind.know,
            subject_type="member",
            subject_id="m",
            received_on=date(2023, 1, 5),
            received_via=ReceivedVia.mail,
            responded_on=date(2023, 1, 20),
            response=Response.denied,
            response_detail="identity could not be verified",
            denial_basis="11 CCR 7060: request not verifiable",
        )
        with pytest.raises(ReportError, match="24 months"):
            log.prune(date(2025, 1, 1), today=date(2026, 3, 1))
        assert log.prune(date(2024, 3, 1), today=date(2026, 3, 1)) == 1
        with pytest.raises(ReportError, match="before the request was received"):
            log.record(
                kind=RequestKind.know,
                subject_type="member",
                subject_id="m",
                received_on=date(2026, 1, 5),
                received_via=ReceivedVia.mail,
                responded_on=date(2026, 1, 4),
                response=Response.complied,
                response_detail="",
            )


def test_a_denied_request_is_recorded_with_its_basis(tmp_path: Path) -> None:
    with RequestLog(tmp_path / "log.sqlite", TEST_SECRET) as log:
        notice = deny_subject_request(
            log,
            kind=RequestKind.know,
            subject_type="member",
            subject_id="member-1",
            received_on=date(2026, 2, 1),
            received_via=ReceivedVia.email,
            basis="the requester's identity could not be verified",
            generated_at=GENERATED,
        )
        (entry,) = log.entries(date(2026, 1, 1), date(2027, 1, 1))
        with pytest.raises(ReportError, match="basis"):
            deny_subject_request(
                log,
                kind=RequestKind.know,
                subject_type="member",
                subject_id="member-1",
                received_on=date(2026, 2, 1),
                received_via=ReceivedVia.email,
                basis=" ",
            )
    assert entry.response is Response.denied
    assert entry.denial_basis == "the requester's identity could not be verified"
    assert json.loads(render_denial(notice, "json"))["request"]["response"] == "denied"
    md = render_denial(notice, "md")
    assert "We cannot answer your request to know: the requester's identity" in md
    for fmt in REPORT_FORMATS:
        assert render_denial(notice, fmt)


@both_backends
def test_a_heavy_subject_read_from_its_clustered_copy_gets_the_same_answer(
    ledger_file: tuple[LedgerLocation, str], key_store: SubjectKeyStore
) -> None:
    path, pseudonym = ledger_file
    before = _report(path, key_store, since=date(2022, 1, 1))
    with Ledger(path) as ledger:
        ledger.con.execute("BEGIN TRANSACTION")
        rebuild_heavy(ledger.con, heavy_rows=2)  # every subject with 2 rows or more
        ledger.con.execute("COMMIT")
    with Ledger(path, read_only=True) as ledger:
        cursor = cursor_of(ledger.con)
        assert subject_lookup(cursor, pseudonym)[1]  # read from heavy_subject_rows
        cursor.close()
        assert check_derived(ledger) == []
    after = _report(path, key_store, since=date(2022, 1, 1))
    assert after == before
    assert render_subject(after, "json") == render_subject(before, "json")
