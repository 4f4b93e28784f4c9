"""The web console: server-rendered Jinja2 pages, no external assets, no JavaScript at all,
a strict Content-Security-Policy on every response (:mod:`.page`).

One module per page or group of pages, each a router of :class:`.page.ConsoleRoute`:
:mod:`.session` (sign in and out), :mod:`.dashboard`, :mod:`.period_reports` (CCPA,
conformance, transfers, request metrics), :mod:`.subject_requests` (request to know,
recipients), :mod:`.investigate` (SQL and presets), :mod:`.quarantine`,
:mod:`.verify`, :mod:`.access_log`, :mod:`.erasure`. The stylesheet is served at
``/console.css``, the icon at ``/favicon.svg``.
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

STATIC = files("disclosure_ledger.service.console").joinpath("static")

console_router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


def _static(name: str, media_type: str) -> Response:
    response = Response(STATIC.joinpath(name).read_bytes(), media_type=media_type)
    response.headers["Cache-Control"] = "max-age=3600"
    return response


@console_router.get("/console.css")
def stylesheet() -> Response:
    return _static("console.css", "text/css; charset=utf-8")


@console_router.get("/favicon.svg")
def favicon() -> Response:
    return _static("favicon.svg", "image/svg+xml")


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
