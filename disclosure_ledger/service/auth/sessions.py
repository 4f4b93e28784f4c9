"""Signing in and out, and the session cookie.

:func:`sign_in` is the one way to open a session (the console's ``POST /login``, the API's
``POST /api/v1/session``): the throttle first (per user name and per client address), then
the password, then a new session; the session the request came with, if any, is closed
(no session fixation). :func:`sign_out` closes the request's session.

The cookie is ``HttpOnly``, ``SameSite=Strict``, ``Secure`` under TLS (and behind a TLS
proxy, which ``--insecure-http`` says there is), and lives no longer than the session.
"""

from __future__ import annotations

import math
from dataclasses import replace

from fastapi import Request, Response

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.auth.accounts import SESSION_LIFETIME, Actor
from disclosure_ledger.service.auth.actor import SESSION_COOKIE, accounts
from disclosure_ledger.service.auth.throttle import LoginThrottle

WRONG_CREDENTIALS = "wrong user name or password, or the account is disabled"


class SignInRefused(DisclosureLedgerError):
    """A sign-in refused: wrong credentials (``retry_after`` None), or too many failures
    (``retry_after``: the seconds to wait; answer 429 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def client_address(request: Request) -> str:
    """The peer's address (the service trusts no forwarded-for header)."""
    return request.client.host if request.client else "unknown"


def sign_in(request: Request, name: str, password: str) -> tuple[Actor, str, str]:
    """``(actor, session_id, csrf_token)`` of a new session; :class:`SignInRefused` if not.

    Blocking (argon2, SQLite): call it from a sync route, or through ``run_in_threadpool``.
    A wrong password, an unknown user and a disabled user get the same answer. A sign-in
    posted from another site (``Sec-Fetch-Site: cross-site``) is refused: it would sign the
    browser in to someone else's account (login CSRF).
    """
    if request.headers.get("sec-fetch-site") == "cross-site":  # login CSRF
        raise SignInRefused("sign in from the service's own sign-in page", None)
    throttle: LoginThrottle = request.app.state.login_throttle
    # A name longer than any user's is cut: the throttle keeps its keys in memory.
    keys = (f"user:{name[:64]}", f"client:{client_address(request)}")
    wait = throttle.attempt(*keys)
    if wait > 0:
        seconds = math.ceil(wait)
        raise SignInRefused(
            f"too many failed sign-ins for this user or from this address: wait {seconds} s "
            "and try again",
            float(seconds),
        )
    store = accounts(request)
    actor = store.authenticate(name, password)
    if actor is None:
        raise SignInRefused(WRONG_CREDENTIALS, None)  # counted as a failure by attempt()
    throttle.succeeded(*keys)
    presented = request.cookies.get(SESSION_COOKIE)
    if presented:
        store.close_session(presented)
    session_id, csrf = store.open_session(actor)
    return replace(actor, session_csrf=csrf), session_id, csrf


def sign_out(request: Request, response: Response) -> None:
    """Close the request's session, if any, and clear its cookie. Blocking (SQLite)."""
    presented = request.cookies.get(SESSION_COOKIE)
    if presented:
        accounts(request).close_session(presented)
    clear_session_cookie(response, secure=session_cookie_secure(request))


def session_cookie_secure(request: Request) -> bool:
    """Whether the cookie gets ``Secure``: when the service serves TLS, or runs behind a
    TLS proxy (``--insecure-http`` on a non-loopback address says it does)."""
    if request.url.scheme == "https":
        return True
    service = getattr(request.app.state, "service", None)
    return bool(service is not None and service.config.insecure_http)


def set_session_cookie(response: Response, session_id: str, *, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="strict", secure=secure, path="/"
    )
