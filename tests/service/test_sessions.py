"""Sessions through the API: sign-in and its throttle, the cookie, expiry, sign-out, and
the CSRF token every state-changing request of a session must carry (as a header or as a
form field, whichever way the route reads its body).

None of this needs the ledger: the app runs without its service (as when it writes the
OpenAPI document), and ``GET /api/v1/session`` says whether a session is live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import Body, Depends, FastAPI, Form, Request
from fastapi.testclient import TestClient

from disclosure_ledger.service.app import create_app
from disclosure_ledger.service.auth.accounts import (
    SESSION_IDLE_TIMEOUT,
    SESSION_LIFETIME,
    AccountStore,
    Actor,
    default_account_store,
)
from disclosure_ledger.service.auth.actor import CSRF_HEADER, SESSION_COOKIE, require
from disclosure_ledger.service.auth.roles import Action, Role
from disclosure_ledger.service.config import ServiceConfig
from tests.service.conftest import PASSWORD, ServiceClient

SESSION = "/api/v1/session"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""argon2id still, at a cost that keeps these tests quick."""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def sign_in(service_client: ServiceClient, name: str, password: str = PASSWORD) -> Any:
    return service_client.client.post(SESSION, json={"name": name, "password": password})


def session_headers(answer: Any) -> dict[str, str]:
    return {
        "Cookie": f"{SESSION_COOKIE}={answer.cookies[SESSION_COOKIE]}",
        CSRF_HEADER: answer.json()["csrf_token"],
    }


def status_code(service_client: ServiceClient, headers: dict[str, str]) -> int:
    """200 while the session is live, else 401."""
    return int(service_client.client.get(SESSION, headers=headers).status_code)


@pytest.fixture
def service_client(tmp_path: Path) -> Iterator[ServiceClient]:
    """The app without a ledger, over an account store with ``user-<role>`` of each role
    and a token of the auditor role (this module's own, lighter, ``service_client``)."""
    accounts = AccountStore(default_account_store(tmp_path / "ledger.duckdb"), hasher=CHEAP)
    for role in (Role.auditor, Role.compliance, Role.investigator):
        accounts.add_user(f"user-{role.value}", role, PASSWORD)
    token = accounts.issue_token(Role.auditor, label="test", created_by="test").token
    with TestClient(create_app(None, accounts)) as client:
        yield ServiceClient(client, None, accounts, {Role.auditor: token})  # type: ignore[arg-type]


def test_signing_in_opens_a_session_with_a_strict_http_only_cookie(
    service_client: ServiceClient,
) -> None:
    answer = sign_in(service_client, "user-compliance")
    assert answer.status_code == 200
    assert answer.json()["role"] == "compliance"
    assert "report" in answer.json()["may"]
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a browser would drop it
    headers = session_headers(answer)
    assert status_code(service_client, headers) == 200
    me = service_client.client.get(SESSION, headers=headers).json()
    assert (me["name"], me["kind"]) == ("user-compliance", "user")


def test_behind_a_tls_proxy_the_cookie_is_secure(service_client: ServiceClient) -> None:
    """``--insecure-http`` says a TLS proxy stands in front: the browser sees HTTPS."""
    config = ServiceConfig(ledger=Path("l.duckdb"), host="0.0.0.0", insecure_http=True)
    service_client.client.app.state.service = SimpleNamespace(config=config)  # type: ignore[attr-defined]
    answer = sign_in(service_client, "user-auditor")
    assert "Secure" in answer.headers["set-cookie"]


@pytest.mark.parametrize(
    ("name", "password"),
    [("user-compliance", "not the password"), ("nobody", PASSWORD), ("user-auditor", "x")],
)
def test_wrong_credentials_get_one_answer_that_names_nothing(
    service_client: ServiceClient, name: str, password: str
) -> None:
    answer = sign_in(service_client, name, password)
    assert answer.status_code == 401
    assert answer.json()["detail"] == "wrong user name or password, or the account is disabled"
    assert SESSION_COOKIE not in answer.cookies


