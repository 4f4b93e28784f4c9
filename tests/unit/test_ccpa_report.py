"""The CCPA report (1798.130(a)(5)(C)) computed from a real ledger file."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger.store import Ledger
from reports.ccpa import (
    JSON_VERSION,
    BusinessPurpose,
    CcpaReport,
    ccpa_json,
    ccpa_report,
    render_ccpa,
)
from reports.errors import ReportError
from reports.vocabulary import BUSINESS_PURPOSE_NAMES, CCPA_CATEGORY_NAMES
from tests.conftest import LedgerLocation, both_backends, file_unless_both
from tests.unit.ledger_rows import (
    CHAIN,
    COMPLETE_THROUGH,
    TOPIC,
    disclosure_row,
    record_coverage,
    stand_in_hash,
    write_ledger,
)

AS_OF = date(2025, 3, 1)
GENERATED = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)
IN_WINDOW = datetime(2024, 9, 1, 12, 0)
CHAIN_1 = f"{TOPIC}/1"


def _rows() -> list[dict[str, object]]:
    return [
        # payment: B and L to the payment provider, purpose 5, two subjects (one twice)
        disclosure_row(subject_pseudonym="s1", ccpa_letters=["B", "L"], occurred_at=IN_WINDOW),
        disclosure_row(subject_pseudonym="s1", ccpa_letters=["B", "L"], occurred_at=IN_WINDOW),
        disclosure_row(subject_pseudonym="s2", ccpa_letters=["B"], occurred_at=IN_WINDOW),
        # fraud check: A and F to a service provider, purpose 2, on another chain
        disclosure_row(
            chain_id=CHAIN_1,
            subject_pseudonym="s2",
            recipient_id="fraud-co",
            recipient_category="service_provider",
            ccpa_letters=["A", "F", "A"],  # a repeated letter counts once per row
            business_purpose="2",
            occurred_at=IN_WINDOW,
            reference_version="test-2",
        ),
        # analytics: F to a service provider, purpose 5
        disclosure_row(
            chain_id=CHAIN_1,
            subject_pseudonym="s3",
            recipient_id="hotjar",
            recipient_category="service_provider",
            ccpa_letters=["F"],
            occurred_at=IN_WINDOW,
        ),
        # A to a bank, purpose 2
        disclosure_row(
            subject_pseudonym="s3",
            recipient_category="financial_institution",
            ccpa_letters=["A"],
            business_purpose="2",
            occurred_at=IN_WINDOW,
        ),
        # outside the window: must not count, but the chain head includes it
        disclosure_row(
            subject_pseudonym="s9", ccpa_letters=["K"], occurred_at=datetime(2023, 1, 1)
        ),
        disclosure_row(
            subject_pseudonym="s9", ccpa_letters=["K"], occurred_at=datetime(2025, 3, 1)
        ),
    ]


@pytest.fixture
def ledger_backend(request: pytest.FixtureRequest) -> str:
    return file_unless_both(request)  # the file; both backends where marked @both_backends


@pytest.fixture
def ledger_file(ledger_location: LedgerLocation) -> LedgerLocation:
    return write_ledger(ledger_location, _rows())


@pytest.fixture
def report(ledger_file: LedgerLocation) -> CcpaReport:
    with Ledger(ledger_file, read_only=True) as ledger:
        return ccpa_report(ledger, AS_OF, generated_at=GENERATED)


@both_backends
def test_categories_disclosed_for_a_business_purpose(report: CcpaReport) -> None:
    by_letter = {c.letter: c for c in report.business_purpose}
    assert list(by_letter) == ["A", "B", "F", "L"]

    a = by_letter["A"]
    assert a.name == CCPA_CATEGORY_NAMES["A"] == "Identifiers"
    assert a.recipient_categories == ("financial_institution", "service_provider")
    assert a.business_purposes == (BusinessPurpose("2", BUSINESS_PURPOSE_NAMES["2"]),)
    assert (a.events, a.distinct_subjects) == (2, 2)

    b = by_letter["B"]
    assert b.recipient_categories == ("payment_provider",)
    assert [p.number for p in b.business_purposes] == ["5"]
    assert (b.events, b.distinct_subjects) == (3, 2)

    f = by_letter["F"]
    assert f.recipient_categories == ("service_provider",)
    assert [p.number for p in f.business_purposes] == ["2", "5"]
    assert (f.events, f.distinct_subjects) == (2, 2)

    assert (by_letter["L"].events, by_letter["L"].distinct_subjects) == (2, 1)


def test_none_sold_or_shared_is_stated(report: CcpaReport) -> None:
    assert report.none_sold_or_shared
    data = ccpa_json(report)
    assert data["sold_or_shared"]["none"] is True
    assert data["sold_or_shared"]["categories"] == []
    assert "did not sell or share personal information" in data["sold_or_shared"]["statement"]


def test_sold_or_shared_categories_are_listed_apart(tmp_path: Path) -> None:
    rows = [
        disclosure_row(
            subject_pseudonym="s1",
            recipient_category="service_provider",
            disclosure_kind="share",
            business_purpose="share",
            ccpa_letters=["F"],
            occurred_at=IN_WINDOW,
        ),
        disclosure_row(
            subject_pseudonym="s2",
            recipient_category="broadcaster",
            disclosure_kind="sale",
            business_purpose="sale",
            ccpa_letters=["F", "D"],
            occurred_at=IN_WINDOW,
        ),
        disclosure_row(subject_pseudonym="s1", ccpa_letters=["B"], occurred_at=IN_WINDOW),
    ]
    path = write_ledger(tmp_path / "l.duckdb", rows)
    with Ledger(path, read_only=True) as ledger:
        report = ccpa_report(ledger, AS_OF, generated_at=GENERATED)
    assert not report.none_sold_or_shared
    sold = {c.letter: c for c in report.sold_or_shared}
    assert list(sold) == ["D", "F"]
    assert sold["F"].disclosure_kinds == ("sale", "share")
    assert sold["F"].recipient_categories == ("broadcaster", "service_provider")
    assert (sold["F"].events, sold["F"].distinct_subjects) == (2, 2)
    assert sold["D"].disclosure_kinds == ("sale",)
    assert [c.letter for c in report.business_purpose] == ["B"]

    data = ccpa_json(report)
    assert data["sold_or_shared"]["none"] is False
    assert data["sold_or_shared"]["categories"][1] == {
        "letter": "F",
        "name": CCPA_CATEGORY_NAMES["F"],
        "disclosure_kinds": ["sale", "share"],
        "recipient_categories": ["broadcaster", "service_provider"],
        "events": 2,
        "distinct_subjects": 2,
    }
    statement = data["sold_or_shared"]["statement"]
    assert "sold or shared the following categories" in statement
    assert "Commercial information (D), sold to broadcasters" in statement
    assert (
        "Internet or other electronic network activity information (F), sold to or shared with "
        "broadcasters and service providers." in statement
    )
    md = render_ccpa(report, "md")
    assert statement in md
    assert "| sold and shared | broadcasters, service providers | 2 | 2 |" in md


@both_backends
def test_provenance_window_versions_chain_heads_and_row_range(report: CcpaReport) -> None:
    assert report.window_start == datetime(2024, 3, 1, tzinfo=UTC)
    assert report.window_end == report.as_of == datetime(2025, 3, 1, tzinfo=UTC)
    assert report.generated_at == GENERATED
    assert report.reference_versions == ("test-1", "test-2")
    assert report.events_counted == 6
    assert report.first_event_at == report.last_event_at == IN_WINDOW.replace(tzinfo=UTC)
    assert report.ledger_format_version == "1"
    chains = {c.chain_id: c for c in report.chains}
    assert list(chains) == [CHAIN, CHAIN_1]
    main = chains[CHAIN]
    assert main.head_seq == 6  # rows outside the window still define the head
    assert main.head_chain_hash == stand_in_hash(CHAIN, 6).hex()
    assert (main.events_counted, main.first_seq_counted, main.last_seq_counted) == (4, 1, 4)
    other = chains[CHAIN_1]
    assert (other.head_seq, other.events_counted) == (2, 2)
    assert (other.first_seq_counted, other.last_seq_counted) == (1, 2)


def test_json_has_the_documented_stable_shape(report: CcpaReport) -> None:
    data = json.loads(render_ccpa(report, "json"))
    assert data["report"] == JSON_VERSION == "ccpa-report/1"
    assert list(data) == [
        "report",
        "generated_at",
        "as_of",
        "window",
        "source",
        "coverage",
        "sold_or_shared",
        "business_purpose",
        "monthly",
    ]
    assert data["generated_at"] == "2025-03-02T09:30:00Z"
    assert data["as_of"] == "2025-03-01T00:00:00Z"
    assert data["window"] == {"start": "2024-03-01T00:00:00Z", "end": "2025-03-01T00:00:00Z"}
    assert list(data["source"]) == [
        "ledger_format_version",
        "reference_versions",
        "events_counted",
        "first_event_at",
        "last_event_at",
        "chains",
    ]
    assert data["source"]["chains"][0] == {
        "chain_id": CHAIN,
        "head_seq": 6,
        "head_chain_hash": stand_in_hash(CHAIN, 6).hex(),
        "events_counted": 4,
        "first_seq_counted": 1,
        "last_seq_counted": 4,
    }
    assert list(data["sold_or_shared"]) == ["none", "statement", "categories"]
    assert data["business_purpose"]["categories"][0] == {
        "letter": "A",
        "name": "Identifiers",
        "recipient_categories": ["financial_institution", "service_provider"],
        "business_purposes": [{"number": "2", "name": BUSINESS_PURPOSE_NAMES["2"]}],
        "events": 2,
        "distinct_subjects": 2,
    }
    monthly = data["monthly"]
    assert list(monthly) == ["recipient_categories", "months"]
    assert len(monthly["months"]) == 12 and not any(m["partial"] for m in monthly["months"])
    assert monthly["months"][6] == {
        "month": "2024-09",
        "start": "2024-09-01T00:00:00Z",
        "end": "2024-10-01T00:00:00Z",
        "partial": False,
        "events": sum(monthly["months"][6]["by_recipient_category"].values()),
        "by_recipient_category": {
            category: values[6] for category, values in report.monthly.by_recipient_category
        },
    }
    assert sum(m["events"] for m in monthly["months"]) == data["source"]["events_counted"]


def test_markdown_reads_like_the_privacy_policy_paragraph(report: CcpaReport) -> None:
    md = render_ccpa(report, "md")
    assert (
        "In the preceding 12 months (1 March 2024 to 28 February 2025) we disclosed the "
        "following categories of personal information for a business purpose: "
        "Identifiers (A) to financial institutions and service providers; "
    ) in md
    assert (
        "Internet or other electronic network activity information (F) to service providers" in md
    )
    assert (
        "In the preceding 12 months (1 March 2024 to 28 February 2025) we did not sell or share "
        "personal information."
    ) in md
    assert "| Identifiers (A) | financial institutions, service providers | (2) Helping" in md
    assert stand_in_hash(CHAIN, 6).hex() in md
    assert "test-1, test-2" in md
    assert "2025-03-02T09:30:00Z" in md


def test_an_empty_ledger_states_that_nothing_was_disclosed(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    Ledger(path).close()
    record_coverage(path, COMPLETE_THROUGH)  # every source declared it sent nothing more
    with Ledger(path, read_only=True) as ledger:
        report = ccpa_report(ledger, AS_OF, generated_at=GENERATED)
    assert report.business_purpose == report.sold_or_shared == ()
    assert report.chains == ()
    assert report.events_counted == 0
    assert report.first_event_at is None
    md = render_ccpa(report, "md")
    assert "we did not disclose personal information for a business purpose" in md
    assert json.loads(render_ccpa(report, "json"))["source"]["chains"] == []


def test_a_window_not_on_midnight_is_stated_with_times(ledger_file: LedgerLocation) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        report = ccpa_report(ledger, datetime(2025, 3, 1, 12, 0), generated_at=GENERATED)
    assert "2024-03-01 12:00:00 UTC up to 2025-03-01 12:00:00 UTC" in render_ccpa(report, "md")


def test_the_report_can_be_read_through_the_writer_too(ledger_file: LedgerLocation) -> None:
    with Ledger(ledger_file) as ledger:
        report = ccpa_report(ledger, AS_OF, generated_at=GENERATED)
    assert report.events_counted == 6


def test_an_unknown_letter_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write_ledger(
        tmp_path / "l.duckdb", [disclosure_row(ccpa_letters=["Z"], occurred_at=IN_WINDOW)]
    )
    with Ledger(path, read_only=True) as ledger, pytest.raises(ReportError, match="'Z'"):
        ccpa_report(ledger, AS_OF)


def test_an_unknown_business_purpose_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write_ledger(
        tmp_path / "l.duckdb", [disclosure_row(business_purpose="9", occurred_at=IN_WINDOW)]
    )
    with Ledger(path, read_only=True) as ledger, pytest.raises(ReportError, match="'9'"):
        ccpa_report(ledger, AS_OF)


def test_an_unknown_format_is_refused(report: CcpaReport) -> None:
    with pytest.raises(ReportError, match="json, md"):
        render_ccpa(report, "pdf")


def test_every_letter_and_purpose_has_a_name() -> None:
    assert list(CCPA_CATEGORY_NAMES) == list("ABCDEFGHIJKL")
    assert list(BUSINESS_PURPOSE_NAMES) == [str(n) for n in range(1, 9)]
