"""Conformance (undeclared flows, transfers without safeguard) and the transfers report."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger.store import Ledger
from reference import ReferenceData
from reports.conformance import conformance_report, render_conformance
from reports.errors import ReportError
from reports.transfers import render_transfers, transfers_report
from tests.unit.golden.fixed_ledger import store_reference
from tests.unit.ledger_rows import disclosure_row, write_ledger

AS_OF = date(2026, 11, 1)
UNDECLARED = ["undeclared_flow"]
UNSAFE = ["transfer_without_safeguard"]


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@pytest.fixture
def ledger_file(tmp_path: Path, reference: ReferenceData) -> Path:
    v = reference.version
    rows = [
        # three undeclared analytics exports to the e-mail processor, one flow
        *(
            disclosure_row(
                event_id=_id(n),
                recipient_id="emarsys",
                recipient_category="service_provider",
                data_categories=["user.device.ip_address", "user.behavior.browsing_history"],
                purpose="analytics.reporting",
                flags=UNDECLARED,
                declared=False,
                reference_version=v,
                occurred_at=datetime(2026, 5, 1 + n, 8, 0),
            )
            for n in range(4)
        ),
        # the same keys in another order are the same flow
        disclosure_row(
            event_id=_id(10),
            recipient_id="emarsys",
            recipient_category="service_provider",
            data_categories=["user.behavior.browsing_history", "user.device.ip_address"],
            purpose="analytics.reporting",
            flags=UNDECLARED,
            declared=False,
            reference_version=v,
            occurred_at=datetime(2026, 4, 30, 8, 0),
        ),
        # undeclared to two broadcasters: not registered, grouped by category
        *(
            disclosure_row(
                event_id=_id(20 + n),
                recipient_id=f"broadcaster-{n:05d}",
                recipient_category="broadcaster",
                data_categories=["user.contact.email"],
                purpose="essential.service",
                flags=UNDECLARED,
                declared=False,
                reference_version=v,
                occurred_at=datetime(2026, 6, 1 + n),
            )
            for n in range(2)
        ),
        # transfers: the survey provider under SCCs, then (from 2026-07-01) without
        disclosure_row(
            event_id=_id(30),
            recipient_id="survey-provider",
            recipient_category="service_provider",
            subject_pseudonym="s-a",
            ccpa_letters=["A"],
            reference_version=v,
            occurred_at=datetime(2026, 6, 30, 23, 59, 59),
        ),
        *(
            disclosure_row(
                event_id=_id(31 + n),
                recipient_id="survey-provider",
                recipient_category="service_provider",
                subject_pseudonym=f"s-{n}",
                ccpa_letters=["A"],
                flags=UNSAFE,
                reference_version=v,
                occurred_at=datetime(2026, 7, 1 + n),
            )
            for n in range(2)
        ),
        disclosure_row(
            event_id=_id(40),
            recipient_id="docler-la",
            recipient_category="group_entity",
            ccpa_letters=["A", "B"],
            reference_version=v,
            occurred_at=datetime(2026, 2, 1),
        ),
        # in the EEA: not a transfer; declared: not in conformance
        disclosure_row(reference_version=v, occurred_at=datetime(2026, 3, 1)),
        # outside the window
        disclosure_row(
            recipient_id="docler-la",
            recipient_category="group_entity",
            flags=UNDECLARED,
            reference_version=v,
            occurred_at=datetime(2025, 10, 31, 23, 59),
        ),
    ]
    path = write_ledger(tmp_path / "ledger.duckdb", rows)
    store_reference(path, reference)
    return path


def test_undeclared_flows_with_counts_dates_and_earliest_examples(ledger_file: Path) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        report = conformance_report(ledger, AS_OF)
    assert (report.events, report.undeclared_events, report.unsafe_transfer_events) == (
        12,
        7,
        2,
    )
    first, second = report.undeclared_flows
    assert (first.recipient_id, first.events, first.recipients) == ("emarsys", 5, 1)
    assert first.data_categories == ("user.behavior.browsing_history", "user.device.ip_address")
    assert first.first_seen == datetime(2026, 4, 30, 8, 0, tzinfo=UTC)
    assert first.last_seen == datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
    assert first.example_event_ids == (_id(10), _id(0), _id(1))
    assert (second.recipient_category, second.recipient_id, second.recipients) == (
        "broadcaster",
        None,
        2,
    )
    (unsafe,) = report.transfers_without_safeguard
    assert (unsafe.recipient_id, unsafe.country, unsafe.events) == ("survey-provider", "US", 2)
    assert unsafe.example_event_ids == (_id(31), _id(32))


def test_conformance_in_every_format(ledger_file: Path) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        report = conformance_report(ledger, AS_OF)
    data = json.loads(render_conformance(report, "json"))
    assert data["report"] == "conformance-report/1"
    assert data["summary"] == {
        "events": 12,
        "unregistered_recipient_events": 0,
        "undeclared_events": 7,
        "transfer_without_safeguard_events": 2,
        "after_erasure_events": 0,
    }
    assert data["undeclared_flows"][1]["recipient_id"] is None
    md = render_conformance(report, "md")
    assert "7 of the 12 disclosures" in md and "in 2 distinct flows" in md
    assert "2 broadcasters (recipients not registered)" in md
    lines = render_conformance(report, "csv").splitlines()
    assert lines[0] == "# report: conformance-report/1"
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert [r["finding"] for r in rows] == [
        "undeclared_flow",
        "undeclared_flow",
        "transfer_without_safeguard",
    ]
    assert rows[0]["example_event_ids"] == f"{_id(10)};{_id(0)};{_id(1)}"
    assert "<table>" in render_conformance(report, "html")


def test_since_narrows_the_window(ledger_file: Path) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        report = conformance_report(ledger, AS_OF, since=date(2026, 6, 1))
    assert report.undeclared_events == 2
    with Ledger(ledger_file, read_only=True) as ledger, pytest.raises(ReportError):
        conformance_report(ledger, AS_OF, since=date(2027, 1, 1))


def test_a_conforming_ledger_says_so(tmp_path: Path, reference: ReferenceData) -> None:
    path = write_ledger(tmp_path / "l.duckdb", [disclosure_row(occurred_at=datetime(2026, 5, 1))])
    with Ledger(path, read_only=True) as ledger:
        report = conformance_report(ledger, AS_OF)
    md = render_conformance(report, "md")
    assert "Every one of the 1 disclosures" in md
    assert "No disclosure from 2025-11-01" in md


def test_transfers_with_the_safeguard_in_force_missing_first(ledger_file: Path) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        report = transfers_report(ledger, AS_OF)
    got = [(t.recipient_id, t.safeguard, t.events, t.distinct_subjects) for t in report.transfers]
    assert got == [
        ("survey-provider", "none", 2, 2),
        ("docler-la", "standard_contractual_clauses", 1, 1),
        ("survey-provider", "standard_contractual_clauses", 1, 1),
    ]
    missing = report.transfers[0]
    assert missing.role == "third_party" and missing.valid_from == datetime(2026, 7, 1, tzinfo=UTC)
    assert report.transfers[2].valid_to == datetime(2026, 7, 1, tzinfo=UTC)
    assert (report.transfer_events, report.without_safeguard_events) == (4, 2)
    assert report.unregistered_recipient_events == 2  # the two broadcasters
    data = json.loads(render_transfers(report, "json"))
    assert data["transfers"][0]["safeguard_missing"] is True
    assert data["transfers"][0]["registry_period"] == {
        "valid_from": "2026-07-01T00:00:00Z",
        "valid_to": None,
    }
    md = render_transfers(report, "md")
    assert "2 disclosures without a transfer safeguard in force." in md
    assert md.index("| NONE |") < md.index("standard contractual clauses")
    table = render_transfers(report, "csv")
    assert "survey-provider,Customer-survey provider (United States),US" in table


def test_transfers_need_the_registry_in_the_ledger(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "l.duckdb", [disclosure_row(occurred_at=datetime(2026, 5, 1))])
    with Ledger(path, read_only=True) as ledger, pytest.raises(ReportError, match="registry"):
        transfers_report(ledger, AS_OF)


def test_csv_preamble_is_skippable(ledger_file: Path) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        text = render_transfers(transfers_report(ledger, AS_OF), "csv")
    preamble = [line for line in text.splitlines() if line.startswith("#")]
    assert preamble[0] == "# report: transfers-report/1"
    assert any(line.startswith("# chain: privacy.disclosures.v1/0 head_seq=") for line in preamble)
    body = io.StringIO("\n".join(line for line in text.splitlines() if not line.startswith("#")))
    assert len(list(csv.DictReader(body))) == 3


def test_unregistered_recipients_come_first_with_counts_and_the_fix(
    tmp_path: Path, reference: ReferenceData
) -> None:
    v = reference.version
    flagged = ["unregistered_recipient", "undeclared_flow"]
    rows = [
        *(
            disclosure_row(
                event_id=_id(50 + n),
                recipient_id="acme-analytics",
                recipient_category="service_provider",
                flags=flagged,
                declared=False,
                reference_version=v,
                occurred_at=datetime(2026, 5, 10 - n, 8, 0),
            )
            for n in range(4)
        ),
        disclosure_row(
            event_id=_id(60),
            recipient_id="old-bank",
            recipient_category="financial_institution",
            flags=["unregistered_recipient"],
            reference_version=v,
            occurred_at=datetime(2026, 6, 1),
        ),
        disclosure_row(
            event_id=_id(61),
            recipient_id="emarsys",
            recipient_category="service_provider",
            flags=UNDECLARED,
            declared=False,
            reference_version=v,
            occurred_at=datetime(2026, 6, 2),
        ),
        disclosure_row(reference_version=v, occurred_at=datetime(2026, 3, 1)),
    ]
    path = write_ledger(tmp_path / "ledger.duckdb", rows)
    store_reference(path, reference)
    with Ledger(path, read_only=True) as ledger:
        report = conformance_report(ledger, AS_OF)
    assert (report.events, report.unregistered_events, report.undeclared_events) == (7, 5, 5)
    acme, bank = report.unregistered_recipients
    assert (acme.recipient_id, acme.recipient_category, acme.events) == (
        "acme-analytics",
        "service_provider",
        4,
    )
    assert acme.first_seen == datetime(2026, 5, 7, 8, 0, tzinfo=UTC)
    assert acme.example_event_ids == (_id(53), _id(52), _id(51))
    assert (bank.recipient_id, bank.events) == ("old-bank", 1)
    # its undeclared flow names it by id, not grouped with "recipients not registered"
    assert {f.recipient_id for f in report.undeclared_flows} == {"acme-analytics", "emarsys"}

    data = json.loads(render_conformance(report, "json"))
    assert data["summary"]["unregistered_recipient_events"] == 5
    findings = [key for key in data if key.endswith(("recipients", "flows", "safeguard"))]
    assert findings[0] == "unregistered_recipients"
    assert data["unregistered_recipients"][0]["recipient_id"] == "acme-analytics"
    assert "recipients.yaml" in data["unregistered_recipients"][0]["fix"]
    md = render_conformance(report, "md")
    assert md.index("## Unregistered recipients") < md.index("## Undeclared flows")
    assert "5 of the 7 disclosures" in md and "went to 2 recipients" in md
    assert "add each to the registry (reference/data/recipients.yaml" in md
    assert "| acme-analytics | service_provider | 4 |" in md
    lines = render_conformance(report, "csv").splitlines()
    table = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert [r["finding"] for r in table][:3] == [
        "unregistered_recipient",
        "unregistered_recipient",
        "undeclared_flow",
    ]
    html = render_conformance(report, "html")
    assert html.index("Unregistered recipients") < html.index("Undeclared flows")
