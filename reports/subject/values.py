"""The values of a subject's answers: what was disclosed about one person, and to whom.
Computed by :mod:`reports.subject.queries`, recorded by :mod:`reports.subject.answers`,
written by :mod:`reports.subject.rendering`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from reports.provenance import Provenance
from reports.request_log import LoggedRequest

SUBJECT_JSON_VERSION: Final = "subject-report/1"
RECIPIENTS_JSON_VERSION: Final = "recipients-report/1"
LOOKBACK_FLOOR = datetime(2022, 1, 1, tzinfo=UTC)
"""A request to know may reach back beyond 12 months only to data of 2022-01-01 on."""


class PseudonymSource(Protocol):
    """What the reports need of the subject key store (``ledger.pseudonyms.SubjectKeyStore``)."""

    def pseudonym(self, subject_type: str, subject_id: str) -> str | None: ...


@dataclass(frozen=True)
class NamedRecipient:
    """A recipient of one category of the person's data, with its dates for that category."""

    recipient_id: str
    name: str
    recipient_category: str
    events: int
    first_disclosed: datetime
    last_disclosed: datetime


@dataclass(frozen=True)
class SubjectCategory:
    letter: str
    name: str
    disclosure_kinds: tuple[str, ...]
    recipient_categories: tuple[str, ...]
    recipients: tuple[NamedRecipient, ...]
    events: int
    first_disclosed: datetime
    last_disclosed: datetime


@dataclass(frozen=True)
class RecipientDisclosed:
    recipient_id: str
    name: str
    registered: bool
    recipient_category: str
    role: str | None
    address: str | None
    country: str | None
    letters: tuple[str, ...]
    data_categories: tuple[str, ...]
    events: int
    first_disclosed: datetime
    last_disclosed: datetime


@dataclass(frozen=True)
class SubjectReport:
    source: Provenance
    subject_type: str
    subject_id: str
    data_held: bool
    since_requested: datetime | None
    since_clamped: bool
    categories: tuple[SubjectCategory, ...]
    recipients: tuple[RecipientDisclosed, ...]
    request: LoggedRequest | None = None
    pseudonym: str | None = None  # never written out; the request log watches it
    proofs: dict[str, Any] | None = None  # --with-proofs: reports.subject.proofs


@dataclass(frozen=True)
class RecipientsReport:
    source: Provenance
    subject_type: str
    subject_id: str
    data_held: bool
    recipients: tuple[RecipientDisclosed, ...]
    request: LoggedRequest | None = None
    pseudonym: str | None = None  # never written out; the request log watches it
