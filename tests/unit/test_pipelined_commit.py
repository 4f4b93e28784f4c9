"""Prepare batch N+1 while batch N commits: what the consumer's commit thread relies on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from consumers.pipeline import Ingestor, SourceMessage
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()


def _messages(start: int, values: list[bytes], partition: int = 0) -> list[SourceMessage]:
    return [SourceMessage(TOPIC, partition, start + i, b"k", v) for i, v in enumerate(values)]


def _values(n: int, tag: str) -> list[bytes]:
    return [
        CODEC.encode(make_event(subject={"id": f"{tag}-{i}", "type": "member"}).to_avro())
        for i in range(n)
    ]


def _seqs(ledger: Ledger) -> list[int]:
    return [
        int(r[0]) for r in ledger.con.execute("SELECT seq FROM disclosures ORDER BY seq").fetchall()
    ]


def _ingestor(ledger: Ledger, keys: SubjectKeyStore, reference: ReferenceData) -> Ingestor:
    return Ingestor(ledger, keys, reference, clock_ms=lambda: 1_767_225_600_000)


def test_a_duplicate_of_the_batch_still_committing_is_recorded_as_a_duplicate(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    first = _values(3, "a")
    with Ledger(ledger_path) as ledger:
        ingestor = _ingestor(ledger, key_store, reference)
        batch_a = ingestor.prepare(_messages(0, first))
        # B is prepared before A commits, and repeats A's second event
        batch_b = ingestor.prepare(_messages(3, [first[1], *_values(2, "b")]))
        assert ingestor.commit(batch_a).accepted == 3
        stats_b = ingestor.commit(batch_b)
        assert (stats_b.accepted, stats_b.duplicates) == (2, 1)
        assert ledger.con.execute("SELECT count(*) FROM disclosures").fetchone() == (5,)
        assert ledger.con.execute(
            "SELECT kafka_offset, original_chain_id, original_seq FROM duplicates"
        ).fetchall() == [(3, f"{TOPIC}/0", 2)]
        assert _seqs(ledger) == [1, 2, 3, 4, 5]
        assert ledger.stored_offsets(TOPIC) == {0: 6}
        assert verify_ledger(ledger).ok


def test_commit_on_another_thread_while_the_next_batch_is_prepared(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    """The consumer's pattern: the prepare of N+1 reads the ledger while N commits."""
    with Ledger(ledger_path) as ledger, ThreadPoolExecutor(1) as pool:
        ingestor = _ingestor(ledger, key_store, reference)
        in_flight = None
        duplicate = _values(1, "dup")
        for n in range(6):
            prepared = ingestor.prepare(
                _messages(n // 2 * 40, _values(40, f"p{n}"), partition=n % 2)
                + _messages(n, duplicate, partition=2)
            )
            if in_flight is not None:
                in_flight.result()
            in_flight = pool.submit(ingestor.commit, prepared)
        assert in_flight is not None
        in_flight.result()
        assert ledger.con.execute("SELECT count(*) FROM disclosures").fetchone() == (241,)
        assert ledger.con.execute("SELECT count(*) FROM duplicates").fetchone() == (5,)
        assert ledger.con.execute(
            "SELECT count(DISTINCT reference_version), count(*) FROM ref_purposes"
        ).fetchone() == (1, len(reference.purposes))
        assert verify_ledger(ledger).ok


def test_a_failed_commit_rolls_back_the_heads_and_the_batch_can_be_retried(
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Ledger(ledger_path) as ledger:
        ingestor = _ingestor(ledger, key_store, reference)
        batch_a = ingestor.prepare(_messages(0, _values(3, "a")))
        original = ledger.append_batch

        def failing(batch: object) -> None:
            raise duckdb.IOException("disk full (injected)")

        monkeypatch.setattr(ledger, "append_batch", failing)
        with pytest.raises(duckdb.IOException):
            ingestor.commit(batch_a)
        monkeypatch.setattr(ledger, "append_batch", original)
        # the same messages again, as a restarted poll would bring them
        retried = ingestor.commit(ingestor.prepare(_messages(0, _values(3, "a"))))
        assert retried.accepted == 3
        assert _seqs(ledger) == [1, 2, 3]
        # the reference version was in the failed transaction; the retry stored it
        assert ledger.con.execute(
            "SELECT count(DISTINCT reference_version), count(*) FROM ref_purposes"
        ).fetchone() == (1, len(reference.purposes))
        assert verify_ledger(ledger).ok


def test_a_restarted_consumer_does_not_store_the_reference_data_again(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    for run in range(3):
        with Ledger(ledger_path) as ledger:
            _ingestor(ledger, key_store, reference).ingest(
                _messages(run * 2, _values(2, f"r{run}"))
            )
    with Ledger(ledger_path, read_only=True) as ledger:
        for table, count in (
            ("ref_recipients", len(reference.recipients)),
            ("ref_purposes", len(reference.purposes)),
        ):
            assert ledger.con.execute(f"SELECT count(*) FROM {table}").fetchone() == (count,)
