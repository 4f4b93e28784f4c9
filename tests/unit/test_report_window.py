"""The report window [as_of - 12 calendar months, as_of) in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ledger.store import Ledger
from reports.ccpa import ccpa_report
from reports.window import naive_utc, report_window
from tests.unit.ledger_rows import disclosure_row, write_ledger


def test_a_date_means_midnight_utc_and_twelve_calendar_months() -> None:
    start, end = report_window(date(2025, 3, 1))
    assert start == datetime(2024, 3, 1, tzinfo=UTC)
    assert end == datetime(2025, 3, 1, tzinfo=UTC)


def test_a_naive_datetime_is_taken_as_utc() -> None:
    start, end = report_window(datetime(2025, 7, 15, 13, 30))
    assert start == datetime(2024, 7, 15, 13, 30, tzinfo=UTC)
    assert end == datetime(2025, 7, 15, 13, 30, tzinfo=UTC)


def test_an_aware_datetime_is_converted_to_utc() -> None:
    paris_summer = timezone(timedelta(hours=2))
    start, end = report_window(datetime(2025, 7, 1, 1, 0, tzinfo=paris_summer))
    assert end == datetime(2025, 6, 30, 23, 0, tzinfo=UTC)
    assert start == datetime(2024, 6, 30, 23, 0, tzinfo=UTC)
    assert end.utcoffset() == timedelta(0)


def test_from_29_february_the_start_is_clamped_to_28_february() -> None:
    start, end = report_window(date(2024, 2, 29))
    assert start == datetime(2023, 2, 28, tzinfo=UTC)
    assert end == datetime(2024, 2, 29, tzinfo=UTC)


def test_a_window_ending_1_march_of_a_leap_year_starts_1_march() -> None:
    start, _ = report_window(date(2024, 3, 1))
    assert start == datetime(2023, 3, 1, tzinfo=UTC)
    start, _ = report_window(date(2025, 2, 28))
    assert start == datetime(2024, 2, 28, tzinfo=UTC)


def test_an_aware_time_that_crosses_into_29_february_in_utc_is_clamped() -> None:
    minus_five = timezone(timedelta(hours=-5))
    start, end = report_window(datetime(2024, 2, 28, 22, 0, tzinfo=minus_five))
    assert end == datetime(2024, 2, 29, 3, 0, tzinfo=UTC)
    assert start == datetime(2023, 2, 28, 3, 0, tzinfo=UTC)


def test_naive_utc_is_what_the_ledger_compares_with() -> None:
    assert naive_utc(datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == datetime(
        2025, 1, 1, 0
    )


@pytest.mark.parametrize(
    ("occurred_at", "counted"),
    [
        (datetime(2024, 3, 1, 0, 0, 0), True),  # exactly the window start: in
        (datetime(2024, 2, 29, 23, 59, 59, 999000), False),  # 1 ms before: out
        (datetime(2025, 2, 28, 23, 59, 59, 999000), True),  # 1 ms before as_of: in
        (datetime(2025, 3, 1, 0, 0, 0), False),  # exactly as_of: out
    ],
)
def test_an_event_at_the_start_is_in_and_at_as_of_is_out(
    tmp_path: Path, occurred_at: datetime, counted: bool
) -> None:
    path = write_ledger(tmp_path / "l.duckdb", [disclosure_row(occurred_at=occurred_at)])
    with Ledger(path, read_only=True) as ledger:
        report = ccpa_report(ledger, date(2025, 3, 1))
    assert report.events_counted == (1 if counted else 0)
    assert len(report.business_purpose) == (1 if counted else 0)


def test_the_edges_hold_for_an_aware_as_of_too(tmp_path: Path) -> None:
    # as_of 2025-03-01T01:00+01:00 is 2025-03-01T00:00Z
    rows = [
        disclosure_row(occurred_at=datetime(2024, 3, 1)),
        disclosure_row(occurred_at=datetime(2025, 3, 1)),
    ]
    path = write_ledger(tmp_path / "l.duckdb", rows)
    with Ledger(path, read_only=True) as ledger:
        report = ccpa_report(
            ledger, datetime(2025, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
        )
    assert report.events_counted == 1
    assert report.chains[0].first_seq_counted == 1
    assert report.chains[0].last_seq_counted == 1
