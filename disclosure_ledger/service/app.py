"""``create_app``: the service's ASGI application (FastAPI over Starlette).

Routes: ``/api/v1/...`` (:mod:`.api`), the console (:mod:`.console`), ``/healthz``,
``/readyz``, ``/metrics`` (:mod:`.metrics`: Prometheus text, no sign-in, no personal data).
Every request is counted and logged by its route template (:mod:`.request_observer`).
The OpenAPI document is served at ``/api/v1/openapi.json`` and committed as
``docs/openapi.json`` (``python -m disclosure_ledger.service.openapi docs/openapi.json``).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from disclosure_ledger.service.api import api_router
from disclosure_ledger.service.auth.accounts import AccountStore
from disclosure_ledger.service.auth.throttle import LoginThrottle
from disclosure_ledger.service.config import ServiceConfig
from disclosure_ledger.service.console import console_router
from disclosure_ledger.service.limits import RequestLimits, validation_error
from disclosure_ledger.service.metrics import ServiceMetrics
from disclosure_ledger.service.request_observer import RequestObserver
from disclosure_ledger.service.runtime import LedgerService

API_VERSION = "v1"


def create_app(service: LedgerService | None, accounts: AccountStore) -> FastAPI:
    """The application over ``service`` (None only to write the OpenAPI document)."""
    app = FastAPI(
        title="disclosure-ledger",
        version=API_VERSION,
        summary="An auditable ledger of every disclosure of members' personal data.",
        openapi_url=f"/api/{API_VERSION}/openapi.json",
        docs_url=None,  # the Swagger UI loads scripts from a CDN: not under our CSP
        redoc_url=None,
    )
    app.state.service = service
    app.state.accounts = accounts
    app.state.login_throttle = LoginThrottle()
    max_body = ServiceConfig.max_body_bytes if service is None else service.config.max_body_bytes
    app.add_middleware(RequestLimits, max_body_bytes=max_body)
    # a body may carry a subject id: a 422 says where and what, never echoes the input
    app.add_exception_handler(RequestValidationError, validation_error)
    metrics = ServiceMetrics(service)
    app.state.metrics = metrics
    app.add_middleware(RequestObserver, metrics=metrics, prefixes=("", f"/api/{API_VERSION}"))

    @app.get("/healthz", include_in_schema=False, response_class=PlainTextResponse)
    def healthz() -> str:
        """The process answers."""
        return "ok\n"

    @app.get("/readyz", include_in_schema=False, response_class=PlainTextResponse)
    def readyz() -> PlainTextResponse:
        """Ready when the ledger is open and ingestion runs (or was not asked for)."""
        state = service.ingest_state if service is not None else None
        if service is None or service.stopping:
            return PlainTextResponse("stopping\n", status_code=503)
        if service.ingest_settings is not None and state is not None and not state.running:
            return PlainTextResponse(f"ingestion stopped: {state.error}\n", status_code=503)
        return PlainTextResponse("ready\n")

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus text format; no sign-in: no metric carries personal data."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api_router, prefix=f"/api/{API_VERSION}")
    app.include_router(console_router)
    return app
