"""The report JSON contracts: the published JSON Schemas are the models, and hold."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reports.contracts import (
    CONTRACTS,
    Contract,
    json_schema_text,
    schema_file_name,
    write_json_schemas,
)
from reports.request_log import ReceivedVia, RequestKind, RequestLog
from reports.subject import deny_subject_request, render_denial
from tests.conftest import TEST_SECRET

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def _schema(version: str) -> dict[str, Any]:
    path = SCHEMAS / (version.replace("/", "-") + ".schema.json")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize("model", CONTRACTS, ids=[m.__name__ for m in CONTRACTS])
def test_the_published_schema_is_the_model(model: type[Contract]) -> None:
    published = SCHEMAS / schema_file_name(model)
    regenerate = "run python -m reports.contracts docs/schemas and review the diff"
    assert published.is_file(), f"{published} is missing: {regenerate}"
    assert published.read_text(encoding="utf-8") == json_schema_text(model), (
        f"{published.name} differs from {model.__name__}: {regenerate}"
    )


def test_every_published_schema_has_a_model(tmp_path: Path) -> None:
    written = {p.name for p in write_json_schemas(tmp_path)}
    assert {p.name for p in SCHEMAS.glob("*.schema.json")} == written


def test_a_denial_validates_against_its_published_schema(tmp_path: Path) -> None:
    with RequestLog(tmp_path / "requests.sqlite", TEST_SECRET) as log:
        notice = deny_subject_request(
            log,
            kind=RequestKind.recipients,
            subject_type="member",
            subject_id="member-0000005",
            received_on=date(2026, 9, 1),
            received_via=ReceivedVia.email,
            basis="the requester's identity could not be verified",
            generated_at=datetime(2026, 9, 11, 9, 0, tzinfo=UTC),
        )
    document = json.loads(render_denial(notice, "json"))
    jsonschema.Draft202012Validator(_schema(document["report"])).validate(document)


DENIAL = {
    "report": "request-denial/1",
    "generated_at": "2026-09-11T09:00:00Z",
    "subject": {"type": "member", "id": "member-0000005"},
    "request": {
        "request_id": "r-1",
        "kind": "know",
        "received_on": "2026-09-01",
        "received_via": "email",
        "responded_on": "2026-09-11",
        "response": "denied",
        "number_in_12_months": 1,
        "beyond_statutory_obligation": False,
    },
    "denial_basis": "not verified",
}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"generated_at": "2026-09-11 09:00:00"}, "not RFC 3339 UTC"),
        ({"report": "request-denial/2"}, "another contract version"),
        ({"extra": 1}, "a field the contract does not name"),
        ({"request": {**DENIAL["request"], "response": "ignored"}}, "an unknown response"),  # type: ignore[dict-item]
        ({"request": None}, "a denial always carries its request"),
    ],
)
def test_the_published_schema_refuses_what_breaks_the_contract(
    change: dict[str, Any], why: str
) -> None:
    schema = _schema("request-denial/1")
    jsonschema.Draft202012Validator(schema).validate(DENIAL)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**DENIAL, **change})
