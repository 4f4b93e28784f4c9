"""What the service accepts in a request, and what it says when a request is not accepted.

- :class:`RequestLimits` (ASGI middleware, the whole app): a body larger than
  ``max_body_bytes`` is refused with 413, whether it declares its length
  (``Content-Length``, refused before a byte is read) or streams it (counted as it arrives);
  a body sent to the JSON API (``/api/...``) with another content type is refused with 415.
- :func:`validation_error`: FastAPI's 422 for a body that is not valid JSON or does not fit
  its model, reworded to name each field and what it should be. The input itself is never
  echoed back: it may hold a subject id, which must not appear in an error page.
"""

from __future__ import annotations

import email.message
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_PREFIX = "/api/"
"""Every route under this prefix that takes a body takes JSON."""

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestLimits:
    """Refuse oversized bodies (413) and non-JSON bodies sent to the JSON API (415)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        declared = headers.get("content-length")
        refusal = self._refusal(scope, headers, declared)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, self._too_large(f"more than {self.max_body_bytes}"))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:  # raised by counting_receive, past every handler
            if started or exc.status_code != 413:
                raise
            await _error(413, str(exc.detail))(scope, receive, send)

    def _refusal(
        self, scope: Scope, headers: dict[str, str], declared: str | None
    ) -> JSONResponse | None:
        if declared is not None:
            if not declared.isdigit():
                return _error(400, f"Content-Length {declared!r} is not a number of bytes")
            if int(declared) > self.max_body_bytes:
                return _error(413, self._too_large(declared))
        has_body = (declared is not None and int(declared) > 0) or ("transfer-encoding" in headers)
        path: str = scope.get("path", "")
        if has_body and scope.get("method") in _BODY_METHODS and path.startswith(JSON_PREFIX):
            kind = headers.get("content-type")
            if not _is_json(kind):
                got = f"got {kind!r}" if kind else "no Content-Type was sent"
                return _error(
                    415,
                    f"{scope['method']} {path} takes a JSON body: send it with "
                    f"'Content-Type: application/json' ({got})",
                )
        return None

    def _too_large(self, size: str) -> str:
        return (
            f"the request body is {size} bytes; this service accepts at most "
            f"{self.max_body_bytes} (its max_body_bytes): send less"
        )


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _error(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)


# -- 422 -------------------------------------------------------------------------------------
class FieldError(BaseModel):
    field: str = Field(description="the field, as items[0].name; body for the body itself")
    message: str


class ValidationAnswer(BaseModel):
    """The 422 answer: one readable line, and each field's error."""

    detail: str = Field(description="every error, as 'field: message', joined by '; '")
    errors: list[FieldError]


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's request validation error, one readable line per field, inputs left out."""
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(error) for error in exc.errors()]
    return JSONResponse(
        {
            "detail": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            "errors": errors,
        },
        status_code=422,
    )


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    loc = list(error.get("loc", ()))
    where = loc[0] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else None
    parts = loc[1:] if where is not None else loc
    if error.get("type") == "json_invalid":
        why = (error.get("ctx") or {}).get("error", "not JSON")
        at = f" at character {parts[0]}" if parts and isinstance(parts[0], int) else ""
        return {"field": "body", "message": f"the body is not valid JSON: {why}{at}"}
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    if not name:
        name = where or "request"
    elif where not in (None, "body"):
        name = f"{name} ({where})"
    message = str(error.get("msg", "is not valid"))
    if error.get("type") == "missing" and name == "body":
        message = "a JSON object is required"
    elif error.get("type") == "extra_forbidden":
        message = "not a field of this request (check its spelling)"
    return {"field": name, "message": message}
