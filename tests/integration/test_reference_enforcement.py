"""Reference data enforced at ingest, through the real broker (issue 3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.consumer import consume
from consumers.pipeline import Ingestor
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from producers.publisher import DisclosurePublisher
from reference import ReferenceData
from tests.unit.events import make_event

pytestmark = pytest.mark.integration

BEFORE_LAPSE = datetime(2026, 3, 1, tzinfo=UTC)
AFTER_LAPSE = datetime(2026, 9, 1, tzinfo=UTC)
SURVEY = {
    "recipient": {"id": "survey-provider", "category": "service_provider"},
    "data_categories": ["user.contact.email"],
}

# (name, event changes, what the quarantine error must name)
BREAKS_A_RULE = [
    (
        "category disagrees with the registry",
        {"recipient": {"id": "escalion", "category": "service_provider"}},
        ("escalion", "recipients.yaml"),
    ),
    (
        "unknown data category",
        {"data_categories": ["user.financial", "user.psychic_aura"]},
        ("user.psychic_aura", "categories.yaml"),
    ),
    (
        "unknown purpose",
        {"purpose": "marketing.mind_reading"},
        ("marketing.mind_reading", "purposes.yaml"),
    ),
]


def test_each_rule_is_enforced_and_flows_are_flagged(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
) -> None:
    topic = new_topic()
    survey_purpose = next(f for f in reference.flows if f.id == "surveys").purposes[0]
    declared = make_event()
    undeclared = make_event(  # a registered recipient, known keys, but no declared flow
        recipient={"id": "hotjar", "category": "service_provider"},
        data_categories=["user.financial"],
        purpose="analytics.reporting",
    )
    with_safeguard = make_event(occurred_at=BEFORE_LAPSE, purpose=survey_purpose, **SURVEY)
    without_safeguard = make_event(occurred_at=AFTER_LAPSE, purpose=survey_purpose, **SURVEY)
    # recorded and flagged, not quarantined: the disclosure happened (issue 16)
    unregistered = make_event(recipient={"id": "acme-analytics", "category": "service_provider"})
    broken = [make_event(**changes) for _, changes, _ in BREAKS_A_RULE]
    with DisclosurePublisher(kafka_bootstrap, topic) as publisher:
        sent = [declared, undeclared, with_safeguard, without_safeguard, unregistered, *broken]
        assert publisher.publish_many(sent).ok

    with Ledger(ledger_path) as ledger:
        stats = consume(
            kafka_bootstrap, topic, Ingestor(ledger, key_store, reference), until_idle=2.0
        )
        assert (stats.accepted, stats.quarantined) == (5, len(BREAKS_A_RULE))
        errors = [
            r[0]
            for r in ledger.con.execute(
                "SELECT error FROM quarantine ORDER BY kafka_offset"
            ).fetchall()
        ]
        for (name, _, must_name), error in zip(BREAKS_A_RULE, errors, strict=True):
            for word in must_name:
                assert word in error, (name, error)
        flags = dict(
            ledger.con.execute("SELECT event_id::VARCHAR, flags FROM disclosures").fetchall()
        )
        declared_col = dict(
            ledger.con.execute("SELECT event_id::VARCHAR, declared FROM disclosures").fetchall()
        )
        assert flags[str(declared.event_id)] == [] and declared_col[str(declared.event_id)]
        assert "undeclared_flow" in flags[str(undeclared.event_id)]
        assert not declared_col[str(undeclared.event_id)]
        assert "transfer_without_safeguard" not in flags[str(with_safeguard.event_id)]
        assert "transfer_without_safeguard" in flags[str(without_safeguard.event_id)]
        assert "unregistered_recipient" in flags[str(unregistered.event_id)]
        versions = ledger.con.execute(
            "SELECT DISTINCT reference_version FROM disclosures"
        ).fetchall()
        assert versions == [(reference.version,)]
        assert verify_ledger(ledger).ok
