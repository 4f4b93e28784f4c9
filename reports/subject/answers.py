"""Answering a person's request: the answer recorded in the request log
(:mod:`reports.request_log`, 11 CCR 7101), or the request recorded as denied."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TypeVar

from reports.provenance import rfc3339
from reports.request_log import ReceivedVia, RequestKind, RequestLog, Response
from reports.subject.values import LOOKBACK_FLOOR, RecipientsReport, SubjectReport


def _response_detail(report: SubjectReport | RecipientsReport) -> tuple[Response, str]:
    if not report.data_held:
        return Response.complied, "no data held about the consumer (no subject key)"
    if isinstance(report, SubjectReport):
        detail = (
            f"{len(report.categories)} categories and {len(report.recipients)} recipients "
            f"disclosed, {report.source.events_counted} disclosures, window "
            f"{rfc3339(report.source.window_start)} to {rfc3339(report.source.window_end)}"
        )
        if report.since_clamped:
            return (
                Response.complied_in_part,
                detail + f"; lookback asked from {rfc3339(report.since_requested)} clamped "
                f"to {LOOKBACK_FLOOR:%Y-%m-%d}",
            )
        return Response.complied, detail
    return (
        Response.complied,
        f"{len(report.recipients)} recipients listed, {report.source.events_counted} "
        f"disclosures up to {rfc3339(report.source.window_end)}",
    )


Answered = TypeVar("Answered", SubjectReport, RecipientsReport)


def answer_subject_request(
    report: Answered,
    log: RequestLog,
    *,
    received_on: date,
    received_via: ReceivedVia,
) -> Answered:
    """Record the answer in the request log; returns the report with the logged request."""
    kind = RequestKind.know if isinstance(report, SubjectReport) else RequestKind.recipients
    response, detail = _response_detail(report)
    logged = log.record(
        kind=kind,
        subject_type=report.subject_type,
        subject_id=report.subject_id,
        received_on=received_on,
        received_via=received_via,
        responded_on=report.source.generated_at.date(),
        response=response,
        response_detail=detail,
        recorded_at=report.source.generated_at,
    )
    return replace(report, request=logged)
