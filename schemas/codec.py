"""Avro single-object encoding of DisclosureEvent: the wire contract every producer keeps.

A message value is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the
writer schema's parsing canonical form + the Avro binary record (Avro specification,
"Single-object encoding"). Writer schemas are resolved by fingerprint from the ``.avsc``
files shipped in this package, and every record is read with the newest of them as the
reader schema (Avro schema resolution), so the consumer sees one shape whichever
compatible version a producer wrote (``schemas/compat.py`` checks that they are). Avro
implementations disagree on the canonical form of a primitive that carries a logical type
(Java and fastavro write ``"long"``, the Python ``avro`` package ``{"type":"long"}``), so
every shipped schema answers to both fingerprints.

The topic also carries producer watermarks (``producer_watermark.vN.avsc``,
:mod:`schemas.watermark`): same header, their own fingerprints, so
:meth:`EventCodec.decode_many` returns a :class:`~schemas.watermark.Watermark` for them.

Records are decoded by fastavro only; canonical forms and fingerprints come from
``fastavro.schema``. The consumer decodes a whole batch with
:meth:`EventCodec.decode_many`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

import fastavro

from schemas.errors import DecodeError, SchemaError

if TYPE_CHECKING:
    from schemas.watermark import Watermark

MAGIC = b"\xc3\x01"
HEADER_LENGTH = 10
SCHEMA_FILE = re.compile(r"^disclosure_event\.v(\d+)\.avsc$")
RECORD_TYPES = ("disclosure_event", "producer_watermark")
"""The record types on the disclosures topic, each a line of ``<type>.vN.avsc`` files;
single-object encoding tells them apart by the writer schema's fingerprint."""
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def parsing_canonical_form(schema: Any) -> str:
    """The Avro parsing canonical form of a schema given as JSON, as Java and fastavro
    write it (a primitive with a logical type is plain ``"long"``)."""
    return str(fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(dict(schema))))


def avro_package_canonical_form(schema: Any) -> str:
    """The parsing canonical form as the Python ``avro`` package writes it: a primitive that
    carries a logical type stays an object, ``{"type":"long"}``.

    Kept by hand because no library offers it: fastavro writes the specification's form
    only, and the ``avro`` package is no runtime dependency (it is in the tests, which
    check this against it). Producers using that package put this form's fingerprint on
    the wire, so the consumer must know it too. Everything but the logical-type nodes is
    fastavro's own output, read back and written again in the same compact JSON.
    """
    parsed = fastavro.parse_schema(dict(schema))
    canonical = json.loads(fastavro.schema.to_parsing_canonical_form(parsed))

    def walk(node: Any, form: Any) -> Any:
        if isinstance(node, list):
            return [walk(branch, part) for branch, part in zip(node, form, strict=True)]
        if not isinstance(node, dict):
            return form
        kind = node["type"]
        if kind in _PRIMITIVES:
            return {"type": kind} if "logicalType" in node else form
        if kind in ("record", "error"):
            fields = zip(node["fields"], form["fields"], strict=True)
            return {
                **form,
                "fields": [{**f, "type": walk(n["type"], f["type"])} for n, f in fields],
            }
        if kind in ("array", "map"):
            part = "items" if kind == "array" else "values"
            return {**form, part: walk(node[part], form[part])}
        return form

    return json.dumps(walk(parsed, canonical), separators=(",", ":"))


def crc64_avro_fingerprint(canonical_form: str) -> bytes:
    """The CRC-64-AVRO fingerprint of a canonical form, as the 8 bytes single-object
    encoding puts on the wire (little-endian)."""
    return bytes.fromhex(fastavro.schema.fingerprint(canonical_form, "CRC-64-AVRO"))


