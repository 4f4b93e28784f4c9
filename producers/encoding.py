"""The publisher's encoder: DisclosureEvents to Kafka messages, a batch at a time.

Every body is written by fastavro, with :class:`~schemas.codec.EventCodec`'s own parsed
write schema, so a message is byte for byte ``EventCodec.encode(event.to_avro())``. The
record handed to fastavro is built from the model's attributes directly (enum members and
the aware datetime as they are: fastavro converts them as the schema says), and a whole
batch is written into one buffer, then cut into messages. fastavro's walk of the record is
most of the cost (about 9.5 of 13 µs an event; ``docs/performance-encoder.md``).

A batch may hold events built without validation (``model_construct``). Each event gets
the model's checks that Avro's types cannot make (kept by hand, because running pydantic
on every event would cost more than the encoding: non-empty ids, Fides keys, an aware
timestamp, no empty ``legal_reference``); fastavro refuses wrong types and enum symbols.
An event that fails either goes through pydantic validation: if invalid it is refused
with :class:`~schemas.errors.EventValidationError` naming the event, the field and the
fix, if valid (strings for enums, a list for the categories) it is encoded as validated.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, TypeVar

import fastavro
from pydantic import BaseModel, ValidationError

from schemas.codec import EventCodec
from schemas.errors import EventValidationError
from schemas.model import FIDES_KEY, DisclosureEvent

# Fides keys and category tuples already found valid, so that each is matched against
# the pattern once, not once per event; a full set is emptied and refilled.
_KNOWN_VALID_LIMIT: Final = 65_536


class _NeedsValidation(Exception):
    """A value the batch path does not take as is; pydantic decides."""


class EventEncoder:
    """Single-object encoding of DisclosureEvents, byte-identical to ``codec``'s."""

    def __init__(self, codec: EventCodec | None = None) -> None:
        self.codec = codec or EventCodec()
        # EventCodec.encode's own fastavro call: the same parsed schema and header.
        self._schema = self.codec.write_schema
        self._header = self.codec.header
        self._fides_keys: set[str] = set()
        self._category_lists: set[tuple[str, ...]] = set()

    def encode(self, event: DisclosureEvent) -> bytes:
        """The event's single-object encoding; :class:`EventValidationError` if invalid."""
        return self.message(event)[1]

    def message(self, event: DisclosureEvent) -> tuple[bytes, bytes]:
        """(key, value) of the event's Kafka message: the subject id, and the event's
        single-object encoding. Raises :class:`EventValidationError` if it is invalid."""
        encoded, refused = self.messages([event])
        if refused:
            raise refused[0][1]
        return encoded[0][1], encoded[0][2]

    def messages(
        self, events: Iterable[DisclosureEvent]
    ) -> tuple[
        list[tuple[DisclosureEvent, bytes, bytes]],
        list[tuple[DisclosureEvent, EventValidationError]],
    ]:
        """(event, key, value) for each valid event, in order, and (event, error) for each
        invalid one. One buffer for the whole batch: the publisher's hot path."""
        refused: list[tuple[DisclosureEvent, EventValidationError]] = []
        # Each event's key and where its message lies in the buffer; an event pydantic had
        # to validate is encoded by the codec, and its message is kept aside.
        placed: list[tuple[DisclosureEvent, bytes, int, int]] = []
        validated: dict[int, bytes] = {}
        buffer = io.BytesIO()
        write, tell, write_record = buffer.write, buffer.tell, fastavro.schemaless_writer
        header, schema, record_of = self._header, self._schema, self._record
        for event in events:
            start = tell()
            try:
                record = record_of(event)
                write(header)
                write_record(buffer, schema, record)
                placed.append((event, event.subject.id.encode(), start, tell()))
            except Exception:  # anything unexpected: let pydantic judge the event
                # What was written of this message (its header) lies outside every
                # message's span, so it is never sent.
                try:
                    key, validated[len(placed)] = self._encode_validated(event)
                except EventValidationError as exc:
                    refused.append((event, exc))
                else:
                    placed.append((event, key, start, start))
        data = buffer.getvalue()
        encoded = [(event, key, data[start:end]) for event, key, start, end in placed]
        for position, value in validated.items():
            encoded[position] = (encoded[position][0], encoded[position][1], value)
        return encoded, refused

    def _record(self, event: DisclosureEvent) -> dict[str, Any]:
        """The record fastavro writes, from the model's attributes; :class:`_NeedsValidation`
        (or any other error) when a value is not what a validated DisclosureEvent holds."""
        event_id = event.event_id
        occurred_at = event.occurred_at
        subject_id, subject_type = (subject := event.subject).id, subject.type
        recipient_id, category = (recipient := event.recipient).id, recipient.category
        service, version = (producer := event.producer).service, producer.version
        categories = event.data_categories
        purpose = event.purpose
        reference = event.legal_reference
        if not (
            type(event_id) is uuid.UUID
            and type(occurred_at) is datetime
            and occurred_at.utcoffset() is not None
            and type(subject_id) is str
            and subject_id
            and type(recipient_id) is str
            and recipient_id
            and type(service) is str
            and service
            and type(version) is str
            and version
            and (reference is None or (type(reference) is str and reference))
        ):
            raise _NeedsValidation
        if categories not in self._category_lists:
            self._check_categories(categories)
        if purpose not in self._fides_keys:
            self._check_fides_key(purpose)
        # The UUID as text and the categories as a list, as to_avro() gives them: fastavro
        # writes both faster that way than it converts a UUID or walks a tuple.
        return {
            "event_id": str(event_id),
            "occurred_at": occurred_at,
            "subject": {"id": subject_id, "type": subject_type},
            "recipient": {"id": recipient_id, "category": category},
            "data_categories": list(categories),
            "purpose": purpose,
            "legal_basis": event.legal_basis,
            "disclosure_kind": event.disclosure_kind,
            "producer": {"service": service, "version": version},
            "context": event.context,
            "legal_reference": reference,
        }

    def _check_categories(self, categories: Any) -> None:
        if type(categories) is not tuple or not categories:
            raise _NeedsValidation
        for key in categories:
            if key not in self._fides_keys:
                self._check_fides_key(key)
        _remember(self._category_lists, categories)

    def _check_fides_key(self, key: Any) -> None:
        if type(key) is not str or not FIDES_KEY.match(key):
            raise _NeedsValidation
        _remember(self._fides_keys, key)

    def _encode_validated(self, event: DisclosureEvent) -> tuple[bytes, bytes]:
        """Validate with pydantic (every rule of the model), then encode with the codec."""
        try:
            data = {
                name: value.__dict__ if isinstance(value, BaseModel) else value
                for name, value in vars(event).items()
            }
            valid = DisclosureEvent.model_validate(data)
        except ValidationError as exc:
            raise _refusal(event, exc) from None
        except TypeError as exc:  # not a model at all
            raise EventValidationError(
                f"{event!r} is not a DisclosureEvent ({exc}); build events with "
                "DisclosureEvent(...) or DisclosureEvent.model_validate(...)"
            ) from None
        return valid.subject.id.encode(), self.codec.encode(valid.to_avro())


_Known = TypeVar("_Known")


def _remember(known: set[_Known], value: _Known) -> None:
    if len(known) >= _KNOWN_VALID_LIMIT:
        known.clear()
    known.add(value)


def _refusal(event: Any, exc: ValidationError) -> EventValidationError:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "(the event)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    event_id = getattr(event, "event_id", None)
    return EventValidationError(
        f"event {event_id} is invalid and was not sent: field {where}: {error['msg']}{more}. "
        "Correct the field; DisclosureEvent(...) and DisclosureEvent.model_validate(...) "
        "check these rules when the event is built (model_construct does not)",
        field=where,
    )
