"""``erase-subject`` states what it cannot reach: the source topic's retention as the
broker states it (a real broker, a topic whose retention.ms is set), the dead-letter
topic's copies, and the quarantine under the deployment key; the request log keeps that
statement with the erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from ledger.erasure import journal
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from reports.request_log import RequestLog, default_request_log
from schemas.codec import EventCodec
from tests.unit.events import make_event

pytestmark = pytest.mark.integration

THREE_DAYS_MS = 3 * 86_400_000
ONE_DAY_MS = 86_400_000
# an hour ago: the source topic keeps the subject's events three days on from then
INGESTED_AT = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(hours=1)


def _topic_with_retention(bootstrap: str, name: str, retention_ms: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(name, 1, 1, topic_configs={"retention.ms": str(retention_ms)})]
        )
    finally:
        admin.close()


def test_erase_subject_states_the_source_topics_retention_as_the_broker_does(
    kafka_bootstrap: str,
    tmp_path: Path,
    reference: ReferenceData,
    subject_secret_env: str,
    capsys: pytest.CaptureFixture[str],
    kafka_client: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_CLIENT", kafka_client)  # its admin client
    topic = f"test.disclosures.reach.{uuid.uuid4().hex[:8]}"
    dead_letters = f"{topic}.dlq"
    _topic_with_retention(kafka_bootstrap, topic, THREE_DAYS_MS)
    _topic_with_retention(kafka_bootstrap, dead_letters, ONE_DAY_MS)
    ledger_path = tmp_path / "ledger.duckdb"
    codec = EventCodec()
    at_ms = int(INGESTED_AT.replace(tzinfo=UTC).timestamp() * 1000)
    with (
        Ledger(ledger_path) as ledger,
        SubjectKeyStore(
            ledger_path.with_name(ledger_path.name + ".keys.sqlite"), subject_secret_env.encode()
        ) as keys,
    ):
        # the ledger's rows name the topic; the broker is asked about it
        Ingestor(ledger, keys, reference, clock_ms=lambda: at_ms).ingest(
            [
                SourceMessage(
                    topic,
                    0,
                    0,
                    b"member-31",
                    codec.encode(
                        make_event(subject={"id": "member-31", "type": "member"}).to_avro()
                    ),
                ),
                SourceMessage(topic, 0, 1, b"nobody-known", b"\xc3\x01broken"),
            ]
        )

    code = main(
        [
            "erase-subject",
            "--ledger",
            str(ledger_path),
            "--subject-type",
            "member",
            "--subject-id",
            "member-31",
            "--actor",
            "dpo",
            "--approved-by",
            "cpo",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--dead-letter-topic",
            dead_letters,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    print(out)
    kept_until = f"{INGESTED_AT + timedelta(milliseconds=THREE_DAYS_MS):%Y-%m-%dT%H:%M:%SZ}"
    assert f"source topic {topic}" in out
    assert f"retention.ms {THREE_DAYS_MS} (3 day(s))" in out
    assert f"at least until {kept_until}, possibly later" in out
    assert f"dead-letter topic {dead_letters} (retention.ms {ONE_DAY_MS} (1 day(s))" in out
    assert "1 message(s) of unknown subject" in out  # in the quarantine
    assert "1 of unknown subject quarantined within the topic's retention" in out  # copies
    assert "member-31" not in out

    with Ledger(ledger_path, read_only=True) as ledger:
        (entry,) = journal(ledger)
    with RequestLog(default_request_log(ledger_path), subject_secret_env.encode()) as log:
        kept = log.erasure_statement(entry.erasure_id)
    assert kept is not None
    (source,) = kept["source_topics"]
    assert source["topic"] == topic
    assert source["retention"]["retention_ms"] == THREE_DAYS_MS
    assert source["retention"]["asked"] is True
    assert source["kept_at_least_until"] == kept_until
    assert kept["dead_letter_topic"]["retention"]["retention_ms"] == ONE_DAY_MS
    assert kept["quarantine"]["sealed_under_deployment_key"] == 1
    assert kept["lines"] == [line for line in out.splitlines() if line in kept["lines"]]


def test_an_unreachable_broker_is_said_not_guessed(
    tmp_path: Path,
    reference: ReferenceData,
    subject_secret_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ledger_path = tmp_path / "ledger.duckdb"
    codec = EventCodec()
    with (
        Ledger(ledger_path) as ledger,
        SubjectKeyStore(
            ledger_path.with_name(ledger_path.name + ".keys.sqlite"), subject_secret_env.encode()
        ) as keys,
    ):
        Ingestor(ledger, keys, reference).ingest(
            [SourceMessage("t.reach", 0, 0, b"member-32", codec.encode(make_event().to_avro()))]
        )
    argv = ["erase-subject", "--ledger", str(ledger_path), "--subject-type", "member"]
    argv += ["--approved-by", "cpo"]
    code = main([*argv, "--subject-id", "member-1", "--bootstrap-servers", "127.0.0.1:1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "source topic t.reach" in out
    assert "the broker could not be asked (broker 127.0.0.1:1 unreachable" in out
    assert "kafka-configs.sh --describe" in out
