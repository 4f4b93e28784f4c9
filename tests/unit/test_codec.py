from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime

import avro.io
import avro.schema
import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import HEADER_LENGTH, MAGIC, EventCodec, latest_schema, shipped_schemas
from schemas.errors import DecodeError
from tests.unit.events import make_event


@pytest.fixture(scope="module")
def codec() -> EventCodec:
    return EventCodec()


def test_round_trip_keeps_every_field_as_wire_values(codec: EventCodec) -> None:
    event = make_event(context={"ticket": "T-9", "order_id": "o-7"})
    value = codec.encode(event.to_avro())
    assert value[:2] == MAGIC
    assert value[2:HEADER_LENGTH] == latest_schema().fingerprint
    version, record = codec.decode(value)
    assert version == latest_schema().version
    assert record["event_id"] == str(event.event_id)
    assert record["occurred_at"] == int(event.occurred_at.timestamp() * 1000)
    assert record["subject"] == {"id": "member-1", "type": "member"}
    assert record["recipient"] == {"id": "escalion", "category": "payment_provider"}
    assert record["data_categories"] == ["user.financial"]
    assert record["disclosure_kind"] == "business_purpose"
    assert record["context"] == {"ticket": "T-9", "order_id": "o-7"}


def test_fingerprints_match_fastavro_and_the_avro_package() -> None:
    for version in shipped_schemas():
        parsed = fastavro.parse_schema(dict(version.schema_json))
        canonical = fastavro.schema.to_parsing_canonical_form(parsed)
        fastavro_print = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
        avro_print = avro.schema.parse(json.dumps(version.schema_json)).fingerprint("CRC-64-AVRO")
        assert version.fingerprints[0] == fastavro_print
        assert avro_print in version.fingerprints
        assert avro_print != fastavro_print  # the two libraries really disagree


def test_record_written_by_the_avro_package_decodes(codec: EventCodec) -> None:
    """Another implementation, its own canonical form and fingerprint: still ingested."""
    schema = avro.schema.parse(json.dumps(latest_schema().schema_json))
    event_id = str(uuid.uuid4())
    buffer = io.BytesIO()
    buffer.write(b"\xc3\x01" + schema.fingerprint("CRC-64-AVRO"))
    avro.io.DatumWriter(schema).write(
        {
            "event_id": event_id,
            "occurred_at": datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
            "subject": {"id": "guest-9", "type": "guest"},
            "recipient": {"id": "hotjar", "category": "service_provider"},
            "data_categories": ["user.device.ip_address"],
            "purpose": "analytics.reporting",
            "legal_basis": "consent",
            "disclosure_kind": "business_purpose",
            "producer": {"service": "web", "version": "9"},
            "context": {},
        },
        avro.io.BinaryEncoder(buffer),
    )
    version, record = codec.decode(buffer.getvalue())
    assert version == latest_schema().version
    assert record["event_id"] == event_id
    moment = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    assert record["occurred_at"] == int(moment.timestamp() * 1000)
    assert record["subject"]["type"] == "guest"


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda v: v[:6], "shorter than the 10-byte single-object header"),
        (lambda v: b"\x00\x01" + v[2:], "instead of c301"),
        (lambda v: v[:2] + b"\xff" * 8 + v[10:], "is not one of the shipped schemas"),
        (lambda v: v[:-3], "does not match schema"),
        (lambda v: v + b"\x00\x00", "trailing bytes"),
        (lambda v: b'{"event_id": "x"}', "instead of c301"),
    ],
    ids=[
        "truncated-header",
        "wrong-magic",
        "unknown-fingerprint",
        "truncated-body",
        "trailing-bytes",
        "json-not-avro",
    ],
)
def test_poison_messages_say_what_is_wrong(codec: EventCodec, mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    value = codec.encode(make_event().to_avro())
    with pytest.raises(DecodeError, match=message):
        codec.decode(mangle(value))


def test_unknown_enum_index_is_a_decode_error(codec: EventCodec) -> None:
    record = make_event().to_avro()
    value = bytearray(codec.encode(record))
    # The subject type enum index follows the subject id string; index 1 (guest) -> 7.
    good = codec.encode({**record, "subject": {"id": "s", "type": "member"}})
    bad = bytearray(good)
    marker = good.index(b"\x02s") + 2  # zig-zag length 1, "s", then the enum index
    bad[marker] = 0x0E
    assert value  # the unmodified one still decodes
    with pytest.raises(DecodeError, match="does not match schema"):
        codec.decode(bytes(bad))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_categories": []}, "data_categories is empty"),
        ({"event_id": "not-a-uuid"}, "not a lower-case RFC 4122 UUID"),
        ({"subject": {"id": "", "type": "member"}}, "subject.id is empty"),
        ({"recipient": {"id": "", "category": "public"}}, "recipient.id is empty"),
    ],
)
def test_valid_avro_with_bad_values_is_refused(codec: EventCodec, change, message: str) -> None:  # type: ignore[no-untyped-def]
    record = {**make_event().to_avro(), **change}
    with pytest.raises(DecodeError, match=message):
        codec.decode(codec.encode(record))


def test_tombstone_is_refused(codec: EventCodec) -> None:
    with pytest.raises(DecodeError, match="no value"):
        codec.decode(None)


def _long(n: int) -> bytes:
    zigzag = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if not zigzag:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _string(s: str) -> bytes:
    raw = s.encode()
    return _long(len(raw)) + raw


def test_arrays_and_maps_written_in_sized_blocks_decode(codec: EventCodec) -> None:
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
    value = codec.header + body
    version, record = codec.decode(value)
    assert record["data_categories"] == categories
    assert record["context"] == {"k": "v"}
    assert codec.decode_many([value]) == [(version, record)]


def test_a_huge_declared_count_is_a_decode_error_not_an_allocation(codec: EventCodec) -> None:
    body = _string(str(uuid.UUID(int=1))) + _long(0) + _string("m") + _long(0)
    body += _string("r") + _long(0) + _long(2**62)  # data_categories claims 2**62 items
    with pytest.raises(DecodeError, match="data_categories"):
        codec.decode(codec.header + body)
    assert isinstance(codec.decode_many([codec.header + body])[0], DecodeError)


def _outcome(codec: EventCodec, value: bytes | None) -> object:
    try:
        return codec.decode(value)
    except DecodeError as exc:
        return ("DecodeError", str(exc))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_batch_decodes_each_message_exactly_as_decode_does(data: st.DataObject) -> None:
    """decode_many, the consumer's path, gives each damaged or intact message the same
    record or the same error as decode, and keeps the batch's order."""
    codec = EventCodec()
    values: list[bytes | None] = []
    for _ in range(data.draw(st.integers(1, 4))):
        record = make_event(
            context=data.draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8)))
        ).to_avro()
        value = bytearray(codec.encode(record))
        for _ in range(data.draw(st.integers(0, 3))):
            action = data.draw(st.sampled_from(["flip", "truncate", "append", "insert"]))
            at = data.draw(st.integers(0, max(0, len(value) - 1)))
            byte = data.draw(st.integers(0, 255))
            if action == "flip" and at < len(value):
                value[at] = byte
            elif action == "truncate":
                del value[at:]
            elif action == "append":
                value.append(byte)
            else:
                value.insert(at, byte)
        values.append(bytes(value))
    values.append(data.draw(st.sampled_from([None, b"", codec.header])))
    batch = [
        ("DecodeError", str(item)) if isinstance(item, DecodeError) else item
        for item in codec.decode_many(values)
    ]
    assert batch == [_outcome(codec, value) for value in values]
