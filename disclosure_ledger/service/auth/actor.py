"""The actor of a request, and the one dependency that checks a permission.

A request is made by an API token (``Authorization: Bearer dl_...``) or by a signed-in user
(the ``dl_session`` cookie). :func:`require` turns a permission into a FastAPI dependency:
401 without an actor, 403 when the actor's role may not do it. A session-authenticated
request that changes state must also carry the session's CSRF token (:func:`check_csrf`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import HTTPException, Request, status

from disclosure_ledger.service.auth.accounts import AccountStore, Actor
from disclosure_ledger.service.auth.roles import Action, permission_allowed

SESSION_COOKIE = "dl_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def accounts(request: Request) -> AccountStore:
    store: AccountStore = request.app.state.accounts
    return store


def find_actor(request: Request) -> Actor | None:
    """The request's actor, or None (no credentials, or credentials no longer valid)."""
    cached: Actor | None = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization", "")
    actor: Actor | None = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            actor = accounts(request).token_actor(token.strip())
    elif SESSION_COOKIE in request.cookies:
        actor = accounts(request).session_actor(request.cookies[SESSION_COOKIE])
    request.state.actor = actor
    return actor


def current_actor(request: Request) -> Actor:
    actor = find_actor(request)
    if actor is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "sign in, or send an API token as 'Authorization: Bearer TOKEN' "
            "(`disclosure-ledger users token` issues one)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return actor


def require(action: Action) -> Callable[[Request], Actor]:
    """A dependency: the request's actor, if its role may do ``action``; else 401 or 403."""

    def dependency(request: Request) -> Actor:
        actor = current_actor(request)
        if not permission_allowed(actor.role, action):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the {actor.role.value} role may not {action.value.replace('_', ' ')}",
            )
        return actor

    dependency.__name__ = f"require_{action.value}"
    return dependency


def check_csrf(actor: Actor, presented: str | None) -> None:
    """A session's state-changing request must carry its CSRF token (tokens need none: a
    browser never sends a bearer token on its own)."""
    if actor.kind != "user":
        return
    if (
        not presented
        or not actor.session_csrf
        or not hmac.compare_digest(presented, actor.session_csrf)
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "missing or wrong CSRF token: reload the page and submit the form again",
        )
