"""Who may do what, on every route of the app: each role is refused what it may not do.

The routes are found by walking the app, not listed here: a route added later is covered
as soon as it exists. A route's permission is the ``require_<action>`` dependency that
:func:`~disclosure_ledger.service.auth.actor.require` creates; a route without one must be
named in :data:`PUBLIC`, so a new route that forgets its permission fails these tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import Mount

from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    require,
)
from disclosure_ledger.service.auth.roles import PERMISSIONS, Action, Role
from tests.service.conftest import ServiceClient

PUBLIC: dict[str, str] = {
    "/healthz": "liveness probe, says only 'ok'",
    "/readyz": "readiness probe, says only whether the service is ready",
    "/api/v1/openapi.json": "the API's description, no data",
    "/login": "the console's sign-in page and form",
    "/logout": "the console's sign-out (ends the caller's own session only)",
    "/api/v1/session": "sign in (POST), the caller's own identity (GET), sign out (DELETE)",
    "/metrics": "Prometheus scrape: counters, no personal data",
    "/static": "the console's own CSS, no data",
}
"""Every path that no permission guards, and why it need not be."""


@dataclass(frozen=True)
class Guarded:
    method: str
    path: str  # with every path parameter filled in
    action: Action


def _permission(route: RouteContext) -> Action | None:
    """The action of the route's ``require_<action>`` dependency, at any depth (a router's
    ``dependencies=[...]`` are part of each of its routes' dependant)."""
    root = getattr(route, "dependant", None)
    pending = list(root.dependencies) if root is not None else []
    while pending:
        dependant = pending.pop()
        name = getattr(dependant.call, "__name__", "")
        if name.startswith("require_"):
            return Action(name.removeprefix("require_"))
        pending.extend(dependant.dependencies)
    return None


