"""A request denied (e.g. the requester's identity could not be verified): recorded in the
request log with its basis (11 CCR 7101(a)), and the notice written in every format.
Nothing is read from the ledger: a denied request discloses nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from reports.base import ReportFormats
from reports.contracts import DenialJson, SubjectJson
from reports.document import Document, Section, render_csv
from reports.errors import ReportError
from reports.provenance import rfc3339
from reports.request_log import LoggedRequest, ReceivedVia, RequestKind, RequestLog, Response
from reports.subject.rendering import request_contract, request_meta, request_section

DENIAL_JSON_VERSION: Final = "request-denial/1"


@dataclass(frozen=True)
class DenialNotice:
    """A request recorded as denied (e.g. the requester's identity could not be verified).

    Nothing is read from the ledger: a denied request discloses nothing. JSON shape
    ``request-denial/1``: :class:`reports.contracts.DenialJson`.
    """

    subject_type: str
    subject_id: str
    generated_at: datetime
    request: LoggedRequest

    @property
    def basis(self) -> str:
        return self.request.denial_basis or ""


def deny_subject_request(
    log: RequestLog,
    *,
    kind: RequestKind,
    subject_type: str,
    subject_id: str,
    received_on: date,
    received_via: ReceivedVia,
    basis: str,
    generated_at: datetime | None = None,
) -> DenialNotice:
    """Record a request as denied, with its basis (11 CCR 7101(a))."""
    if not basis.strip():
        raise ReportError("a denial must state its basis (11 CCR 7101(a)); give --deny BASIS")
    moment = (generated_at or datetime.now(UTC)).astimezone(UTC)
    logged = log.record(
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        received_on=received_on,
        received_via=received_via,
        responded_on=moment.date(),
        response=Response.denied,
        response_detail="denied: " + basis,
        denial_basis=basis,
        recorded_at=moment,
    )
    return DenialNotice(subject_type, subject_id, moment, logged)


def _denial_what(notice: DenialNotice) -> str:
    if notice.request.kind is RequestKind.know:
        return "request to know"
    return "request for the recipients"


def denial_contract(notice: DenialNotice) -> DenialJson:
    return DenialJson(
        report=DENIAL_JSON_VERSION,
        generated_at=rfc3339(notice.generated_at),
        subject=SubjectJson(type=notice.subject_type, id=notice.subject_id),
        request=request_contract(notice.request),
        denial_basis=notice.basis,
    )


def denial_document(notice: DenialNotice) -> Document:
    what = _denial_what(notice)
    return Document(
        title=f"Your {what} ({notice.subject_type} {notice.subject_id})",
        basis="Cal. Civ. Code 1798.130, 11 CCR 7101 (record of the response).",
        sections=tuple(
            s
            for s in (
                request_section(notice.request),
                Section(
                    heading="Our response",
                    paragraphs=(
                        f"We cannot answer your {what}: {notice.basis}",
                        "No personal information was disclosed in this response.",
                    ),
                    section_id="response",
                ),
            )
            if s is not None
        ),
        provenance=None,
        source_lines=(f"Generated at: {rfc3339(notice.generated_at)}.",),
    )


def denial_csv(notice: DenialNotice) -> str:
    return render_csv(
        DENIAL_JSON_VERSION,
        [
            ("generated_at", rfc3339(notice.generated_at)),
            *request_meta(notice.request, notice.subject_type, notice.subject_id, False),
        ],
        ("request_id", "kind", "received_on", "responded_on", "response", "denial_basis"),
        [
            (
                notice.request.request_id,
                notice.request.kind.value,
                notice.request.received_on.isoformat(),
                notice.generated_at.date().isoformat(),
                notice.request.response.value,
                notice.basis,
            )
        ],
    )


def render_denial(notice: DenialNotice, fmt: str) -> str:
    return DENIAL_NOTICE_FORMATS.render(notice, fmt)


DENIAL_NOTICE_FORMATS: ReportFormats[DenialNotice] = ReportFormats(
    "denial", denial_contract, denial_document, denial_csv
)
