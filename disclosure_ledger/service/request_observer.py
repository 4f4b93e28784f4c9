"""The middleware that counts, times and logs every HTTP request by its route template.

Pure ASGI (no body is read or buffered): it notes the status the app sends, and once the
response is sent (or the app fails: then 500) it counts the request in the app's metrics
(:class:`~.metrics.ServiceMetrics`) and writes one log line (:mod:`.logs`) with the method,
the route template Starlette matched (``/api/v1/verify/{job_id}``; ``(unmatched)`` when
none did), the status, the duration and the actor's name. Never the URL itself, its query
string, a header or the body.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from disclosure_ledger.service.metrics import ServiceMetrics

log = logging.getLogger("disclosure_ledger.service.http")

UNMATCHED = "(unmatched)"


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def actor_name(scope: Scope) -> str | None:
    actor = scope.get("state", {}).get("actor")
    name = getattr(actor, "name", None)
    return name if isinstance(name, str) else None


class RequestObserver:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with the request, which notes its actor there
        started = time.perf_counter()
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            seconds = time.perf_counter() - started
            method, route = str(scope.get("method", "")), route_template(scope)
            self.metrics.observe_request(method, route, status, seconds)
            log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "actor": actor_name(scope),
                },
            )
