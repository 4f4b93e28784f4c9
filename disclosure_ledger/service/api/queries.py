"""``POST /api/v1/queries``, ``/queries/presets/{name}`` and ``/queries/page``: investigator
queries (:mod:`disclosure_ledger.service.queries`), for the ``query`` permission.

Every route takes a JSON body with a required ``reason`` (kept in the access log, with the
query text and the rows returned, committed before the answer is sent). Subject ids travel
only in the body. Errors:

- 400: the statement was refused (the same message as the CLI's), it failed, or an input
  is wrong (named);
- 408: it ran past the service's query time limit and was stopped (the limit named);
- 429 with ``Retry-After``: every query slot stayed busy;
- 503: the read could not be recorded in the access log, so it is not answered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.limits import ValidationAnswer
from disclosure_ledger.service.queries import (
    DEFAULT_PAGE_ROWS,
    MEDIA_TYPES,
    DownloadFormat,
    PresetName,
    PresetParams,
    QueriesBusyError,
    SpooledResult,
    query_page,
    run_preset,
    run_query_download,
)
from disclosure_ledger.service.reason import Reason
from disclosure_ledger.service.runtime import LedgerService
from ledger.coverage import Coverage, iso_ms
from ledger.errors import LedgerError
from reports.errors import QueryRefusedError, QueryTimeLimitError, ReportError
from reports.render import json_value

router = APIRouter(prefix="/queries", tags=["queries"])

Sql = Annotated[
    str,
    Field(
        min_length=1,
        description="one read-only SELECT (or WITH ... SELECT) over the ledger's tables",
    ),
]


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: Sql
    format: DownloadFormat = "json"
    reason: Reason


class PageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: Sql
    reason: Reason
    page: int = Field(1, ge=1, description="from 1")
    page_size: int | None = Field(
        None,
        ge=1,
        description=f"rows per page (default {DEFAULT_PAGE_ROWS}), at most the service's "
        "max_page_rows",
    )


class PresetBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    subject_id: str | None = Field(None, description="timeline: the person's id")
    subject_type: Literal["member", "guest"] = Field("member", description="timeline")
    recipient_id: str | None = Field(None, description="recipient: the recipient's id")
    by: Literal["recipient", "category", "day"] = Field("recipient", description="volume")
    from_: datetime | None = Field(None, alias="from", description="start, included")
    to: datetime | None = Field(None, description="end, excluded")
    format: DownloadFormat = "json"
    reason: Reason


class PageResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]] = Field(description="values as in the JSON download")
    page: int
    page_size: int
    has_more: bool
    total_rows: int | None = Field(description="known on the last page; null before it")
    complete_through: str | None = Field(
        description="the ledger's coverage when the rows were read: complete through this "
        "time (RFC 3339); null: nothing proven complete. Rows after it may still arrive"
    )
    coverage: str = Field(description="the coverage in words, and what holds it back")


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "refused, failed, or a wrong input (named)"},
    408: {"description": "stopped at the service's query time limit"},
    422: {"description": "a field of the body is missing or wrong", "model": ValidationAnswer},
    429: {"description": "every query slot stayed busy; see Retry-After"},
    503: {"description": "the read could not be recorded in the access log"},
}
_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the rows as CSV, JSON (an array of objects) or Parquet; the "
        "X-Result-Rows header counts them",
        "content": {media.split(";")[0]: {} for media in sorted(MEDIA_TYPES.values())},
    },
    **_ERRORS,
}

Investigator = Annotated[Actor, Depends(require(Action.query))]
Service = Annotated[LedgerService, Depends(ledger_service)]


@router.post(
    "", response_class=StreamingResponse, responses=_DOWNLOAD, summary="Run a read-only query"
)
def post_query(body: QueryBody, actor: Investigator, service: Service) -> StreamingResponse:
    """Run one read-only statement; the whole result, in ``format``."""
    try:
        result = run_query_download(service, actor, body.sql, reason=body.reason, fmt=body.format)
    except (ReportError, LedgerError) as exc:
        raise query_http_error(exc) from exc
    return download(result)


@router.post("/page", responses=_ERRORS, summary="One page of a query's rows")
def post_query_page(body: PageBody, actor: Investigator, service: Service) -> PageResult:
    """One page of a statement's rows (what the console's table shows)."""
    try:
        page = query_page(
            service,
            actor,
            body.sql,
            reason=body.reason,
            page=body.page,
            page_size=body.page_size or min(DEFAULT_PAGE_ROWS, service.config.max_page_rows),
        )
    except (ReportError, LedgerError) as exc:
        raise query_http_error(exc) from exc
    return PageResult(
        columns=page.columns,
        rows=[[json_value(value) for value in row] for row in page.rows],
        page=page.page,
        page_size=page.page_size,
        has_more=page.has_more,
        total_rows=page.total_rows,
        complete_through=coverage_fields(page.coverage)["complete_through"],
        coverage=coverage_fields(page.coverage)["coverage"] or "",
    )


@router.post(
    "/presets/{name}",
    response_class=StreamingResponse,
    responses=_DOWNLOAD,
    summary="Run a named query (timeline, recipient, volume)",
)
def post_preset(
    name: PresetName, body: PresetBody, actor: Investigator, service: Service
) -> StreamingResponse:
    """A named query: ``timeline`` (needs subject_id), ``recipient`` (recipient_id) or
    ``volume`` (by), over ``[from, to)``."""
    params = PresetParams(
        subject_id=body.subject_id,
        subject_type=body.subject_type,
        recipient_id=body.recipient_id,
        by=body.by,
        start=body.from_,
        end=body.to,
    )
    try:
        result = run_preset(service, actor, name, params, reason=body.reason, fmt=body.format)
    except (ReportError, LedgerError) as exc:
        raise query_http_error(exc) from exc
    return download(result)


def download(result: SpooledResult) -> StreamingResponse:
    """The spooled result, streamed; the spool is closed (deleted) once sent."""
    return StreamingResponse(
        result.chunks(),
        media_type=result.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Content-Length": str(result.size),
            "X-Result-Rows": str(result.rows),
            **coverage_headers(result.coverage),
        },
    )


def coverage_fields(coverage: Coverage | None) -> dict[str, str | None]:
    """A page's coverage: rows read past it may be incomplete, and the answer says so."""
    if coverage is None:
        return {"complete_through": None, "coverage": "coverage unknown"}
    return {"complete_through": iso_ms(coverage.complete_through), "coverage": coverage.describe()}


def coverage_headers(coverage: Coverage | None) -> dict[str, str]:
    """A download's coverage, as headers (its body is the rows alone): ``X-Ledger-Complete-
    Through`` (RFC 3339, or ``none``) and ``X-Ledger-Coverage`` (in words)."""
    fields = coverage_fields(coverage)
    return {
        "X-Ledger-Complete-Through": fields["complete_through"] or "none",
        "X-Ledger-Coverage": (fields["coverage"] or "").encode("ascii", "replace").decode(),
    }


def query_http_error(exc: ReportError | LedgerError) -> HTTPException:
    """The HTTP error of a query that was not answered (see the module doc); the console
    shows the same status and message."""
    if isinstance(exc, QueriesBusyError):
        return HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            str(exc),
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, QueryTimeLimitError):
        return HTTPException(
            status.HTTP_408_REQUEST_TIMEOUT,
            f"{exc} (the service's limit: `serve --query-time-limit`)",
        )
    if isinstance(exc, QueryRefusedError | ReportError):
        return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
