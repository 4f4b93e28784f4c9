"""Signing in and out of the console.

``GET /login`` shows the form; ``POST /login`` signs in through
:func:`~disclosure_ledger.service.auth.sessions.sign_in` (the throttle, argon2id, a new
session; a wrong password, an unknown user and a disabled one get the same answer; 429 with
``Retry-After`` when throttled) and sets the session cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` under TLS). Besides ``sign_in``'s own refusal of a
cross-site sign-in, the form carries a token of its own, also set as a short-lived cookie
(double submit), so another site cannot sign a browser in to an account of its choosing.
``POST /logout`` (with the session's CSRF token) closes the session.
"""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import find_actor, require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.auth.sessions import (
    SignInRefused,
    session_cookie_secure,
    set_session_cookie,
    sign_in,
    sign_out,
)
from disclosure_ledger.service.console.forms import checked_form
from disclosure_ledger.service.console.page import ConsoleRoute, render_page

router = APIRouter(route_class=ConsoleRoute)

LOGIN_COOKIE = "dl_login"
LOGIN_FIELD = "login_token"


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
    await checked_form(request)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    await run_in_threadpool(sign_out, request, response)
    return response
