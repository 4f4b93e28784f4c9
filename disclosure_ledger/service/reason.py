"""The stated reason every read of personal data carries (a case or ticket number), as one
validated type for every request model that asks for it; it is kept in the access log."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field


def stated_reason(value: str) -> str:
    """``value`` without surrounding blanks; a blank one is refused."""
    if not value.strip():
        raise ValueError("state a reason: a case number or ticket, not blank")
    return value.strip()


Reason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        description="why this read is made (a case or ticket number); kept in the access log",
    ),
    AfterValidator(stated_reason),
]
