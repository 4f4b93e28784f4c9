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
import re
import time
from collections.abc import Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from disclosure_ledger.service.metrics import ServiceMetrics

log = logging.getLogger("disclosure_ledger.service.http")

UNMATCHED = "(unmatched)"
UNKNOWN_PREFIX = "{prefix}"


def route_template(scope: Scope, prefixes: Collection[str] = ("",)) -> str:
    """The template of the route that answered: the prefix its router was included under
    (one of ``prefixes``, else ``{prefix}``: never a piece of the URL that is not one of
    them) and the route's own path template. FastAPI's ``scope["route"]`` is the route
    as its router declared it, without the prefix it was included under."""
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str):
        return UNMATCHED
    path = str(scope.get("path", ""))
    if isinstance(pattern, re.Pattern):
        for at in [i for i, char in enumerate(path) if char == "/"]:
            if pattern.match(path[at:]):
                prefix = path[:at]
                return (prefix if prefix in prefixes else UNKNOWN_PREFIX) + template
    return template


def actor_name(scope: Scope) -> str | None:
    actor = scope.get("state", {}).get("actor")
    name = getattr(actor, "name", None)
    return name if isinstance(name, str) else None


class RequestObserver:
    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics, prefixes: Collection[str] = ("",)
    ) -> None:
        """``prefixes``: those routers are included under (``/api/v1``), shown as they are."""
        self.app = app
        self.metrics = metrics
        self.prefixes = frozenset(prefixes)

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
            method, route = str(scope.get("method", "")), route_template(scope, self.prefixes)
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
