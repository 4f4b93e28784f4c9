"""Two writers of one lake (two `consume` processes, or a service that lost its partition):
the one that claimed a chain last appends; the other's batch, even one prepared before the
claim and committed after it, is refused whole, and the chain stays gapless and verifiable.
Real ingest pipeline, real DuckLake on the session's PostgreSQL server."""

from __future__ import annotations

import pytest

import ledger.store
from consumers.pipeline import Ingestor, SourceMessage
from ledger.fence import FencedError, owner_of
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import LedgerLocation
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
pytestmark = pytest.mark.parametrize("ledger_backend", ["ducklake"], indirect=True)


def _messages(first: int, count: int, partition: int = 0) -> list[SourceMessage]:
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


def _ingestor(ledger: Ledger, keys: SubjectKeyStore, reference: ReferenceData) -> Ingestor:
    return Ingestor(ledger, keys, reference, clock_ms=lambda: 1_767_225_600_000)


def _chain(ledger: Ledger, partition: int = 0) -> list[tuple[int, int]]:
    rows = ledger.con.execute(
        "SELECT seq, kafka_offset FROM disclosures WHERE chain_id = ? ORDER BY seq",
        [f"{TOPIC}/{partition}"],
    ).fetchall()
    return [(int(s), int(o)) for s, o in rows]


def test_a_batch_prepared_before_a_claim_and_committed_after_it_is_refused(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        ingest_a = _ingestor(a, key_store, reference)
        ingest_a.ingest(_messages(0, 3))
        held_back = ingest_a.prepare(_messages(3, 2))  # A's next batch, its commit held back
        # the partition moves to B: B claims the chain, reads its head and offset, appends
        ingest_b = _ingestor(b, key_store, reference)
        b.claim_partitions(TOPIC, [0])
        assert b.stored_offsets(TOPIC) == {0: 3}
        ingest_b.ingest(_messages(3, 2))
        with pytest.raises(FencedError, match="claimed by"):
            ingest_a.commit(held_back)
        assert _chain(b) == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]  # nothing doubled
        assert b.stored_offsets(TOPIC) == {0: 5}
        owner = owner_of(b.con, f"{TOPIC}/0")
        assert owner is not None and owner[0] == 2
        assert verify_ledger(b).ok


def test_the_old_owner_cannot_append_after_the_claim_and_other_chains_go_on(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        ingest_a = _ingestor(a, key_store, reference)
        ingest_a.ingest(_messages(0, 2, partition=0) + _messages(0, 2, partition=1))
        b.claim_partitions(TOPIC, [1])  # only partition 1 moves
        with pytest.raises(FencedError):
            ingest_a.ingest(_messages(2, 1, partition=1))
        assert _chain(b, 1) == [(1, 0), (2, 1)]
        # A still owns partition 0, in a fresh ingestor (a restarted consumer): it appends
        _ingestor(a, key_store, reference).ingest(_messages(2, 1, partition=0))
        assert _chain(b, 0) == [(1, 0), (2, 1), (3, 2)]
        assert verify_ledger(b).ok


def test_a_claim_landing_while_the_append_is_open_makes_its_commit_fail(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        ingest_a = _ingestor(a, key_store, reference)
        ingest_a.ingest(_messages(0, 2))
        real_hold = ledger.store.hold

        def hold_then_rebalance(con: object, chain: str, epoch: int) -> None:
            real_hold(con, chain, epoch)  # type: ignore[arg-type]
            b.claim_partitions(TOPIC, [0])  # B's claim commits while A's append is open

        monkeypatch.setattr(ledger.store, "hold", hold_then_rebalance)
        with pytest.raises(FencedError, match="refused"):
            ingest_a.ingest(_messages(2, 2))
        monkeypatch.undo()
        assert _chain(b) == [(1, 0), (2, 1)]
        assert b.stored_offsets(TOPIC) == {0: 2}
        _ingestor(b, key_store, reference).ingest(_messages(2, 2))
        assert _chain(b) == [(1, 0), (2, 1), (3, 2), (4, 3)]
        assert verify_ledger(b).ok
