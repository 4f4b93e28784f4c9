"""The committed OpenAPI document (docs/openapi.json) is the one the routes make."""

from __future__ import annotations

import json
from pathlib import Path

from disclosure_ledger.service.openapi import openapi_text, write_openapi

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_up_to_date() -> None:
    regenerate = "run python -m disclosure_ledger.service.openapi docs/openapi.json"
    assert COMMITTED.is_file(), f"{COMMITTED} is missing: {regenerate}"
    assert COMMITTED.read_text(encoding="utf-8") == openapi_text(), (
        f"{COMMITTED.name} differs from the service's routes: {regenerate} and review the diff"
    )


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    first = write_openapi(tmp_path / "a" / "openapi.json").read_text(encoding="utf-8")
    second = write_openapi(tmp_path / "b" / "openapi.json").read_text(encoding="utf-8")
    assert first == second
    assert first.endswith("}\n")
    assert list(json.loads(first)) == sorted(json.loads(first))
