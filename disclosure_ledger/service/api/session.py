"""``/api/v1/session``: sign in and out through the API, and who the caller is.

- ``POST`` ``{"name", "password"}``: a session (the ``dl_session`` cookie) and its CSRF
  token; 401 for wrong credentials, 429 with ``Retry-After`` after too many failures.
- ``GET``: the caller (a user or a token), its role, what it may do, and for a session its
  CSRF token (a script signed in with a session sends it as ``X-CSRF-Token``).
- ``DELETE``: sign out (the session ends; CSRF token required).

The console's ``POST /login`` does the same through the same
:func:`~disclosure_ledger.service.auth.sessions.sign_in`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.service.auth.accounts import SESSION_LIFETIME, Actor
from disclosure_ledger.service.auth.actor import check_csrf, current_actor, presented_csrf
from disclosure_ledger.service.auth.passwords import MAX_PASSWORD_LENGTH
from disclosure_ledger.service.auth.roles import PERMISSIONS
from disclosure_ledger.service.auth.sessions import (
    SignInRefused,
    session_cookie_secure,
    set_session_cookie,
    sign_in,
    sign_out,
)

router = APIRouter(tags=["session"])


class SignIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


def _describe(actor: Actor) -> dict[str, Any]:
    return {
        "name": actor.name,
        "kind": actor.kind,
        "role": actor.role.value,
        "may": sorted(action.value for action in PERMISSIONS[actor.role]),
        "csrf_token": actor.session_csrf,
    }


@router.post("/session")
def open_api_session(body: SignIn, request: Request, response: Response) -> dict[str, Any]:
    """Sign in: sets the session cookie and returns the session's CSRF token."""
    try:
        actor, session_id, _csrf = sign_in(request, body.name, body.password)
    except SignInRefused as refused:
        if refused.retry_after is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, refused.message) from None
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            refused.message,
            headers={"Retry-After": str(int(refused.retry_after))},
        ) from None
    set_session_cookie(response, session_id, secure=session_cookie_secure(request))
    return {**_describe(actor), "expires_in": int(SESSION_LIFETIME.total_seconds())}


@router.get("/session")
def get_api_session(actor: Annotated[Actor, Depends(current_actor)]) -> dict[str, Any]:
    """The caller: name, kind (user or token), role, what the role may do."""
    return _describe(actor)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def close_api_session(
    request: Request, response: Response, actor: Annotated[Actor, Depends(current_actor)]
) -> None:
    """Sign out: the session ends at once (a token cannot sign out: revoke it instead)."""
    if actor.kind != "user":
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "an API token has no session to close: `disclosure-ledger users token revoke ID` "
            "revokes it",
        )
    check_csrf(actor, await presented_csrf(request), request)
    await run_in_threadpool(sign_out, request, response)
