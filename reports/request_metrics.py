"""The request-log metrics of 11 CCR 7102 for one calendar year.

From the request register (:mod:`reports.request_register`, in the request log), not the
ledger: for the requests received from 1 January to 31 December of ``year``, by kind (to
know, to delete, to opt-out; access and the GDPR Art. 19 recipients list as further rows,
not mixed into them), the number received, complied with in whole, complied with in part,
and denied, the denials by the grounds 7102 names (not verifiable, not made by a consumer,
information exempt, other), and the median number of days to respond (7102(a)(1)-(2)).
Requests to know beyond the twice-in-12-months obligation are counted too, and so are
answers given after their deadline. Requests open and overdue are counted on the period's
last day, or on the day the report is generated when that is earlier (``open_counted_on``),
whenever they were received. Requests logged before the register existed are counted
(their denials as "ground not recorded").

Given the ledger, the report first marks the answers a late event has changed
(:mod:`reports.reissue`) and lists every answer due for re-issue, of any year. A re-issue
is recorded against its request, so the metrics count each request once.

JSON shape ``requests-report/1``: :class:`reports.contracts.RequestsReportJson`, published
as ``docs/schemas/requests-report-1.schema.json``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from ledger.store import Ledger
from reports.base import ReportFormats
from reports.contracts import (
    KindMetricsJson,
    Period,
    ReissueDueJson,
    RequestLogSource,
    RequestsReportJson,
)
from reports.document import Document, Section, Table, render_csv
from reports.provenance import rfc3339
from reports.reissue import mark_reissues_due
from reports.request_log import LoggedRequest, RequestKind, RequestLog, Response
from reports.request_register import DenialGround, RegisterEntry, RequestRegister

JSON_VERSION: Final = "requests-report/1"

KIND_NAMES = {
    RequestKind.know: "Requests to know (Cal. Civ. Code 1798.110, 1798.115)",
    RequestKind.delete: "Requests to delete (Cal. Civ. Code 1798.105, GDPR Art. 17)",
    RequestKind.opt_out: "Requests to opt-out of sale or sharing (Cal. Civ. Code 1798.120)",
    RequestKind.access: "Requests for access (GDPR Art. 15)",
    RequestKind.recipients: "Requests for the recipients (GDPR Art. 19)",
}
REPORTED_KINDS = tuple(KIND_NAMES)  # the order of the rows


@dataclass(frozen=True)
class KindMetrics:
    kind: RequestKind
    received: int
    complied_in_whole: int
    complied_in_part: int
    denied: int
    median_days_to_respond: float | None
    beyond_twice_in_12_months: int
    denied_by_ground: dict[DenialGround | None, int]  # None: ground not recorded
    answered_late: int
    open_at_period_end: int
    overdue_at_period_end: int


@dataclass(frozen=True)
class RequestsReport:
    year: int
    generated_at: datetime
    request_log: str
    entries_counted: int
    kinds: tuple[KindMetrics, ...]
    reissues_due: tuple[LoggedRequest, ...] = ()
    open_counted_on: date | None = None


def _response(entry: RegisterEntry) -> Response | None:
    return None if entry.logged is None else entry.logged.response


def _metrics(
    kind: RequestKind, received: list[RegisterEntry], everything: list[RegisterEntry], day: date
) -> KindMetrics:
    mine = [e for e in received if e.kind is kind]
    days = [d for e in mine if e.logged is not None and (d := e.logged.days_to_respond) is not None]
    denied = [e for e in mine if _response(e) is Response.denied]
    grounds: dict[DenialGround | None, int] = {g: 0 for g in DenialGround}
    grounds[None] = 0
    for entry in denied:
        grounds[entry.denial_ground] += 1
    still_open = [e for e in everything if e.kind is kind and e.open_on(day)]
    return KindMetrics(
        kind=kind,
        received=len(mine),
        complied_in_whole=sum(_response(e) is Response.complied for e in mine),
        complied_in_part=sum(_response(e) is Response.complied_in_part for e in mine),
        denied=len(denied),
        median_days_to_respond=float(statistics.median(days)) if days else None,
        beyond_twice_in_12_months=sum(
            e.logged is not None and e.logged.beyond_statutory_obligation for e in mine
        ),
        denied_by_ground=grounds,
        answered_late=sum(e.late() for e in mine),
        open_at_period_end=len(still_open),
        overdue_at_period_end=sum(e.overdue_on(day) for e in still_open),
    )


def requests_report(
    log: RequestLog,
    year: int,
    *,
    generated_at: datetime | None = None,
    ledger: Ledger | None = None,
) -> RequestsReport:
    """The 11 CCR 7102 metrics of the requests received in calendar year ``year``, and the
    answers due for re-issue (looked for in ``ledger`` first, when given)."""
    due = mark_reissues_due(log, ledger) if ledger is not None else log.reissues_due()
    moment = (generated_at or datetime.now(UTC)).astimezone(UTC)
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    day = min(end - timedelta(days=1), moment.date())
    register = log if isinstance(log, RequestRegister) else RequestRegister.over(log)
    try:
        everything = register.register_entries(received_before=end)
    finally:
        if register is not log:
            register.close()
    received = [e for e in everything if e.received_on >= start]
    return RequestsReport(
        year=year,
        generated_at=moment,
        request_log=str(log.path),
        entries_counted=len(received),
        kinds=tuple(_metrics(kind, received, everything, day) for kind in REPORTED_KINDS),
        reissues_due=tuple(due),
        open_counted_on=day,
    )


def render_requests(report: RequestsReport, fmt: str) -> str:
    return REQUESTS_REPORT_FORMATS.render(report, fmt)


def requests_contract(report: RequestsReport) -> RequestsReportJson:
    return RequestsReportJson(
        report=JSON_VERSION,
        generated_at=rfc3339(report.generated_at),
        year=report.year,
        period=Period(
            start=date(report.year, 1, 1).isoformat(),
            end=date(report.year + 1, 1, 1).isoformat(),
        ),
        source=RequestLogSource(
            request_log=report.request_log, entries_counted=report.entries_counted
        ),
        open_counted_on=_counted_on(report).isoformat(),
        kinds=[
            KindMetricsJson(
                kind=k.kind,
                name=KIND_NAMES[k.kind],
                received=k.received,
                complied_in_whole=k.complied_in_whole,
                complied_in_part=k.complied_in_part,
                denied=k.denied,
                median_days_to_respond=k.median_days_to_respond,
                beyond_twice_in_12_months=k.beyond_twice_in_12_months,
                denied_not_verifiable=k.denied_by_ground[DenialGround.not_verifiable],
                denied_not_a_consumer=k.denied_by_ground[DenialGround.not_a_consumer],
                denied_exempt=k.denied_by_ground[DenialGround.exempt],
                denied_other=k.denied_by_ground[DenialGround.other],
                denied_ground_not_recorded=k.denied_by_ground[None],
                answered_late=k.answered_late,
                open_at_period_end=k.open_at_period_end,
                overdue_at_period_end=k.overdue_at_period_end,
            )
            for k in report.kinds
        ],
        reissues_due=[
            ReissueDueJson(
                request_id=r.request_id,
                kind=r.kind,
                received_on=r.received_on.isoformat(),
                responded_on=None if r.responded_on is None else r.responded_on.isoformat(),
                coverage_through=rfc3339(r.coverage_through),
                answered_start=rfc3339(r.answered_start),
                answered_end=rfc3339(r.answered_end),
                due_since=rfc3339(r.reissue_due_since) or "",
            )
            for r in report.reissues_due
        ],
    )


def _counted_on(report: RequestsReport) -> date:
    return report.open_counted_on or date(report.year, 12, 31)


def _denials(k: KindMetrics) -> str:
    """The denials by the grounds 11 CCR 7102 names."""
    parts = [
        (DenialGround.not_verifiable, "not verifiable"),
        (DenialGround.not_a_consumer, "not by a consumer"),
        (DenialGround.exempt, "exempt"),
        (DenialGround.other, "other"),
        (None, "ground not recorded"),
    ]
    shown = [f"{k.denied_by_ground[g]} {label}" for g, label in parts if k.denied_by_ground[g]]
    return ", ".join(shown) if shown else "-"


def requests_json(report: RequestsReport) -> dict[str, Any]:
    return requests_contract(report).model_dump(mode="json")


def _median(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def requests_document(report: RequestsReport) -> Document:
    know = next(k for k in report.kinds if k.kind is RequestKind.know)
    paragraph = (
        f"In {report.year} we received {know.received} request"
        f"{'s' if know.received != 1 else ''} to know; we complied with "
        f"{know.complied_in_whole} in whole and {know.complied_in_part} in part, and denied "
        f"{know.denied}. The median number of days to respond was "
        f"{_median(know.median_days_to_respond)}."
    )
    counted_on = _counted_on(report).isoformat()
    open_total = sum(k.open_at_period_end for k in report.kinds)
    overdue_total = sum(k.overdue_at_period_end for k in report.kinds)
    open_paragraph = (
        f"On {counted_on}, {open_total} request{'s were' if open_total != 1 else ' was'} "
        f"open (received by then, neither answered nor denied), {overdue_total} of them "
        "past the statutory deadline. Denials are split by the grounds 11 CCR 7102 names; "
        "requests answered before the request register existed have no recorded ground."
    )
    return Document(
        title=f"Consumer requests received in {report.year}",
        basis="Metrics of 11 CCR 7102(a), from the request register kept under 11 CCR 7101.",
        sections=(
            Section(
                heading="Requests by kind",
                paragraphs=(paragraph, open_paragraph),
                table=Table(
                    (
                        "Kind",
                        "Received",
                        "Complied in whole",
                        "Complied in part",
                        "Denied",
                        "Denied, by ground",
                        "Median days to respond",
                        "Answered late",
                        "Beyond twice in 12 months",
                        f"Open on {counted_on}",
                        f"Overdue on {counted_on}",
                    ),
                    tuple(
                        (
                            KIND_NAMES[k.kind],
                            str(k.received),
                            str(k.complied_in_whole),
                            str(k.complied_in_part),
                            str(k.denied),
                            _denials(k),
                            _median(k.median_days_to_respond),
                            str(k.answered_late),
                            str(k.beyond_twice_in_12_months),
                            str(k.open_at_period_end),
                            str(k.overdue_at_period_end),
                        )
                        for k in report.kinds
                    ),
                    (False, True, True, True, True, False, True, True, True, True, True),
                ),
                section_id="requests",
            ),
            _reissue_section(report),
        ),
        provenance=None,
        source_lines=(
            f"Period: requests received from {report.year}-01-01 to {report.year}-12-31 inclusive.",
            f"Generated at: {rfc3339(report.generated_at)}.",
            f"Source: the request log {report.request_log} ({report.entries_counted} entries "
            "in the period), not the ledger: no chain heads apply.",
        ),
    )


def _reissue_section(report: RequestsReport) -> Section:
    due = report.reissues_due
    return Section(
        heading="Answers to re-issue",
        paragraphs=(
            (
                f"{len(due)} answer{'s' if len(due) != 1 else ''} changed since given: an "
                "event that arrived late lies inside the period answered. Give each again "
                "with `report subject` or `report recipients` and --reissue REQUEST_ID; a "
                "re-issue is not a new request and is not counted above."
            )
            if due
            else "No answer has been changed by a late event.",
        ),
        table=Table(
            ("Request id", "Kind", "Received", "Answered", "Coverage then", "Due since"),
            tuple(
                (
                    r.request_id,
                    r.kind.value,
                    r.received_on.isoformat(),
                    "-" if r.responded_on is None else r.responded_on.isoformat(),
                    rfc3339(r.coverage_through) or "none",
                    rfc3339(r.reissue_due_since) or "-",
                )
                for r in due
            ),
        )
        if due
        else None,
        section_id="reissues",
    )


CSV_HEADERS = (
    "kind",
    "received",
    "complied_in_whole",
    "complied_in_part",
    "denied",
    "median_days_to_respond",
    "beyond_twice_in_12_months",
    "denied_not_verifiable",
    "denied_not_a_consumer",
    "denied_exempt",
    "denied_other",
    "denied_ground_not_recorded",
    "answered_late",
    "open_at_period_end",
    "overdue_at_period_end",
)


def requests_csv(report: RequestsReport) -> str:
    meta = [
        ("year", str(report.year)),
        ("period_start", date(report.year, 1, 1).isoformat()),
        ("period_end", date(report.year + 1, 1, 1).isoformat()),
        ("generated_at", rfc3339(report.generated_at) or ""),
        ("request_log", report.request_log),
        ("entries_counted", str(report.entries_counted)),
        ("open_counted_on", _counted_on(report).isoformat()),
    ]
    meta += [
        (
            "reissue_due",
            f"{r.request_id} kind={r.kind.value} received_on={r.received_on.isoformat()} "
            f"due_since={rfc3339(r.reissue_due_since)}",
        )
        for r in report.reissues_due
    ]
    rows = [
        (
            k.kind.value,
            k.received,
            k.complied_in_whole,
            k.complied_in_part,
            k.denied,
            None if k.median_days_to_respond is None else f"{k.median_days_to_respond:g}",
            k.beyond_twice_in_12_months,
            k.denied_by_ground[DenialGround.not_verifiable],
            k.denied_by_ground[DenialGround.not_a_consumer],
            k.denied_by_ground[DenialGround.exempt],
            k.denied_by_ground[DenialGround.other],
            k.denied_by_ground[None],
            k.answered_late,
            k.open_at_period_end,
            k.overdue_at_period_end,
        )
        for k in report.kinds
    ]
    return render_csv(JSON_VERSION, meta, CSV_HEADERS, rows)


REQUESTS_REPORT_FORMATS: ReportFormats[RequestsReport] = ReportFormats(
    "requests", requests_contract, requests_document, requests_csv
)