def without_logical_types(node: Any) -> Any:
    """A copy of the schema without logical types: records keep raw wire values (epoch
    milliseconds, UUID text), and fastavro decodes about twice as fast without conversions."""
    if isinstance(node, list):
        return [without_logical_types(n) for n in node]
    if isinstance(node, dict):
        return {k: without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    return node


@dataclass(frozen=True)
class SchemaVersion:
    version: int
    source: str
    schema_json: Mapping[str, Any]
    fingerprints: tuple[bytes, ...]

    @property
    def fingerprint(self) -> bytes:
        """The fingerprint this project's producers write (Java and fastavro's form)."""
        return self.fingerprints[0]


def schema_version(version: int, source: str, schema_json: Mapping[str, Any]) -> SchemaVersion:
    """A parsed schema with both fingerprints implementations compute for it."""
    forms = (parsing_canonical_form(schema_json), avro_package_canonical_form(schema_json))
    prints = tuple(dict.fromkeys(crc64_avro_fingerprint(f) for f in forms))
    return SchemaVersion(version, source, schema_json, prints)


def schema_versions_in(
    directory: Traversable, record_type: str = "disclosure_event"
) -> tuple[SchemaVersion, ...]:
    """Every ``<record_type>.vN.avsc`` in ``directory``, oldest first.

    Raises :class:`SchemaError` naming the file that is not JSON.
    """
    if record_type not in RECORD_TYPES:
        raise SchemaError(f"unknown record type {record_type!r}; one of {', '.join(RECORD_TYPES)}")
    pattern = re.compile(rf"^{record_type}\.v(\d+)\.avsc$")
    found: list[SchemaVersion] = []
    for entry in directory.iterdir():
        match = pattern.match(entry.name)
        if not match:
            continue
        try:
            schema_json = json.loads(entry.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SchemaError(f"{entry.name} is not valid JSON: {exc}") from exc
        found.append(schema_version(int(match.group(1)), entry.name, schema_json))
    return tuple(sorted(found, key=lambda s: s.version))


@cache
def shipped_schemas() -> tuple[SchemaVersion, ...]:
    """Every ``disclosure_event.vN.avsc`` shipped in this package, oldest first."""
    found = schema_versions_in(resources.files("schemas"))
    if not found:
        raise DecodeError("no disclosure_event.vN.avsc shipped in the schemas package")
    return found


def latest_schema() -> SchemaVersion:
    return shipped_schemas()[-1]


@dataclass(frozen=True)
class _Reader:
    version: int
    writer: Any
    reader: Any  # None for the newest version: its records are read as written


class EventCodec:
    """Encodes with the newest shipped schema (or ``write_version``); decodes any shipped
    version by fingerprint, resolving it against the newest one.

    Decoded records keep raw wire values: ``occurred_at`` as epoch milliseconds and
    ``event_id`` as text; :meth:`decode` checks the values Avro's types cannot. A record
    written with an older version comes back shaped as the newest, fields it lacks
    filled with their defaults (``legal_reference`` is ``None`` for a v1 event).
    """

    def __init__(self, *, write_version: int | None = None) -> None:
        versions = {v.version: v for v in shipped_schemas()}
        latest = latest_schema()
        if write_version is not None and write_version not in versions:
            raise SchemaError(
                f"write_version {write_version} is not a shipped schema version "
                f"(shipped: {sorted(versions)})"
            )
        writes = versions[write_version or latest.version]
        self._write_version = writes.version
        self._write_schema = fastavro.parse_schema(dict(writes.schema_json))
        self._header = MAGIC + writes.fingerprint
        reader_schema = fastavro.parse_schema(without_logical_types(latest.schema_json))
        self._readers: dict[bytes, _Reader] = {}
        # Watermarks share the topic; they are told apart by fingerprint (schemas/watermark.py)
        from schemas.watermark import WatermarkCodec

        self._watermarks = WatermarkCodec()
        for version in versions.values():
            plain = without_logical_types(version.schema_json)
            same = version.version == latest.version
            entry = _Reader(
                version.version, fastavro.parse_schema(plain), None if same else reader_schema
            )
            for fp in version.fingerprints:
                self._readers[fp] = entry

    @property
    def write_version(self) -> int:
        """The schema version :meth:`encode` writes."""
        return self._write_version

    @property
    def header(self) -> bytes:
        return self._header

    @property
    def write_schema(self) -> Any:
        """The parsed fastavro schema :meth:`encode` writes bodies with."""
        return self._write_schema

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding of a record shaped as the schema (fastavro values)."""
        buffer = io.BytesIO()
        buffer.write(self._header)
        fastavro.schemaless_writer(buffer, self._write_schema, dict(record))
        return buffer.getvalue()

    def decode(self, value: bytes | None) -> tuple[int, dict[str, Any]]:
        """(writer schema version, record) or :class:`DecodeError` saying what is wrong."""
        if value is None:
            raise DecodeError("message has no value (a tombstone); a disclosure needs one")
        if len(value) < HEADER_LENGTH:
            raise DecodeError(
                f"message is {len(value)} bytes, shorter than the 10-byte single-object "
                "header: it was truncated or is not Avro single-object encoded"
            )
        if value[:2] != MAGIC:
            raise DecodeError(
                f"message starts with {value[:2].hex()} instead of c301: it is not Avro "
                "single-object encoded (was it sent as JSON or with a schema-registry header?)"
            )
        entry = self._readers.get(value[2:HEADER_LENGTH])
        if entry is None and self._watermarks.recognises(value):
            raise DecodeError(
                "message is a producer watermark, not a disclosure event; read it with "
                "decode_many or schemas.watermark.WatermarkCodec"
            )
        if entry is None:
            raise DecodeError(
                f"writer schema fingerprint {value[2:HEADER_LENGTH].hex()} is not one of the "
                "shipped schemas; publish with a schema from schemas/ or ship the new "
                "version there first"
            )
        body = io.BytesIO(value)
        body.seek(HEADER_LENGTH)
        try:
            record = fastavro.schemaless_reader(body, entry.writer, entry.reader)
        except Exception as exc:  # fastavro raises many types for a corrupt body
            where = locate_body_error(_writer_json(entry.version), value, HEADER_LENGTH)
            raise DecodeError(
                f"Avro body does not match schema v{entry.version}: "
                + (where or f"{type(exc).__name__}: {exc}")
            ) from exc
        if body.tell() != len(value):
            raise DecodeError(
                f"Avro body has {len(value) - body.tell()} trailing bytes after the record: "
                f"it does not match schema v{entry.version}"
            )
        if not isinstance(record, dict):
            raise DecodeError("Avro body did not decode to a record")
        check_values(record)
        return entry.version, record

    def decode_many(
        self, values: Sequence[bytes | None]
    ) -> list[tuple[int, dict[str, Any]] | Watermark | DecodeError]:
        """:meth:`decode` of a whole batch, in one pass: for each value its (version, record),
        a :class:`~schemas.watermark.Watermark` when the fingerprint is a watermark schema's,
        or the :class:`DecodeError` :meth:`decode` raises for it.

        Each record costs one fastavro call and the checks of :func:`values_are_valid`; the
        per-message framing of :meth:`decode` (header checks, error wording) runs only for
        a value that fails them, which :meth:`decode` then reads again to say why.
        """
        readers = self._readers
        read = fastavro.schemaless_reader
        body_of = io.BytesIO
        valid = values_are_valid
        decoded: list[tuple[int, dict[str, Any]] | Watermark | DecodeError] = []
        watermarks = self._watermarks
        append = decoded.append
        for value in values:
            if (
                value is not None
                and value[:2] == MAGIC
                and (entry := readers.get(value[2:HEADER_LENGTH])) is not None
            ):
                body = body_of(value)
                body.seek(HEADER_LENGTH)
                record: Any
                try:
                    record = read(body, entry.writer, entry.reader)
                except Exception:  # fastavro raises many types; decode() says which field
                    record = None
                if record is not None and body.tell() == len(value) and valid(record):
                    append((entry.version, record))
                    continue
            elif value is not None and watermarks.recognises(value):
                try:
                    append(watermarks.decode(value))
                except DecodeError as exc:
                    append(exc)
                continue
            try:
                append(self.decode(value))
            except DecodeError as exc:
                append(exc)
        return decoded


def values_are_valid(record: Mapping[str, Any]) -> bool:
    """Whether :func:`check_values` passes, without building its error message."""
    return bool(
        UUID_TEXT.match(record["event_id"])
        and record["data_categories"]
        and record["subject"]["id"]
        and record["recipient"]["id"]
        and record.get("legal_reference") != ""
    )


def check_values(record: Mapping[str, Any]) -> None:
    """The checks Avro types cannot make; raises DecodeError naming the field."""
    if not UUID_TEXT.match(record["event_id"]):
        raise DecodeError(f"event_id {record['event_id']!r} is not a lower-case RFC 4122 UUID text")
    if not record["data_categories"]:
        raise DecodeError("data_categories is empty; a disclosure names at least one category")
    if not record["subject"]["id"]:
        raise DecodeError("subject.id is empty")
    if not record["recipient"]["id"]:
        raise DecodeError("recipient.id is empty")
    if record.get("legal_reference") == "":
        raise DecodeError(
            "legal_reference is an empty string; a producer sends null when it has none"
        )


def _writer_json(version: int) -> Mapping[str, Any]:
    return next(v.schema_json for v in shipped_schemas() if v.version == version)


class _BodyError(Exception):
    """Where and why a binary Avro body stops matching its schema."""


def locate_body_error(schema: Any, data: bytes, start: int = 0) -> str | None:
    """Walk the Avro binary encoding of one record and name the first field it breaks.

    Returns e.g. ``"field recipient.category: enum index 32 is not one of the 8
    RecipientCategory symbols"``, or ``None`` when the body reads cleanly (then the
    caller's own error stands). Only used on the error path, after fastavro has refused
    the body: kept by hand because fastavro's errors (``EOFError``, ``IndexError``, ...)
    do not say which field broke, and a producer needs that to fix its message. Nothing
    it reads is kept; every record the ledger stores was decoded by fastavro.
    """
    names: dict[str, Any] = {}
    position = start

    def fail(path: str, problem: str) -> _BodyError:
        return _BodyError(f"field {path or '(record)'}: {problem}")

    def read_long(path: str) -> int:
        nonlocal position
        shift = 0
        accumulated = 0
        while True:
            if position >= len(data):
                raise fail(path, "the message ends inside this field (truncated)")
            byte = data[position]
            position += 1
            accumulated |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (accumulated >> 1) ^ -(accumulated & 1)
            shift += 7
            if shift > 63:
                raise fail(path, "a variable-length integer runs longer than 10 bytes")

    def read_bytes(path: str, count: int) -> bytes:
        nonlocal position
        if count < 0:
            raise fail(path, f"negative length {count}")
        if position + count > len(data):
            raise fail(
                path,
                f"declares {count} bytes but only {len(data) - position} remain "
                "(truncated, or not this schema)",
            )
        chunk = data[position : position + count]
        position += count
        return chunk

    def full_name(name: str, namespace: str | None) -> str:
        return name if "." in name or not namespace else f"{namespace}.{name}"

    def walk(node: Any, path: str, namespace: str | None) -> None:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return read_primitive(node, path)
            named = names.get(full_name(node, namespace)) or names.get(node)
            if named is None:
                raise fail(path, f"schema names unknown type {node}")
            return walk(named, path, namespace)
        if isinstance(node, list):
            index = read_long(path)
            if not 0 <= index < len(node):
                raise fail(path, f"union branch {index} does not exist (0 to {len(node) - 1})")
            return walk(node[index], path, namespace)
        kind = node["type"]
        if not isinstance(kind, str) or kind in _PRIMITIVES:
            return walk(kind, path, namespace)
        if "name" in node:
            name = full_name(node["name"], node.get("namespace", namespace))
            names[name] = node
            namespace = name.rpartition(".")[0] or None
        if kind in ("record", "error"):
            for field in node["fields"]:
                walk(field["type"], f"{path}.{field['name']}" if path else field["name"], namespace)
        elif kind == "enum":
            index = read_long(path)
            symbols = node["symbols"]
            if not 0 <= index < len(symbols):
                unknown = "an unknown symbol" + ("" if "default" in node else ", and no default")
                raise fail(
                    path,
                    f"enum index {index} is outside the {len(symbols)} {node['name']} "
                    f"symbols ({unknown})",
                )
        elif kind in ("array", "map"):
            item = 0
            while True:
                count = read_long(path)
                if count == 0:
                    return None
                if count < 0:
                    count = -count
                    read_long(path)  # the block's size in bytes
                for _ in range(count):
                    if kind == "map":
                        read_primitive("string", f"{path} key")
                        walk(node["values"], f"{path}[{item}]", namespace)
                    else:
                        walk(node["items"], f"{path}[{item}]", namespace)
                    item += 1
        elif kind == "fixed":
            read_bytes(path, int(node["size"]))
        return None

    def read_primitive(kind: str, path: str) -> None:
        if kind == "null":
            return
        if kind == "boolean":
            value = read_bytes(path, 1)
            if value not in (b"\x00", b"\x01"):
                raise fail(path, f"boolean byte {value.hex()} is neither 00 nor 01")
        elif kind in ("int", "long"):
            read_long(path)
        elif kind == "float":
            read_bytes(path, 4)
        elif kind == "double":
            read_bytes(path, 8)
        else:
            text = read_bytes(path, read_long(path))
            if kind == "string":
                try:
                    text.decode("utf-8")
                except UnicodeDecodeError:
                    raise fail(path, "string is not valid UTF-8") from None

    try:
        walk(schema, "", None)
    except _BodyError as exc:
        return str(exc)
    except (KeyError, TypeError, ValueError):  # a schema we cannot walk: say nothing
        return None
    if position != len(data):
        return f"{len(data) - position} trailing bytes after the record"
    return None
