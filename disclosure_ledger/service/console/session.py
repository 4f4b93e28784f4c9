"""Signing in and out of the console.

``GET /login`` shows the form; ``POST /login`` checks the password (argon2id, through the
account store), counts failures in the sign-in throttle, opens a session and sets its cookie
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` under TLS). The sign-in form carries a token
of its own, also set as a short-lived cookie (double submit), so another site cannot sign a
browser in to an account of its choosing. ``POST /logout`` (with the session's CSRF token)
closes the session.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.auth.accounts import AccountStore, Actor
from disclosure_ledger.service.auth.actor import SESSION_COOKIE, find_actor, require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.auth.sessions import clear_session_cookie, set_session_cookie
from disclosure_ledger.service.auth.throttle import LoginThrottle
from disclosure_ledger.service.console.forms import checked_form
from disclosure_ledger.service.console.page import ConsoleRoute, render_page

router = APIRouter(route_class=ConsoleRoute)

LOGIN_COOKIE = "dl_login"
LOGIN_FIELD = "login_token"


def session_cookie_secure(request: Request) -> bool:
    """Whether the cookie gets ``Secure``: when the service serves TLS, or runs behind a TLS
    proxy (which ``--insecure-http`` says there is)."""
    if request.url.scheme == "https":
        return True
    service = getattr(request.app.state, "service", None)
    return bool(service is not None and service.config.insecure_http)


class SignInRefused(DisclosureLedgerError):
    """A sign-in refused: wrong credentials (``retry_after`` None), or too many failures
    (``retry_after``: the seconds to wait)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def sign_in(request: Request, name: str, password: str) -> tuple[Actor, str, str]:
    """``(actor, session_id, csrf_token)`` of a new session; :class:`SignInRefused` if not.
    Failures are counted per user name and per client address. (The shape of
    ``auth.sessions.sign_in``, which replaces this one when it lands.)"""
    accounts: AccountStore = request.app.state.accounts
    throttle: LoginThrottle = request.app.state.login_throttle
    keys = (f"user:{name}", f"client:{request.client.host if request.client else 'unknown'}")
    wait = throttle.retry_after(*keys)
    if wait > 0:
        seconds = math.ceil(wait)
        raise SignInRefused(
            f"Too many failed sign-ins: wait {seconds} seconds and try again.", float(seconds)
        )
    actor = accounts.authenticate(name, password)
    if actor is None:
        throttle.failed(*keys)
        raise SignInRefused("Wrong user name or password (or a disabled account).", None)
    throttle.succeeded(*keys)
    presented = request.cookies.get(SESSION_COOKIE)
    if presented:
        accounts.close_session(presented)  # no session fixation
    session_id, csrf = accounts.open_session(actor)
    return replace(actor, session_csrf=csrf), session_id, csrf


def _login_form(request: Request, *, message: str | None, status_code: int) -> Response:
    token = secrets.token_urlsafe(24)
    response = render_page(
        request,
        "login.html.j2",
        status_code=status_code,
        message=message,
        login_token=token,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=600,
        httponly=True,
        samesite="strict",
        secure=session_cookie_secure(request),
        path="/login",
    )
    return response


@router.get("/login")
def login_page(request: Request, expired: str | None = None) -> Response:
    if find_actor(request) is not None:
        return RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)
    message = "Your session has expired: sign in again." if expired else None
    return _login_form(request, message=message, status_code=status.HTTP_200_OK)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    presented, expected = form.get(LOGIN_FIELD), request.cookies.get(LOGIN_COOKIE)
    if not (
        isinstance(presented, str)
        and expected
        and hmac.compare_digest(presented.encode(), expected.encode())
    ):
        return _login_form(
            request,
            message="The sign-in form had expired: sign in again.",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    name, password = form.get("name"), form.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        return _login_form(
            request,
            message="Give your user name and password.",
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    try:
        _actor, session_id, _csrf = await run_in_threadpool(
            sign_in, request, name.strip(), password
        )
    except SignInRefused as exc:
        throttled = exc.retry_after is not None
        response = _login_form(
            request,
            message=exc.message,
            status_code=(
                status.HTTP_429_TOO_MANY_REQUESTS if throttled else status.HTTP_401_UNAUTHORIZED
            ),
        )
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return response
    response = RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookie(response, session_id, secure=session_cookie_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(
    request: Request, actor: Annotated[Actor, Depends(require(Action.status))]
) -> Response:
    await checked_form(request, actor)
    accounts: AccountStore = request.app.state.accounts
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        accounts.close_session(session_id)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    clear_session_cookie(response, secure=session_cookie_secure(request))
    return response
