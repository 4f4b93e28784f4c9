"""A person's request: the request to know (``report subject``) and the recipients list
(``report recipients``), answered as the CLI answers them and recorded twice: in the
request log (11 CCR 7101, as the CLI records it) and, first, in the access log (who read
whose data, why; the subject as its pseudonym)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from disclosure_ledger.service.answers.periods import check_format
from disclosure_ledger.service.reason import Reason
from ledger.access_log import AccessEntry
from ledger.key_check import KeyStoreAccess
from reports.errors import ReportError
from reports.request_log import ReceivedVia, RequestKind
from reports.window import rfc3339

if TYPE_CHECKING:
    from disclosure_ledger.service.auth.accounts import Actor
    from disclosure_ledger.service.runtime import LedgerService
    from ledger.pseudonyms import SubjectKeyStore
    from ledger.store import Ledger
    from reports.request_log import RequestLog
    from reports.subject.answers import Answered

SubjectType = Literal["member", "guest"]


def _today() -> date:
    return datetime.now(UTC).date()


def _now() -> datetime:
    return datetime.now(UTC)


class SubjectRequestFields(BaseModel):
    """What a person asked, as a compliance officer records it. The subject id travels only
    in a request body: never in a URL, a log line or an error message."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    subject_type: SubjectType = Field("member", description="the kind of subject")
    subject_id: str = Field(
        min_length=1, max_length=512, description="the id the person gave (personal data)"
    )
    received_on: date = Field(
        default_factory=_today, description="day the request was received (default today, UTC)"
    )
    received_via: ReceivedVia = Field(
        ReceivedVia.web_form, description="how the request was received"
    )
    reason: Reason
    as_of: datetime = Field(
        default_factory=_now, description="end of the window, exclusive (default now)"
    )
    since: datetime | None = Field(
        None,
        description="request to know only: reach back beyond 12 months (not before 2022-01-01)",
    )
    deny: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="record the request as denied on this basis and answer with the denial",
    )
    reissue: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="give again the answer to this logged request (request id)",
    )
    request: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="answer this open entry of the request register (its identity verified); "
        "without it the request is logged as received and answered at once",
    )
    answer_stored_at: str | None = Field(
        None, max_length=1000, description="with request: where the answer will be kept"
    )
    with_proofs: bool = Field(
        False,
        description="request to know in json only: a proof bundle per row, and the person's "
        "subject key to recompute their pseudonym (docs/proofs.md)",
    )

    @field_validator("as_of", "since")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SubjectRequest(SubjectRequestFields):
    kind: Literal["know", "recipients"] = Field(
        description="know: the request to know (report subject); recipients: GDPR Art. 19"
    )


def subject_answer(service: LedgerService, actor: Actor, request: SubjectRequest, fmt: str) -> str:
    """``report subject`` / ``report recipients``: the answer in ``fmt``, recorded.

    The key store is opened first (a wrong secret records nothing); the access-log entry
    commits before the request log records the answer and before the text is returned, so
    an answer whose read cannot be logged is never given.
    """
    check_format(fmt)
    if request.since is not None and request.kind == "recipients":
        raise ReportError("since applies to the request to know only, not to recipients")
    if request.with_proofs and (
        request.kind != "know" or fmt != "json" or request.deny is not None
    ):
        raise ReportError(
            "with_proofs adds JSON proof bundles to a request to know: ask it with format "
            "json, and not with deny or for the recipients"
        )
    if request.request is not None:
        if request.deny is not None or request.reissue is not None:
            raise ReportError(
                "request answers an open register entry: deny it through /requests/{id}/denial"
                ", and re-issue an answer with reissue alone"
            )
        _check_registered(service, request)  # before anything is read
    with service.view() as view, service.subject_keys(KeyStoreAccess.read, view) as keys:
        if request.deny is not None:
            pseudonym = keys.pseudonym(request.subject_type, request.subject_id)
            _record(service, actor, request, fmt, rows=0, pseudonym=pseudonym)
            with service.request_log() as log:
                return _deny(log, request, fmt)
        return _answer(service, actor, view, keys, request, fmt)


