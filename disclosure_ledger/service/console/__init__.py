"""The web console: server-rendered Jinja2 pages, no external assets, no JavaScript at all,
a strict Content-Security-Policy on every response (:mod:`.page`).

One module per page or group of pages, each a router of :class:`.page.ConsoleRoute`:
:mod:`.session` (sign in and out), :mod:`.dashboard`, :mod:`.period_reports` (CCPA,
conformance, transfers, request metrics), :mod:`.subject_requests` (request to know,
recipients), :mod:`.request_register` (the request register), :mod:`.investigate` (SQL
and presets), :mod:`.quarantine`, :mod:`.verify`, :mod:`.access_log`, :mod:`.erasure`,
:mod:`.approvals`, :mod:`.notices` (GDPR Art. 19 notices after erasures). The stylesheet
and icon are served under ``/static/``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.staticfiles import StaticFiles

from disclosure_ledger.service.console import (
    access_log,
    approvals,
    dashboard,
    erasure,
    investigate,
    notices,
    period_reports,
    quarantine,
    request_register,
    session,
    subject_requests,
    verify,
)
from disclosure_ledger.service.console.page import SECURITY_HEADERS, ConsoleRoute


class ConsoleStatic(StaticFiles):
    """The console's own stylesheet and icon, from the installed package, with the console's
    security headers."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "max-age=3600"
        return response


console_router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
console_router.mount(
    "/static",
    ConsoleStatic(packages=[("disclosure_ledger.service.console", "static")]),
    name="console-static",
)

for _module in (
    session,
    dashboard,
    period_reports,
    subject_requests,
    request_register,
    investigate,
    quarantine,
    verify,
    access_log,
    erasure,
    approvals,
    notices,
):
    console_router.include_router(_module.router)
