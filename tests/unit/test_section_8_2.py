"""A CCPA report over simulated declared traffic reproduces section 8.2 of the policy.

The expectation below is written from the policy's own words (section 8.2, and
DOMAIN.md's summary of it), not derived from the reference data, so a wrong mapping in
the reference files fails this test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.simulate import simulate
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from reports.ccpa import ccpa_json, ccpa_report
from schemas.codec import EventCodec
from tests.unit.ledger_rows import COMPLETE_THROUGH, record_coverage

AS_OF = date(2026, 7, 1)

# Section 8.2: who received which categories in the past 12 months, as CCPA letters.
#   analytics providers: usage/device information incl. IP address -> A (IP), F
#   payment service providers: payment and transaction data -> B, D
#   marketing and sales partners: contact, device/usage, purchase info (no payment
#     means), e-mail interactions -> A, D, F (and B where postal contact data is sent)
#   anti-fraud and auditing providers: identification, contact, device/usage, payment
#     information -> A, B, D, F
SECTION_8_2 = {
    ("hotjar", "google-analytics"): ({"A", "F"}, {"A", "F"}),
    ("escalion", "other-payment-processors"): ({"B", "D"}, {"B", "D"}),
    ("emarsys", "marketing-partners"): ({"A", "D", "F"}, {"A", "B", "D", "F"}),
    ("anti-fraud-providers",): ({"A", "B", "D", "F"}, {"A", "B", "D", "F"}),
    ("auditors",): ({"A", "B", "D", "F"}, {"A", "B", "D", "F"}),
}


@pytest.fixture(scope="module")
def ledger_8_2(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> Path:
    folder = tmp_path_factory.mktemp("policy")
    path = folder / "ledger.duckdb"
    codec = EventCodec()
    start = datetime(2025, 7, 1, tzinfo=UTC)
    end = datetime(2026, 7, 1, tzinfo=UTC)
    events = list(simulate(4000, 82, start, end, reference=reference))
    messages = [
        SourceMessage("policy", 0, offset, e.subject.id.encode(), codec.encode(e.to_avro()))
        for offset, e in enumerate(events)
    ]
    with (
        Ledger(path) as ledger,
        SubjectKeyStore(folder / "keys.sqlite", b"k" * 32) as keys,
    ):
        stats = Ingestor(ledger, keys, reference).ingest(messages)
    assert stats.accepted == len(events)
    record_coverage(path, COMPLETE_THROUGH)
    return path


def test_nothing_sold_or_shared(ledger_8_2: Path) -> None:
    with Ledger(ledger_8_2, read_only=True) as ledger:
        report = ccpa_json(ccpa_report(ledger, AS_OF))
    assert report["sold_or_shared"]["none"] is True
    assert report["sold_or_shared"]["categories"] == []


def test_each_section_8_2_recipient_got_exactly_the_policy_letters(ledger_8_2: Path) -> None:
    with Ledger(ledger_8_2, read_only=True) as ledger:
        for recipients, (at_least, at_most) in SECTION_8_2.items():
            rows = ledger.con.execute(
                "SELECT DISTINCT unnest(ccpa_letters) FROM disclosures "
                "WHERE recipient_id IN (SELECT unnest(?))",
                [list(recipients)],
            ).fetchall()
            letters = {r[0] for r in rows}
            assert at_least <= letters <= at_most, (recipients, sorted(letters))


def test_report_lists_the_section_8_2_recipient_categories(ledger_8_2: Path) -> None:
    with Ledger(ledger_8_2, read_only=True) as ledger:
        report = ccpa_json(ccpa_report(ledger, AS_OF))
    by_letter = {c["letter"]: c for c in report["business_purpose"]["categories"]}
    for letter in ("A", "F"):
        assert "service_provider" in by_letter[letter]["recipient_categories"]
    for letter in ("B", "D"):
        assert {"payment_provider", "service_provider"} <= set(
            by_letter[letter]["recipient_categories"]
        )
    # payment providers receive payment and transaction data only
    payment_letters = {
        c["letter"]
        for c in report["business_purpose"]["categories"]
        if "payment_provider" in c["recipient_categories"]
    }
    assert payment_letters == {"B", "D"}
