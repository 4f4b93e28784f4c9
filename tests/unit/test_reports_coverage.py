"""Reports respect the ledger's coverage (issue 16, section 2): a window past it is refused
(exit 3) or marked provisional, a person's answer is cut at it, a future --as-of is refused,
and a late event inside an answered window marks that answer for re-issue."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from disclosure_ledger.cli import default_key_store, main
from ledger.coverage import DEFAULT_ALLOWANCE
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from reports.ccpa import ccpa_report, render_ccpa
from reports.errors import FutureAsOfError, IncompleteLedgerError
from reports.request_log import ReceivedVia, RequestKind, RequestLog, default_request_log
from reports.request_metrics import render_requests, requests_report
from reports.subject import (
    answer_subject_request,
    reissue_subject_answer,
    render_subject,
    subject_report,
)
from tests.unit.golden.fixed_ledger import store_reference
from tests.unit.ledger_rows import disclosure_row, record_coverage, write_ledger

SUBJECT = ("member", "member-0000042")
OTHER = ("member", "member-0000043")
WATERMARK = datetime(2026, 2, 15, 12, 0)  # every source declared it published all before
COMPLETE_THROUGH = "2026-02-15T11:55:00Z"  # less the allowance for late events
PERIOD_KINDS = ("ccpa", "conformance", "transfers")


def _secret(env: str) -> bytes:
    return env.encode()


@pytest.fixture
def ledger_file(tmp_path: Path, subject_secret_env: str, reference: ReferenceData) -> Path:
    """Rows before and after the coverage; complete through WATERMARK less the allowance."""
    path = tmp_path / "ledger.duckdb"
    with SubjectKeyStore(default_key_store(path), _secret(subject_secret_env)) as keys:
        mine, other = keys.pseudonyms([SUBJECT, OTHER])
    version = {"reference_version": reference.version}
    rows = [
        disclosure_row(subject_pseudonym=mine, occurred_at=datetime(2026, 1, 10), **version),
        disclosure_row(
            **version,
            subject_pseudonym=mine,
            recipient_id="hotjar",
            recipient_category="service_provider",
            data_categories=["user.device.ip_address"],
            ccpa_letters=["A", "F"],
            occurred_at=datetime(2026, 2, 20),  # after the coverage
        ),
        disclosure_row(subject_pseudonym=other, occurred_at=datetime(2026, 1, 11), **version),
    ]
    write_ledger(path, rows, complete_through=None)
    store_reference(path, reference, complete_through=None)  # the registry transfers read
    record_coverage(path, WATERMARK)
    return path


def _report(kind: str, ledger: Path, as_of: str, *extra: str) -> list[str]:
    args = ["report", kind, "--ledger", str(ledger), "--as-of", as_of, *extra]
    if kind in {"subject", "recipients"}:
        args += ["--subject-id", SUBJECT[1], "--received-on", "2026-03-01"]
    return args


@pytest.mark.parametrize("kind", PERIOD_KINDS)
def test_a_window_past_the_coverage_is_refused_with_exit_3_naming_what_holds_it_back(
    ledger_file: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_report(kind, ledger_file, "2026-03-01")) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "refused" in captured.err and "2026-03-01T00:00:00Z" in captured.err
    assert "complete through 2026-02-15T11:55:00.000Z" in captured.err
    assert "held back by: " in captured.err  # the sources that lag, named
    assert "--allow-incomplete" in captured.err


@pytest.mark.parametrize("kind", PERIOD_KINDS)
def test_allow_incomplete_marks_the_report_provisional_in_every_format(
    ledger_file: Path, tmp_path: Path, kind: str
) -> None:
    texts = {}
    for fmt in ("json", "md", "html", "csv"):
        target = tmp_path / f"{kind}.{fmt}"
        args = _report(kind, ledger_file, "2026-03-01", "--allow-incomplete")
        assert main([*args, "--format", fmt, "--output", str(target)]) == 0
        texts[fmt] = target.read_text(encoding="utf-8")
    coverage = json.loads(texts["json"])["coverage"]
    assert coverage["complete"] is False
    assert coverage["complete_through"] == COMPLETE_THROUGH
    assert coverage["holding_back"]  # what lags
    assert {h["through"] for h in coverage["holding_back"]} == {"2026-02-15T12:00:00Z"}
    assert "PROVISIONAL" in coverage["statement"]
    assert "> **PROVISIONAL: the ledger is not complete for this window." in texts["md"]
    assert '<p class="notice provisional" role="alert">PROVISIONAL' in texts["html"]
    assert "# coverage: provisional\n" in texts["csv"]
    assert f"# complete_through: {COMPLETE_THROUGH}\n" in texts["csv"]


@pytest.mark.parametrize("kind", PERIOD_KINDS)
def test_a_complete_report_states_its_coverage(
    ledger_file: Path, tmp_path: Path, kind: str
) -> None:
    texts = {}
    for fmt in ("json", "md", "html", "csv"):
        target = tmp_path / f"{kind}.{fmt}"
        args = _report(kind, ledger_file, "2026-02-01")
        assert main([*args, "--format", fmt, "--output", str(target)]) == 0
        texts[fmt] = target.read_text(encoding="utf-8")
    coverage = json.loads(texts["json"])["coverage"]
    assert coverage["complete"] is True and coverage["complete_through"] == COMPLETE_THROUGH
    assert coverage["unanswered"] is None
    for fmt in ("md", "html"):
        assert "Coverage: complete for this window" in texts[fmt]
        assert "PROVISIONAL" not in texts[fmt]
    assert "# coverage: complete\n" in texts["csv"]


def test_the_coverage_is_reached_exactly_at_its_time(ledger_file: Path) -> None:
    through = WATERMARK.replace(tzinfo=UTC) - DEFAULT_ALLOWANCE
    with Ledger(ledger_file, read_only=True) as ledger:
        assert ccpa_report(ledger, through).source.coverage is not None
        with pytest.raises(IncompleteLedgerError) as refused:
            ccpa_report(ledger, through + timedelta(milliseconds=1))
    assert refused.value.coverage.complete_through == through


def test_a_ledger_without_watermarks_proves_nothing(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "l.duckdb", [disclosure_row()], complete_through=None)
    with Ledger(path, read_only=True) as ledger:
        with pytest.raises(IncompleteLedgerError, match="complete through no known time"):
            ccpa_report(ledger, date(2025, 7, 1))
        provisional = ccpa_report(ledger, date(2025, 7, 1), allow_incomplete=True)
    data = json.loads(render_ccpa(provisional, "json"))
    assert data["coverage"]["complete"] is False and data["coverage"]["complete_through"] is None
    assert "It is complete through no known time" in render_ccpa(provisional, "md")


@pytest.mark.parametrize("kind", (*PERIOD_KINDS, "subject", "recipients"))
def test_an_as_of_in_the_future_is_refused_naming_the_date(
    ledger_file: Path, kind: str, subject_secret_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert main(_report(kind, ledger_file, future)) == 2
    err = capsys.readouterr().err
    assert f"--as-of {future}T00:00:00Z is later than now" in err
    log = default_request_log(ledger_file)
    if log.exists():  # nothing answered, nothing logged
        with RequestLog(log, _secret(subject_secret_env)) as opened:
            assert opened.entries(date(2000, 1, 1), date(2100, 1, 1)) == []


def test_the_future_is_refused_even_when_incomplete_reports_are_allowed(
    ledger_file: Path,
) -> None:
    with Ledger(ledger_file, read_only=True) as ledger, pytest.raises(FutureAsOfError):
        ccpa_report(ledger, datetime.now(UTC) + timedelta(hours=1), allow_incomplete=True)


def test_a_request_to_know_is_answered_up_to_the_coverage_and_says_so(
    ledger_file: Path, tmp_path: Path, subject_secret_env: str
) -> None:
    log_path = tmp_path / "requests.sqlite"
    with (
        Ledger(ledger_file, read_only=True) as ledger,
        SubjectKeyStore(default_key_store(ledger_file), _secret(subject_secret_env)) as keys,
        RequestLog(log_path, _secret(subject_secret_env)) as log,
    ):
        report = subject_report(ledger, keys, **_subject(), as_of=date(2026, 3, 1))
        report = answer_subject_request(
            report, log, received_on=date(2026, 3, 1), received_via=ReceivedVia.email
        )
    # the row of 2026-02-20 lies after the coverage: not counted, and not denied either
    assert [c.letter for c in report.categories] == ["B"]
    assert report.source.window_end == datetime(2026, 2, 15, 11, 55, tzinfo=UTC)
    md = render_subject(report, "md")
    assert "up to 2026-02-15 11:55 UTC (excluded) we disclosed" in md
    assert "The ledger cannot yet answer for 2026-02-15 11:55 UTC up to 1 March 2026" in md
    data = json.loads(render_subject(report, "json"))
    assert data["as_of"] == "2026-03-01T00:00:00Z"
    assert data["window"]["end"] == COMPLETE_THROUGH
    assert data["coverage"]["complete"] is True
    assert data["coverage"]["unanswered"] == {"start": COMPLETE_THROUGH, "end": data["as_of"]}
    assert "# coverage: cut\n" in render_subject(report, "csv")
    # the request log records the coverage the answer was given with
    assert report.request is not None
    assert report.request.coverage_through == datetime(2026, 2, 15, 11, 55, tzinfo=UTC)
    with RequestLog(log_path, _secret(subject_secret_env)) as log:
        (logged,) = log.entries(date(2026, 1, 1), date(2027, 1, 1))
    assert logged.coverage_through == report.request.coverage_through
    assert logged.answered_end == report.source.window_end


def test_an_answer_never_says_we_did_not_disclose_of_time_past_the_coverage(
    ledger_file: Path, subject_secret_env: str
) -> None:
    with (
        Ledger(ledger_file, read_only=True) as ledger,
        SubjectKeyStore(default_key_store(ledger_file), _secret(subject_secret_env)) as keys,
    ):
        # asked from after the coverage: nothing of the window is covered
        report = subject_report(
            ledger, keys, **_subject(), as_of=date(2026, 3, 1), since=date(2026, 2, 16)
        )
    assert report.categories == ()
    for fmt in ("md", "html"):
        text = render_subject(report, fmt)
        assert "did not disclose" not in text
        assert "The ledger cannot yet answer for the period asked about" in text
    data = json.loads(render_subject(report, "json"))
    assert data["coverage"]["complete"] is False


def _subject() -> dict[str, str]:
    return {"subject_type": SUBJECT[0], "subject_id": SUBJECT[1]}


def _late_row(path: Path, pseudonym: str, occurred_at: datetime) -> None:
    """What the consumer writes for an event that arrived after a watermark covering it."""
    with Ledger(path, read_only=True) as ledger:
        (version,) = ledger.con.execute(
            "SELECT reference_version FROM disclosures ORDER BY rowid DESC LIMIT 1"
        ).fetchone() or ("test-1",)
    late = disclosure_row(
        subject_pseudonym=pseudonym,
        occurred_at=occurred_at,
        flags=["late"],
        reference_version=version,
    )
    write_ledger(path, [late], complete_through=None)


def test_a_late_event_inside_an_answered_period_marks_the_answer_for_reissue(
    ledger_file: Path, subject_secret_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_report("subject", ledger_file, "2026-02-01"), "--format", "json"]) == 0
    request_id = json.loads(capsys.readouterr().out)["request"]["request_id"]
    requests = ["report", "requests", "--ledger", str(ledger_file), "--year", "2026"]
    assert main(requests) == 0
    assert "No answer has been changed by a late event." in capsys.readouterr().out
    with SubjectKeyStore(default_key_store(ledger_file), _secret(subject_secret_env)) as keys:
        mine, other = keys.pseudonyms([SUBJECT, OTHER])
    _late_row(ledger_file, other, datetime(2026, 1, 20))  # someone else's: no re-issue
    _late_row(ledger_file, mine, datetime(2026, 2, 3))  # after the answered window
    assert main([*requests, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["reissues_due"] == []
    _late_row(ledger_file, mine, datetime(2026, 1, 20))  # inside it
    assert main([*requests, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (due,) = data["reissues_due"]
    assert due["request_id"] == request_id and due["kind"] == "know"
    assert due["answered_end"] == "2026-02-01T00:00:00Z"
    assert due["coverage_through"] == COMPLETE_THROUGH
    (know,) = [k for k in data["kinds"] if k["kind"] == "know"]
    assert know["received"] == 1
    assert main(requests) == 0
    assert f"| {request_id} | know |" in capsys.readouterr().out


def test_a_reissue_is_not_a_new_request_in_the_7102_metrics(
    ledger_file: Path, tmp_path: Path, subject_secret_env: str
) -> None:
    secret = _secret(subject_secret_env)
    log_path = tmp_path / "requests.sqlite"
    with (
        SubjectKeyStore(default_key_store(ledger_file), secret) as keys,
        RequestLog(log_path, secret) as log,
    ):
        with Ledger(ledger_file, read_only=True) as ledger:
            first = answer_subject_request(
                subject_report(ledger, keys, **_subject(), as_of=date(2026, 2, 1)),
                log,
                received_on=date(2026, 2, 1),
                received_via=ReceivedVia.web_form,
            )
        assert first.request is not None and len(first.categories) == 1
        _late_row(ledger_file, keys.pseudonyms([SUBJECT])[0], datetime(2026, 1, 25))
        with Ledger(ledger_file, read_only=True) as ledger:
            before = requests_report(log, 2026, ledger=ledger)
            assert [r.request_id for r in before.reissues_due] == [first.request.request_id]
            again = reissue_subject_answer(
                subject_report(ledger, keys, **_subject(), as_of=date(2026, 2, 1)),
                log,
                request_id=first.request.request_id,
            )
            after = requests_report(log, 2026, ledger=ledger)
    assert again.source.events_counted == first.source.events_counted + 1
    assert again.request is not None and again.request.request_id == first.request.request_id
    assert again.request.number_in_12_months == 1
    assert after.reissues_due == ()
    (know_before,) = [k for k in before.kinds if k.kind is RequestKind.know]
    (know_after,) = [k for k in after.kinds if k.kind is RequestKind.know]
    assert know_before.received == know_after.received == 1
    assert know_after.complied_in_whole == 1
    assert "No answer has been changed by a late event." in render_requests(after, "md")


def test_the_log_holds_the_watched_pseudonym_only_sealed(
    ledger_file: Path, tmp_path: Path, subject_secret_env: str
) -> None:
    secret = _secret(subject_secret_env)
    log_path = tmp_path / "requests.sqlite"
    with (
        SubjectKeyStore(default_key_store(ledger_file), secret) as keys,
        RequestLog(log_path, secret) as log,
        Ledger(ledger_file, read_only=True) as ledger,
    ):
        pseudonym = keys.pseudonyms([SUBJECT])[0]
        answer_subject_request(
            subject_report(ledger, keys, **_subject(), as_of=date(2026, 2, 1)),
            log,
            received_on=date(2026, 2, 1),
            received_via=ReceivedVia.web_form,
        )
        ((_, watch),) = log.watches()
        assert watch.subject_pseudonym == pseudonym
        assert log.forget_pseudonym(pseudonym) == 1  # what erasing the subject must call
        assert log.watches() == []
    assert pseudonym.encode() not in log_path.read_bytes()


def test_a_newer_watermark_extends_what_can_be_reported(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "l.duckdb", [disclosure_row()], complete_through=None)
    record_coverage(path, datetime(2025, 7, 1, 1, 0))
    with Ledger(path, read_only=True) as ledger:
        assert ccpa_report(ledger, date(2025, 7, 1)).source.coverage is not None
        with pytest.raises(IncompleteLedgerError):
            ccpa_report(ledger, date(2025, 8, 1))
    record_coverage(path, datetime(2025, 8, 1, 1, 0))  # every source, every partition
    with Ledger(path, read_only=True) as ledger:
        report = ccpa_report(ledger, date(2025, 8, 1))
    assert report.source.coverage is not None and report.source.coverage.complete
