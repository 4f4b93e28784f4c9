"""Decode worker processes (consumers/decoding.py): what the consumer gets from a worker is
what it would have decoded itself, batches come back in the order sent, and a worker that
dies or a commit that fails never lets a later batch into the ledger."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from consumers.consumer import ConsumeStats, _BatchCollector, _Commits, ingest_workers
from consumers.decoding import DECODED, DecodePool, DecodeWorkerError, decode_batch
from consumers.errors import ConsumeError
from consumers.pipeline import Ingestor, SourceMessage
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import DISCLOSURE_COLUMNS, Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from schemas.watermark import Watermark, WatermarkCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()


def _values(n: int, tag: str) -> list[bytes | None]:
    return [
        CODEC.encode(make_event(subject={"id": f"{tag}-{i}", "type": "member"}).to_avro())
        for i in range(n)
    ]


def _mixed() -> list[bytes | None]:
    """Events, a poison message, no value, a reference violation and a watermark."""
    watermark = WatermarkCodec().encode(
        Watermark(
            source="svc",
            watermark_at_ms=1_700_000_000_000,
            sent_at_ms=1_700_000_000_000,
            producer_version="1",
        )
    )
    unknown = CODEC.encode(make_event(data_categories=["user.not_a_category"]).to_avro())
    return [*_values(3, "m"), b"\xc3\x01garbage", None, unknown, watermark, *_values(2, "n")]


def _messages(start: int, values: list[bytes | None]) -> list[SourceMessage]:
    return [SourceMessage(TOPIC, 0, start + i, b"k", v) for i, v in enumerate(values)]


def test_decoded_columns_have_the_ledgers_types() -> None:
    for field in DECODED:
        if field.name in DISCLOSURE_COLUMNS.names:
            assert DISCLOSURE_COLUMNS.field(field.name).type == field.type, field.name


def test_a_worker_decodes_exactly_what_the_consumer_would_in_the_order_sent(
    reference: ReferenceData,
) -> None:
    batches = [_mixed(), _values(50, "a"), _mixed()[::-1]]
    pool = DecodePool(2, reference, CODEC)
    try:
        for values in batches:
            pool.submit(values)
        got = [pool.result() for _ in batches]
    finally:
        pool.close()
    assert got == [decode_batch(CODEC, reference, values) for values in batches]


def test_a_worker_that_dies_is_an_error_naming_the_setting(reference: ReferenceData) -> None:
    pool = DecodePool(1, reference, CODEC)
    try:
        os.kill(pool.pids[0], signal.SIGKILL)
        with pytest.raises(DecodeWorkerError, match="DISCLOSURE_LEDGER_INGEST_WORKERS=0"):
            pool.submit(_values(5, "x"))
            pool.result()
    finally:
        pool.close()


def test_ingesting_through_workers_gives_the_same_ledger_as_in_process(
    tmp_path: Path, reference: ReferenceData
) -> None:
    second = _values(30, "b")
    batches = [_mixed(), second, [*second[:2], *_mixed(), second[2]]]  # duplicates too
    tables = {}
    for workers in (0, 2):
        folder = tmp_path / str(workers)
        folder.mkdir()
        with (
            Ledger(folder / "ledger.duckdb") as ledger,
            SubjectKeyStore(folder / "keys.sqlite", b"s" * 32) as keys,
        ):
            ingestor = Ingestor(ledger, keys, reference, clock_ms=lambda: 1_767_225_600_000)
            pool = DecodePool(workers, reference, CODEC) if workers else None
            stats = ConsumeStats()
            commits = _Commits(ingestor, stats, None, _BatchCollector(), pool)
            offset = 0
            try:
                for values in batches:
                    commits.submit(_messages(offset, values))
                    offset += len(values)
                commits.wait()
            finally:
                commits.close()
                commits.collector.close()
                if pool is not None:
                    pool.close()
            assert verify_ledger(ledger).ok
            assert ledger.stored_offsets(TOPIC) == {0: offset}
            tables[workers] = {
                name: ledger.con.execute(
                    f"SELECT * EXCLUDE ({skip}) FROM {name} ORDER BY 1, 2, 3"
                ).fetchall()
                for name, skip in (
                    # context and the hashes over it hold a random nonce; pseudonyms and
                    # sealed bytes come from each key store's random keys
                    (
                        "disclosures",
                        "context, leaf_hash, chain_hash, subject_pseudonym, subject_key",
                    ),
                    ("quarantine", "message_key, message_value, sealed_with"),
                    ("duplicates", "recorded_at"),
                    ("watermarks", "recorded_at"),
                )
            }
            counts = (stats.accepted, stats.duplicates, stats.quarantined, stats.watermarks)
            tables[workers]["counts"] = [counts]
    assert tables[2] == tables[0]
    assert tables[0]["counts"] == [(40, 3, 6, 2)]


def test_after_a_failed_commit_no_batch_still_decoding_reaches_the_ledger(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(ledger, key_store, reference)
        original = ingestor.commit
        calls = {"n": 0}

        def second_fails(prepared):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("disk full")
            return original(prepared)

        ingestor.commit = second_fails  # type: ignore[method-assign]
        pool = DecodePool(2, reference, CODEC)
        commits = _Commits(ingestor, ConsumeStats(), None, _BatchCollector(), pool)
        try:
            with pytest.raises(RuntimeError, match="disk full"):
                for n in range(6):
                    commits.submit(_messages(n * 10, _values(10, f"c{n}")))
                commits.wait()
        finally:
            commits.close()  # as consume's finally does: must not commit the batches after
            commits.collector.close()
            pool.close()
        assert ledger.stored_offsets(TOPIC) == {0: 10}
        assert ledger.con.execute("SELECT count(*) FROM disclosures").fetchone() == (10,)


def test_a_negative_number_of_workers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_INGEST_WORKERS", "-1")
    with pytest.raises(ConsumeError, match="DISCLOSURE_LEDGER_INGEST_WORKERS"):
        ingest_workers()
    monkeypatch.setenv("DISCLOSURE_LEDGER_INGEST_WORKERS", "0")
    assert ingest_workers() == 0
