"""The project's errors as HTTP answers, for the routes that call the library.

Every body is JSON: ``detail`` (the library's message, which names the input and the fix)
and ``error`` (a stable code clients such as the CLI's ``--server`` path map to their exit
status). A report refused as incomplete answers 409 with the ledger's ``coverage``.

============================  ======  ==================
library error                 status  ``error``
============================  ======  ==================
IncompleteLedgerError         409     ``incomplete``
FutureAsOfError               400     ``future_as_of``
NotQuarantinedError,          404     ``not_found``
NoRequestLogError,
UnknownRequestError,
NoSuchApprovalError
SelfApprovalError             403     ``self_approval``
NotTheAskerError              403     ``not_yours``
NotDecidableError             409     ``not_pending``
QueryRefusedError,            422     ``refused``
NoticeError,
other ReportError
WrongSecretError              500     ``wrong_secret``
other LedgerError             503     ``ledger``
other DisclosureLedgerError   500     ``error``
============================  ======  ==================

Messages never carry a subject id: the library's messages name none.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers.periods import NoRequestLogError
from disclosure_ledger.service.answers.quarantine import NotQuarantinedError
from disclosure_ledger.service.approvals import (
    NoSuchApprovalError,
    NotDecidableError,
    NotTheAskerError,
    SelfApprovalError,
)
from ledger.errors import LedgerError, WrongSecretError
from ledger.notices import NoticeError
from reports.errors import FutureAsOfError, IncompleteLedgerError, ReportError
from reports.request_register import UnknownRequestError

INCOMPLETE = "incomplete"
FUTURE_AS_OF = "future_as_of"


def refusal(exc: DisclosureLedgerError) -> JSONResponse:
    """The JSON answer for ``exc`` (see the module's table)."""
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, IncompleteLedgerError):
        coverage = exc.coverage
        body.update(
            error=INCOMPLETE,
            coverage={**coverage.to_json(), "description": coverage.describe()},
        )
        return JSONResponse(body, status_code=409)
    code, status = _code(exc)
    body["error"] = code
    return JSONResponse(body, status_code=status)


def _code(exc: DisclosureLedgerError) -> tuple[str, int]:
    if isinstance(exc, FutureAsOfError):
        return FUTURE_AS_OF, 400
    if isinstance(exc, SelfApprovalError):
        return "self_approval", 403
    if isinstance(exc, NotTheAskerError):
        return "not_yours", 403
    if isinstance(exc, NotDecidableError):
        return "not_pending", 409
    if isinstance(
        exc, NotQuarantinedError | NoRequestLogError | NoSuchApprovalError | UnknownRequestError
    ):
        return "not_found", 404
    if isinstance(exc, ReportError | NoticeError):
        return "refused", 422
    if isinstance(exc, WrongSecretError):
        return "wrong_secret", 500
    if isinstance(exc, LedgerError):
        return "ledger", 503
    return "error", 500


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "as_of is in the future (error: future_as_of)"},
    401: {"description": "no credentials, or credentials no longer valid"},
    403: {"description": "the role may not do this, or the CSRF token is missing or wrong"},
    409: {
        "description": "refused as incomplete: the window ends after the ledger's coverage "
        "(error: incomplete, with the coverage)"
    },
    422: {"description": "bad input, named in detail"},
}
"""What the OpenAPI document says of these routes' refusals."""
