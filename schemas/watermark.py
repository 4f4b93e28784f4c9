"""Producer watermarks on the wire: ``producer_watermark.vN.avsc``, single-object encoded.

A watermark shares the disclosures topic with the events. It carries the same ``C3 01``
header, and the 8-byte fingerprint of its writer schema tells it apart from a
:class:`~schemas.model.DisclosureEvent` (:meth:`schemas.codec.EventCodec.decode_many`
returns a :class:`Watermark` for it). What it means, and how the ledger uses it:
``ledger/coverage.py``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import fastavro

from schemas.codec import (
    HEADER_LENGTH,
    MAGIC,
    SchemaVersion,
    schema_versions_in,
    without_logical_types,
)
from schemas.errors import DecodeError, SchemaError

RECORD_TYPE = "producer_watermark"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Watermark:
    """``source`` declares: every disclosure it made before ``watermark_at_ms`` (epoch
    milliseconds, UTC, exclusive) was published before this message."""

    source: str
    watermark_at_ms: int
    sent_at_ms: int
    producer_version: str

    @property
    def watermark_at(self) -> datetime:
        return _EPOCH + timedelta(milliseconds=self.watermark_at_ms)

    def to_avro(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "watermark_at": self.watermark_at_ms,
            "sent_at": self.sent_at_ms,
            "producer_version": self.producer_version,
        }


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds; a naive one is refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SchemaError(f"watermark time {moment.isoformat()} has no UTC offset")
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)


@cache
def shipped_watermark_schemas() -> tuple[SchemaVersion, ...]:
    """Every ``producer_watermark.vN.avsc`` shipped in the schemas package, oldest first."""
    found = schema_versions_in(resources.files("schemas"), RECORD_TYPE)
    if not found:
        raise SchemaError("no producer_watermark.vN.avsc shipped in the schemas package")
    return found


class WatermarkCodec:
    """Encodes with the newest watermark schema; decodes any shipped version by
    fingerprint, read as the newest (as :class:`~schemas.codec.EventCodec` does events)."""

    def __init__(self) -> None:
        versions = shipped_watermark_schemas()
        latest = versions[-1]
        self._write_schema = fastavro.parse_schema(dict(latest.schema_json))
        self._header = MAGIC + latest.fingerprint
        reader = fastavro.parse_schema(without_logical_types(latest.schema_json))
        self._readers: dict[bytes, tuple[int, Any, Any]] = {}
        for version in versions:
            writer = fastavro.parse_schema(without_logical_types(version.schema_json))
            for fp in version.fingerprints:
                self._readers[fp] = (version.version, writer, reader)

    @property
    def fingerprints(self) -> frozenset[bytes]:
        return frozenset(self._readers)

    def recognises(self, value: bytes) -> bool:
        """Whether ``value`` is single-object encoded with a watermark schema."""
        return value[:2] == MAGIC and value[2:HEADER_LENGTH] in self._readers

    def encode(self, watermark: Watermark) -> bytes:
        buffer = io.BytesIO()
        buffer.write(self._header)
        fastavro.schemaless_writer(buffer, self._write_schema, watermark.to_avro())
        return buffer.getvalue()

    def decode(self, value: bytes) -> Watermark:
        """The watermark, or :class:`DecodeError` saying what is wrong with it."""
        entry = self._readers.get(value[2:HEADER_LENGTH]) if value[:2] == MAGIC else None
        if entry is None:
            raise DecodeError("message is not a single-object encoded producer watermark")
        version, writer, reader = entry
        body = io.BytesIO(value)
        body.seek(HEADER_LENGTH)
        try:
            record = fastavro.schemaless_reader(body, writer, reader)
        except Exception as exc:  # fastavro raises many types for a corrupt body
            raise DecodeError(
                f"producer watermark body does not match schema v{version}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if body.tell() != len(value) or not isinstance(record, dict):
            raise DecodeError(
                f"producer watermark body does not match schema v{version} (trailing bytes)"
            )
        if not record["source"]:
            raise DecodeError("producer watermark has an empty source; name the service")
        return Watermark(
            str(record["source"]),
            int(record["watermark_at"]),
            int(record["sent_at"]),
            str(record["producer_version"]),
        )
