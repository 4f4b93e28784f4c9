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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.embedding import (
    DOWNLOAD_FORMATS,
    download,
    download_format,
    report_body,
)
from disclosure_ledger.service.console.forms import FormError, parse_date
from disclosure_ledger.service.console.page import ConsoleRoute, render_page, signed_in
from disclosure_ledger.service.runtime import LedgerService
from ledger.store import Ledger
from reports.ccpa import ccpa_report, render_ccpa
from reports.conformance import conformance_report, render_conformance
from reports.errors import FutureAsOfError, IncompleteLedgerError, ReportError
from reports.request_metrics import render_requests, requests_report
from reports.transfers import render_transfers, transfers_report

router = APIRouter(route_class=ConsoleRoute)


@dataclass(frozen=True)
class PeriodKind:
    title: str
    basis: str
    has_since: bool
    text: Callable[[Ledger, date, date | None, bool, str], str]


PERIOD_REPORTS: dict[str, PeriodKind] = {
    "ccpa": PeriodKind(
        "CCPA report",
        "Cal. Civ. Code 1798.130(a)(5)(C): the 12 months before the as-of date.",
        False,
        lambda view, as_of, _since, allow, fmt: render_ccpa(
            ccpa_report(view, as_of, allow_incomplete=allow), fmt
        ),
    ),
    "conformance": PeriodKind(
        "Conformance",
        "Undeclared flows, transfers without safeguard and unregistered recipients.",
        True,
        lambda view, as_of, since, allow, fmt: render_conformance(
            conformance_report(view, as_of, since=since, allow_incomplete=allow), fmt
        ),
    ),
    "transfers": PeriodKind(
        "Transfers",
        "GDPR Art. 30(1)(e): disclosures outside the EEA and the safeguard in force.",
        True,
        lambda view, as_of, since, allow, fmt: render_transfers(
            transfers_report(view, as_of, since=since, allow_incomplete=allow), fmt
        ),
    ),
}


def period_report(
    service: LedgerService,
    kind: str,
    *,
    as_of: date,
    since: date | None,
    allow_incomplete: bool,
    fmt: str,
) -> str:
    """The report's text, as ``report KIND --format FMT`` writes it, on a view."""
    with service.view() as view:
        return PERIOD_REPORTS[kind].text(view, as_of, since, allow_incomplete, fmt)


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


def _period_ask(request: Request, kind: PeriodKind) -> PeriodAsk:
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
    found = PERIOD_REPORTS.get(name)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No report {name!r} in the console.")
    return found


@router.get("/reports/requests")
def request_metrics_page(
    request: Request,
    _actor: Annotated[Actor, Depends(signed_in(Action.request_metrics))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    year = _year(request.query_params.get("year"))
    fmt = request.query_params.get("format")
    if fmt is not None:
        return download(
            request_metrics(service, year, download_format(fmt)),
            stem=f"request-metrics-{year}",
            fmt=fmt,
        )
    return render_page(
        request,
        "request_metrics.html.j2",
        year=year,
        report=report_body(request_metrics(service, year, "html")),
        formats=list(DOWNLOAD_FORMATS),
    )


def request_metrics(service: LedgerService, year: int, fmt: str) -> str:
    """``report requests --year YEAR`` (answers a late event changed are looked for)."""
    with service.request_log() as log, service.view() as view:
        return render_requests(requests_report(log, year, ledger=view), fmt)


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
    _actor: Annotated[Actor, Depends(signed_in(Action.report))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    kind = _kind(name)
    ask = _period_ask(request, kind)
    values = {"name": name, "kind": kind, "ask": ask, "formats": list(DOWNLOAD_FORMATS)}
    if not ask.asked:
        return render_page(request, "period_report.html.j2", report=None, refusal=None, **values)
    try:
        text = period_report(
            service,
            name,
            as_of=ask.as_of,
            since=ask.since,
            allow_incomplete=ask.allow_incomplete,
            fmt="html",
        )
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
    _actor: Annotated[Actor, Depends(signed_in(Action.report))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    kind = _kind(name)
    ask = _period_ask(request, kind)
    fmt = download_format(request.query_params.get("format"))
    try:
        text = period_report(
            service,
            name,
            as_of=ask.as_of,
            since=ask.since,
            allow_incomplete=ask.allow_incomplete,
            fmt=fmt,
        )
    except IncompleteLedgerError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Refused as incomplete: {exc} Produce it provisional from the report's page.",
        ) from exc
    except ReportError as exc:
        raise FormError(str(exc)) from exc
    return download(text, stem=f"{name}-report", fmt=fmt, on=ask.as_of)
