"""One event re-sent on two partitions owned by two instances of one lake: appended once,
the other recorded as its duplicate, whichever order the two batches commit in
(ledger/event_claims.py). Real ingest pipeline, real DuckLake on PostgreSQL."""

from __future__ import annotations

import threading

import pytest

import ledger.event_claims
import ledger.store
from consumers.pipeline import Ingestor, SourceMessage
from ledger.event_claims import EventClaimedElsewhere
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET, LedgerLocation
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
pytestmark = pytest.mark.parametrize("ledger_backend", ["ducklake"], indirect=True)


def _message(value: bytes, partition: int, offset: int) -> SourceMessage:
    return SourceMessage(TOPIC, partition, offset, b"key", value)


def _ingestor(ledger: Ledger, keys: SubjectKeyStore, reference: ReferenceData) -> Ingestor:
    return Ingestor(ledger, keys, reference, clock_ms=lambda: 1_767_225_600_000)


def _where(ledger: Ledger, event_id: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(the rows of the event: (chain, offset); its duplicates: (chain they point at, offset))"""
    rows = ledger.con.execute(
        "SELECT chain_id, kafka_offset FROM disclosures WHERE event_id = ?", [event_id]
    ).fetchall()
    duplicates = ledger.con.execute(
        "SELECT original_chain_id, kafka_offset FROM duplicates WHERE event_id = ?", [event_id]
    ).fetchall()
    return [(str(c), int(o)) for c, o in rows], [(str(c), int(o)) for c, o in duplicates]


def test_an_event_on_two_instances_partitions_is_appended_once(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    """A claims the event first; B, preparing before A commits, waits for A's row and
    records its own message as a duplicate of it."""
    event = make_event()
    value = CODEC.encode(event.to_avro())
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        ingest_a = _ingestor(a, key_store, reference)
        b.claim_partitions(TOPIC, [1])
        prepared_a = ingest_a.prepare([_message(value, 0, 0)])  # A's claim commits first
        done_b: list[bool] = []

        def instance_b() -> None:  # its own thread, with its own connection to the key store
            with SubjectKeyStore(key_store.path, TEST_SECRET) as keys:
                ingest_b = _ingestor(b, keys, reference)
                ingest_b.commit(ingest_b.prepare([_message(value, 1, 0)]))
                done_b.append(True)

        waiting = threading.Thread(target=instance_b)
        waiting.start()  # B's claim is second: B waits for the event to reach the lake
        waiting.join(1.0)
        assert waiting.is_alive()
        ingest_a.commit(prepared_a)
        waiting.join(30)
        assert done_b, "B's batch was not appended after A's commit"
        assert _where(a, event.event_id) == ([(f"{TOPIC}/0", 0)], [(f"{TOPIC}/0", 0)])
        assert b.stored_offsets(TOPIC) == {0: 1, 1: 1}
        assert verify_ledger(b).ok


def test_a_claim_of_an_instance_that_lost_its_partition_no_longer_wins(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A claims the event first and is then fenced (its partition moves to C) before its
    batch commits: B does not wait for it, appends the event, and C, reading A's message
    again, records it as a duplicate of B's row."""
    event = make_event()
    value = CODEC.encode(event.to_avro())
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b, Ledger(ledger_location) as c:
        ingest_a, ingest_b = _ingestor(a, key_store, reference), _ingestor(b, key_store, reference)
        b.claim_partitions(TOPIC, [1])
        held_back = ingest_a.prepare([_message(value, 0, 0)])  # A's claim wins, for now
        c.claim_partitions(TOPIC, [0])  # the rebalance: A's claim dies with its epoch
        monkeypatch.setattr(ledger.event_claims, "WAIT_SECONDS", 0.0)  # B must not wait
        ingest_b.ingest([_message(value, 1, 0)])
        with pytest.raises(ledger.store.FencedError):
            ingest_a.commit(held_back)
        _ingestor(c, key_store, reference).ingest([_message(value, 0, 0)])
        assert _where(c, event.event_id) == ([(f"{TOPIC}/1", 0)], [(f"{TOPIC}/1", 0)])
        assert verify_ledger(c).ok


def test_a_batch_waiting_too_long_for_another_instance_is_dropped(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = make_event()
    value = CODEC.encode(event.to_avro())
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        ingest_a, ingest_b = _ingestor(a, key_store, reference), _ingestor(b, key_store, reference)
        b.claim_partitions(TOPIC, [1])
        ingest_a.prepare([_message(value, 0, 0)])  # claimed, never committed, A still owner
        monkeypatch.setattr(ledger.event_claims, "WAIT_SECONDS", 0.2)
        with pytest.raises(EventClaimedElsewhere, match="claimed first by the owner of"):
            ingest_b.prepare([_message(value, 1, 0)])
        assert _where(b, event.event_id) == ([], [])
