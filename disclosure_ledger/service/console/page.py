"""What every console page shares: the route class that adds the security headers to every
response and turns refusals into pages, the templates, and who is signed in.

- :class:`ConsoleRoute` wraps each console route: a refusal (``HTTPException``) becomes an
  HTML page with the same status (a browser without a session is redirected to
  ``/login``), and every response, a page, a redirect or a download, carries
  :data:`SECURITY_HEADERS`.
- Every page depends on :func:`~disclosure_ledger.service.auth.actor.require`, as every API
  route does: the actor, if its role may do the page's action; else 401, which a browser
  gets as a redirect to ``/login`` (``?expired=1`` when its session expired), or 403.
- :func:`render_page` fills a template of ``templates/`` (autoescaped, loaded from the
  installed package) with the navigation the actor's role may use.

Error pages never echo what was submitted: a subject id travels only in a POST body, and a
page about a refused request says what was wrong without repeating it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import SESSION_COOKIE
from disclosure_ledger.service.auth.roles import Action, permission_allowed

log = logging.getLogger("disclosure_ledger.service.console")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""No script at all, styles and images from the service only, forms post only to it, and
no page may be framed (clickjacking)."""

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
"""On every console response: pages show personal data, so none is cached."""

LOGIN_PATH = "/login"

TEMPLATES = Environment(
    loader=PackageLoader("disclosure_ledger.service.console", "templates"),
    autoescape=select_autoescape(["j2", "html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)


@dataclass(frozen=True)
class NavEntry:
    path: str
    label: str
    action: Action


NAVIGATION: tuple[NavEntry, ...] = (
    NavEntry("/", "Dashboard", Action.status),
    NavEntry("/reports/ccpa", "CCPA report", Action.report),
    NavEntry("/reports/conformance", "Conformance", Action.report),
    NavEntry("/reports/transfers", "Transfers", Action.report),
    NavEntry("/requests/know", "Request to know", Action.request_to_know),
    NavEntry("/requests/recipients", "Recipients", Action.request_to_know),
    NavEntry("/register", "Request register", Action.request_register),
    NavEntry("/reports/requests", "Request metrics", Action.request_metrics),
    NavEntry("/investigate", "Investigate", Action.query),
    NavEntry("/quarantine", "Quarantine", Action.quarantine),
    NavEntry("/verify", "Verify", Action.verify),
    NavEntry("/access-log", "Access log", Action.access_log),
    NavEntry("/erasure", "Erasure", Action.erase),
    NavEntry("/approvals", "Approvals", Action.approve),
    NavEntry("/notices", "Erasure notices", Action.erasure_notices),
)
"""Every page and the action it needs; the navigation lists only those the role may use."""


def navigation(actor: Actor | None) -> list[NavEntry]:
    if actor is None:
        return []
    return [entry for entry in NAVIGATION if permission_allowed(actor.role, entry.action)]


def render_page(
    request: Request,
    template: str,
    *,
    status_code: int = status.HTTP_200_OK,
    **values: Any,
) -> HTMLResponse:
    """``template`` filled with ``values``, the actor, its navigation and the CSRF token."""
    actor: Actor | None = getattr(request.state, "actor", None)
    html = TEMPLATES.get_template(template).render(
        actor=actor,
        nav=navigation(actor),
        current=request.url.path,
        csrf_token=actor.session_csrf if actor is not None else None,
        **values,
    )
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    return render_page(
        request, "error.html.j2", status_code=status_code, code=status_code, message=message
    )


def _refusal(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == status.HTTP_401_UNAUTHORIZED and "authorization" not in request.headers:
        # a browser without a live session: to the sign-in page (an API client sending a
        # token that is no longer valid keeps its 401)
        expired = SESSION_COOKIE in request.cookies
        target = f"{LOGIN_PATH}?expired=1" if expired else LOGIN_PATH
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "retry-after"}
    response = error_page(request, exc.status_code, str(exc.detail))
    response.headers.update(headers)
    return response


class ConsoleRoute(APIRoute):
    """A console route: refusals as pages, and the security headers on every response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except HTTPException as exc:
                response = _refusal(request, exc)
            except RequestValidationError:
                # FastAPI's own message would echo the input: say what to do instead
                response = error_page(
                    request,
                    status.HTTP_400_BAD_REQUEST,
                    "The form or address was not understood: go back and submit the form again.",
                )
            except Exception as exc:
                # the exception's text may hold what was submitted (a subject id): the log
                # line and the page name only its type
                log.error("console %s %s failed: %s", request.method, self.path, type(exc).__name__)
                response = error_page(
                    request,
                    status.HTTP_500_INTERNAL_SERVER_ERROR,
                    f"The service could not answer ({type(exc).__name__}); the service's log "
                    "has the time and the page. Nothing was changed by this request unless "
                    "the page said so.",
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console_handler
