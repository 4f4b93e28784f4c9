"""The pydantic model and the Avro schema describe the same records."""

from __future__ import annotations

import io

import fastavro
import pytest
from pydantic import ValidationError

from schemas.codec import latest_schema
from schemas.model import (
    DisclosureEvent,
    DisclosureKind,
    LegalBasis,
    RecipientCategory,
    SubjectType,
)
from tests.unit.events import make_event


def _fields(schema: dict) -> dict:  # type: ignore[type-arg]
    return {f["name"]: f for f in schema["fields"]}


def _symbols(field: dict) -> list[str]:  # type: ignore[type-arg]
    return list(field["type"]["symbols"])


def test_same_field_names() -> None:
    schema = dict(latest_schema().schema_json)
    assert set(_fields(schema)) == set(DisclosureEvent.model_fields)


def test_same_enum_symbols() -> None:
    fields = _fields(dict(latest_schema().schema_json))
    assert _symbols(_fields(fields["subject"]["type"])["type"]) == [s.value for s in SubjectType]
    assert _symbols(_fields(fields["recipient"]["type"])["category"]) == [
        c.value for c in RecipientCategory
    ]
    assert _symbols(fields["legal_basis"]) == [b.value for b in LegalBasis]
    assert _symbols(fields["disclosure_kind"]) == [k.value for k in DisclosureKind]
    assert fields["disclosure_kind"]["default"] == DisclosureKind.business_purpose.value


def test_every_model_event_is_a_valid_avro_record_and_back() -> None:
    schema = fastavro.parse_schema(dict(latest_schema().schema_json))
    event = make_event(disclosure_kind="share", context={"case": "C-1"})
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, event.to_avro())
    buffer.seek(0)
    back = fastavro.schemaless_reader(buffer, schema)
    assert DisclosureEvent.model_validate(back) == event


def test_json_line_round_trip() -> None:
    event = make_event()
    assert DisclosureEvent.model_validate_json(event.to_json_line()) == event


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "2026-03-01T12:00:00"}, "occurred_at"),
        ({"data_categories": []}, "data_categories"),
        ({"data_categories": ["User Email"]}, "data_categories"),
        ({"recipient": {"id": "x", "category": "friend"}}, "recipient"),
        ({"event_id": "nope"}, "event_id"),
        ({"legal_basis": "because"}, "legal_basis"),
    ],
)
def test_model_refuses_what_the_contract_refuses(change, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as caught:
        make_event(**change)
    assert caught.value.errors()[0]["loc"][0] == field
