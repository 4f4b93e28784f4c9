"""Small builders of valid events for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.model import DisclosureEvent


def make_event(**overrides: Any) -> DisclosureEvent:
    data: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        "subject": {"id": "member-1", "type": "member"},
        "recipient": {"id": "escalion", "category": "payment_provider"},
        "data_categories": ["user.financial"],
        "purpose": "essential.service.payment_processing",
        "legal_basis": "contract",
        "producer": {"service": "billing", "version": "1.4.2"},
        "context": {"order_id": "o-1"},
    }
    data.update(overrides)
    return DisclosureEvent.model_validate(data)
