"""The web console: server-rendered Jinja2 pages, no external assets, no JavaScript at all,
a strict Content-Security-Policy on every response (:mod:`.page`).

One module per page or group of pages, each a router of :class:`.page.ConsoleRoute`:
:mod:`.session` (sign in and out), :mod:`.dashboard`, :mod:`.period_reports` (CCPA,
conformance, transfers, request metrics), :mod:`.subject_requests` (request to know,
recipients), :mod:`.investigate` (SQL and presets), :mod:`.quarantine`,
:mod:`.verify`, :mod:`.access_log`, :mod:`.erasure`. The stylesheet is served at ``/console.css``.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Response

from disclosure_ledger.service.console import (
    access_log,
    dashboard,
    erasure,
    investigate,
    period_reports,
    quarantine,
    session,
    subject_requests,
    verify,
)
from disclosure_ledger.service.console.page import ConsoleRoute

STYLESHEET = files("disclosure_ledger.service.console").joinpath("static/console.css")

console_router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


@console_router.get("/console.css")
def stylesheet() -> Response:
    response = Response(STYLESHEET.read_text(encoding="utf-8"), media_type="text/css")
    response.headers["Cache-Control"] = "max-age=3600"
    return response


for _module in (
    session,
    dashboard,
    period_reports,
    subject_requests,
    investigate,
    quarantine,
    verify,
    access_log,
    erasure,
):
    console_router.include_router(_module.router)
