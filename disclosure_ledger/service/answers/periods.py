"""Period reports (ccpa, conformance, transfers) and the request metrics, as the CLI's
``report KIND`` writes them. None reads personal data: no access-log entry."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal, get_args

from reports.document import REPORT_FORMATS
from reports.errors import ReportError

if TYPE_CHECKING:
    from disclosure_ledger.service.runtime import LedgerService


class NoRequestLogError(ReportError):
    """No request has been answered yet: there is no request log to count."""


PeriodKind = Literal["ccpa", "conformance", "transfers"]
PERIOD_KINDS: tuple[str, ...] = get_args(PeriodKind)


def check_format(fmt: str) -> None:
    """Refuse an unknown format before anything is read or recorded."""
    if fmt not in REPORT_FORMATS:
        raise ReportError(f"unknown format {fmt!r}; choose one of {', '.join(REPORT_FORMATS)}")


def period_report(
    service: LedgerService,
    kind: PeriodKind,
    *,
    as_of: datetime,
    since: datetime | None = None,
    allow_incomplete: bool = False,
    fmt: str = "json",
) -> str:
    """``report ccpa|conformance|transfers``: the same library calls on a view.

    Raises the library's errors: :class:`~reports.errors.IncompleteLedgerError` (the window
    ends after the coverage and ``allow_incomplete`` is not set),
    :class:`~reports.errors.FutureAsOfError`, :class:`~reports.errors.ReportError`.
    """
    check_format(fmt)
    if kind == "ccpa":
        from reports.ccpa import ccpa_report, render_ccpa

        if since is not None:
            raise ReportError(
                "the CCPA report always covers the 12 months before as_of: leave since out"
            )
        with service.view() as view:
            report = ccpa_report(view, as_of, allow_incomplete=allow_incomplete)
        return render_ccpa(report, fmt)
    if kind == "conformance":
        from reports.conformance import conformance_report, render_conformance

        with service.view() as view:
            conformance = conformance_report(
                view, as_of, since=since, allow_incomplete=allow_incomplete
            )
        return render_conformance(conformance, fmt)
    if kind == "transfers":
        from reports.transfers import render_transfers, transfers_report

        with service.view() as view:
            transfers = transfers_report(
                view, as_of, since=since, allow_incomplete=allow_incomplete
            )
        return render_transfers(transfers, fmt)
    raise ReportError(f"unknown report {kind!r}; choose one of {', '.join(PERIOD_KINDS)}")


def request_metrics(service: LedgerService, year: int, fmt: str) -> str:
    """``report requests --year``: the metrics of the request log, with the answers a late
    event changed since the last look (looked for in the ledger, as the CLI does)."""
    from reports.request_metrics import render_requests, requests_report

    check_format(fmt)
    if not service.request_log_path.exists():
        raise NoRequestLogError(
            f"no request log at {service.request_log_path}: requests are logged when a "
            "request to know or a recipients request is answered"
        )
    if not 1970 <= year <= 9999:
        raise ReportError(f"year {year} is not a calendar year like 2026")
    with service.request_log() as log, service.view() as view:
        report = requests_report(log, year, ledger=view)
    return render_requests(report, fmt)
