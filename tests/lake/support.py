"""What the tests of several writers of one lake share: a topic and its messages."""

from __future__ import annotations

from consumers.pipeline import SourceMessage
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()


def messages(first: int, count: int, partition: int = 0) -> list[SourceMessage]:
    """Offsets ``first`` .. ``first + count - 1`` of one partition, one member each."""
    return [
        SourceMessage(
            TOPIC,
            partition,
            offset,
            b"key",
            CODEC.encode(make_event(subject={"id": f"m-{offset}", "type": "member"}).to_avro()),
        )
        for offset in range(first, first + count)
    ]