def test_a_sign_in_posted_from_another_site_is_refused(service_client: ServiceClient) -> None:
    answer = service_client.client.post(
        SESSION,
        json={"name": "user-auditor", "password": PASSWORD},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert answer.status_code == 401
    assert SESSION_COOKIE not in answer.cookies


def test_a_disabled_user_cannot_sign_in(service_client: ServiceClient) -> None:
    service_client.accounts.set_disabled("user-auditor", True)
    assert sign_in(service_client, "user-auditor").status_code == 401


def test_repeated_failures_make_the_next_attempt_wait_even_with_the_right_password(
    service_client: ServiceClient,
) -> None:
    for _ in range(5):
        assert sign_in(service_client, "user-investigator", "guess " * 3).status_code == 401
    answer = sign_in(service_client, "user-investigator")
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) >= 1
    assert "too many failed sign-ins" in answer.json()["detail"]


def test_signing_in_again_ends_the_session_the_browser_had(service_client: ServiceClient) -> None:
    first = session_headers(sign_in(service_client, "user-auditor"))
    second = service_client.client.post(
        SESSION,
        json={"name": "user-auditor", "password": PASSWORD},
        headers={"Cookie": first["Cookie"]},
    )
    assert status_code(service_client, session_headers(second)) == 200
    assert status_code(service_client, first) == 401


def test_signing_out_ends_the_session_and_clears_the_cookie(service_client: ServiceClient) -> None:
    headers = session_headers(sign_in(service_client, "user-auditor"))
    without_csrf = {"Cookie": headers["Cookie"]}
    assert service_client.client.delete(SESSION, headers=without_csrf).status_code == 403
    answer = service_client.client.delete(SESSION, headers=headers)
    assert answer.status_code == 204
    assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
    assert status_code(service_client, headers) == 401


@pytest.fixture
def clock(service_client: ServiceClient) -> Clock:
    """The app's account store on a clock the test moves."""
    clock = Clock()
    store = AccountStore(service_client.accounts.path, clock=clock, hasher=CHEAP)
    service_client.client.app.state.accounts = store  # type: ignore[attr-defined]
    service_client.accounts = store
    return clock


def test_a_session_expires_after_its_idle_timeout(
    service_client: ServiceClient, clock: Clock
) -> None:
    headers = session_headers(sign_in(service_client, "user-auditor"))
    clock.now += SESSION_IDLE_TIMEOUT - timedelta(minutes=2)
    assert status_code(service_client, headers) == 200
    clock.now += SESSION_IDLE_TIMEOUT - timedelta(minutes=2)  # the last request counted
    assert status_code(service_client, headers) == 200
    clock.now += SESSION_IDLE_TIMEOUT
    answer = service_client.client.get(SESSION, headers=headers)
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


def test_a_busy_session_still_ends_after_its_lifetime(
    service_client: ServiceClient, clock: Clock
) -> None:
    headers = session_headers(sign_in(service_client, "user-auditor"))
    end = clock.now + SESSION_LIFETIME
    while clock.now + SESSION_IDLE_TIMEOUT / 2 < end:
        clock.now += SESSION_IDLE_TIMEOUT / 2
        assert status_code(service_client, headers) == 200
    clock.now = end
    assert status_code(service_client, headers) == 401


def test_a_password_reset_ends_the_users_sessions(service_client: ServiceClient) -> None:
    headers = session_headers(sign_in(service_client, "user-auditor"))
    service_client.accounts.set_password("user-auditor", "a brand new pass phrase")
    assert status_code(service_client, headers) == 401
    assert sign_in(service_client, "user-auditor").status_code == 401
    assert sign_in(service_client, "user-auditor", "a brand new pass phrase").status_code == 200


# -- CSRF: one check in require(), whichever way a route reads its body -------------------


