"""Investigator presets (timeline, recipient, volume with anomalies) and Parquet output."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reports.errors import ReportError
from reports.presets import Output, recipient_disclosures, timeline, volume, volume_sql
from reports.query import run_query
from tests.unit.ledger_rows import disclosure_row, write_ledger

PERSON = "p" * 64


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    start = datetime(2026, 1, 1, 9, 0)
    rows = []
    for day in range(30):
        at = start + timedelta(days=day)
        # hotjar: a steady 20 a day, and 200 on 15 January
        count = 200 if day == 14 else 20
        rows += [
            disclosure_row(
                recipient_id="hotjar",
                recipient_category="service_provider",
                subject_pseudonym=f"s{n % 7}",
                occurred_at=at + timedelta(minutes=n),
            )
            for n in range(count)
        ]
        rows.append(disclosure_row(subject_pseudonym=f"e{day}", occurred_at=at))  # escalion
    rows += [
        disclosure_row(subject_pseudonym=PERSON, occurred_at=datetime(2026, 1, 20, 12)),
        disclosure_row(
            subject_pseudonym=PERSON,
            recipient_id="hotjar",
            recipient_category="service_provider",
            occurred_at=datetime(2026, 1, 3, 12),
        ),
        disclosure_row(
            subject_pseudonym=PERSON, subject_type="guest", occurred_at=datetime(2026, 1, 5)
        ),
    ]
    return write_ledger(tmp_path / "ledger.duckdb", rows)


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_timeline_is_one_person_in_order_without_the_pseudonym(ledger_file: Path) -> None:
    out = io.StringIO()
    n = timeline(ledger_file, PERSON, "member", Output("csv", out))
    rows = _csv(out.getvalue())
    assert n == 2 == len(rows)
    assert [r["recipient_id"] for r in rows] == ["hotjar", "escalion"]
    assert PERSON not in out.getvalue()
    assert "subject_pseudonym" not in rows[0]


def test_timeline_of_nobody_is_empty_but_well_formed(ledger_file: Path) -> None:
    out = io.StringIO()
    assert timeline(ledger_file, None, "member", Output("json", out)) == 0
    assert json.loads(out.getvalue()) == []


def test_recipient_range_is_from_included_to_excluded(ledger_file: Path) -> None:
    out = io.StringIO()
    n = recipient_disclosures(
        ledger_file, "escalion", Output("csv", out), start=date(2026, 1, 10), end=date(2026, 1, 20)
    )
    assert n == 10
    assert _csv(out.getvalue())[0]["occurred_at"].startswith("2026-01-10T09:00")


def test_volume_by_recipient_marks_the_spike(ledger_file: Path) -> None:
    out = io.StringIO()
    volume(ledger_file, "recipient", Output("json", out))
    by_id = {r["recipient_id"]: r for r in json.loads(out.getvalue())}
    hotjar = by_id["hotjar"]
    assert hotjar["anomaly"] is True
    assert hotjar["anomalous_day_list"] == ["2026-01-15"]
    assert hotjar["usual_per_day"] == 20.0 and hotjar["peak_events"] == 200
    assert by_id["escalion"]["anomaly"] is False
    assert list(by_id) == ["hotjar", "escalion"]  # anomalies first


def test_volume_by_day_lists_the_anomalous_recipients(ledger_file: Path) -> None:
    out = io.StringIO()
    n = volume(
        ledger_file, "day", Output("json", out), start=date(2026, 1, 1), end=date(2026, 2, 1)
    )
    days = {r["day"]: r for r in json.loads(out.getvalue())}
    assert n == 31  # every day of the range, even the last without disclosures
    assert days["2026-01-15"]["anomalous_recipients"] == ["hotjar (200)"]
    assert days["2026-01-15"]["total_anomaly"] is True and days["2026-01-15"]["anomaly"]
    assert not days["2026-01-14"]["anomaly"]
    assert days["2026-01-31"]["events"] == 0


def test_volume_by_category(ledger_file: Path) -> None:
    out = io.StringIO()
    volume(ledger_file, "category", Output("csv", out))
    rows = {r["recipient_category"]: r for r in _csv(out.getvalue())}
    assert rows["service_provider"]["anomaly"] == "true"
    assert rows["payment_provider"]["anomaly"] == "false"


def test_volume_by_something_else_is_refused() -> None:
    with pytest.raises(ReportError, match="recipient, category, day"):
        volume_sql("month")


def test_parquet_is_streamed_to_a_file(ledger_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "hotjar.parquet"
    n = recipient_disclosures(
        ledger_file, "hotjar", Output("parquet", output_path=target, batch_rows=100)
    )
    table = pq.read_table(target)
    assert n == table.num_rows == 29 * 20 + 200 + 1
    assert pq.ParquetFile(target).metadata.num_row_groups > 1  # written batch by batch
    assert not target.with_name("hotjar.parquet.partial").exists()


def test_parquet_needs_a_file(ledger_file: Path) -> None:
    with pytest.raises(ReportError, match="--output"):
        volume(ledger_file, "day", Output("parquet", io.StringIO()))
    with pytest.raises(ReportError, match="--output"):
        run_query(ledger_file, "SELECT 1", "parquet", io.StringIO())


def test_a_sql_query_to_parquet(ledger_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "q.parquet"
    n = run_query(
        ledger_file,
        "SELECT seq, ccpa_letters, occurred_at FROM disclosures ORDER BY seq",
        "parquet",
        output_path=target,
        batch_rows=64,
    )
    table = pq.read_table(target)
    assert n == table.num_rows > 600
    assert table.column_names == ["seq", "ccpa_letters", "occurred_at"]


def test_a_failed_query_leaves_no_parquet_file(ledger_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "bad.parquet"
    with pytest.raises(ReportError):
        run_query(
            ledger_file,
            "SELECT CAST('x' || seq AS INTEGER) FROM disclosures",
            "parquet",
            output_path=target,
        )
    assert list(tmp_path.glob("bad.parquet*")) == []
