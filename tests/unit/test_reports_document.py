"""Report documents as Markdown, HTML and CSV; the inline SVG chart; the window helpers."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger.store import Ledger
from reports.ccpa import ccpa_report, render_ccpa
from reports.chart import nice_ceiling, stacked_bars
from reports.document import Document, Section, Table, render_csv, render_html, render_markdown
from reports.errors import ReportError
from reports.window import clamp_since, months_in
from tests.unit.ledger_rows import disclosure_row, write_ledger


def _doc(value: str) -> Document:
    return Document(
        title=f"Title {value}",
        basis="Basis",
        sections=(
            Section(
                heading="One",
                paragraphs=(f"A paragraph with {value}.",),
                items=(value,),
                table=Table(("Name", "Count"), ((value, "3"),), (False, True)),
                notice="Watch out",
            ),
        ),
        provenance=None,
        source_lines=("From a test.",),
    )


def test_html_escapes_values_and_loads_nothing() -> None:
    hostile = '<script>alert("x")</script> & <img src=x onerror=y>'
    html = render_html(_doc(hostile))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&amp;" in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert re.search(r"<(script|link|iframe|object)\b", html) is None
    assert 'class="num">3</td>' in html
    assert 'role="note">Watch out</p>' in html


def test_markdown_escapes_table_cells() -> None:
    md = render_markdown(_doc("a | b"))
    assert "| a \\| b | 3 |" in md
    assert "> **Watch out**" in md
    assert "- From a test." in md


def test_csv_has_a_preamble_then_a_table() -> None:
    text = render_csv(
        "x-report/1",
        [("as_of", "2026-01-01"), ("note", "two\nlines")],
        ["a", "b"],
        [(1, ["p", "q"])],
    )
    lines = text.splitlines()
    assert lines[:3] == ["# report: x-report/1", "# as_of: 2026-01-01", "# note: two lines"]
    assert list(csv.reader(io.StringIO("\n".join(lines[3:])))) == [["a", "b"], ["1", "p;q"]]


def test_the_chart_has_one_bar_segment_per_nonzero_value() -> None:
    svg = stacked_bars(
        chart_id="c",
        title="T",
        description="D",
        periods=["2026-01", "2026-02"],
        series={"broadcaster": [3, 0], "public": [1, 2]},
        labels={"broadcaster": "broadcasters"},
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 3
    assert "<title>broadcasters, 2026-01: 3</title>" in svg
    assert 'aria-labelledby="c-title c-desc"' in svg


def test_an_empty_chart_says_so() -> None:
    svg = stacked_bars(chart_id="c", title="T", description="D", periods=["2026-01"], series={})
    assert "No disclosures in the window" in svg


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (230, 250), (1001, 2000)]
)
def test_nice_ceiling(value: int, top: int) -> None:
    assert nice_ceiling(value) == top


def test_months_in_a_window() -> None:
    assert months_in(datetime(2025, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)) == [
        f"{y}-{m:02d}" for y, m in [(2025, m) for m in range(3, 13)] + [(2026, 1), (2026, 2)]
    ]
    assert months_in(datetime(2025, 3, 15, tzinfo=UTC), datetime(2025, 3, 16, tzinfo=UTC)) == [
        "2025-03"
    ]
    assert months_in(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)) == []


def test_clamp_since() -> None:
    floor = datetime(2022, 1, 1, tzinfo=UTC)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert clamp_since(None, start, floor) == (start, False)
    assert clamp_since(date(2021, 6, 1), start, floor) == (floor, True)
    assert clamp_since(date(2023, 6, 1), start, floor) == (datetime(2023, 6, 1, tzinfo=UTC), False)


def test_ccpa_html_has_the_lists_the_chart_and_the_provenance(tmp_path: Path) -> None:
    path = write_ledger(
        tmp_path / "l.duckdb",
        [
            disclosure_row(occurred_at=datetime(2025, 6, 1)),
            disclosure_row(
                recipient_id="hotjar",
                recipient_category="service_provider",
                ccpa_letters=["A", "F"],
                occurred_at=datetime(2025, 9, 1),
            ),
        ],
    )
    with Ledger(path, read_only=True) as ledger:
        report = ccpa_report(ledger, date(2026, 3, 1))
    html = render_ccpa(report, "html")
    assert '<section id="business-purpose">' in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="disclosures-per-month"' in html
    assert html.count("<rect ") >= 2
    assert "we did not sell or share personal information" in html
    assert '<footer id="provenance">' in html and "Head chain hash" in html
    csv_text = render_ccpa(report, "csv")
    assert "# window_start: 2025-03-01T00:00:00Z" in csv_text
    assert "business_purpose,F,Internet or other electronic network activity information" in (
        csv_text
    )
    assert report.monthly.months[0] == "2025-03" and len(report.monthly.months) == 12
    with pytest.raises(ReportError, match="json, md, html, csv"):
        render_ccpa(report, "pdf")
