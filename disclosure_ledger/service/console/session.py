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
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse

from disclosure_ledger.service.auth.accounts import AccountStore, Actor
from disclosure_ledger.service.auth.actor import SESSION_COOKIE, find_actor
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.auth.sessions import clear_session_cookie, set_session_cookie
from disclosure_ledger.service.auth.throttle import LoginThrottle
from disclosure_ledger.service.console.forms import checked_form
from disclosure_ledger.service.console.page import ConsoleRoute, render_page, signed_in

router = APIRouter(route_class=ConsoleRoute)

LOGIN_COOKIE = "dl_login"
LOGIN_FIELD = "login_token"


def uses_tls(request: Request) -> bool:
    return request.url.scheme == "https"


class SignInRefused(HTTPException):
    """A wrong name or password (401), or too many failures (429, with Retry-After)."""


def sign_in(request: Request, name: str, password: str) -> str:
    """The id of a new session for ``name`` if ``password`` is theirs; else
    :class:`SignInRefused`. Failures are counted per user name and per client address."""
    accounts: AccountStore = request.app.state.accounts
    throttle: LoginThrottle = request.app.state.login_throttle
    keys = (f"user:{name}", f"client:{request.client.host if request.client else 'unknown'}")
    wait = throttle.retry_after(*keys)
    if wait > 0:
        raise SignInRefused(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many failed sign-ins: wait {int(wait) + 1} seconds and try again.",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    actor = accounts.authenticate(name, password)
    if actor is None:
        throttle.failed(*keys)
        raise SignInRefused(
            status.HTTP_401_UNAUTHORIZED, "Wrong user name or password (or a disabled account)."
        )
    throttle.succeeded(*keys)
    session_id, _csrf = accounts.open_session(actor)
    return session_id


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
        secure=uses_tls(request),
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
        session_id = sign_in(request, name.strip(), password)
    except SignInRefused as exc:
        response = _login_form(request, message=str(exc.detail), status_code=exc.status_code)
        response.headers.update(exc.headers or {})
        return response
    response = RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookie(response, session_id, secure=uses_tls(request))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(
    request: Request, actor: Annotated[Actor, Depends(signed_in(Action.status))]
) -> Response:
    await checked_form(request, actor)
    accounts: AccountStore = request.app.state.accounts
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        accounts.close_session(session_id)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    clear_session_cookie(response, secure=uses_tls(request))
    return response
