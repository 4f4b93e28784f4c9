"""Idempotence by event_id across batches and restarts, and a topic of mixed schema
versions ingested completely (the consumer in-process, one ledger reopened per run)."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from pathlib import Path

import avro.io
import avro.schema
import pytest

from consumers.consumer import ConsumeStats, consume
from consumers.pipeline import Ingestor
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import MAGIC, EventCodec, shipped_schemas
from tests.integration.reliability_support import (
    EventFactory,
    Sent,
    assert_ledger_holds_exactly,
    run_seed,
    send,
)
from tests.unit.events import make_event

pytestmark = pytest.mark.integration


def _run(
    bootstrap: str,
    topic: str,
    ledger_path: Path,
    keys: SubjectKeyStore,
    reference: ReferenceData,
    max_batch: int,
    client: str,
) -> ConsumeStats:
    """One consumer run on a freshly opened ledger: a restart in every way that matters."""
    with Ledger(ledger_path) as ledger:
        return consume(
            bootstrap,
            topic,
            Ingestor(ledger, keys, reference),
            until_idle=0.5,
            max_batch=max_batch,
            client=client,
        )


def test_retries_and_republishes_are_duplicates_across_batches_and_restarts(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    kafka_client: str,
) -> None:
    rng = random.Random(run_seed("duplicates across restarts"))
    topic = new_topic(partitions=2)
    factory = EventFactory(rng, pool=40)
    first = [factory.make() for _ in range(600)]
    positions = send(kafka_bootstrap, topic, first)
    stats = _run(kafka_bootstrap, topic, ledger_path, key_store, reference, 64, kafka_client)
    assert (stats.accepted, stats.duplicates, stats.quarantined) == (600, 0, 0)

    # A producer re-publishes everything (same key), a retry storm repeats some events
    # within the same stream, another service re-sends some under its own key, and
    # a few new events arrive in between.
    def again(sent: Sent, key: bytes | None = None) -> Sent:
        return Sent(key or sent.key, sent.value, "duplicate", sent.event_id, sent.subject)

    new = [factory.make() for _ in range(150)]
    second = [again(m) for m in first] + new
    second += [again(m) for m in rng.sample(first + new, 100)]
    second += [again(m, b"another-service") for m in rng.sample(first, 50)]
    rng.shuffle(second)
    positions += send(kafka_bootstrap, topic, second)
    for max_batch in (37, 1000):  # a restart, then one more with nothing new
        stats = _run(
            kafka_bootstrap, topic, ledger_path, key_store, reference, max_batch, kafka_client
        )
        if max_batch == 37:
            assert (stats.accepted, stats.duplicates) == (150, len(second) - 150)
        else:
            assert stats.total == 0

    contents = assert_ledger_holds_exactly(
        ledger_path, topic, first + second, positions, bootstrap=kafka_bootstrap
    )
    assert contents.rows == 750


def _written_by_the_avro_package(record: dict[str, object]) -> bytes:
    """A v1 event as another implementation writes it: its own fingerprint of v1."""
    v1 = shipped_schemas()[0]
    schema = avro.schema.parse(json.dumps(v1.schema_json))
    buffer = io.BytesIO()
    buffer.write(MAGIC + schema.fingerprint("CRC-64-AVRO"))
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(buffer))
    return buffer.getvalue()


def test_a_topic_of_interleaved_v1_and_v2_events_is_ingested_completely(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    kafka_client: str,
) -> None:
    rng = random.Random(run_seed("mixed schema versions"))
    topic = new_topic(partitions=4)
    v1, v2 = EventFactory(rng, pool=30, write_version=1), EventFactory(rng, pool=30)
    assert (v1.codec.write_version, v2.codec.write_version) == (1, 2)
    messages = [v1.make() for _ in range(400)] + [v2.make() for _ in range(400)]
    codec = EventCodec()
    for number in range(20):  # v2 events that use the new field
        event = make_event(legal_reference=f"DPA-2025-{number:03d} s.4")
        messages.append(
            Sent(
                event.subject.id.encode(),
                codec.encode(event.to_avro()),
                "valid",
                str(event.event_id),
                (event.subject.type.value, event.subject.id),
                2,
            )
        )
    for _ in range(10):  # v1 events from another Avro implementation
        event = make_event()
        record = {k: v for k, v in event.to_avro().items() if k != "legal_reference"}
        messages.append(
            Sent(
                event.subject.id.encode(),
                _written_by_the_avro_package(record),
                "valid",
                str(event.event_id),
                (event.subject.type.value, event.subject.id),
                1,
            )
        )
    rng.shuffle(messages)
    positions = send(kafka_bootstrap, topic, messages)

    stats = _run(kafka_bootstrap, topic, ledger_path, key_store, reference, 100, kafka_client)
    assert (stats.accepted, stats.duplicates, stats.quarantined) == (len(messages), 0, 0)
    contents = assert_ledger_holds_exactly(
        ledger_path, topic, messages, positions, bootstrap=kafka_bootstrap
    )
    for message in messages:
        assert message.event_id is not None and message.value is not None
        assert contents.schema_versions[message.event_id] == message.schema_version
        version, record = codec.decode(message.value)
        assert version == message.schema_version
        if version == 1:  # read with v2, a v1 event gets v2's default
            assert record["legal_reference"] is None
    assert sum(v == 1 for v in contents.schema_versions.values()) == 410
    # the ledger keeps what v2 adds (and its hash covers it); v1 rows hold the default
    with Ledger(ledger_path, read_only=True) as ledger:
        stored = dict(
            ledger.con.execute(
                "SELECT event_id::VARCHAR, legal_reference FROM disclosures"
            ).fetchall()
        )
    for message in messages:
        assert message.value is not None
        assert stored[str(message.event_id)] == codec.decode(message.value)[1]["legal_reference"]
    assert sum(1 for value in stored.values() if value and value.startswith("DPA-2025-")) == 20
