"""Two writers of one lake (two `consume` processes, or a service that lost its partition):
the one that claimed a chain last appends; the other's batch, even one prepared before the
claim and committed after it, is refused whole, and the chain stays gapless and verifiable.
Real ingest pipeline, real DuckLake on the session's PostgreSQL server."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

import ledger.store
from consumers.pipeline import Ingestor
from ledger.fence import FencedError, owner_of
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from tests.conftest import LedgerLocation
from tests.lake.support import TOPIC, messages

pytestmark = pytest.mark.parametrize("ledger_backend", ["ducklake"], indirect=True)


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
        ingest_a.ingest(messages(0, 3))
        held_back = ingest_a.prepare(messages(3, 2))  # A's next batch, its commit held back
        # the partition moves to B: B claims the chain, reads its head and offset, appends
        ingest_b = _ingestor(b, key_store, reference)
        b.claim_partitions(TOPIC, [0])
        assert b.stored_offsets(TOPIC) == {0: 3}
        ingest_b.ingest(messages(3, 2))
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
        ingest_a.ingest(messages(0, 2, partition=0) + messages(0, 2, partition=1))
        b.claim_partitions(TOPIC, [1])  # only partition 1 moves
        with pytest.raises(FencedError):
            ingest_a.ingest(messages(2, 1, partition=1))
        assert _chain(b, 1) == [(1, 0), (2, 1)]
        # A still owns partition 0, in a fresh ingestor (a restarted consumer): it appends
        _ingestor(a, key_store, reference).ingest(messages(2, 1, partition=0))
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
        ingest_a.ingest(messages(0, 2))
        real_hold = ledger.store.hold

        def hold_then_rebalance(con: object, chain: str, epoch: int) -> None:
            real_hold(con, chain, epoch)  # type: ignore[arg-type]
            b.claim_partitions(TOPIC, [0])  # B's claim commits while A's append is open

        monkeypatch.setattr(ledger.store, "hold", hold_then_rebalance)
        with pytest.raises(FencedError, match="refused"):
            ingest_a.ingest(messages(2, 2))
        monkeypatch.undo()
        assert _chain(b) == [(1, 0), (2, 1)]
        assert b.stored_offsets(TOPIC) == {0: 2}
        _ingestor(b, key_store, reference).ingest(messages(2, 2))
        assert _chain(b) == [(1, 0), (2, 1), (3, 2), (4, 3)]
        assert verify_ledger(b).ok


def _open_across(
    monkeypatch: pytest.MonkeyPatch, writer: Ledger, meanwhile: Callable[[], None]
) -> list[int]:
    """Run ``meanwhile`` (another writer's whole commit) inside ``writer``'s next append's
    open transaction, once; the list counts that append's attempts."""
    real_once = Ledger._append_once
    attempts: list[int] = []
    fired: list[int] = []

    def once(self: Ledger, *args: Any) -> None:
        if self is not writer:
            real_once(self, *args)
            return
        attempts.append(1)
        real_hold = ledger.store.hold

        def hold_then_other_commit(con: object, chain: str, epoch: int) -> None:
            real_hold(con, chain, epoch)  # type: ignore[arg-type]
            if len(attempts) == 1 and not fired:
                fired.append(1)
                meanwhile()

        monkeypatch.setattr(ledger.store, "hold", hold_then_other_commit)
        try:
            real_once(self, *args)
        finally:
            monkeypatch.setattr(ledger.store, "hold", real_hold)

    monkeypatch.setattr(Ledger, "_append_once", once)
    return attempts


def test_writers_of_other_chains_commit_across_each_other_without_conflict(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two services own different partitions: a commit of one landing while the other's
    append is open neither refuses nor delays it (offsets and heads are per-chain rows)."""
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        ingest_a, ingest_b = _ingestor(a, key_store, reference), _ingestor(b, key_store, reference)
        ingest_a.ingest(messages(0, 2, partition=0))
        ingest_b.ingest(messages(0, 2, partition=1))
        attempts = _open_across(monkeypatch, a, lambda: ingest_b.ingest(messages(2, 3, 1)))
        ingest_a.ingest(messages(2, 2, partition=0))
        monkeypatch.undo()
        assert attempts == [1]  # A's commit went through at the first attempt
        assert _chain(a, 0) == [(1, 0), (2, 1), (3, 2), (4, 3)]
        assert _chain(a, 1) == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
        assert a.stored_offsets(TOPIC) == b.stored_offsets(TOPIC) == {0: 4, 1: 5}
        heads = a.chain_heads([f"{TOPIC}/0", f"{TOPIC}/1"])
        assert {c: h.seq for c, h in heads.items()} == {f"{TOPIC}/0": 4, f"{TOPIC}/1": 5}
        assert verify_ledger(a).ok


def test_two_writers_storing_the_reference_at_once_store_it_once(
    ledger_location: LedgerLocation,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two services start together on a new lake: each one's first batch carries the
    reference data. The second commit conflicts on the reference's fence, is tried again,
    and finds the version stored: one copy, both batches kept."""
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        # the lake holds an older version already (its tables exist: no DDL to conflict on)
        older = dataclasses.replace(reference, version="2025.01.0+older")
        _ingestor(a, key_store, older).ingest(messages(0, 1, partition=2))
        ingest_a, ingest_b = _ingestor(a, key_store, reference), _ingestor(b, key_store, reference)
        attempts = _open_across(monkeypatch, a, lambda: ingest_b.ingest(messages(0, 1, 1)))
        ingest_a.ingest(messages(0, 1, partition=0))
        monkeypatch.undo()
        assert len(attempts) == 2  # refused once, then appended without the reference
        [(copies,)] = a.con.execute(
            "SELECT count(*) FROM ref_categories WHERE reference_version = ?", [reference.version]
        ).fetchall()
        assert copies == len(reference.to_arrow_tables()["ref_categories"])
        assert _chain(a, 0) == [(1, 0)] and _chain(a, 1) == [(1, 0)]
        assert verify_ledger(a).ok
