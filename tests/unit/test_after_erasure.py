"""After an erasure: a later disclosure about the erased subject is flagged and listed
first by the conformance report, without its pseudonym; the GDPR Art. 19 notices due are
listed (with no subject given) and leave the list once recorded; bad notices are refused
naming the fix, and nothing is recorded."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from ledger.erasure import erase_subject
from ledger.notices import NoticeError, erasure_notices, record_notice
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from reports.after_erasure import AfterErasureTally, count_after_erasure
from reports.conformance import conformance_report, render_conformance
from reports.erasure_notices import erasure_notices_report, render_notices
from schemas.codec import EventCodec
from tests.unit.events import make_event
from tests.unit.ledger_rows import COMPLETE_THROUGH, record_coverage

TOPIC = "t.disclosures"
CODEC = EventCodec()
ERASED = ("member", "member-to-forget-7731")
KEPT = ("member", "member-who-stays-2200")
AS_OF = date(2026, 6, 1)
ERASED_ON = datetime(2026, 5, 10, 9, 0, tzinfo=UTC)
TODAY = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def _message(offset: int, subject: tuple[str, str], **event: object) -> SourceMessage:
    body = make_event(subject={"id": subject[1], "type": subject[0]}, **event)
    return SourceMessage(TOPIC, 0, offset, subject[1].encode(), CODEC.encode(body.to_avro()))


def _before_erasure() -> list[SourceMessage]:
    """The erased subject's data went to escalion (billing) and to hotjar (web)."""
    return [
        _message(0, ERASED),
        _message(1, KEPT),
        _message(
            2,
            ERASED,
            recipient={"id": "hotjar", "category": "service_provider"},
            producer={"service": "web", "version": "2.0.0"},
            data_categories=["user.contact.email"],
            purpose="analytics.reporting",
        ),
    ]


