"""Producer watermarks through a real broker into a real ledger: coverage through them, a
stalled source and a missing partition holding it back (and ``status`` naming them), a
late event flagged, and ``publish`` sending a watermark only when told."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.consumer import consume
from consumers.pipeline import Ingestor
from disclosure_ledger.cli import main
from ledger.coverage import DEFAULT_ALLOWANCE, LATE_FLAG, ledger_coverage
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from producers.publisher import DisclosurePublisher, WatermarkSource
from reference import ReferenceData
from schemas.watermark import Watermark, WatermarkCodec, epoch_ms
from tests.unit.events import make_event

pytestmark = pytest.mark.integration

PARTITIONS = 3


def _consume(
    bootstrap: str, topic: str, ledger_path: Path, keys: SubjectKeyStore, ref: ReferenceData
) -> None:
    with Ledger(ledger_path) as ledger:
        consume(bootstrap, topic, Ingestor(ledger, keys, ref), until_idle=1.0)


def _publisher(
    bootstrap: str,
    topic: str,
    source: str,
    *,
    watermark_every: float | None = None,
    watermark_on_close: bool = True,
    client: str | None = None,
) -> DisclosurePublisher:
    return DisclosurePublisher(
        bootstrap,
        topic,
        client=client,
        source=WatermarkSource(source, "1.0.0"),
        watermark_every=watermark_every,
        watermark_on_close=watermark_on_close,
    )


def _event(source: str, at: datetime | None = None) -> object:
    return make_event(
        occurred_at=at or datetime.now(UTC) - timedelta(minutes=30),
        producer={"service": source, "version": "1.0.0"},
    )


def _watermarks_in_ledger(ledger_path: Path) -> list[tuple[str, int, datetime]]:
    with Ledger(ledger_path, read_only=True) as ledger:
        return [
            (str(s), int(p), at)
            for s, p, at in ledger.con.execute(
                "SELECT source, kafka_partition, watermark_at FROM watermarks ORDER BY ALL"
            ).fetchall()
        ]


def test_every_source_closing_its_publisher_makes_the_ledger_complete_through_them(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    began = datetime.now(UTC)
    for source in reference.sources:
        with _publisher(kafka_bootstrap, topic, source.source) as publisher:
            publisher.publish(_event(source.source))  # type: ignore[arg-type]
        # closing flushed, then sent a watermark to every partition
    ended = datetime.now(UTC)
    _consume(kafka_bootstrap, topic, ledger_path, key_store, reference)

    marks = _watermarks_in_ledger(ledger_path)
    assert {(s, p) for s, p, _ in marks} == {
        (s.source, p) for s in reference.sources for p in range(PARTITIONS)
    }
    with Ledger(ledger_path, read_only=True) as ledger:
        coverage = ledger_coverage(ledger.con)
        assert coverage.covers(began - DEFAULT_ALLOWANCE)
        assert not coverage.covers(ended)
        verified = verify_ledger(ledger)
        assert verified.ok, verified.failures  # the watermarks' offsets are accounted for
    assert main(["status", "--ledger", str(ledger_path), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["coverage"]["complete_through"] is not None
    assert all(s["missing_partitions"] == [] for s in status["sources"])
    assert {p["partition"] for p in status["partitions"]} == {
        f"{topic}/{p}" for p in range(PARTITIONS)
    }
    assert all(p["lag"] == 0 and p["complete_through"] for p in status["partitions"])


def test_the_library_sends_watermarks_periodically_to_every_partition(
    kafka_bootstrap: str, new_topic: Callable[..., str], kafka_client: str
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    codec = WatermarkCodec()
    reader = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    reader.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    seen: set[int] = set()
    with _publisher(
        kafka_bootstrap,
        topic,
        "billing",
        watermark_every=0.2,
        watermark_on_close=False,
        client=kafka_client,
    ) as publisher:
        publisher.publish(_event("billing"))  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while seen != set(range(PARTITIONS)) and time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=500).values():
                seen |= {r.partition for r in records if codec.recognises(r.value)}
    reader.close()
    assert seen == set(range(PARTITIONS))


def test_a_stalled_source_holds_the_coverage_back_and_status_names_it(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    stalled_at = datetime.now(UTC) - timedelta(days=2)
    for source in reference.sources:
        with _publisher(
            kafka_bootstrap, topic, source.source, watermark_on_close=False
        ) as publisher:
            publisher.publish(_event(source.source, stalled_at - timedelta(hours=1)))  # type: ignore[arg-type]
            # fraud stopped two days ago; the others are current
            publisher.send_watermark(stalled_at if source.source == "fraud" else None)
    _consume(kafka_bootstrap, topic, ledger_path, key_store, reference)

    with Ledger(ledger_path, read_only=True) as ledger:
        coverage = ledger_coverage(ledger.con)
    assert (
        coverage.complete_through
        == stalled_at.replace(microsecond=stalled_at.microsecond // 1000 * 1000) - DEFAULT_ALLOWANCE
    )
    assert [h.name for h in coverage.holding_back] == ["fraud"]
    assert main(["status", "--ledger", str(ledger_path)]) == 0
    out = capsys.readouterr().out
    assert "Held back by:\n  source fraud: watermark" in out
    assert "held back by: fraud" in out


def test_a_watermark_missing_on_one_partition_proves_nothing_and_status_names_it(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    for source in reference.sources:
        if source.source != "support":
            with _publisher(kafka_bootstrap, topic, source.source):
                pass  # closing sends the watermark
    # support's watermark, by hand, reaches partitions 0 and 1 only
    now = datetime.now(UTC)
    value = WatermarkCodec().encode(Watermark("support", epoch_ms(now), epoch_ms(now), "2.8.1"))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for partition in (0, 1):
        producer.send(topic, value=value, partition=partition).get(timeout=30)
    producer.close()
    _consume(kafka_bootstrap, topic, ledger_path, key_store, reference)

    with Ledger(ledger_path, read_only=True) as ledger:
        coverage = ledger_coverage(ledger.con)
    assert coverage.complete_through is None
    (held,) = coverage.holding_back
    assert held.name == "support" and f"{topic}/2" in held.detail
    assert main(["status", "--ledger", str(ledger_path), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    support = next(s for s in status["sources"] if s["source"] == "support")
    assert support["missing_partitions"] == [f"{topic}/2"] and support["through"] is None
    assert status["coverage"]["holding_back"][0]["name"] == "support"


def test_an_event_arriving_after_a_watermark_it_falls_under_is_accepted_and_flagged_late(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
) -> None:
    topic = new_topic(partitions=1)
    with _publisher(kafka_bootstrap, topic, "billing") as publisher:
        publisher.publish(_event("billing"))  # type: ignore[arg-type]
    _consume(kafka_bootstrap, topic, ledger_path, key_store, reference)
    late = _event("billing", datetime.now(UTC) - timedelta(hours=1))
    on_time = _event("billing", datetime.now(UTC) + timedelta(minutes=1))
    with DisclosurePublisher(kafka_bootstrap, topic) as plain:
        assert plain.publish_many([late, on_time]).ok  # type: ignore[list-item]
    _consume(kafka_bootstrap, topic, ledger_path, key_store, reference)

    with Ledger(ledger_path, read_only=True) as ledger:
        flags = dict(
            ledger.con.execute("SELECT event_id::VARCHAR, flags FROM disclosures").fetchall()
        )
        assert LATE_FLAG in flags[str(late.event_id)]  # type: ignore[attr-defined]
        assert LATE_FLAG not in flags[str(on_time.event_id)]  # type: ignore[attr-defined]
        assert sum(LATE_FLAG in f for f in flags.values()) == 1
        assert verify_ledger(ledger).ok


def _jsonl(tmp_path: Path, events: list[object]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(e.to_json_line() + "\n" for e in events))  # type: ignore[attr-defined]
    return path


def test_publish_sends_a_watermark_to_every_partition_only_when_told(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    kafka = ["--bootstrap-servers", kafka_bootstrap, "--topic", topic]
    backfill = _jsonl(tmp_path, [_event("billing", at - timedelta(days=1)) for _ in range(4)])
    # a partial backfill: no watermark
    assert main(["publish", str(backfill), *kafka]) == 0
    _consume(kafka_bootstrap, topic, ledger_path, key_store, reference)
    assert _watermarks_in_ledger(ledger_path) == []
    assert "watermark" not in capsys.readouterr().out

    whole = _jsonl(tmp_path, [_event("billing", at - timedelta(hours=1))])
    code = main(
        ["publish", str(whole), *kafka, "--source", "billing", "--watermark", at.isoformat()]
    )
    assert code == 0
    assert "watermark of billing at 2026-01-01T00:00:00+00:00 sent" in capsys.readouterr().out
    _consume(kafka_bootstrap, topic, ledger_path, key_store, reference)
    assert _watermarks_in_ledger(ledger_path) == [
        ("billing", p, at.replace(tzinfo=None)) for p in range(PARTITIONS)
    ]
    with Ledger(ledger_path, read_only=True) as ledger:
        assert verify_ledger(ledger).ok

    assert main(["publish", str(whole), *kafka, "--source", "billing"]) == 1
    assert "--source and --watermark go together" in capsys.readouterr().err
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert main(["publish", str(whole), *kafka, "--source", "x", "--watermark", future]) == 1
    assert "is in the future" in capsys.readouterr().err