def _answer(
    service: LedgerService,
    actor: Actor,
    view: Ledger,
    keys: SubjectKeyStore,
    request: SubjectRequest,
    fmt: str,
) -> str:
    from reports.subject import (
        answer_subject_request,
        recipients_report,
        reissue_subject_answer,
        render_recipients,
        render_subject,
        subject_report,
    )

    subject_type, subject_id = request.subject_type, request.subject_id
    received_on, received_via = request.received_on, request.received_via
    if request.kind == "know":
        report = subject_report(
            view,
            keys,
            subject_type=subject_type,
            subject_id=subject_id,
            as_of=request.as_of,
            since=request.since,
        )
        if request.with_proofs:
            from dataclasses import replace

            from reports.subject.proofs import subject_proofs

            report = replace(report, proofs=subject_proofs(view, keys, report))
        _record(
            service,
            actor,
            request,
            fmt,
            rows=report.source.events_counted,
            pseudonym=report.pseudonym,
        )
        if request.request is not None:
            report = _answer_registered(service, actor, request, report)
            return _hashed(service, request, render_subject(report, fmt))
        with service.request_log() as log:
            if request.reissue:
                report = reissue_subject_answer(report, log, request_id=request.reissue)
            else:
                report = answer_subject_request(
                    report, log, received_on=received_on, received_via=received_via
                )
        return render_subject(report, fmt)
    listed = recipients_report(
        view, keys, subject_type=subject_type, subject_id=subject_id, as_of=request.as_of
    )
    _record(service, actor, request, fmt, rows=len(listed.recipients), pseudonym=listed.pseudonym)
    if request.request is not None:
        listed = _answer_registered(service, actor, request, listed)
        return _hashed(service, request, render_recipients(listed, fmt))
    with service.request_log() as log:
        if request.reissue:
            listed = reissue_subject_answer(listed, log, request_id=request.reissue)
        else:
            listed = answer_subject_request(
                listed, log, received_on=received_on, received_via=received_via
            )
    return render_recipients(listed, fmt)


def _check_registered(service: LedgerService, request: SubjectRequest) -> None:
    from disclosure_ledger.service.answers.requests import request_register

    assert request.request is not None
    kind = RequestKind.know if request.kind == "know" else RequestKind.recipients
    with request_register(service) as register:
        register.check_answerable(request.request, kind, request.subject_type, request.subject_id)


def _answer_registered(
    service: LedgerService, actor: Actor, request: SubjectRequest, report: Answered
) -> Answered:
    from disclosure_ledger.service.answers.requests import request_register
    from reports.subject import answer_registered_request

    assert request.request is not None
    with request_register(service) as register:
        return answer_registered_request(
            report, register, request_id=request.request, answered_by=actor.name
        )


def _hashed(service: LedgerService, request: SubjectRequest, text: str) -> str:
    """The answer's SHA-256 recorded against its register entry; the text unchanged."""
    from disclosure_ledger.service.answers.requests import request_register

    assert request.request is not None
    with request_register(service) as register:
        register.attach_answer(
            request.request,
            document_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            stored_at=request.answer_stored_at,
        )
    return text


def _deny(log: RequestLog, request: SubjectRequest, fmt: str) -> str:
    from reports.subject import deny_subject_request, render_denial

    assert request.deny is not None
    notice = deny_subject_request(
        log,
        kind=RequestKind.know if request.kind == "know" else RequestKind.recipients,
        subject_type=request.subject_type,
        subject_id=request.subject_id,
        received_on=request.received_on,
        received_via=request.received_via,
        basis=request.deny,
    )
    return render_denial(notice, fmt)


def access_action(request: SubjectRequest) -> str:
    return "report subject" if request.kind == "know" else "report recipients"


def _record(
    service: LedgerService,
    actor: Actor,
    request: SubjectRequest,
    fmt: str,
    *,
    rows: int,
    pseudonym: str | None,
) -> None:
    """The access-log entry of this read; raises (and the answer is not given) if it fails."""
    window = f"as_of {rfc3339(request.as_of)}"
    if request.since is not None:
        window = f"since {rfc3339(request.since)}, {window}"
    detail = f"{window}; format {fmt}"
    if request.deny is not None:
        detail += "; denied"
    if request.reissue:
        detail += f"; reissue of {request.reissue}"
    if request.request:
        detail += f"; answers register request {request.request}"
    if request.with_proofs:
        detail += "; with proofs (the subject's key given to them)"
    service.record_access(
        AccessEntry(
            actor=actor.name,
            role=actor.role.value,
            action=access_action(request),
            reason=request.reason,
            rows_returned=rows,
            subject_pseudonym=pseudonym,
            detail=detail,
        )
    )
