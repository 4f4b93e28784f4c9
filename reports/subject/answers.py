"""Answering a person's request: the answer recorded in the request log
(:mod:`reports.request_log`, 11 CCR 7101), with the ledger's coverage when it was given and
a watch for late events inside its window; or an answer given again for a request already
recorded (a re-issue, :mod:`reports.reissue`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TypeVar

from reports.errors import ReportError
from reports.provenance import rfc3339
from reports.request_log import AnswerWatch, ReceivedVia, RequestKind, RequestLog, Response
from reports.request_register import RequestRegister
from reports.subject.values import LOOKBACK_FLOOR, RecipientsReport, SubjectReport


def _response_detail(report: SubjectReport | RecipientsReport) -> tuple[Response, str]:
    if not report.data_held:
        return Response.complied, "no data held about the consumer (no subject key)"
    coverage = report.source.coverage
    cut = ""
    if coverage is not None and coverage.cut:
        cut = (
            f"; answered up to {rfc3339(coverage.answered_end)} only, the ledger's coverage, "
            f"not up to {rfc3339(coverage.requested_end)}"
        )
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
                f"to {LOOKBACK_FLOOR:%Y-%m-%d}" + cut,
            )
        return (Response.complied_in_part if cut else Response.complied), detail + cut
    return (
        Response.complied_in_part if cut else Response.complied,
        f"{len(report.recipients)} recipients listed, {report.source.events_counted} "
        f"disclosures up to {rfc3339(report.source.window_end)}" + cut,
    )


def _watch(report: SubjectReport | RecipientsReport) -> AnswerWatch | None:
    """What the answer read, to find rows added inside its window later."""
    if report.pseudonym is None:
        return None
    return AnswerWatch(
        subject_pseudonym=report.pseudonym,
        subject_type=report.subject_type,
        window_start=report.source.window_start,
        window_end=report.source.window_end,
        chain_heads={c.chain_id: c.head_seq for c in report.source.chains},
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
    coverage = report.source.coverage
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
        coverage_through=None if coverage is None else coverage.complete_through,
        watch=_watch(report),
    )
    return replace(report, request=logged)


def answer_registered_request(
    report: Answered, register: RequestRegister, *, request_id: str, answered_by: str
) -> Answered:
    """Record ``report`` as the answer to the open register entry ``request_id`` (opened
    with ``requests open``, identity verified); returns the report with that request."""
    kind = RequestKind.know if isinstance(report, SubjectReport) else RequestKind.recipients
    register.check_answerable(request_id, kind, report.subject_type, report.subject_id)
    response, detail = _response_detail(report)
    coverage = report.source.coverage
    entry = register.answer_from_report(
        request_id,
        answered_by=answered_by,
        response=response,
        response_detail=detail,
        recorded_at=report.source.generated_at,
        coverage_through=None if coverage is None else coverage.complete_through,
        watch=_watch(report),
    )
    return replace(report, request=entry.logged)


def reissue_subject_answer(report: Answered, log: RequestLog, *, request_id: str) -> Answered:
    """Record ``report`` as the answer to ``request_id`` given again (a late event changed
    what it covers): no new request is counted; returns the report with that request."""
    original = log.request(request_id)
    kind = RequestKind.know if isinstance(report, SubjectReport) else RequestKind.recipients
    if original is None or original.kind is not kind:
        raise ReportError(
            f"no {kind.value} request {request_id!r} in the request log {log.path}: give an "
            "id `report requests` lists under answers to re-issue, with the same report kind"
        )
    if log.requester(report.subject_type, report.subject_id) != log.requester_of(request_id):
        raise ReportError(
            f"request {request_id!r} was made by someone else: re-issue it for the same "
            "--subject-type and --subject-id"
        )
    coverage = report.source.coverage
    _, detail = _response_detail(report)
    log.record_reissue(
        request_id,
        reissued_at=report.source.generated_at,
        coverage_through=None if coverage is None else coverage.complete_through,
        response_detail=detail,
        watch=_watch(report),
    )
    return replace(report, request=log.request(request_id))