def _routes(app: FastAPI) -> Iterator[tuple[str, set[str], Action | None]]:
    """Every route, those of included routers too (FastAPI keeps those inside an
    ``_IncludedRouter``; ``iter_route_contexts`` flattens them)."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            yield route.path or "", {"GET"}, None
        else:
            yield route.path or "", set(route.methods or ()), _permission(route)


def _fill(path: str) -> str:
    """Path parameters get a value every converter accepts."""
    return re.sub(r"\{[^}]+\}", "1", path)


def guarded_routes(app: FastAPI) -> list[Guarded]:
    found = []
    for path, methods, action in _routes(app):
        if action is None:
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            found.append(Guarded(method, _fill(path), action))
    return found


def test_every_route_is_guarded_or_named_public(service_client: ServiceClient) -> None:
    unguarded = sorted(
        path
        for path, _methods, action in _routes(service_client.client.app)  # type: ignore[arg-type]
        if action is None and path not in PUBLIC
    )
    assert not unguarded, (
        f"routes without a permission: {unguarded}; give each a "
        "Depends(require(Action.x)) parameter, or name it in PUBLIC with the reason"
    )


def test_the_status_route_is_found_with_its_permission(service_client: ServiceClient) -> None:
    """The walk sees ``require()``'s dependency (if it did not, every test here would pass
    while checking nothing)."""
    routes = guarded_routes(service_client.client.app)  # type: ignore[arg-type]
    assert Guarded("GET", "/api/v1/status", Action.status) in routes


PROBE = "/api/v1/test-probe"


def add_probe_routes(app: FastAPI) -> None:
    """One GET and one POST route per action, guarded by ``require()`` like any other: so
    every action is checked even before the routes that will use it exist."""
    for action in Action:

        def probe(_actor: Actor = Depends(require(action))) -> dict[str, bool]:  # noqa: B008
            return {"ran": True}

        app.add_api_route(f"{PROBE}/{action.value}", probe, methods=["GET", "POST"])


def _session_headers(service_client: ServiceClient, role: Role) -> dict[str, str]:
    """A live session of ``user-<role>``, with its CSRF token (so only the role decides)."""
    actor = Actor(name=f"user-{role.value}", role=role, kind="user")
    session_id, csrf = service_client.accounts.open_session(actor)
    return {"Cookie": f"{SESSION_COOKIE}={session_id}", CSRF_HEADER: csrf}


def _call(service_client: ServiceClient, route: Guarded, headers: dict[str, str]) -> Any:
    return service_client.client.request(
        route.method, route.path, headers=headers, follow_redirects=False
    )


@pytest.mark.parametrize("kind", ["token", "session"])
def test_each_role_is_refused_what_it_may_not_do(service_client: ServiceClient, kind: str) -> None:
    """Through the API and the console alike: 403, never an answer, never a 500."""
    add_probe_routes(service_client.client.app)  # type: ignore[arg-type]
    wrong = []
    for role in Role:
        headers = (
            service_client.as_role(role)
            if kind == "token"
            else _session_headers(service_client, role)
        )
        for route in guarded_routes(service_client.client.app):  # type: ignore[arg-type]
            if route.action in PERMISSIONS[role]:
                continue
            answer = _call(service_client, route, headers)
            if answer.status_code != 403:
                wrong.append(f"{role.value} {route.method} {route.path}: {answer.status_code}")
    assert not wrong, f"a role got what it may not have: {wrong}"


def test_a_permitted_role_passes_the_check(service_client: ServiceClient) -> None:
    add_probe_routes(service_client.client.app)  # type: ignore[arg-type]
    for role in Role:
        answer = service_client.client.get("/api/v1/status", headers=service_client.as_role(role))
        assert answer.status_code == 200, role
        for action in PERMISSIONS[role]:
            answer = service_client.client.post(
                f"{PROBE}/{action.value}", headers=service_client.as_role(role)
            )
            assert answer.json() == {"ran": True}, (role, action)


def _refused_unauthenticated(answer: Any, path: str) -> bool:
    """401 from the API; from a console page, 401 or a redirect to the sign-in page."""
    if answer.status_code == 401:
        return True
    redirect = answer.status_code in (302, 303, 307) and "/login" in answer.headers.get(
        "location", ""
    )
    return redirect and not path.startswith("/api/")


def test_no_credentials_get_401_everywhere(service_client: ServiceClient) -> None:
    wrong = [
        f"{route.method} {route.path}: {answer.status_code}"
        for route in guarded_routes(service_client.client.app)  # type: ignore[arg-type]
        if not _refused_unauthenticated(answer := _call(service_client, route, {}), route.path)
    ]
    assert not wrong, wrong


def test_a_revoked_token_gets_401_at_the_next_request(service_client: ServiceClient) -> None:
    headers = service_client.as_role(Role.auditor)
    assert service_client.client.get("/api/v1/status", headers=headers).status_code == 200
    token_id = service_client.tokens[Role.auditor].split("_")[1]
    service_client.accounts.revoke_token(token_id)
    for route in guarded_routes(service_client.client.app):  # type: ignore[arg-type]
        answer = _call(service_client, route, headers)
        assert answer.status_code == 401, f"{route.method} {route.path}"
    assert "revoked" in service_client.client.get("/api/v1/status", headers=headers).text


def test_a_wrong_token_gets_401_and_no_cookie_rescues_it(service_client: ServiceClient) -> None:
    session = _session_headers(service_client, Role.auditor)
    wrong = {"Authorization": "Bearer dl_000000000000_forged", "Cookie": session["Cookie"]}
    assert service_client.client.get("/api/v1/status", headers=wrong).status_code == 401


def test_a_disabled_users_session_gets_401(service_client: ServiceClient) -> None:
    headers = _session_headers(service_client, Role.auditor)
    assert service_client.client.get("/api/v1/status", headers=headers).status_code == 200
    service_client.accounts.set_disabled("user-auditor", True)
    for route in guarded_routes(service_client.client.app):  # type: ignore[arg-type]
        answer = _call(service_client, route, headers)
        assert _refused_unauthenticated(answer, route.path), f"{route.method} {route.path}"
    service_client.accounts.set_disabled("user-auditor", False)
    # enabling the user again does not bring the session back: it was closed
    assert service_client.client.get("/api/v1/status", headers=headers).status_code == 401


def test_state_changing_routes_refuse_a_session_without_its_csrf_token(
    service_client: ServiceClient,
) -> None:
    """Every non-GET route, with a session of a role that may call it: 403 without the CSRF
    token and with a forged one (the route itself never runs)."""
    add_probe_routes(service_client.client.app)  # type: ignore[arg-type]
    wrong = []
    for route in guarded_routes(service_client.client.app):  # type: ignore[arg-type]
        if route.method in SAFE_METHODS:
            continue
        role = next(role for role in Role if route.action in PERMISSIONS[role])
        headers = _session_headers(service_client, role)
        for presented in (None, "forged-" + headers[CSRF_HEADER]):
            sent = {"Cookie": headers["Cookie"]}
            if presented:
                sent[CSRF_HEADER] = presented
            answer = _call(service_client, route, sent)
            if answer.status_code != 403 or "CSRF" not in answer.text:
                wrong.append(f"{route.method} {route.path} ({presented}): {answer.status_code}")
    assert not wrong, wrong
