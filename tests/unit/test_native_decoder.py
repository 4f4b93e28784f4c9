"""The native Avro decoder (schemas/_avrodecode.c) against fastavro: the same records from
the same bytes, and, for bytes that are not a valid record, the same DecodeError."""

from __future__ import annotations

import io
import uuid
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas.codec as codec_module
from schemas.codec import HEADER_LENGTH, EventCodec, compile_program, latest_schema
from schemas.errors import DecodeError

pytestmark = pytest.mark.skipif(
    codec_module.native_decoder is None, reason="the native decoder is not built"
)

SCHEMA = latest_schema()
PLAIN = codec_module.without_logical_types(SCHEMA.schema_json)
PARSED = fastavro.parse_schema(PLAIN)
PROGRAM = compile_program(PLAIN)

text = st.text(max_size=40)  # any code point, surrogates excluded: what UTF-8 can carry
records = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str),
        "occurred_at": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "subject": st.fixed_dictionaries(
            {"id": text, "type": st.sampled_from(["member", "guest"])}
        ),
        "recipient": st.fixed_dictionaries(
            {"id": text, "category": st.sampled_from(["broadcaster", "authority", "public"])}
        ),
        "data_categories": st.lists(text, max_size=12),
        "purpose": text,
        "legal_basis": st.sampled_from(["consent", "contract", "legitimate_interests"]),
        "disclosure_kind": st.sampled_from(["business_purpose", "sale", "share"]),
        "producer": st.fixed_dictionaries({"service": text, "version": text}),
        "context": st.dictionaries(text, text, max_size=5),
        "legal_reference": st.none() | text,
    }
)


def _body(record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, PARSED, record)
    return buffer.getvalue()


def _fastavro_codec() -> EventCodec:
    saved = codec_module.native_decoder
    codec_module.native_decoder = None
    try:
        return EventCodec()
    finally:
        codec_module.native_decoder = saved


NATIVE = EventCodec()
FASTAVRO = _fastavro_codec()


def _outcome(codec: EventCodec, value: bytes) -> Any:
    try:
        return codec.decode(value)
    except DecodeError as exc:
        return ("DecodeError", str(exc))


def test_the_latest_schema_decodes_natively_and_older_ones_through_fastavro() -> None:
    kinds = {entry.version: entry.program is not None for entry in NATIVE._readers.values()}
    assert kinds[SCHEMA.version] is True
    assert not any(on for version, on in kinds.items() if version != SCHEMA.version)
    assert not any(entry.program for entry in FASTAVRO._readers.values())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_any_record_decodes_exactly_as_fastavro_decodes_it(record: dict[str, Any]) -> None:
    body = _body(record)
    expected = fastavro.schemaless_reader(io.BytesIO(body), PARSED, None)
    value, end = codec_module.native_decoder.decode(PROGRAM, body, 0)
    assert (value, end) == (expected, len(body))
    assert list(value) == list(expected)  # fields in schema order, as fastavro gives them


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.data())
def test_damaged_bytes_give_the_same_record_or_the_same_error(
    record: dict[str, Any], data: st.DataObject
) -> None:
    value = bytearray(NATIVE.header + _body(record))
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["flip", "truncate", "append", "insert"]))
        at = data.draw(st.integers(HEADER_LENGTH, max(HEADER_LENGTH, len(value) - 1)))
        byte = data.draw(st.integers(0, 255))
        if action == "flip" and at < len(value):
            value[at] = byte
        elif action == "truncate":
            del value[at:]
        elif action == "append":
            value.append(byte)
        else:
            value.insert(at, byte)
    assert _outcome(NATIVE, bytes(value)) == _outcome(FASTAVRO, bytes(value))


def _long(n: int) -> bytes:
    zigzag = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return _long(len(raw)) + raw


def test_arrays_and_maps_written_in_sized_blocks_decode() -> None:
    """Java's blocking encoders write a negative count followed by the block's byte size,
    and may split one array over several blocks; fastavro's writer never does."""
    categories = ["user.contact.email", "user.financial", "user.name"]
    first = _string(categories[0]) + _string(categories[1])
    body = b"".join(
        [
            _string(str(uuid.UUID(int=7))),
            _long(1_767_225_600_000),
            _string("m-1") + _long(0),
            _string("escalion") + _long(4),
            _long(-2) + _long(len(first)) + first + _long(1) + _string(categories[2]) + _long(0),
            _string("essential.service"),
            _long(1),
            _long(0),
            _string("billing") + _string("1.0"),
            _long(-1) + _long(len(_string("k") + _string("v"))) + _string("k") + _string("v"),
            _long(0),
            _long(0),
        ]
    )
    value, end = codec_module.native_decoder.decode(PROGRAM, body, 0)
    assert end == len(body)
    assert value == fastavro.schemaless_reader(io.BytesIO(body), PARSED, None)
    assert value["data_categories"] == categories
    assert value["context"] == {"k": "v"}


def test_a_decoder_that_disagrees_with_fastavro_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Wrong:
        @staticmethod
        def decode(program: Any, data: bytes, start: int) -> Any:
            value, end = NATIVE_DECODE(program, data, start)
            return {**value, "purpose": "altered"}, end

    NATIVE_DECODE = codec_module.native_decoder.decode
    monkeypatch.setattr(codec_module, "native_decoder", Wrong)
    assert not any(entry.program for entry in EventCodec()._readers.values())


def test_huge_declared_counts_are_refused_without_allocating() -> None:
    body = _string(str(uuid.UUID(int=1))) + _long(0) + _string("m") + _long(0)
    body += _string("r") + _long(0) + _long(2**62)  # data_categories claims 2**62 items
    with pytest.raises(ValueError):
        codec_module.native_decoder.decode(PROGRAM, body, 0)


def test_every_avro_kind_a_future_schema_may_use_decodes_as_fastavro() -> None:
    schema = {
        "type": "record",
        "name": "Everything",
        "namespace": "x",
        "fields": [
            {"name": "flag", "type": "boolean"},
            {"name": "small", "type": "int"},
            {"name": "ratio", "type": "float"},
            {"name": "precise", "type": "double"},
            {"name": "blob", "type": "bytes"},
            {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 300}},
            {"name": "again", "type": "Digest"},
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b"]}},
            {
                "name": "maybe",
                "type": [
                    "null",
                    {"type": "record", "name": "Inner", "fields": [{"name": "n", "type": "long"}]},
                ],
            },
            {
                "name": "nested",
                "type": {"type": "map", "values": {"type": "array", "items": "Inner"}},
            },
        ],
    }
    parsed = fastavro.parse_schema(schema)
    program = codec_module._native_program(parsed, schema)
    assert program is not None  # the self-check passed on a sample of every kind
    value = codec_module._sample(program)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, value)
    body = buffer.getvalue()
    assert codec_module.native_decoder.decode(program, body, 0) == (
        fastavro.schemaless_reader(io.BytesIO(body), parsed, None),
        len(body),
    )


def test_a_recursive_schema_is_left_to_fastavro() -> None:
    schema = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}],
    }
    assert codec_module._native_program(fastavro.parse_schema(schema), schema) is None
