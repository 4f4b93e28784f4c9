"""GDPR Art. 19 notices due and sent: ``report recipients --notices-due``.

Art. 19: a rectification or erasure is communicated to every recipient the data was
disclosed to. After an erasure the subject can no longer be looked up (that is the point
of it), so this report needs no subject: for every erasure in the ledger's journal
(:mod:`ledger.erasure`), each recipient that had received the subject's data (recorded at
the erasure, in ``erasure_recipients``) and has no notice recorded yet
(``disclosure-ledger notices record``, :mod:`ledger.notices`) is listed as due, with the
day of the erasure and how many days it has been due; the notices sent follow.

Its limits: a recipient is known only from the ledger's rows up to the erasure (a
disclosure the ledger never received is not listed), and an erasure journalled before the
journal kept recipients lists none. Reads no personal data: erasure ids and recipients.

JSON shape ``erasure-notices/1`` (:class:`reports.contracts.ErasureNoticesReportJson`).
CSV: one row per notice, ``state`` being ``due`` or ``sent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import duckdb

from ledger.lake import cursor_of
from ledger.notices import NoticesState, erasure_notices
from ledger.store import Ledger
from reports.base import ReportFormats
from reports.contracts import (
    ErasureNoticesReportJson,
    NoticeDueJson,
    NoticeSentJson,
    NoticesSummary,
)
from reports.document import Document, Section, Table, render_csv
from reports.errors import ReportError
from reports.provenance import rfc3339

JSON_VERSION: Final = "erasure-notices/1"
LIMITS: Final = (
    "Recipients are those the ledger recorded for the subject up to the erasure; a "
    "disclosure the ledger never received is not listed. Erasures journalled before the "
    "journal kept recipients list none."
)


@dataclass(frozen=True)
class ErasureNoticesReport:
    ledger: str
    state: NoticesState

    @property
    def generated_at(self) -> datetime:
        return self.state.read_at


def erasure_notices_report(
    ledger: Ledger, *, generated_at: datetime | None = None
) -> ErasureNoticesReport:
    """Every erasure's notices due and sent, read in one snapshot."""
    cursor = cursor_of(ledger.con)
    try:
        cursor.execute("BEGIN TRANSACTION")
        state = erasure_notices(cursor, now=generated_at or datetime.now(UTC))
        cursor.execute("COMMIT")
    except duckdb.Error as exc:
        raise ReportError(f"cannot read the erasure notices of {ledger.path}: {exc}") from exc
    finally:
        cursor.close()
    return ErasureNoticesReport(str(ledger.path), state)


def notices_contract(report: ErasureNoticesReport) -> ErasureNoticesReportJson:
    state, today = report.state, report.generated_at.date()
    return ErasureNoticesReportJson(
        report=JSON_VERSION,
        generated_at=rfc3339(report.generated_at) or "",
        ledger=report.ledger,
        summary=NoticesSummary(
            erasures=state.erasures, notices_due=len(state.due), notices_sent=len(state.sent)
        ),
        due=[
            NoticeDueJson(
                erasure_id=d.erasure_id,
                erased_at=rfc3339(d.erased_at) or "",
                recipient_id=d.recipient_id,
                recipient_category=d.recipient_category,
                ledger_rows=d.ledger_rows,
                last_disclosed_at=rfc3339(d.last_disclosed_at) or "",
                days_due=d.days_due(today),
            )
            for d in state.due
        ],
        sent=[
            NoticeSentJson(
                erasure_id=n.erasure_id,
                erased_at=rfc3339(n.erased_at) or "",
                recipient_id=n.recipient_id,
                sent_on=n.sent_on.isoformat(),
                recorded_at=rfc3339(n.recorded_at) or "",
                recorded_by=n.recorded_by,
                note=n.note,
            )
            for n in state.sent
        ],
    )


