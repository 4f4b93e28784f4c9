"""The session cookie: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` under TLS, and no
longer-lived than the session it names."""

from __future__ import annotations

from fastapi import Response

from disclosure_ledger.service.auth.accounts import SESSION_LIFETIME
from disclosure_ledger.service.auth.actor import SESSION_COOKIE


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
