"""The CCPA report written as JSON (its contract), Markdown, HTML and CSV."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from reports.base import ReportFormats
from reports.ccpa.values import JSON_VERSION, CategoryDisclosed, CcpaReport, MonthlyVolume
from reports.chart import stacked_bars
from reports.contracts import (
    BusinessPurposeCategory,
    BusinessPurposeJson,
    BusinessPurposeList,
    CcpaReportJson,
    MonthJson,
    MonthlyBreakdown,
    SoldOrShared,
    SoldOrSharedCategory,
)
from reports.document import (
    Document,
    Section,
    Table,
    and_list,
    provenance_meta,
    render_csv,
)
from reports.provenance import (
    ledger_report_fields,
    rfc3339,
)
from reports.vocabulary import (
    DISCLOSURE_KIND_PHRASES,
    DISCLOSURE_KIND_TO,
    recipient_phrase,
)
from reports.window import MonthSpan


def render_ccpa(report: CcpaReport, fmt: str) -> str:
    """The report as ``json`` (shape ``ccpa-report/1``), ``md``, ``html`` or ``csv`` text."""
    return CCPA_REPORT_FORMATS.render(report, fmt)


def ccpa_contract(report: CcpaReport) -> CcpaReportJson:
    """The report as its ``ccpa-report/1`` contract."""
    return CcpaReportJson(
        report=JSON_VERSION,
        **ledger_report_fields(report.source),
        sold_or_shared=SoldOrShared(
            none=report.none_sold_or_shared,
            statement=sold_or_shared_statement(report),
            categories=[
                SoldOrSharedCategory(
                    letter=c.letter,
                    name=c.name,
                    disclosure_kinds=list(c.disclosure_kinds),
                    recipient_categories=list(c.recipient_categories),
                    events=c.events,
                    distinct_subjects=c.distinct_subjects,
                )
                for c in report.sold_or_shared
            ],
        ),
        business_purpose=BusinessPurposeList(
            categories=[
                BusinessPurposeCategory(
                    letter=c.letter,
                    name=c.name,
                    recipient_categories=list(c.recipient_categories),
                    business_purposes=[
                        BusinessPurposeJson(number=p.number, name=p.name)
                        for p in c.business_purposes
                    ],
                    events=c.events,
                    distinct_subjects=c.distinct_subjects,
                )
                for c in report.business_purpose
            ]
        ),
        monthly=monthly_contract(report.monthly),
    )


def monthly_contract(monthly: MonthlyVolume) -> MonthlyBreakdown:
    """The monthly table of md and html as its JSON contract: one object per month."""
    return MonthlyBreakdown(
        recipient_categories=[c for c, _ in monthly.by_recipient_category],
        months=[
            MonthJson(
                month=span.month,
                start=rfc3339(span.start) or "",
                end=rfc3339(span.end) or "",
                partial=span.partial,
                events=total,
                by_recipient_category={c: v[i] for c, v in monthly.by_recipient_category},
            )
            for i, (span, total) in enumerate(zip(monthly.spans, monthly.totals, strict=True))
        ],
    )


def ccpa_json(report: CcpaReport) -> dict[str, Any]:
    """The report as the documented ``ccpa-report/1`` JSON object."""
    return ccpa_contract(report).model_dump(mode="json")


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def window_phrase(report: CcpaReport) -> str:
    """``1 March 2024 to 28 February 2025`` (whole days), else exact UTC times."""
    start, end = report.window_start, report.window_end
    midnight = all(m.time() == datetime.min.time() for m in (start, end))
    if midnight:
        return f"{_day(start)} to {_day(end - timedelta(days=1))}"
    return f"{start:%Y-%m-%d %H:%M:%S} UTC up to {end:%Y-%m-%d %H:%M:%S} UTC"


def _recipients(category: CategoryDisclosed) -> str:
    return and_list([recipient_phrase(r) for r in category.recipient_categories])


def sold_or_shared_statement(report: CcpaReport) -> str:
    """Section (i) as one sentence: the categories sold or shared, or that none were."""
    if report.none_sold_or_shared:
        return (
            f"In the preceding 12 months ({window_phrase(report)}) we did not sell or share "
            "personal information."
        )
    parts = []
    for c in report.sold_or_shared:
        how = " or ".join(DISCLOSURE_KIND_TO[k] for k in c.disclosure_kinds)
        parts.append(f"{c.name} ({c.letter}), {how} {_recipients(c)}")
    return (
        f"In the preceding 12 months ({window_phrase(report)}) we sold or shared the following "
        f"categories of personal information: {'; '.join(parts)}."
    )


def business_purpose_statement(report: CcpaReport) -> str:
    """Section (ii) as the paragraph a privacy policy publishes."""
    if not report.business_purpose:
        return (
            f"In the preceding 12 months ({window_phrase(report)}) we did not disclose personal "
            "information for a business purpose."
        )
    parts = [f"{c.name} ({c.letter}) to {_recipients(c)}" for c in report.business_purpose]
    return (
        f"In the preceding 12 months ({window_phrase(report)}) we disclosed the following "
        f"categories of personal information for a business purpose: {'; '.join(parts)}."
    )


_COUNTS_NOTE = (
    "Counts are ledger events (one per disclosure) and distinct subject pseudonyms; an "
    "event counts under every category its data belongs to."
)


def ccpa_document(report: CcpaReport) -> Document:
    """The report as a document: the privacy-policy paragraphs, tables, chart, provenance."""
    sold = Section(
        heading="Categories sold or shared",
        paragraphs=(sold_or_shared_statement(report),),
        table=Table(
            ("Category", "Sold or shared", "Recipient categories", "Events", "Subjects"),
            tuple(
                (
                    f"{c.name} ({c.letter})",
                    and_list([DISCLOSURE_KIND_PHRASES[k] for k in c.disclosure_kinds]),
                    ", ".join(recipient_phrase(r) for r in c.recipient_categories),
                    str(c.events),
                    str(c.distinct_subjects),
                )
                for c in report.sold_or_shared
            ),
            (False, False, False, True, True),
        )
        if report.sold_or_shared
        else None,
        section_id="sold-or-shared",
    )
    business = Section(
        heading="Categories disclosed for a business purpose",
        paragraphs=(business_purpose_statement(report),),
        table=Table(
            ("Category", "Recipient categories", "Business purposes", "Events", "Subjects"),
            tuple(
                (
                    f"{c.name} ({c.letter})",
                    ", ".join(recipient_phrase(r) for r in c.recipient_categories),
                    "; ".join(f"({p.number}) {p.name}" for p in c.business_purposes),
                    str(c.events),
                    str(c.distinct_subjects),
                )
                for c in report.business_purpose
            ),
            (False, False, False, True, True),
        )
        if report.business_purpose
        else None,
        section_id="business-purpose",
    )
    volume = _monthly_section(report.monthly)
    return Document(
        title="Personal information sold, shared or disclosed in the preceding 12 months",
        basis=f"Cal. Civ. Code 1798.130(a)(5)(C), as of {rfc3339(report.as_of)}.",
        sections=(sold, business, volume),
        provenance=report.source,
        provenance_notes=(_COUNTS_NOTE,),
    )


def span_phrase(span: MonthSpan) -> str:
    """The days of a month a window covers: ``4 to 31 December 2025`` (exact UTC times when
    a bound is not midnight)."""
    if all(m.time() == datetime.min.time() for m in (span.start, span.end)):
        last = span.end - timedelta(days=1)
        if last.date() == span.start.date():
            return _day(last)
        return f"{span.start.day} to {_day(last)}"
    return f"{span.start:%Y-%m-%d %H:%M:%S} UTC up to {span.end:%Y-%m-%d %H:%M:%S} UTC"


def _monthly_section(monthly: MonthlyVolume) -> Section:
    """One row per month (so the table is as narrow as the recipient categories allow, and
    fits a printed page), a partial month marked in its row, the chart, and what they mean.
    """
    partial = [span for span in monthly.spans if span.partial]
    caption = "Disclosures per month (UTC) and recipient category, all kinds."
    if partial:
        caption += (
            " Partial months, which the 12-month window covers only in part, count fewer "
            "days: " + and_list([f"{span.month} ({span_phrase(span)})" for span in partial]) + "."
        )
    categories = monthly.by_recipient_category
    table = Table(
        ("Month", *(recipient_phrase(c) for c, _ in categories), "All categories"),
        (
            *(
                (
                    f"{span.month} (partial)" if span.partial else span.month,
                    *(str(values[i]) for _, values in categories),
                    str(total),
                )
                for i, (span, total) in enumerate(zip(monthly.spans, monthly.totals, strict=True))
            ),
            (
                "Total",
                *(str(sum(values)) for _, values in categories),
                str(sum(monthly.totals)),
            ),
        ),
        (False, *(True for _ in categories), True),
        caption=caption,
        wide=True,
    )
    first, last = (monthly.months[0], monthly.months[-1]) if monthly.months else ("-", "-")
    chart = stacked_bars(
        chart_id="disclosures-per-month",
        title="Disclosures per recipient category per month",
        description=(
            f"Stacked bars, one per month from {first} to {last}"
            + ("; hatched bars are partial months" if partial else "")
            + "; the table below gives the same numbers."
        ),
        periods=monthly.months,
        series=dict(categories),
        labels={c: recipient_phrase(c) for c, _ in categories},
        partial=[span.partial for span in monthly.spans],
    )
    chart_caption = "One bar per month, stacked by recipient category"
    if partial:
        chart_caption += "; a hatched bar is a partial month, with fewer days counted"
    return Section(
        heading="Disclosures per month",
        table=table,
        chart_svg=chart,
        chart_caption=chart_caption + ". The table below gives the numbers.",
        section_id="per-month",
    )


CSV_HEADERS = (
    "list",
    "letter",
    "name",
    "disclosure_kinds",
    "recipient_categories",
    "business_purposes",
    "events",
    "distinct_subjects",
)


def ccpa_csv(report: CcpaReport) -> str:
    rows: list[tuple[object, ...]] = [
        (
            "sold_or_shared",
            c.letter,
            c.name,
            c.disclosure_kinds,
            c.recipient_categories,
            (),
            c.events,
            c.distinct_subjects,
        )
        for c in report.sold_or_shared
    ]
    rows += [
        (
            "business_purpose",
            c.letter,
            c.name,
            ("business_purpose",),
            c.recipient_categories,
            tuple(p.number for p in c.business_purposes),
            c.events,
            c.distinct_subjects,
        )
        for c in report.business_purpose
    ]
    meta = [
        *provenance_meta(report.source),
        ("sold_or_shared_none", "true" if report.none_sold_or_shared else "false"),
    ]
    return render_csv(JSON_VERSION, meta, CSV_HEADERS, rows)


CCPA_REPORT_FORMATS: ReportFormats[CcpaReport] = ReportFormats(
    "CCPA", ccpa_contract, ccpa_document, ccpa_csv
)
