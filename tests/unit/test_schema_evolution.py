"""Schema evolution: v2 reads v1 (defaults filled in), and ``schemas check`` refuses a
version that cannot read the ones before it, saying where and why."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from disclosure_ledger.cli import main
from schemas.codec import EventCodec, locate_body_error, shipped_schemas
from schemas.compat import (
    check_schema_directory,
    default_problems,
    resolution_problems,
    sample_problems,
)
from schemas.errors import DecodeError, SchemaError
from tests.unit.events import make_event

V1, V2 = (dict(v.schema_json) for v in shipped_schemas()[:2])


def test_v2_is_v1_plus_an_optional_legal_reference() -> None:
    assert [v.version for v in shipped_schemas()] == [1, 2]
    v1_fields = [f["name"] for f in V1["fields"]]
    v2_fields = [f["name"] for f in V2["fields"]]
    assert v2_fields == [*v1_fields, "legal_reference"]
    added = V2["fields"][-1]
    assert added["type"] == ["null", "string"] and added["default"] is None
    assert (V1["namespace"], V1["name"]) == (V2["namespace"], V2["name"])


def test_a_v1_event_reads_as_v2_with_the_default() -> None:
    event = make_event(context={"ticket": "T-1"})
    value = EventCodec(write_version=1).encode(event.to_avro())
    assert value[2:10] == shipped_schemas()[0].fingerprint
    version, record = EventCodec().decode(value)
    assert version == 1
    assert record["legal_reference"] is None
    assert record["event_id"] == str(event.event_id)
    assert record["context"] == {"ticket": "T-1"}


def test_a_v2_event_keeps_its_legal_reference() -> None:
    event = make_event(legal_reference="subpoena 24-CV-1182")
    version, record = EventCodec().decode(EventCodec().encode(event.to_avro()))
    assert (version, record["legal_reference"]) == (2, "subpoena 24-CV-1182")


def test_an_empty_legal_reference_is_refused_by_model_and_consumer() -> None:
    with pytest.raises(ValueError, match="legal_reference"):
        make_event(legal_reference="")
    record = {**make_event().to_avro(), "legal_reference": ""}
    with pytest.raises(DecodeError, match="legal_reference is an empty string"):
        EventCodec().decode(EventCodec().encode(record))


def test_only_shipped_versions_can_be_written() -> None:
    with pytest.raises(SchemaError, match="write_version 7 is not a shipped schema version"):
        EventCodec(write_version=7)


def test_corrupt_bodies_name_the_field_at_fault() -> None:
    value = EventCodec().encode(make_event().to_avro())
    assert locate_body_error(V2, value, 10) is None
    assert "field event_id: declares 36 bytes" in str(locate_body_error(V2, value[:20], 10))
    where = locate_body_error(V2, value + b"\x00", 10)
    assert where == "1 trailing bytes after the record"


def test_the_shipped_schemas_are_compatible() -> None:
    report = check_schema_directory()
    assert report.ok, list(report.lines())
    assert report.versions == [1, 2]
    assert [(p.writer, p.reader) for p in report.pairs] == [(1, 2)]


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


def _enum(schema: dict[str, Any], record: str, field: str) -> dict[str, Any]:
    inner: dict[str, Any] = _fields(_fields(schema)[record]["type"])[field]["type"]
    return inner


def _add_field_without_default(s: dict[str, Any]) -> None:
    s["fields"].append({"name": "jurisdiction", "type": "string"})


def _change_purpose_to_int(s: dict[str, Any]) -> None:
    _fields(s)["purpose"]["type"] = "int"


def _drop_recipient_category(s: dict[str, Any]) -> None:
    _enum(s, "recipient", "category")["symbols"].remove("authority")


def _drop_symbol_with_default(s: dict[str, Any]) -> None:
    enum = _enum(s, "recipient", "category")
    enum["symbols"].remove("authority")
    enum["default"] = "public"


def _rename_namespace(s: dict[str, Any]) -> None:
    s["namespace"] = "disclosure_ledger.v3"


def _rename_namespace_with_alias(s: dict[str, Any]) -> None:
    s["namespace"] = "disclosure_ledger.v3"
    s["aliases"] = ["disclosure_ledger.v1.DisclosureEvent"]
    for field in ("subject", "recipient", "producer"):
        _fields(s)[field]["type"]["aliases"] = [
            f"disclosure_ledger.v1.{_fields(s)[field]['type']['name']}"
        ]
    for record, field in (("subject", "type"), ("recipient", "category")):
        enum = _enum(s, record, field)
        enum["aliases"] = [f"disclosure_ledger.v1.{enum['name']}"]
    for field in ("legal_basis", "disclosure_kind"):
        enum = _fields(s)[field]["type"]
        enum["aliases"] = [f"disclosure_ledger.v1.{enum['name']}"]


def _micros(s: dict[str, Any]) -> None:
    _fields(s)["occurred_at"]["type"]["logicalType"] = "timestamp-micros"


def _legal_reference_required(s: dict[str, Any]) -> None:
    field = _fields(s)["legal_reference"]
    field["type"], field["default"] = "string", "unknown"


def _optional_field_added(s: dict[str, Any]) -> None:
    s["fields"].append(
        {"name": "jurisdiction", "type": ["null", "string"], "default": None, "doc": "e.g. US-CA"}
    )


def _long_to_double(s: dict[str, Any]) -> None:
    _fields(s)["occurred_at"]["type"] = "double"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_add_field_without_default, "jurisdiction: field added without a default"),
        (_change_purpose_to_int, "purpose: a string cannot be read as a int"),
        (_drop_recipient_category, "lost symbol(s) authority and has no default"),
        (_rename_namespace, "keep the name (namespace included) or give the new one the alias"),
        (_micros, "has the same fingerprint as v2: the two differ at most"),
        (_legal_reference_required, "legal_reference<branch 0: null>: a null cannot be read"),
        (_long_to_double, "logical type changes from timestamp-millis to none"),
    ],
)
def test_an_incompatible_v3_is_refused_saying_why(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], problem: str
) -> None:
    v3 = copy.deepcopy(V2)
    change(v3)
    for number, schema in ((1, V1), (2, V2), (3, v3)):
        (tmp_path / f"disclosure_event.v{number}.avsc").write_text(json.dumps(schema))
    report = check_schema_directory(tmp_path)
    assert not report.ok
    failures = [line for line in report.lines() if line.startswith("FAIL")]
    assert any(problem in line for line in failures), failures
    assert all("v3" in line for line in failures), failures


@pytest.mark.parametrize(
    "change", [_drop_symbol_with_default, _rename_namespace_with_alias, _optional_field_added]
)
def test_a_compatible_v3_passes(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    v3 = copy.deepcopy(V2)
    change(v3)
    for number, schema in ((1, V1), (2, V2), (3, v3)):
        (tmp_path / f"disclosure_event.v{number}.avsc").write_text(json.dumps(schema))
    report = check_schema_directory(tmp_path)
    assert report.ok, list(report.lines())
    assert [(p.writer, p.reader) for p in report.pairs] == [(1, 2), (1, 3), (2, 3)]


def test_adding_a_symbol_is_noted_as_not_forward_compatible(tmp_path: Path) -> None:
    v3 = copy.deepcopy(V2)
    _enum(v3, "recipient", "category")["symbols"].append("data_broker")
    for number, schema in ((1, V1), (2, V2), (3, v3)):
        (tmp_path / f"disclosure_event.v{number}.avsc").write_text(json.dumps(schema))
    report = check_schema_directory(tmp_path)
    assert report.ok
    assert any("v2 cannot read v3 (not forward compatible)" in n for n in report.forward_notes)


@pytest.mark.parametrize(
    ("writer", "reader", "readable"),
    [
        ("int", "long", True),
        ("int", "double", True),
        ("long", "float", True),
        ("float", "double", True),
        ("string", "bytes", True),
        ("bytes", "string", True),
        ("long", "int", False),
        ("double", "float", False),
        ("null", "string", False),
        ("string", ["null", "string"], True),
        (["null", "string"], "string", False),
        (["null", "int"], ["null", "long"], True),
        ({"type": "array", "items": "int"}, {"type": "array", "items": "long"}, True),
        ({"type": "map", "values": "long"}, {"type": "map", "values": "int"}, False),
        (
            {"type": "fixed", "name": "F", "size": 4},
            {"type": "fixed", "name": "F", "size": 8},
            False,
        ),
    ],
)
def test_resolution_rules_of_the_specification(writer: Any, reader: Any, readable: bool) -> None:
    def wrap(node: Any) -> dict[str, Any]:
        return {"type": "record", "name": "R", "fields": [{"name": "f", "type": node}]}

    assert (not resolution_problems(wrap(writer), wrap(reader))) is readable


def test_a_changed_logical_type_is_refused_even_where_the_bytes_would_resolve() -> None:
    def wrap(logical: str) -> dict[str, Any]:
        field = {"name": "at", "type": {"type": "long", "logicalType": logical}}
        return {"type": "record", "name": "R", "fields": [field]}

    problems = resolution_problems(wrap("timestamp-millis"), wrap("timestamp-micros"))
    assert problems == [
        "at: logical type changes from timestamp-millis to timestamp-micros "
        "(the same bytes would mean something else)"
    ]


def test_defaults_must_match_their_type() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "a", "type": ["null", "string"], "default": "x"},
            {"name": "b", "type": ["string", "null"], "default": "x"},
            {"name": "c", "type": {"type": "array", "items": "int"}, "default": ["x"]},
            {"name": "d", "type": {"type": "enum", "name": "E", "symbols": ["p"]}, "default": "q"},
            {"name": "e", "type": "int", "default": 2**40},
        ],
    }
    problems = default_problems(schema)
    assert [p.split(":")[0] for p in problems] == ["a", "c", "d", "e"]
    assert "first branch" in problems[0]


def test_records_written_by_v1_read_back_through_fastavro_with_defaults() -> None:
    assert sample_problems(V1, V2, count=50, seed=3) == []
    other_default = copy.deepcopy(V2)
    field = _fields(other_default)["legal_reference"]
    field["type"], field["default"] = "string", "not recorded"
    assert sample_problems(V1, other_default, count=5, seed=3) == []


def test_version_files_must_run_without_a_gap_and_differ(tmp_path: Path) -> None:
    (tmp_path / "disclosure_event.v1.avsc").write_text(json.dumps(V1))
    (tmp_path / "disclosure_event.v3.avsc").write_text(json.dumps(V2))
    report = check_schema_directory(tmp_path)
    assert not report.ok and "without a gap" in report.problems[0]
    (tmp_path / "disclosure_event.v3.avsc").unlink()
    (tmp_path / "disclosure_event.v2.avsc").write_text(json.dumps(V1, indent=4))
    report = check_schema_directory(tmp_path)
    assert not report.ok and "same fingerprint as v1" in report.problems[0]


def test_schemas_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "check"]) == 0
    out = capsys.readouterr().out
    assert "ok   v2 reads everything v1 writes" in out and "compatible" in out

    v3 = copy.deepcopy(V2)
    _add_field_without_default(v3)
    for number, schema in ((1, V1), (2, V2), (3, v3)):
        (tmp_path / f"disclosure_event.v{number}.avsc").write_text(json.dumps(schema))
    assert main(["schemas", "check", "--dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "FAIL v3 cannot read v1: jurisdiction: field added without a default" in captured.err
    assert "NOT compatible" in captured.out
