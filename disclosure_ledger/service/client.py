"""The CLI's side of ``--server``: a small HTTP client of the service's API (httpx2).

Every error is a :class:`ServiceClientError` saying what to do: the service cannot be
reached (is it running, is the address right), the token is missing or not accepted
(401: issue one with ``disclosure-ledger users token``), the token's role may not do this
(403), or the service refused the request (its own message). ``exit_status`` is what the
CLI exits with: 3 for a report refused as incomplete (409), 2 for a usage error such as
an as-of in the future, 1 otherwise, as the same command run on the ledger file exits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import httpx2

from disclosure_ledger.errors import DisclosureLedgerError

API = "/api/v1"
TIMEOUT_S = 300.0
"""A report over millions of rows takes a while; connecting must not."""
CONNECT_TIMEOUT_S = 10.0


class ServiceClientError(DisclosureLedgerError):
    """The ledger service could not be asked, or did not answer as asked."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class ServiceRefusedError(ServiceClientError):
    """The service answered with an error status: its message, and a stable code."""

    def __init__(self, message: str, status: int, code: str | None, body: Any = None) -> None:
        exit_status = 3 if status == 409 else 2 if code == "future_as_of" else 1
        super().__init__(message, exit_status)
        self.status = status
        self.code = code
        self.body = body


class LedgerClient:
    """The API of one service, authenticated with one bearer token."""

    def __init__(self, url: str, token: str | None, *, transport: Any = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ServiceClientError(
                f"--server {url!r} is not an address like http://127.0.0.1:8080: give the "
                "URL the service printed when it started"
            )
        if not token:
            raise ServiceClientError(
                f"no API token for {url}: give --token or set DISCLOSURE_LEDGER_TOKEN to a "
                "token of a role that may do this (an admin issues one with "
                "`disclosure-ledger users token`)"
            )
        self.url = url.rstrip("/")
        self._client = httpx2.Client(
            base_url=self.url + API,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx2.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx2.Response:
        return self._send("GET", path, params=_params(params))

    def post(self, path: str, body: Mapping[str, Any]) -> httpx2.Response:
        return self._send("POST", path, json=dict(body))

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return _json(self.get(path, params))

    def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        return _json(self.post(path, body))

    @contextmanager
    def stream_post(self, path: str, body: Mapping[str, Any]) -> Iterator[httpx2.Response]:
        """A POST whose answer is read as it arrives (query results)."""
        try:
            with self._client.stream("POST", path, json=dict(body)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_answer(response, self.url)
                yield response
        except httpx2.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx2.TransportError as exc:
            raise self._unreachable(exc) from exc
        raise_for_answer(response, self.url)
        return response

    def _unreachable(self, exc: Exception) -> ServiceClientError:
        return ServiceClientError(
            f"cannot reach the ledger service at {self.url}: {exc}. Is `disclosure-ledger "
            "serve` running there? Check --server (or DISCLOSURE_LEDGER_SERVER); "
            f"{self.url}/healthz answers 'ok' when it runs"
        )


def _params(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if params is None:
        return None
    out: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _json(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ServiceClientError(
            f"the service at {response.request.url.host} answered {response.status_code} with "
            f"something that is not JSON: {exc}; is --server the ledger service's address?"
        ) from exc


def raise_for_answer(response: httpx2.Response, url: str) -> None:
    """Nothing for a success; else the error the CLI prints (see the module doc)."""
    status = response.status_code
    if status < 400:
        return
    body: Any = None
    detail = response.text.strip()
    code: str | None = None
    with suppress(ValueError, json.JSONDecodeError):
        body = response.json()
    if isinstance(body, dict):
        code = body.get("error") if isinstance(body.get("error"), str) else None
        detail = _detail_text(body.get("detail", detail))
    if status == 401:
        raise ServiceRefusedError(
            f"the ledger service at {url} did not accept the token ({detail}): give a valid "
            "one with --token or DISCLOSURE_LEDGER_TOKEN; an admin issues tokens with "
            "`disclosure-ledger users token`, and a revoked one stays refused",
            status,
            code,
            body,
        )
    if status == 403 and code in ("self_approval", "not_yours"):
        raise ServiceRefusedError(
            f"the ledger service at {url} refused: {detail}", status, code, body
        )
    if status == 403:
        raise ServiceRefusedError(
            f"the ledger service at {url} refused: {detail}. Use a token of a role that may "
            "(compliance: reports and requests; investigator: queries and quarantine; "
            "auditor: verify and status; admin: erasure and approvals)",
            status,
            code,
            body,
        )
    raise ServiceRefusedError(detail or f"the service answered {status}", status, code, body)


def _detail_text(detail: Any) -> str:
    """FastAPI's detail: a message, or a list of validation errors (where and what)."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "invalid input: " + "; ".join(parts)
    return json.dumps(detail)
