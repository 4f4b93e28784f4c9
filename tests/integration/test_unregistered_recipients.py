"""An unregistered recipient through the real broker (issue 16, section 4): warned at
``publish``, refused with ``--strict`` (nothing of that input sent), caught by the producer
library's opt-in check, and recorded and flagged by the consumer, never quarantined."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from consumers.consumer import consume
from consumers.pipeline import Ingestor
from disclosure_ledger.cli import main
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from producers.errors import UnregisteredRecipientError
from producers.publisher import DisclosurePublisher
from reference import ReferenceData
from reports.conformance import conformance_report
from schemas.model import DisclosureEvent
from tests.integration.sources import every_source_declares_all_published
from tests.unit.events import make_event

pytestmark = pytest.mark.integration

ACME = {"id": "acme-analytics", "category": "service_provider"}


def _input(path: Path, *events: DisclosureEvent) -> Path:
    path.write_text("".join(e.to_json_line() + "\n" for e in events), encoding="utf-8")
    return path


def test_unregistered_recipient_warned_refused_recorded_and_flagged(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = new_topic()
    publish = ["publish", "--bootstrap-servers", kafka_bootstrap, "--topic", topic]

    # --strict: one unregistered line refuses the whole input; its good lines are not sent
    refused = [make_event(), make_event(recipient=ACME)]
    strict_input = _input(tmp_path / "strict.jsonl", *refused)
    assert main([*publish, "--strict", str(strict_input)]) == 1
    err = capsys.readouterr().err
    assert f"{strict_input}:2: recipient 'acme-analytics'" in err and "nothing sent" in err

    # without --strict: warned, naming the line, the id and the fix, and published
    warned = [make_event(), make_event(recipient=ACME)]
    lenient_input = _input(tmp_path / "lenient.jsonl", *warned)
    assert main([*publish, str(lenient_input)]) == 0
    out, err = capsys.readouterr()
    assert f"{lenient_input}:2: recipient 'acme-analytics'" in err and "recipients.yaml" in err
    assert "2 delivered" in out

    # the producer library, opt-in: strict refuses before sending, lenient warns and sends
    library_refused = make_event(recipient=ACME)
    library_sent = make_event(recipient=ACME)
    with DisclosurePublisher(kafka_bootstrap, topic, recipients=reference, strict=True) as p:
        with pytest.raises(UnregisteredRecipientError, match="acme-analytics"):
            p.publish(library_refused)
        result = p.publish_many([library_refused])
        assert result.delivered == 0 and "not sent" in result.undelivered[0].error
    with (
        caplog.at_level(logging.WARNING, logger="producers.recipient_check"),
        DisclosurePublisher(kafka_bootstrap, topic, recipients=reference) as p,
    ):
        assert p.publish_many([library_sent]).delivered == 1
    assert any("acme-analytics" in r.getMessage() for r in caplog.records)

    every_source_declares_all_published(kafka_bootstrap, topic, reference)
    with Ledger(ledger_path) as ledger:
        stats = consume(
            kafka_bootstrap, topic, Ingestor(ledger, key_store, reference), until_idle=2.0
        )
        assert (stats.accepted, stats.duplicates, stats.quarantined) == (3, 0, 0)
        flags = dict(
            ledger.con.execute("SELECT event_id::VARCHAR, flags FROM disclosures").fetchall()
        )
        assert set(flags) == {str(e.event_id) for e in (*warned, library_sent)}
        assert "unregistered_recipient" in flags[str(warned[1].event_id)]
        assert "unregistered_recipient" in flags[str(library_sent.event_id)]
        assert "unregistered_recipient" not in flags[str(warned[0].event_id)]
        assert verify_ledger(ledger).ok
        report = conformance_report(ledger, date(2026, 11, 1))
    (listed,) = report.unregistered_recipients
    assert (listed.recipient_id, listed.recipient_category, listed.events) == (
        "acme-analytics",
        "service_provider",
        2,
    )
