"""Reading the console's forms: the fields, the session's CSRF token, dates and choices.

Every state-changing form (and every form that reads personal data) carries the session's
CSRF token in the hidden field ``csrf_token``; :func:`checked_form` refuses the request with
403 before anything is read or changed when it is missing or wrong. A field in error is
named with what to give instead, never echoed back (it may be a subject id).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from fastapi import HTTPException, Request, status
from starlette.datastructures import FormData


class FormError(HTTPException):
    """A field was missing or not understood (400): which one, and what to give."""

    def __init__(self, message: str) -> None:
        super().__init__(status.HTTP_400_BAD_REQUEST, message)


async def checked_form(request: Request) -> FormData:
    """The submitted form, if it is one (else 415). Its CSRF token was checked already:
    every console POST depends on ``require()``, which checks it for a session."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "Submit the console's forms from the console (form-encoded bodies only).",
        )
    return await request.form()


def text_field(form: FormData, name: str, label: str, *, required: bool = True) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise FormError(f"{label} is required: fill it in and submit the form again.")
    return text


def choice_field(form: FormData, name: str, label: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    value = text_field(form, name, label)
    if value not in allowed:
        raise FormError(f"{label}: choose one of {', '.join(allowed)}.")
    return value


def parse_date(text: str | None, label: str) -> date | None:
    """An ISO date (``YYYY-MM-DD``, what a date input sends), or None when empty."""
    if text is None or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FormError(f"{label}: give a date as YYYY-MM-DD, e.g. 2026-12-01.") from None


def date_field(form: FormData, name: str, label: str) -> date:
    value = form.get(name)
    parsed = parse_date(value if isinstance(value, str) else None, label)
    if parsed is None:
        raise FormError(f"{label} is required: give a date as YYYY-MM-DD.")
    return parsed