def _due_text(report: ErasureNoticesReport) -> str:
    state = report.state
    if not state.erasures:
        return "The erasure journal holds no erasure: no notice is due."
    if not state.due:
        return (
            f"Every recipient of the {state.erasures} erasure"
            f"{'s' if state.erasures != 1 else ''} in the journal has been notified."
        )
    erasures = len({d.erasure_id for d in state.due})
    return (
        f"{len(state.due)} notice{'s are' if len(state.due) != 1 else ' is'} due, for "
        f"{erasures} of the {state.erasures} erasure{'s' if state.erasures != 1 else ''} in "
        "the journal: tell each recipient below of the erasure (GDPR Art. 19), then record "
        "it with `disclosure-ledger notices record --erasure ID --recipient R --sent-on DAY`."
    )


def notices_document(report: ErasureNoticesReport) -> Document:
    state, today = report.state, report.generated_at.date()
    return Document(
        title="Erasure notices to recipients (GDPR Art. 19)",
        basis=(
            "GDPR Art. 19: an erasure is communicated to every recipient the data was "
            "disclosed to. Listed from the ledger's erasure journal; no subject is named."
        ),
        sections=(
            Section(
                heading="Notices due",
                paragraphs=(_due_text(report), LIMITS),
                table=Table(
                    (
                        "Erasure",
                        "Erased on",
                        "Recipient",
                        "Recipient category",
                        "Rows disclosed",
                        "Last disclosed",
                        "Days due",
                    ),
                    tuple(
                        (
                            d.erasure_id,
                            d.erased_at.date().isoformat(),
                            d.recipient_id,
                            d.recipient_category,
                            str(d.ledger_rows),
                            rfc3339(d.last_disclosed_at) or "",
                            str(d.days_due(today)),
                        )
                        for d in state.due
                    ),
                    (False, False, False, False, True, False, True),
                )
                if state.due
                else None,
                notice=f"{len(state.due)} notices due" if state.due else None,
                section_id="notices-due",
            ),
            Section(
                heading="Notices sent",
                paragraphs=(
                    f"{len(state.sent)} notice{'s' if len(state.sent) != 1 else ''} recorded."
                    if state.sent
                    else "No notice has been recorded.",
                ),
                table=Table(
                    ("Erasure", "Erased on", "Recipient", "Sent on", "Recorded by", "Note"),
                    tuple(
                        (
                            n.erasure_id,
                            n.erased_at.date().isoformat(),
                            n.recipient_id,
                            n.sent_on.isoformat(),
                            n.recorded_by,
                            n.note or "",
                        )
                        for n in state.sent
                    ),
                )
                if state.sent
                else None,
                section_id="notices-sent",
            ),
        ),
        provenance=None,
        source_lines=(
            f"Generated at: {rfc3339(report.generated_at)}.",
            f"Source: the erasure journal of ledger {report.ledger} "
            "(tables erasures, erasure_recipients, erasure_notices).",
        ),
    )


CSV_HEADERS = (
    "state",
    "erasure_id",
    "erased_at",
    "recipient_id",
    "recipient_category",
    "ledger_rows",
    "days_due",
    "sent_on",
    "recorded_by",
    "note",
)


def notices_csv(report: ErasureNoticesReport) -> str:
    state, today = report.state, report.generated_at.date()
    rows: list[tuple[object, ...]] = [
        (
            "due",
            d.erasure_id,
            rfc3339(d.erased_at),
            d.recipient_id,
            d.recipient_category,
            d.ledger_rows,
            d.days_due(today),
            None,
            None,
            None,
        )
        for d in state.due
    ]
    rows += [
        (
            "sent",
            n.erasure_id,
            rfc3339(n.erased_at),
            n.recipient_id,
            None,
            None,
            None,
            n.sent_on.isoformat(),
            n.recorded_by,
            n.note,
        )
        for n in state.sent
    ]
    meta = [
        ("generated_at", rfc3339(report.generated_at) or ""),
        ("ledger", report.ledger),
        ("erasures", str(state.erasures)),
        ("notices_due", str(len(state.due))),
        ("notices_sent", str(len(state.sent))),
        ("limits", LIMITS),
    ]
    return render_csv(JSON_VERSION, meta, CSV_HEADERS, rows)


NOTICES_REPORT_FORMATS: ReportFormats[ErasureNoticesReport] = ReportFormats(
    "erasure notices", notices_contract, notices_document, notices_csv
)


def render_notices(report: ErasureNoticesReport, fmt: str) -> str:
    return NOTICES_REPORT_FORMATS.render(report, fmt)
