"""The request register in the service: open a request, record the identity check, extend,
answer, deny, list and show, as ``requests ...`` does on a ledger file. Shared by the API
(``/api/v1/requests``) and the console (``/console/requests``).

Who did a step is the signed-in account unless the body names another person (the identity
check is often made by someone else, e.g. the support agent who called back). The answer
document itself never reaches the service: the client sends its SHA-256 and where it is
kept. Opening a request writes the requester's keyed token (never the id) to the register.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reports.register_listing import entry_json, listing_json
from reports.request_log import ReceivedVia, RequestKind
from reports.request_register import DenialGround, Law, RequestRegister, Status, select_entries

if TYPE_CHECKING:
    from disclosure_ledger.service.auth.accounts import Actor
    from disclosure_ledger.service.runtime import LedgerService


def _today() -> date:
    return datetime.now(UTC).date()


def _sha256() -> Any:
    return Field(
        None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the document, lowercase hex"
    )


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class OpenRequestBody(_Body):
    """A request received (the subject id travels only in this body)."""

    kind: RequestKind = Field(description="know, access, delete, opt_out or recipients")
    law: Law = Field(description="ccpa (45 days) or gdpr (one month): sets the deadline")
    subject_type: Literal["member", "guest"] = "member"
    subject_id: str = Field(min_length=1, max_length=512, description="personal data")
    received_on: date = Field(default_factory=_today, description="default today (UTC)")
    received_via: ReceivedVia = ReceivedVia.web_form


class IdentityBody(_Body):
    method: str = Field(min_length=1, max_length=200, description="e.g. email code, ID document")
    verified_by: str | None = Field(
        None, min_length=1, max_length=200, description="default: the signed-in account"
    )


class ExtensionBody(_Body):
    notice_sent_on: date = Field(description="day the requester was told (first period)")
    reason: str = Field(min_length=1, max_length=1000, description="the reasons given")


class AnswerBody(_Body):
    document_sha256: str | None = _sha256()
    stored_at: str | None = Field(None, max_length=1000, description="where it is kept (URI)")
    in_part: bool = Field(False, description="complied with in part only")
    detail: str = Field("answered", max_length=1000, description="what the answer gave")
    erasure_id: str | None = Field(
        None, max_length=200, description="a deletion request: the erasure that carried it out"
    )
    answered_on: date | None = Field(None, description="default today (UTC)")


class DenialBody(_Body):
    ground: DenialGround = Field(description="the 11 CCR 7102 ground")
    basis: str = Field(min_length=1, max_length=1000, description="the basis given (7101)")
    denied_on: date | None = Field(None, description="default today (UTC)")
    document_sha256: str | None = _sha256()
    stored_at: str | None = Field(None, max_length=1000)


@contextmanager
def request_register(service: LedgerService) -> Iterator[RequestRegister]:
    with service.request_log() as log, RequestRegister.over(log) as register:
        yield register


def open_request(service: LedgerService, actor: Actor, body: OpenRequestBody) -> dict[str, Any]:
    with request_register(service) as register:
        entry = register.open_request(
            kind=body.kind,
            law=body.law,
            subject_type=body.subject_type,
            subject_id=body.subject_id,
            received_on=body.received_on,
            received_via=body.received_via,
            opened_by=actor.name,
        )
    return entry_json(entry, _today())


def verify_identity(
    service: LedgerService, actor: Actor, request_id: str, body: IdentityBody
) -> dict[str, Any]:
    with request_register(service) as register:
        entry = register.verify_identity(
            request_id, method=body.method, verified_by=body.verified_by or actor.name
        )
    return entry_json(entry, _today())


def extend(service: LedgerService, request_id: str, body: ExtensionBody) -> dict[str, Any]:
    with request_register(service) as register:
        entry = register.extend(request_id, notice_sent_on=body.notice_sent_on, reason=body.reason)
    return entry_json(entry, _today())


def answer(
    service: LedgerService, actor: Actor, request_id: str, body: AnswerBody
) -> dict[str, Any]:
    with request_register(service) as register:
        entry = register.answer(
            request_id,
            answered_by=actor.name,
            document_sha256=body.document_sha256,
            stored_at=body.stored_at,
            response_detail=body.detail,
            in_part=body.in_part,
            erasure_id=body.erasure_id,
            answered_on=body.answered_on,
        )
    return entry_json(entry, _today())


def deny(service: LedgerService, actor: Actor, request_id: str, body: DenialBody) -> dict[str, Any]:
    with request_register(service) as register:
        entry = register.deny(
            request_id,
            ground=body.ground,
            basis=body.basis,
            denied_by=actor.name,
            denied_on=body.denied_on,
            document_sha256=body.document_sha256,
            stored_at=body.stored_at,
        )
    return entry_json(entry, _today())


def listing(
    service: LedgerService,
    *,
    as_of: date | None = None,
    overdue: bool = False,
    due_within: int | None = None,
    statuses: tuple[Status, ...] = (),
) -> dict[str, Any]:
    day = as_of or _today()
    if not service.request_log_path.exists():
        return listing_json([], day)
    with request_register(service) as register:
        entries = register.register_entries()
    chosen = select_entries(
        entries, as_of=day, overdue=overdue, due_within=due_within, statuses=statuses
    )
    return listing_json(chosen, day)


def show(service: LedgerService, request_id: str, as_of: date | None = None) -> dict[str, Any]:
    with request_register(service) as register:
        entry = register.entry(request_id)
    return entry_json(entry, as_of or _today())
