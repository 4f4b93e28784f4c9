"""The producer-side model of one disclosure event, mirroring the newest shipped schema
(``disclosure_event.v2.avsc``).

Producers validate with it before encoding; the consumer does not use it on its hot path
(the Avro schema already checks types). ``tests/unit/test_model_schema_agree.py`` proves
that the model and the Avro schema accept and produce the same records.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

FIDES_KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


def _fides_key(value: str) -> str:
    if not FIDES_KEY.match(value):
        raise ValueError(
            f"{value!r} is not a Fides key: lower-case words of letters, digits and "
            "underscores joined by dots, e.g. 'user.contact.email'"
        )
    return value


FidesKey = Annotated[str, AfterValidator(_fides_key)]


class SubjectType(StrEnum):
    member = "member"
    guest = "guest"


class RecipientCategory(StrEnum):
    broadcaster = "broadcaster"
    public = "public"
    group_entity = "group_entity"
    service_provider = "service_provider"
    payment_provider = "payment_provider"
    financial_institution = "financial_institution"
    authority = "authority"
    business_transfer = "business_transfer"


class LegalBasis(StrEnum):
    consent = "consent"
    contract = "contract"
    legal_obligation = "legal_obligation"
    vital_interests = "vital_interests"
    public_task = "public_task"
    legitimate_interests = "legitimate_interests"


class DisclosureKind(StrEnum):
    business_purpose = "business_purpose"
    sale = "sale"
    share = "share"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Subject(_Frozen):
    id: Annotated[str, Field(min_length=1)]
    type: SubjectType


class Recipient(_Frozen):
    id: Annotated[str, Field(min_length=1)]
    category: RecipientCategory


class Producer(_Frozen):
    service: Annotated[str, Field(min_length=1)]
    version: Annotated[str, Field(min_length=1)]


class DisclosureEvent(_Frozen):
    """One disclosure. JSON form: one object per line, RFC 3339 timestamps with an offset."""

    event_id: uuid.UUID
    occurred_at: datetime
    subject: Subject
    recipient: Recipient
    data_categories: Annotated[tuple[FidesKey, ...], Field(min_length=1)]
    purpose: FidesKey
    legal_basis: LegalBasis
    disclosure_kind: DisclosureKind = DisclosureKind.business_purpose
    producer: Producer
    context: dict[str, str] = Field(default_factory=dict)
    # v2: the contract, court order or statute the disclosure relies on; None if unknown.
    legal_reference: Annotated[str, Field(min_length=1)] | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "timestamp has no UTC offset; write it as RFC 3339 with an offset, "
                "e.g. 2026-03-01T12:00:00Z"
            )
        return value.astimezone(UTC)

    def to_avro(self) -> dict[str, Any]:
        """The record as fastavro writes it (logical types as Python values)."""
        return {
            "event_id": str(self.event_id),
            "occurred_at": self.occurred_at,
            "subject": {"id": self.subject.id, "type": self.subject.type.value},
            "recipient": {"id": self.recipient.id, "category": self.recipient.category.value},
            "data_categories": list(self.data_categories),
            "purpose": self.purpose,
            "legal_basis": self.legal_basis.value,
            "disclosure_kind": self.disclosure_kind.value,
            "producer": {"service": self.producer.service, "version": self.producer.version},
            "context": dict(self.context),
            "legal_reference": self.legal_reference,
        }

    def to_json_line(self) -> str:
        """One JSON line, timestamp in RFC 3339 UTC with millisecond precision."""
        data = self.model_dump(mode="json")
        data["occurred_at"] = (
            self.occurred_at.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        import json

        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
