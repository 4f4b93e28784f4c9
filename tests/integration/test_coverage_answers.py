"""Answers that know their limits, through the command line over a real broker and ledger:
a report refused (exit 3) while a source has not declared what it published, written
marked provisional with --allow-incomplete, complete once every expected source sent its
watermark; and a request to know given again after a late event changed it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from disclosure_ledger.cli import main
from producers.publisher import DisclosurePublisher, WatermarkSource
from reference import ReferenceData
from schemas.model import DisclosureEvent
from tests.unit.events import make_event

pytestmark = pytest.mark.integration

SUBJECT = "member-0000042"


@pytest.fixture
def run(
    kafka_bootstrap: str,
    subject_secret_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str, str]]:
    """The CLI as a user runs it: exit status, standard output, standard error."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    return invoke


def _event(source: str, at: datetime) -> DisclosureEvent:
    return make_event(
        occurred_at=at,
        subject={"id": SUBJECT, "type": "member"},
        producer={"service": source, "version": "1.0.0"},
    )


def _publish(bootstrap: str, topic: str, source: str, at: datetime, *, watermark: bool) -> None:
    with DisclosurePublisher(
        bootstrap,
        topic,
        source=WatermarkSource(source, "1.0.0") if watermark else None,
        watermark_every=None,
    ) as publisher:
        publisher.publish(_event(source, at))


def _as_of_and_occurred() -> tuple[date, datetime]:
    """Yesterday as the report date, and a disclosure two hours before its window ends."""
    as_of = (datetime.now(UTC) - timedelta(days=1)).date()
    return as_of, datetime.combine(as_of, datetime.min.time(), UTC) - timedelta(hours=2)


def _consume(ledger_path: Path, topic: str) -> tuple[str, ...]:
    return ("consume", "--ledger", str(ledger_path), "--topic", topic, "--until-idle", "1",
            "--no-checkpoints")  # fmt: skip


def test_a_report_is_refused_until_every_source_declared_what_it_published(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    reference: ReferenceData,
    run: Callable[..., tuple[int, str, str]],
) -> None:
    topic = new_topic(partitions=2)
    as_of, occurred = _as_of_and_occurred()
    sources = [s.source for s in reference.sources]
    stalled, others = sources[0], sources[1:]
    for source in others:
        _publish(kafka_bootstrap, topic, source, occurred, watermark=True)
    _publish(kafka_bootstrap, topic, stalled, occurred, watermark=False)  # declares nothing
    consume = _consume(ledger_path, topic)
    assert run(*consume)[0] == 0

    report = ("report", "ccpa", "--ledger", str(ledger_path), "--as-of", as_of.isoformat())
    status, out, err = run(*report)
    assert status == 3, err
    assert out == ""
    assert stalled in err and "--allow-incomplete" in err

    status, out, _ = run(*report, "--allow-incomplete", "--format", "json")
    assert status == 0
    coverage = json.loads(out)["coverage"]
    assert coverage["complete"] is False
    assert stalled in [h["name"] for h in coverage["holding_back"]]
    status, out, _ = run(*report, "--allow-incomplete")
    assert status == 0 and "PROVISIONAL" in out

    _publish(kafka_bootstrap, topic, stalled, occurred, watermark=True)  # it catches up
    assert run(*consume)[0] == 0
    status, out, err = run(*report, "--format", "json")
    assert status == 0, err
    assert json.loads(out)["coverage"]["complete"] is True
    status, out, _ = run("status", "--ledger", str(ledger_path), "--format", "json")
    assert status == 0
    assert json.loads(out)["coverage"]["complete_through"] is not None


def test_a_late_event_marks_an_earlier_answer_for_reissue(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    reference: ReferenceData,
    run: Callable[..., tuple[int, str, str]],
) -> None:
    topic = new_topic(partitions=1)
    as_of, occurred = _as_of_and_occurred()
    for source in (s.source for s in reference.sources):
        _publish(kafka_bootstrap, topic, source, occurred, watermark=True)
    consume = _consume(ledger_path, topic)
    assert run(*consume)[0] == 0
    ask = ("report", "subject", "--ledger", str(ledger_path), "--as-of", as_of.isoformat())
    status, out, err = run(*ask, "--subject-id", SUBJECT, "--format", "json")
    assert status == 0, err
    answered = json.loads(out)
    year = str(datetime.now(UTC).year)
    requests = ("report", "requests", "--ledger", str(ledger_path), "--year", year)
    status, out, _ = run(*requests, "--format", "json")
    assert status == 0 and json.loads(out)["reissues_due"] == []

    # billing disclosed before its watermark, but the event reaches the topic only now
    late = _event("billing", occurred - timedelta(hours=1))
    with DisclosurePublisher(kafka_bootstrap, topic) as plain:
        plain.publish(late)
    assert run(*consume)[0] == 0
    status, out, _ = run(
        "query", "--ledger", str(ledger_path), "--format", "json",
        f"SELECT flags FROM disclosures WHERE event_id = '{late.event_id}'",
    )  # fmt: skip
    assert status == 0 and "late" in out

    status, out, _ = run(*requests, "--format", "json")
    assert status == 0
    (due,) = json.loads(out)["reissues_due"]
    assert due["request_id"] == answered["request"]["request_id"]
