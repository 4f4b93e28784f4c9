"""Report documents as Markdown, HTML and CSV; the inline SVG chart; the window helpers."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger.store import Ledger
from reports.ccpa import ccpa_report, render_ccpa
from reports.chart import nice_ceiling, stacked_bars
from reports.document import Document, Section, Table, render_csv, render_html, render_markdown
from reports.errors import ReportError
from reports.window import MonthSpan, clamp_since, month_spans, months_in
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
    assert svg.startswith("<svg") and svg.endswith("</ul>")
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 3
    assert "<title>broadcasters, 2026-01: 3</title>" in svg
    assert 'aria-labelledby="c-title c-desc"' in svg
    assert re.findall(r"</svg>([^<]+)</li>", svg) == ["broadcasters", "public"], "the legend"
    assert "partial" not in svg


def test_a_partial_period_is_hatched_and_labelled_and_keyed_in_the_legend() -> None:
    svg = stacked_bars(
        chart_id="c",
        title="T",
        description="D",
        periods=["2025-12", "2026-01", "2026-02"],
        series={"broadcaster": [3, 4, 1], "public": [1, 2, 0]},
        partial=[True, False, True],
    )
    hatch = re.search(r'<g class="partial" fill="url\(#c-hatch\)"[^>]*>(.*?)</g>', svg, re.S)
    assert hatch is not None and len(re.findall("<rect ", hatch.group(1))) == 2
    labels = re.findall(r'<text class="partial" x="([\d.]+)"[^>]*>partial</text>', svg)
    months = dict(
        re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle">(\d{4}-\d\d)', svg)
    )
    assert sorted(months[x] for x in labels) == ["2025-12", "2026-02"]
    assert "partial month</li>" in svg


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


def test_month_spans_cut_the_first_and_last_month_to_the_window() -> None:
    start, end = datetime(2025, 3, 15, tzinfo=UTC), datetime(2026, 3, 15, 6, tzinfo=UTC)
    spans = month_spans(start, end)
    assert [s.month for s in spans] == months_in(start, end) and len(spans) == 13
    assert spans[0] == MonthSpan("2025-03", start, datetime(2025, 4, 1, tzinfo=UTC), True)
    assert spans[1] == MonthSpan(
        "2025-04", datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC), False
    )
    assert spans[-1] == MonthSpan("2026-03", datetime(2026, 3, 1, tzinfo=UTC), end, True)
    whole = month_spans(datetime(2025, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert not any(s.partial for s in whole) and len(whole) == 12


def test_partial_months_are_marked_in_json_md_and_html(tmp_path: Path) -> None:
    path = write_ledger(
        tmp_path / "l.duckdb",
        [
            disclosure_row(occurred_at=datetime(2025, 3, 20)),
            disclosure_row(occurred_at=datetime(2025, 9, 1)),
            disclosure_row(
                recipient_id="hotjar",
                recipient_category="service_provider",
                ccpa_letters=["A", "F"],
                occurred_at=datetime(2026, 3, 2),
            ),
        ],
    )
    with Ledger(path, read_only=True) as ledger:
        report = ccpa_report(ledger, date(2026, 3, 15))

    monthly = json.loads(render_ccpa(report, "json"))["monthly"]
    months = monthly["months"]
    assert len(months) == 13
    assert [m["month"] for m in months if m["partial"]] == ["2025-03", "2026-03"]
    assert (months[0]["start"], months[0]["end"]) == (
        "2025-03-15T00:00:00Z",
        "2025-04-01T00:00:00Z",
    )
    assert (months[-1]["start"], months[-1]["end"]) == (
        "2026-03-01T00:00:00Z",
        "2026-03-15T00:00:00Z",
    )
    assert monthly["recipient_categories"] == ["service_provider", "payment_provider"]
    assert months[0]["by_recipient_category"] == {"service_provider": 0, "payment_provider": 1}
    assert months[-1]["by_recipient_category"] == {"service_provider": 1, "payment_provider": 0}
    assert [m["events"] for m in months] == [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]

    md = render_ccpa(report, "md")
    assert "| 2025-03 (partial) | 0 | 1 | 1 |" in md and "| 2026-03 (partial) | 1 | 0 | 1 |" in md
    assert "| 2025-04 | 0 | 0 | 0 |" in md and "| Total | 1 | 2 | 3 |" in md
    assert "2025-03 (15 to 31 March 2025) and 2026-03 (1 to 14 March 2026)" in md

    html = render_ccpa(report, "html")
    assert "<td>2025-03 (partial)</td>" in html and "<td>2026-03 (partial)</td>" in html
    assert len(re.findall(r'<text class="partial"[^>]*>partial</text>', html)) == 2
    assert "hatched bar is a partial month" in html


def test_no_caption_of_the_ccpa_report_is_repeated(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "l.duckdb", [disclosure_row(occurred_at=datetime(2025, 6, 1))])
    with Ledger(path, read_only=True) as ledger:
        report = ccpa_report(ledger, date(2026, 3, 15))
    html = render_ccpa(report, "html")
    captions = re.findall(r"<(caption|figcaption)>(.*?)</\1>", html, re.S)
    assert {kind for kind, _ in captions} == {"caption", "figcaption"}
    texts = [" ".join(text.split()) for _, text in captions]
    assert len(texts) == len(set(texts)), texts
    assert not any(a.startswith(b[:40]) for a in texts for b in texts if a is not b)


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
