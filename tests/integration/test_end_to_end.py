"""An event published to a real Kafka broker lands in the DuckDB ledger and the report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.consumer import consume
from consumers.pipeline import Ingestor
from ledger.chain import GENESIS, leaf_hash, link_hash
from ledger.pseudonyms import SubjectKeyStore
from ledger.quarantine import read_quarantine
from ledger.store import Ledger
from ledger.verify import verify_ledger
from producers.publisher import DisclosurePublisher
from reference import ReferenceData
from reports.ccpa import ccpa_json, ccpa_report
from tests.conftest import LedgerLocation
from tests.integration.sources import every_source_declares_all_published
from tests.unit.events import make_event

pytestmark = pytest.mark.integration


def _events() -> list:  # type: ignore[type-arg]
    at = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    return [
        make_event(occurred_at=at, subject={"id": "member-1", "type": "member"}),
        make_event(occurred_at=at, subject={"id": "member-2", "type": "member"}),
        make_event(
            occurred_at=at,
            subject={"id": "member-1", "type": "member"},
            recipient={"id": "hotjar", "category": "service_provider"},
            data_categories=["user.device.ip_address"],
            purpose="analytics.reporting",
            legal_basis="consent",
        ),
    ]


def test_published_events_land_in_the_ledger_and_the_report(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    kafka_client: str,
) -> None:
    topic = new_topic(partitions=2)
    events = _events()
    with DisclosurePublisher(kafka_bootstrap, topic) as publisher:
        acks = [publisher.send(event).get(timeout=30) for event in events]
        publisher.send(events[0]).get(timeout=30)  # a retry of the first event
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    poison_ack = producer.send(topic, key=b"x", value=b"not avro at all").get(timeout=30)
    producer.close()

    every_source_declares_all_published(kafka_bootstrap, topic, reference)
    with Ledger(ledger_location) as ledger:
        stats = consume(
            kafka_bootstrap,
            topic,
            Ingestor(ledger, key_store, reference),
            until_idle=2.0,
            client=kafka_client,
        )
        assert (stats.accepted, stats.duplicates, stats.quarantined) == (3, 1, 1)

        rows = ledger.con.execute(
            "SELECT event_id::VARCHAR, kafka_partition, kafka_offset, chain_id, seq, "
            "subject_pseudonym, recipient_id, ccpa_letters FROM disclosures ORDER BY chain_id, seq"
        ).fetchall()
        by_event = {row[0]: row for row in rows}
        for event, ack in zip(events, acks, strict=True):
            row = by_event[str(event.event_id)]
            assert (row[1], row[2]) == (ack.partition, ack.offset)
            assert row[3] == f"{topic}/{ack.partition}"
            assert row[5] == key_store.pseudonym("member", event.subject.id)
        # per chain: seq 1..n in offset order, each row linked to the previous
        chains: dict[str, list[tuple]] = {}  # type: ignore[type-arg]
        for row in rows:
            chains.setdefault(row[3], []).append(row)
        for chain_rows in chains.values():
            assert [r[4] for r in chain_rows] == list(range(1, len(chain_rows) + 1))
            assert [r[2] for r in chain_rows] == sorted(r[2] for r in chain_rows)
        verified = verify_ledger(ledger)
        assert verified.ok, verified.failures
        assert verified.rows == 3
        for chain, (length, head) in verified.chains.items():
            stored = ledger.con.execute(
                "SELECT chain_hash FROM disclosures WHERE chain_id = ? AND seq = ?",
                [chain, length],
            ).fetchone()
            assert stored is not None and bytes(stored[0]).hex() == head

        # the ledger's stored next offsets are the topic's end offsets: nothing left behind
        probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
        partitions = [TopicPartition(topic, p) for p in (0, 1)]
        end_offsets = {tp.partition: o for tp, o in probe.end_offsets(partitions).items()}
        probe.close()
        stored = ledger.stored_offsets(topic)
        assert {p: o for p, o in end_offsets.items() if o} == stored
        quarantined = [(q.partition, q.offset, q.value) for q in read_quarantine(ledger, key_store)]
        assert quarantined == [(poison_ack.partition, poison_ack.offset, b"not avro at all")]
        # in the ledger file itself the raw bytes (which name the person) are sealed
        (stored,) = ledger.con.execute("SELECT message_value FROM quarantine").fetchone() or ()
        assert b"not avro at all" not in bytes(stored)

        report = ccpa_json(ccpa_report(ledger, date(2026, 11, 1)))
    assert report["sold_or_shared"]["none"] is True
    letters = {c["letter"]: c for c in report["business_purpose"]["categories"]}
    financial = sorted(reference.ccpa_letters("user.financial"))
    device = sorted(reference.ccpa_letters("user.device.ip_address"))
    for letter in set(financial) | set(device):
        expected_events = (2 if letter in financial else 0) + (1 if letter in device else 0)
        assert letters[letter]["events"] == expected_events
        expected_subjects = 2 if letter in financial else 1
        assert letters[letter]["distinct_subjects"] == expected_subjects
    assert "payment_provider" in letters[financial[0]]["recipient_categories"]


def test_chain_hashes_match_an_independent_recomputation(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
) -> None:
    topic = new_topic()
    with DisclosurePublisher(kafka_bootstrap, topic) as publisher:
        assert publisher.publish_many(_events()).ok
    with Ledger(ledger_path) as ledger:
        consume(kafka_bootstrap, topic, Ingestor(ledger, key_store, reference), until_idle=2.0)
        rows = (
            ledger.con.sql(
                "SELECT * EXCLUDE (occurred_at, ingested_at, event_id), "
                "event_id::VARCHAR AS event_id, "
                "epoch_ms(occurred_at) AS occurred_at_ms, epoch_ms(ingested_at) AS ingested_at_ms "
                "FROM disclosures ORDER BY seq"
            )
            .to_arrow_table()
            .to_pylist()
        )
    previous = GENESIS
    for row in rows:
        assert leaf_hash(row) == row["leaf_hash"]
        previous = link_hash(previous, row["leaf_hash"])
        assert previous == row["chain_hash"]