def add_csrf_routes(app: FastAPI) -> None:
    # (Defaults, not Annotated: this module's annotations are strings, and the guard local.)
    guard = Depends(require(Action.status))

    @app.post("/test/form-params")
    def form_params(note: str = Form(), _actor: Actor = guard) -> dict[str, str]:
        return {"note": note}

    @app.post("/test/reads-form")
    async def reads_form(request: Request, _actor: Actor = guard) -> dict[str, str]:
        return {"note": str((await request.form())["note"])}

    @app.post("/test/reads-body")
    async def reads_body(request: Request, _actor: Actor = guard) -> dict[str, str]:
        return {"note": (await request.body()).decode()}

    @app.post("/test/json")
    def json_body(note: str = Body(embed=True), _actor: Actor = guard) -> dict[str, str]:
        return {"note": note}


@pytest.fixture
def session(service_client: ServiceClient) -> tuple[str, str]:
    """``(cookie header, csrf token)`` of an auditor's session, and the CSRF test routes."""
    add_csrf_routes(service_client.client.app)  # type: ignore[arg-type]
    answer = sign_in(service_client, "user-auditor")
    return f"{SESSION_COOKIE}={answer.cookies[SESSION_COOKIE]}", answer.json()["csrf_token"]


Send = Callable[[str, str | None, str | None], Any]


@pytest.fixture
def send_form(service_client: ServiceClient, session: tuple[str, str]) -> Send:
    """POST a form with ``note=hello``, the CSRF token as header and/or form field."""

    def send(path: str, header: str | None, field: str | None) -> Any:
        headers = {"Cookie": session[0]}
        if header is not None:
            headers[CSRF_HEADER] = header
        data = {"note": "hello"} | ({"csrf_token": field} if field is not None else {})
        return service_client.client.post(path, data=data, headers=headers)

    return send


@pytest.mark.parametrize("path", ["/test/form-params", "/test/reads-form"])
def test_a_form_carries_its_csrf_token_as_a_field(
    path: str, send_form: Send, session: tuple[str, str]
) -> None:
    answer = send_form(path, None, session[1])
    assert answer.status_code == 200
    assert answer.json() == {"note": "hello"}


def test_a_route_that_reads_its_raw_body_still_can(
    send_form: Send, session: tuple[str, str]
) -> None:
    answer = send_form("/test/reads-body", None, session[1])
    assert answer.status_code == 200
    assert "note=hello" in answer.json()["note"]


@pytest.mark.parametrize("path", ["/test/form-params", "/test/reads-form", "/test/reads-body"])
def test_a_form_without_or_with_a_forged_csrf_token_is_refused(
    path: str, send_form: Send, session: tuple[str, str]
) -> None:
    for header, field in ((None, None), (None, "forged"), ("forged", session[1])):
        answer = send_form(path, header, field)
        assert answer.status_code == 403, (header, field)
        assert "CSRF" in answer.json()["detail"]


def test_a_multipart_form_carries_its_csrf_token_too(
    service_client: ServiceClient, session: tuple[str, str]
) -> None:
    answer = service_client.client.post(
        "/test/form-params",
        data={"note": "hello", "csrf_token": session[1]},
        files={"attachment": ("a.txt", b"x")},
        headers={"Cookie": session[0]},
    )
    assert answer.status_code == 200


def test_an_api_call_carries_its_csrf_token_as_a_header(
    service_client: ServiceClient, session: tuple[str, str]
) -> None:
    cookie, csrf = session
    path, body = "/test/json", {"note": "hello"}
    refused = service_client.client.post(path, json=body, headers={"Cookie": cookie})
    assert refused.status_code == 403
    sent = {"Cookie": cookie, CSRF_HEADER: csrf}
    assert service_client.client.post(path, json=body, headers=sent).json() == body


def test_a_cross_site_request_is_refused_even_with_the_token(
    service_client: ServiceClient, session: tuple[str, str]
) -> None:
    cookie, csrf = session
    headers = {"Cookie": cookie, CSRF_HEADER: csrf, "Sec-Fetch-Site": "cross-site"}
    answer = service_client.client.post("/test/json", json={"note": "x"}, headers=headers)
    assert answer.status_code == 403


def test_an_api_token_needs_no_csrf_token(
    service_client: ServiceClient, session: tuple[str, str]
) -> None:
    answer = service_client.client.post(
        "/test/json", json={"note": "x"}, headers=service_client.as_role(Role.auditor)
    )
    assert answer.status_code == 200
