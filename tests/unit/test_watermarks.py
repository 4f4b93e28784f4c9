"""Producer watermarks without a broker: told apart from events by fingerprint, recorded
with the batch, every offset still accounted for, late events flagged, probes bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from ledger.coverage import LATE_FLAG, ledger_coverage
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import PROBES_KEPT_UNREACHED, Ledger
from ledger.verify import verify_ledger
from ledger.verify.offsets import verify_offsets
from ledger.verify.result import VerifyResult
from reference import ReferenceData
from schemas.codec import HEADER_LENGTH, MAGIC, EventCodec, shipped_schemas
from schemas.compat import check_record_types
from schemas.errors import DecodeError
from schemas.watermark import Watermark, WatermarkCodec, epoch_ms, shipped_watermark_schemas
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
WATERMARKS = WatermarkCodec()
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _watermark(source: str = "billing", at: datetime = T) -> bytes:
    return WATERMARKS.encode(Watermark(source, epoch_ms(at), epoch_ms(at) + 5, "4.12.3"))


def _event(at: datetime, service: str = "billing") -> bytes:
    producer = {"service": service, "version": "1"}
    return CODEC.encode(make_event(occurred_at=at, producer=producer).to_avro())


def _message(offset: int, value: bytes, partition: int = 0) -> SourceMessage:
    return SourceMessage(TOPIC, partition, offset, None, value)


# --------------------------------------------------------------------------- the wire


def test_a_watermark_is_told_apart_from_events_by_its_fingerprint() -> None:
    value = _watermark()
    assert value[:2] == MAGIC
    fingerprint = value[2:HEADER_LENGTH]
    assert fingerprint in WATERMARKS.fingerprints
    assert all(fingerprint not in v.fingerprints for v in shipped_schemas())
    event = _event(T)
    decoded = CODEC.decode_many([event, value, b"\xc3\x01" + fingerprint + b"\x00"])
    assert isinstance(decoded[0], tuple) and decoded[0][1]["event_id"]
    assert decoded[1] == Watermark("billing", epoch_ms(T), epoch_ms(T) + 5, "4.12.3")
    assert isinstance(decoded[2], DecodeError) and "producer watermark" in str(decoded[2])
    with pytest.raises(DecodeError, match="is a producer watermark, not a disclosure event"):
        CODEC.decode(value)


def test_schemas_check_covers_the_watermark_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = check_record_types()
    assert reports["producer_watermark"].ok and reports["producer_watermark"].versions == [1]
    assert main(["schemas", "check"]) == 0
    assert "producer_watermark (v1): compatible" in capsys.readouterr().out
    # a watermark schema that is an event schema under another file name cannot be told apart
    (tmp_path / "disclosure_event.v1.avsc").write_text(json.dumps(shipped_schemas()[0].schema_json))
    (tmp_path / "producer_watermark.v1.avsc").write_text(
        json.dumps(shipped_schemas()[0].schema_json)
    )
    clash = check_record_types(tmp_path)["producer_watermark"]
    assert not clash.ok and "same fingerprint as disclosure_event v1" in clash.problems[0]
    assert shipped_watermark_schemas()[0].source == "producer_watermark.v1.avsc"


# --------------------------------------------------------------------------- the consumer


def test_watermarks_are_recorded_and_later_events_before_them_flagged_late(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    before, after = T - timedelta(minutes=1), T + timedelta(minutes=1)
    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(ledger, key_store, reference)
        stats = ingestor.ingest(
            [
                _message(0, _event(before)),  # before the watermark in the topic: on time
                _message(1, _watermark()),
                _message(2, _event(before)),  # late: billing declared T on partition 0
                _message(3, _event(after)),  # after T: on time
                _message(4, _event(before, service="support")),  # another source: on time
                _message(0, _event(before), partition=1),  # no watermark on partition 1
            ]
        )
        assert (stats.accepted, stats.watermarks, stats.late) == (5, 1, 1)
        flags = dict(
            ledger.con.execute(
                "SELECT kafka_partition * 100 + kafka_offset, flags FROM disclosures"
            ).fetchall()
        )
        assert [o for o, f in sorted(flags.items()) if LATE_FLAG in f] == [2]
        assert ledger.con.execute(
            "SELECT topic, kafka_partition, kafka_offset, source, watermark_at FROM watermarks"
        ).fetchall() == [(TOPIC, 0, 1, "billing", T.replace(tzinfo=None))]
        assert ledger.stored_offsets(TOPIC) == {0: 5, 1: 1}
        result = verify_ledger(ledger)
        assert result.ok, result.failures
    with Ledger(ledger_path) as ledger:  # a restarted consumer remembers the watermark
        stats = Ingestor(ledger, key_store, reference).ingest([_message(5, _event(before))])
        assert stats.late == 1


def test_verify_counts_a_watermark_offset_once(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_path) as ledger:
        Ingestor(ledger, key_store, reference).ingest(
            [_message(0, _event(T)), _message(1, _watermark())]
        )
        # the detailed accounting (run when the counts disagree) knows watermarks too
        detailed = VerifyResult()
        verify_offsets(ledger.con, detailed, accepted_unique=False)
        assert detailed.failures == []
        ledger.con.execute("DELETE FROM watermarks")
        failures = verify_ledger(ledger).failures
        assert [f.kind for f in failures] == ["offset missing"]
        assert "offset 1 of" in failures[0].detail and "nor a watermark" in failures[0].detail


def test_the_reference_datas_sources_are_stored_and_expected(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_path) as ledger:
        Ingestor(ledger, key_store, reference).ingest(
            [_message(0, _event(T)), _message(1, _watermark())]
        )
        stored = ledger.con.execute(
            "SELECT source, flows FROM ref_sources WHERE reference_version = ?",
            [reference.version],
        ).fetchall()
        assert {s for s, _ in stored} == {s.source for s in reference.sources}
        coverage = ledger_coverage(ledger.con)
        assert coverage.complete_through is None  # only billing has declared anything
        held = {h.name for h in coverage.holding_back}
        assert held == {s.source for s in reference.sources} - {"billing"}


def test_probes_are_recorded_and_pruned_per_partition(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    base = epoch_ms(T)
    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(ledger, key_store, reference)
        ingestor.ingest([_message(i, _event(T)) for i in range(3)])  # position 3
        reached = [(TOPIC, 0, base + i, i % 4) for i in range(10)]  # end offsets 0..3
        unreached = [(TOPIC, 0, base + 1000 + i, 10 + i) for i in range(PROBES_KEPT_UNREACHED + 20)]
        ingestor.note_probes(reached + unreached)
        ingestor.commit(ingestor.prepare([]))  # idle: the probes alone
        kept = ledger.con.execute(
            "SELECT epoch_ms(probed_at) - ?, end_offset FROM partition_probes ORDER BY 1", [base]
        ).fetchall()
        assert [k for k in kept if k[1] <= 3] == [(9, 1)]  # the newest probe reached
        far = [k for k in kept if k[1] > 3]
        assert len(far) == PROBES_KEPT_UNREACHED
        assert far[0] == (1000, 10) and far[-1] == (1000 + PROBES_KEPT_UNREACHED + 19, 129)


def test_status_names_what_holds_the_coverage_back(
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(ledger, key_store, reference)
        ingestor.ingest(
            [_message(0, _event(T))]
            + [_message(1 + i, _watermark(s.source)) for i, s in enumerate(reference.sources)]
        )
        ingestor.note_probes([(TOPIC, 0, epoch_ms(T + timedelta(hours=1)), 3)])
        ingestor.commit(ingestor.prepare([]))
    assert main(["status", "--ledger", str(ledger_path)]) == 0
    out = capsys.readouterr().out
    # every source declared T; the partition's position (6) passed the probe an hour later
    assert "Coverage: the ledger is complete through 2026-03-01T11:55:00.000Z" in out
    assert "Held back by:\n  source billing: watermark 2026-03-01T12:00:00.000Z" in out
    assert f"{TOPIC}/0" in out and "2026-03-01T13:00:00.000Z" in out
    assert main(["status", "--ledger", str(ledger_path), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["coverage"]["complete_through"] == "2026-03-01T11:55:00.000Z"
    assert {s["source"] for s in status["sources"]} == {s.source for s in reference.sources}
    (partition,) = status["partitions"]
    assert partition["position"] == 1 + len(reference.sources) and partition["lag"] == 0


def test_a_failed_commit_forgets_its_watermarks_but_not_the_earlier_ones(
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    later = T + timedelta(hours=1)
    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(ledger, key_store, reference)
        ingestor.ingest([_message(0, _watermark(at=T))])

        def fail(batch: object) -> None:
            raise RuntimeError("disk full")

        with monkeypatch.context() as patch:
            patch.setattr(ledger, "append_batch", fail)
            with pytest.raises(RuntimeError):
                ingestor.ingest([_message(1, _watermark(at=later))])
            ingestor.note_probes([(TOPIC, 0, epoch_ms(T), 1)])
            with pytest.raises(RuntimeError):
                ingestor.commit(ingestor.prepare([]))  # the probes alone
        # offset 1 is read again; the event between T and the uncommitted watermark is on
        # time, one before T is late
        stats = ingestor.ingest(
            [_message(1, _event(T + timedelta(minutes=1))), _message(2, _event(T - timedelta(1)))]
        )
        assert (stats.accepted, stats.late) == (2, 1)
