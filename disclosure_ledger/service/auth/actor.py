"""The actor of a request, and the one dependency that checks a permission.

A request is made by an API token (``Authorization: Bearer dl_...``) or by a signed-in user
(the ``dl_session`` cookie). :func:`require` turns a permission into a FastAPI dependency:

- 401 without a live actor (no credentials, a wrong or revoked token, a session that
  expired, was closed, or whose user was disabled);
- 403 when the actor's role may not do it;
- 403 when a signed-in user's request changes state (any method but GET, HEAD, OPTIONS)
  without the session's CSRF token, sent as the ``X-CSRF-Token`` header (API calls) or as
  the ``csrf_token`` field of a form (console forms, urlencoded or multipart). A request
  with an API token needs none: a browser never sends a bearer token on its own.

Every route that is not public depends on ``require(action)``; the dependency's
``__name__`` is ``require_<action>``, which the role tests look for on every route.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from contextlib import suppress

from fastapi import HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.service.auth.accounts import AccountStore, Actor
from disclosure_ledger.service.auth.roles import Action, permission_allowed

SESSION_COOKIE = "dl_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def accounts(request: Request) -> AccountStore:
    store: AccountStore = request.app.state.accounts
    return store


def find_actor(request: Request) -> Actor | None:
    """The request's actor, or None (no credentials, or credentials no longer valid).

    An ``Authorization`` header, when sent, decides alone: a wrong token is not rescued by
    a session cookie. Blocking (SQLite): call it from a thread, not the event loop.
    """
    if getattr(request.state, "actor_checked", False):
        cached: Actor | None = request.state.actor
        return cached
    header = request.headers.get("authorization", "")
    actor: Actor | None = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            actor = accounts(request).token_actor(token.strip())
    elif request.cookies.get(SESSION_COOKIE):
        actor = accounts(request).session_actor(request.cookies[SESSION_COOKIE])
    request.state.actor = actor
    request.state.actor_checked = True
    return actor


def current_actor(request: Request) -> Actor:
    """The request's actor; 401 (saying how to sign in) when there is none."""
    actor = find_actor(request)
    if actor is None:
        if request.headers.get("authorization"):
            detail = (
                "the API token is wrong or revoked: send a live one as 'Authorization: "
                "Bearer TOKEN' (`disclosure-ledger users token issue` issues one)"
            )
        elif request.cookies.get(SESSION_COOKIE):
            detail = "your session has expired or was closed: sign in again"
        else:
            detail = (
                "sign in, or send an API token as 'Authorization: Bearer TOKEN' "
                "(`disclosure-ledger users token issue` issues one)"
            )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
        )
    return actor


def require(action: Action) -> Callable[[Request], Awaitable[Actor]]:
    """A dependency: the request's actor, if its role may do ``action`` (and, for a
    signed-in user's state-changing request, the CSRF token is right); else 401 or 403."""

    async def dependency(request: Request) -> Actor:
        actor = await run_in_threadpool(current_actor, request)
        if not permission_allowed(actor.role, action):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the {actor.role.value} role may not {action.value.replace('_', ' ')}",
            )
        if request.method not in SAFE_METHODS:
            check_csrf(actor, await presented_csrf(request), request)
        return actor

    dependency.__name__ = f"require_{action.value}"
    dependency.__qualname__ = dependency.__name__
    return dependency


async def presented_csrf(request: Request) -> str | None:
    """The CSRF token a request carries: the ``X-CSRF-Token`` header, else the
    ``csrf_token`` field of a form body.

    Reading the form here leaves it for the route: the body is read whole first (so a
    route that reads ``request.body()`` still can), and Starlette keeps the parsed form,
    so a route's ``Form()`` parameters or ``await request.form()`` get the same one.
    """
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _FORM_TYPES:
        return None
    # RuntimeError: FastAPI parsed the route's Form() body already, and form() has it.
    with suppress(RuntimeError):
        await request.body()
    value = (await request.form()).get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def check_csrf(actor: Actor, presented: str | None, request: Request | None = None) -> None:
    """A session's state-changing request must carry its CSRF token, and may not come from
    another site (``Sec-Fetch-Site: cross-site``, sent by every current browser). Tokens
    need neither: a browser never sends a bearer token on its own."""
    if actor.kind != "user":
        return
    cross_site = request is not None and request.headers.get("sec-fetch-site") == "cross-site"
    if (
        cross_site
        or not presented
        or not actor.session_csrf
        or not hmac.compare_digest(presented.encode(), actor.session_csrf.encode())
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "missing or wrong CSRF token: reload the page and submit the form again "
            f"(API calls with a session send it as the {CSRF_HEADER} header)",
        )
