"""The period reports (CCPA, conformance, transfers) and the request metrics, as pages.

``GET /reports/KIND?as_of=DATE[&since=DATE][&allow_incomplete=1]`` shows the report the
CLI's ``report KIND`` writes, rendered by the library itself (:mod:`.embedding`), with its
downloads (``/reports/KIND/download?...&format=md|html|csv|json``, the same text the CLI
writes). A window past the ledger's coverage is refused as the CLI refuses it (409): the
page shows the coverage, what holds it back, and offers to produce it provisional.

``GET /reports/requests?year=YYYY`` shows the 11 CCR 7102 metrics of the request log.

These reports hold no personal data, so their parameters may travel in the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from disclosure_ledger.service.answers import (
    PERIOD_KINDS,
    NoRequestLogError,
    PeriodKind,
    period_report,
    request_metrics,
)
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.embedding import (
    DOWNLOAD_FORMATS,
    download,
    download_format,
    report_body,
)
from disclosure_ledger.service.console.forms import FormError, parse_date
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.runtime import LedgerService
from reports.errors import FutureAsOfError, IncompleteLedgerError, ReportError

router = APIRouter(route_class=ConsoleRoute)


@dataclass(frozen=True)
class PeriodPage:
    title: str
    basis: str
    has_since: bool


PERIOD_PAGES: dict[PeriodKind, PeriodPage] = {
    "ccpa": PeriodPage(
        "CCPA report",
        "Cal. Civ. Code 1798.130(a)(5)(C): the 12 months before the as-of date.",
        False,
    ),
    "conformance": PeriodPage(
        "Conformance",
        "Undeclared flows, transfers without safeguard and unregistered recipients.",
        True,
    ),
    "transfers": PeriodPage(
        "Transfers",
        "GDPR Art. 30(1)(e): disclosures outside the EEA and the safeguard in force.",
        True,
    ),
}


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=UTC)


def _report_text(service: LedgerService, kind: PeriodKind, ask: PeriodAsk, fmt: str) -> str:
    """``report KIND --format FMT`` through the service's answers (the CLI's calls)."""
    as_of = _midnight(ask.as_of)
    assert as_of is not None
    return period_report(
        service,
        kind,
        as_of=as_of,
        since=_midnight(ask.since),
        allow_incomplete=ask.allow_incomplete,
        fmt=fmt,
    )


@dataclass(frozen=True)
class PeriodAsk:
    as_of: date
    since: date | None
    allow_incomplete: bool
    asked: bool  # an as-of date was given: produce the report

    def query(self, **extra: str) -> dict[str, str]:
        values = {"as_of": self.as_of.isoformat()}
        if self.since is not None:
            values["since"] = self.since.isoformat()
        if self.allow_incomplete:
            values["allow_incomplete"] = "1"
        return values | extra


def _period_ask(request: Request, kind: PeriodPage) -> PeriodAsk:
    params = request.query_params
    as_of = parse_date(params.get("as_of"), "As of")
    since = parse_date(params.get("since"), "Since") if kind.has_since else None
    if since is not None and as_of is not None and since >= as_of:
        raise FormError("Since must be before As of: give an earlier date.")
    return PeriodAsk(
        as_of=as_of or datetime.now(UTC).date(),
        since=since,
        allow_incomplete=params.get("allow_incomplete") in {"1", "true", "on"},
        asked=as_of is not None,
    )


def _kind(name: str) -> PeriodKind:
    for kind in PERIOD_KINDS:
        if kind == name:
            return cast(PeriodKind, kind)
    raise HTTPException(status.HTTP_404_NOT_FOUND, "No such report in the console.")


@router.get("/reports/requests")
def request_metrics_page(
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.request_metrics))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    year = _year(request.query_params.get("year"))
    fmt = request.query_params.get("format")
    values: dict[str, Any] = {"year": year, "formats": list(DOWNLOAD_FORMATS)}
    try:
        if fmt is not None:
            text = request_metrics(service, year, download_format(fmt))
            return download(text, stem=f"request-metrics-{year}", fmt=fmt)
        body = report_body(request_metrics(service, year, "html"))
    except NoRequestLogError as exc:
        if fmt is not None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        return render_page(request, "request_metrics.html.j2", report=None, **values)
    except ReportError as exc:
        raise FormError(str(exc)) from exc
    return render_page(request, "request_metrics.html.j2", report=body, **values)


def _year(text: str | None) -> int:
    if text is None or not text.strip():
        return datetime.now(UTC).year
    if not text.strip().isdigit() or not 2000 <= int(text) <= 2200:
        raise FormError("Year: give a calendar year such as 2026.")
    return int(text)


@router.get("/reports/{name}")
def period_report_page(
    name: str,
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.report))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    kind = _kind(name)
    page = PERIOD_PAGES[kind]
    ask = _period_ask(request, page)
    values: dict[str, Any] = {
        "name": kind,
        "kind": page,
        "ask": ask,
        "formats": list(DOWNLOAD_FORMATS),
    }
    if not ask.asked:
        return render_page(request, "period_report.html.j2", report=None, refusal=None, **values)
    try:
        text = _report_text(service, kind, ask, "html")
    except IncompleteLedgerError as exc:
        return render_page(
            request,
            "period_report.html.j2",
            status_code=status.HTTP_409_CONFLICT,
            report=None,
            refusal=exc,
            **values,
        )
    except (FutureAsOfError, ReportError) as exc:
        raise FormError(str(exc)) from exc
    return render_page(
        request, "period_report.html.j2", report=report_body(text), refusal=None, **values
    )


@router.get("/reports/{name}/download")
def period_report_download(
    name: str,
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.report))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    kind = _kind(name)
    ask = _period_ask(request, PERIOD_PAGES[kind])
    fmt = download_format(request.query_params.get("format"))
    try:
        text = _report_text(service, kind, ask, fmt)
    except IncompleteLedgerError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Refused as incomplete: {exc} Produce it provisional from the report's page.",
        ) from exc
    except ReportError as exc:
        raise FormError(str(exc)) from exc
    return download(text, stem=f"{kind}-report", fmt=fmt, on=ask.as_of)
