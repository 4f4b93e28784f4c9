"""``/investigate``: the investigator's workspace.

- A SQL editor: the statement, a reason (kept in the access log), and a paged result
  table (:func:`disclosure_ledger.service.queries.query_page`: the same parser check as
  ``query``, a transaction always rolled back, the time limit, a query slot). Each page
  read is recorded. A refused statement shows the refusal, and nothing ran.
- Downloads of the whole result as CSV, JSON or Parquet
  (:func:`~disclosure_ledger.service.queries.run_query_download`), recorded likewise.
- The presets (timeline, recipient, volume) as ``query`` runs them
  (:func:`~disclosure_ledger.service.queries.run_preset`); a timeline's subject id travels
  only in the POST body and is never shown back.

Every form here is a POST with the session's CSRF token: each one reads personal data.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.queries import query_http_error
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.forms import (
    FormError,
    checked_form,
    choice_field,
    parse_date,
    text_field,
)
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.queries import (
    DOWNLOAD_FORMATS,
    PRESETS,
    PresetParams,
    QueryPage,
    SpooledResult,
    query_page,
    run_preset,
    run_query_download,
)
from disclosure_ledger.service.runtime import LedgerService
from ledger.errors import LedgerError
from reports.errors import QueryRefusedError, ReportError
from reports.presets import VOLUME_BY
from reports.render import cell_text

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 50
PRESET_ROWS_SHOWN = 200
EXAMPLE_SQL = (
    "SELECT recipient_category, count(*) AS disclosures\n"
    "FROM disclosures\nGROUP BY ALL\nORDER BY disclosures DESC"
)


def _workspace(
    request: Request, *, status_code: int = status.HTTP_200_OK, **values: Any
) -> Response:
    shown: dict[str, Any] = {
        "sql": EXAMPLE_SQL,
        "reason": "",
        "result": None,
        "preset_result": None,
        "message": None,
        "where": None,
        "refused": False,
        "presets": PRESETS,
        "volume_by": VOLUME_BY,
        "formats": DOWNLOAD_FORMATS,
    } | values
    return render_page(request, "investigate.html.j2", status_code=status_code, **shown)


def _attachment(result: SpooledResult) -> Response:
    return StreamingResponse(
        result.chunks(),
        media_type=result.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Content-Length": str(result.size),
        },
    )


def _not_answered(
    request: Request, exc: ReportError | LedgerError, *, subject_id: str = "", **values: Any
) -> Response:
    """The workspace again, with the status and message the API gives the same failure
    (:func:`~disclosure_ledger.service.api.queries.query_http_error`); a subject id the
    message would repeat is replaced."""
    error = query_http_error(exc)
    message = str(error.detail)
    if subject_id:
        message = message.replace(subject_id, "[the subject id]")
    response = _workspace(request, status_code=error.status_code, message=message, **values)
    response.headers.update(
        {k: v for k, v in (error.headers or {}).items() if k.lower() == "retry-after"}
    )
    return response


def _page_number(form: FormData) -> int:
    text = form.get("page")
    if not isinstance(text, str) or not text.strip():
        return 1
    if not text.strip().isdigit() or int(text) < 1:
        raise FormError("Page: give a page number from 1.")
    return int(text)


@router.get("/investigate")
def workspace(
    request: Request, _actor: Annotated[Actor, Depends(require(Action.query))]
) -> Response:
    return _workspace(request)


@router.post("/investigate")
async def run_statement(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.query))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    form = await checked_form(request)
    sql = text_field(form, "sql", "SQL")
    reason = text_field(form, "reason", "Reason")
    deliver = choice_field(form, "deliver", "Answer as", ("page", *DOWNLOAD_FORMATS))
    try:
        if deliver != "page":
            spooled = await run_in_threadpool(
                run_query_download, service, actor, sql, reason=reason, fmt=deliver
            )
            return _attachment(spooled)
        page: QueryPage = await run_in_threadpool(
            query_page,
            service,
            actor,
            sql,
            reason=reason,
            page=_page_number(form),
            page_size=PAGE_SIZE,
        )
    except (ReportError, LedgerError) as exc:
        return _not_answered(
            request,
            exc,
            sql=sql,
            reason=reason,
            refused=isinstance(exc, QueryRefusedError),
            where="query",
        )
    rows = [[cell_text(value, null="NULL") for value in row] for row in page.rows]
    return _workspace(request, sql=sql, reason=reason, result={"page": page, "rows": rows})


def _preset_params(form: FormData, preset: str) -> PresetParams:
    start = parse_date(_text(form, "start"), "From")
    end = parse_date(_text(form, "end"), "To")
    if start is not None and end is not None and start >= end:
        raise FormError("From must be before To: give an earlier date.")
    return PresetParams(
        subject_id=(_text(form, "subject_id") or None) if preset == "timeline" else None,
        subject_type=_text(form, "subject_type") or "member",
        recipient_id=(_text(form, "recipient_id") or None) if preset == "recipient" else None,
        by=_text(form, "by") or "recipient",
        start=_midnight(start),
        end=_midnight(end),
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=UTC)


@router.post("/investigate/preset")
async def run_preset_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.query))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    form = await checked_form(request)
    preset = choice_field(form, "preset", "Preset", PRESETS)
    reason = text_field(form, "reason", "Reason")
    deliver = choice_field(form, "deliver", "Answer as", ("page", *DOWNLOAD_FORMATS))
    params = _preset_params(form, preset)
    subject_id = params.subject_id or ""
    try:
        spooled = await run_in_threadpool(
            run_preset,
            service,
            actor,
            preset,
            params,
            reason=reason,
            fmt="json" if deliver == "page" else deliver,
        )
    except (ReportError, LedgerError) as exc:
        return _not_answered(request, exc, subject_id=subject_id, where="preset")
    if deliver != "page":
        return _attachment(spooled)
    records: list[dict[str, Any]] = json.loads(spooled.read().decode("utf-8"))
    columns = list(records[0]) if records else []
    rows = [[cell_text(record[c], null="NULL") for c in columns] for record in records]
    return _workspace(
        request,
        preset_result={
            "preset": preset,
            "columns": columns,
            "rows": rows[:PRESET_ROWS_SHOWN],
            "total": len(rows),
            "shown": min(len(rows), PRESET_ROWS_SHOWN),
            "coverage": spooled.coverage,
        },
    )