def _after_erasure() -> list[SourceMessage]:
    """billing sends twice more about the erased subject; one event about someone else."""
    return [
        _message(3, ERASED, occurred_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        _message(4, KEPT),
        _message(5, ERASED, occurred_at=datetime(2026, 3, 3, 8, 0, tzinfo=UTC)),
    ]


@pytest.fixture
def erased_ledger(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> tuple[Path, str]:
    """A ledger where ERASED was erased and then disclosed twice more; and the erasure id."""
    path = tmp_path / "ledger.duckdb"
    with Ledger(path) as ledger:
        Ingestor(ledger, key_store, reference).ingest(_before_erasure())
        erasure = erase_subject(ledger, key_store, *ERASED, actor="dpo", now=ERASED_ON)
        stats = Ingestor(ledger, key_store, reference).ingest(_after_erasure())
        assert stats.after_erasure == 2
    record_coverage(path, COMPLETE_THROUGH)
    assert erasure.erasure_id is not None
    return path, erasure.erasure_id


def _flagged_event_ids(path: Path) -> list[str]:
    with Ledger(path, read_only=True) as ledger:
        return [
            str(r[0])
            for r in ledger.con.execute(
                "SELECT event_id FROM disclosures WHERE list_contains(flags, 'after_erasure') "
                "ORDER BY occurred_at"
            ).fetchall()
        ]


def test_disclosures_after_an_erasure_come_first_in_the_conformance_report_without_pseudonym(
    erased_ledger: tuple[Path, str], key_store: SubjectKeyStore
) -> None:
    path, _ = erased_ledger
    flagged = _flagged_event_ids(path)
    fresh_pseudonym = key_store.pseudonym(*ERASED)  # the fresh key's: links to them again
    assert len(flagged) == 2 and fresh_pseudonym is not None
    with Ledger(path, read_only=True) as ledger:
        report = conformance_report(ledger, AS_OF)
    found = report.after_erasure
    assert found.events == 2
    assert [(g.recipient_id, g.producer_service, g.events) for g in found.groups] == [
        ("escalion", "billing", 2)
    ]
    assert [r.event_id for r in found.rows] == flagged

    markdown = render_conformance(report, "md")
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Disclosures after an erasure"
    assert all(event_id in markdown for event_id in flagged)
    assert "identifiable" in markdown and "erase-subject" in markdown
    document = json.loads(render_conformance(report, "json"))
    assert list(document).index("after_erasure") < list(document).index("unregistered_recipients")
    assert document["summary"]["after_erasure_events"] == 2
    assert [r["event_id"] for r in document["after_erasure"]["rows"]] == flagged
    csv_text = render_conformance(report, "csv")
    assert "\nafter_erasure,payment_provider,escalion," in csv_text
    for fmt in ("md", "json", "csv", "html"):
        text = render_conformance(report, fmt)
        assert fresh_pseudonym not in text and ERASED[1] not in text, fmt


def test_a_ledger_without_erasures_says_so_in_the_first_section(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    path = tmp_path / "ledger.duckdb"
    with Ledger(path) as ledger:
        Ingestor(ledger, key_store, reference).ingest(_before_erasure())
    record_coverage(path, COMPLETE_THROUGH)
    with Ledger(path, read_only=True) as ledger:
        report = conformance_report(ledger, AS_OF)
    assert report.after_erasure.events == 0
    markdown = render_conformance(report, "md")
    assert "is about a subject erased before it arrived" in markdown
    assert "## Disclosures after an erasure, one by one" not in markdown


def test_notices_due_are_listed_with_no_subject_and_leave_the_list_once_recorded(
    erased_ledger: tuple[Path, str],
) -> None:
    path, erasure_id = erased_ledger
    with Ledger(path, read_only=True) as ledger:
        due = erasure_notices(ledger, now=TODAY).due
    assert [(d.erasure_id, d.recipient_id, d.days_due(TODAY.date())) for d in due] == [
        (erasure_id, "escalion", 10),
        (erasure_id, "hotjar", 10),
    ]
    with Ledger(path) as ledger:
        sent = record_notice(
            ledger,
            erasure_id=erasure_id,
            recipient_id="hotjar",
            sent_on=date(2026, 5, 12),
            recorded_by="dpo",
            note="email to privacy@hotjar",
            now=TODAY,
        )
        assert sent.erased_at == ERASED_ON
    with Ledger(path, read_only=True) as ledger:
        report = erasure_notices_report(ledger, generated_at=TODAY)
    assert [d.recipient_id for d in report.state.due] == ["escalion"]
    assert [(n.recipient_id, n.sent_on, n.recorded_by) for n in report.state.sent] == [
        ("hotjar", date(2026, 5, 12), "dpo")
    ]
    document = json.loads(render_notices(report, "json"))
    assert document["summary"] == {"erasures": 1, "notices_due": 1, "notices_sent": 1}
    assert document["due"][0]["days_due"] == 10
    markdown = render_notices(report, "md")
    assert "## Notices due" in markdown and "escalion" in markdown
    assert ERASED[1] not in markdown


def test_the_cli_records_a_notice_and_report_recipients_lists_those_still_due(
    erased_ledger: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
    subject_secret_env: str,
) -> None:
    path, erasure_id = erased_ledger
    ask = ["report", "recipients", "--notices-due", "--ledger", str(path), "--format", "json"]
    assert main(ask) == 0
    due = json.loads(capsys.readouterr().out)["due"]
    assert [d["recipient_id"] for d in due] == ["escalion", "hotjar"]
    today = datetime.now(UTC).date().isoformat()
    for recipient in ("escalion", "hotjar"):
        record = ["notices", "record", "--ledger", str(path), "--erasure", erasure_id]
        record += ["--recipient", recipient, "--sent-on", today, "--actor", "dpo"]
        assert main(record) == 0
        assert f"recorded: {recipient} was notified on {today}" in capsys.readouterr().out
    assert main(ask) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["due"] == [] and len(document["sent"]) == 2
    assert main([*ask[:-2], "--format", "md"]) == 0
    assert "has been notified" in capsys.readouterr().out


def test_report_recipients_needs_a_subject_or_notices_due(
    erased_ledger: tuple[Path, str], capsys: pytest.CaptureFixture[str], subject_secret_env: str
) -> None:
    path, _ = erased_ledger
    assert main(["report", "recipients", "--ledger", str(path)]) != 0
    assert "--subject-id and --as-of" in capsys.readouterr().err
    both = ["report", "recipients", "--ledger", str(path), "--notices-due"]
    assert main([*both, "--subject-id", ERASED[1]]) != 0
    assert "takes no subject: leave out --subject-id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("erasure", "recipient", "sent_on", "message"),
    [
        ("no-such-erasure", "escalion", date(2026, 5, 12), "no erasure 'no-such-erasure'"),
        (None, "google-analytics", date(2026, 5, 12), "did not receive the erased subject"),
        (None, "escalion", date(2026, 5, 9), "is before the erasure it tells of (2026-05-10)"),
        (None, "escalion", date(2026, 5, 21), "is in the future (today is 2026-05-20"),
    ],
)
def test_a_bad_notice_is_refused_naming_the_fix_and_nothing_is_recorded(
    erased_ledger: tuple[Path, str],
    erasure: str | None,
    recipient: str,
    sent_on: date,
    message: str,
) -> None:
    path, erasure_id = erased_ledger
    with Ledger(path) as ledger:
        with pytest.raises(NoticeError, match=re.escape(message)):
            record_notice(
                ledger,
                erasure_id=erasure or erasure_id,
                recipient_id=recipient,
                sent_on=sent_on,
                recorded_by="dpo",
                now=TODAY,
            )
        assert ledger.con.execute("SELECT count(*) FROM erasure_notices").fetchone() == (0,)


def test_a_notice_is_recorded_once(erased_ledger: tuple[Path, str]) -> None:
    path, erasure_id = erased_ledger
    notice = {
        "erasure_id": erasure_id,
        "recipient_id": "escalion",
        "sent_on": date(2026, 5, 11),
        "recorded_by": "dpo",
        "now": TODAY,
    }
    with Ledger(path) as ledger:
        record_notice(ledger, **notice)
        with pytest.raises(NoticeError, match=re.escape("already recorded (sent on 2026-05-11")):
            record_notice(ledger, **{**notice, "sent_on": date(2026, 5, 12)})
        assert ledger.con.execute("SELECT count(*) FROM erasure_notices").fetchone() == (1,)


def test_a_notice_sent_today_is_accepted(erased_ledger: tuple[Path, str]) -> None:
    """The future starts tomorrow (UTC): a notice sent today can be recorded today."""
    path, erasure_id = erased_ledger
    with Ledger(path) as ledger:
        record_notice(
            ledger,
            erasure_id=erasure_id,
            recipient_id="escalion",
            sent_on=TODAY.date(),
            recorded_by="dpo",
            now=TODAY + timedelta(hours=11),
        )


def test_the_status_tally_counts_only_the_rows_appended_since_and_agrees_with_a_full_count(
    erased_ledger: tuple[Path, str], key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    path, _ = erased_ledger
    tally = AfterErasureTally()
    with Ledger(path) as ledger:
        assert tally.count(ledger.con) == 2
        Ingestor(ledger, key_store, reference).ingest([_message(6, ERASED), _message(7, KEPT)])
        assert tally.count(ledger.con) == 3 == count_after_erasure(ledger.con)
        assert tally.count(ledger.con) == 3  # nothing appended: nothing counted again
    with Ledger(path) as ledger:  # opened again: the rows keep their numbers
        Ingestor(ledger, key_store, reference).ingest([_message(8, ERASED), _message(9, ERASED)])
        assert tally.count(ledger.con) == 5 == count_after_erasure(ledger.con)


def test_the_tally_counts_rows_appended_with_an_earlier_clock_too(tmp_path: Path) -> None:
    """A batch recorded after the clock went back is still counted (by rowid alone)."""
    import duckdb

    con = duckdb.connect(str(tmp_path / "flags.duckdb"))
    con.execute("CREATE TABLE disclosures (flags VARCHAR[], ingested_at TIMESTAMP)")
    con.execute(
        "INSERT INTO disclosures VALUES (['after_erasure'], '2026-05-02'), ([], '2026-05-03')"
    )
    tally = AfterErasureTally()
    assert tally.count(con) == 1
    con.execute(
        "INSERT INTO disclosures VALUES (['after_erasure'], '2026-05-01'), "
        "(['after_erasure'], '2026-05-04')"
    )
    assert tally.count(con) == 3 == count_after_erasure(con)
    con.execute("INSERT INTO disclosures VALUES (['late', 'after_erasure'], '2026-05-05')")
    assert tally.count(con) == 4
