"""The CCPA privacy-policy lists of Cal. Civ. Code 1798.130(a)(5)(C), from the ledger.

For the window ``[as_of - 12 calendar months, as_of)`` in UTC (:mod:`reports.window`):

(i)  the categories of personal information sold or shared, with the categories of
     recipients, or the statement that none were;
(ii) the categories disclosed for a business purpose, each with its recipient categories,
     business purposes (1798.140(e)), number of events and of distinct subjects.

A row counts under every CCPA letter it was classified with at ingest (``ccpa_letters``,
each letter once per row). Everything is computed by DuckDB in aggregate queries read in
one transaction; no disclosure row reaches Python, only groups of them. The queries read
the ledger's derived columns (:mod:`ledger.derived`): ``ccpa_mask``, the letters as bits,
and ``subject_key``, the fixed-width key subjects are counted by. The report also
states what it was computed from (:mod:`reports.provenance`): the window, the
reference-data versions of the rows counted, each chain's head (sequence number and hash)
and the range of sequence numbers counted, and when it was generated.

Formats: ``json`` (below), ``md`` and ``html`` (the paragraphs a privacy policy publishes,
the tables, and in HTML an inline SVG chart of disclosures per recipient category per
month), ``csv`` (one row per list and category, provenance in ``#`` lines above).

JSON shape ``ccpa-report/1``: :class:`reports.contracts.CcpaReportJson`, published as
``docs/schemas/ccpa-report-1.schema.json``.

``events`` counts ledger rows (one per disclosure event); ``distinct_subjects`` counts
distinct subjects, by ``subject_key`` (the first 64 bits of the pseudonym: exact unless two
pseudonyms share them, see :mod:`ledger.derived`).

CSV columns: ``list`` (``sold_or_shared`` or ``business_purpose``), ``letter``, ``name``,
``disclosure_kinds``, ``recipient_categories``, ``business_purposes`` (lists joined with
``;``), ``events``, ``distinct_subjects``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from ledger.derived import LETTERS, UNKNOWN_LETTER_BIT, require_derived
from ledger.store import Ledger
from reports.base import ReportFormats, read_snapshot
from reports.chart import stacked_bars
from reports.contracts import (
    BusinessPurposeCategory,
    BusinessPurposeJson,
    BusinessPurposeList,
    CcpaReportJson,
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
from reports.errors import ReportError
from reports.provenance import (
    ChainRange,
    Provenance,
    count_chains,
    ledger_report_fields,
    rfc3339,
)
from reports.vocabulary import (
    BUSINESS_PURPOSE_NAMES,
    CCPA_CATEGORY_NAMES,
    DISCLOSURE_KIND_PHRASES,
    DISCLOSURE_KIND_TO,
    RECIPIENT_CATEGORY_PHRASES,
    recipient_phrase,
)
from reports.window import months_in, naive_utc, report_window

__all__ = [
    "CCPA_FORMATS",
    "JSON_VERSION",
    "BusinessPurpose",
    "CategoryDisclosed",
    "CcpaReport",
    "ChainRange",
    "MonthlyVolume",
    "business_purpose_statement",
    "ccpa_contract",
    "ccpa_csv",
    "ccpa_document",
    "ccpa_json",
    "ccpa_report",
    "render_ccpa",
    "sold_or_shared_statement",
    "window_phrase",
]

JSON_VERSION: Final = "ccpa-report/1"
SOLD_OR_SHARED_KINDS = ("sale", "share")
KNOWN_KINDS = frozenset({"business_purpose", *SOLD_OR_SHARED_KINDS})


# -- the report as values --------------------------------------------------------------------
@dataclass(frozen=True)
class BusinessPurpose:
    number: str
    name: str


@dataclass(frozen=True)
class CategoryDisclosed:
    """One CCPA category in one of the two lists."""

    letter: str
    name: str
    recipient_categories: tuple[str, ...]
    events: int
    distinct_subjects: int
    business_purposes: tuple[BusinessPurpose, ...] = ()
    disclosure_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class MonthlyVolume:
    """Disclosures per recipient category per month of the window (the HTML chart)."""

    months: tuple[str, ...]  # "2025-03", every month the window touches, in order
    by_recipient_category: tuple[tuple[str, tuple[int, ...]], ...]  # sorted by category


@dataclass(frozen=True)
class CcpaReport:
    source: Provenance
    sold_or_shared: tuple[CategoryDisclosed, ...]
    business_purpose: tuple[CategoryDisclosed, ...]
    monthly: MonthlyVolume

    @property
    def none_sold_or_shared(self) -> bool:
        return not self.sold_or_shared

    # the provenance, by the names this report has always used
    @property
    def as_of(self) -> datetime:
        return self.source.as_of

    @property
    def window_start(self) -> datetime:
        assert self.source.window_start is not None
        return self.source.window_start

    @property
    def window_end(self) -> datetime:
        return self.source.window_end

    @property
    def generated_at(self) -> datetime:
        return self.source.generated_at

    @property
    def ledger_format_version(self) -> str | None:
        return self.source.ledger_format_version

    @property
    def reference_versions(self) -> tuple[str, ...]:
        return self.source.reference_versions

    @property
    def events_counted(self) -> int:
        return self.source.events_counted

    @property
    def first_event_at(self) -> datetime | None:
        return self.source.first_event_at

    @property
    def last_event_at(self) -> datetime | None:
        return self.source.last_event_at

    @property
    def chains(self) -> tuple[ChainRange, ...]:
        return self.source.chains


# -- computing it ----------------------------------------------------------------------------
_IN_WINDOW = "occurred_at >= $start AND occurred_at < $end"

# Two passes over the window's rows, both over narrow columns:
# - the rows grouped by (kind, recipient category, business purpose, letter mask, month,
#   chain, reference version): a few thousand groups, from which Python takes the
#   categories (a mask's letters), the monthly chart and the provenance (per chain: rows,
#   seq range, times, versions);
# - each subject's letters OR-ed over their rows (bit i: letter A+i; bit 12: a letter outside
#   A to L), once over their business-purpose rows and once over the others, then subjects
#   counted per (list, mask). A letter's distinct subjects in a list are the subjects with
#   its bit set there: exact, with no per-letter set of subjects and no unnesting of rows.
#   (bench/bench_reports.py measures the choice.)
_GROUPS_SQL = f"""
SELECT disclosure_kind, recipient_category, business_purpose, ccpa_mask,
       year(occurred_at) * 12 + month(occurred_at) - 1 AS month, chain_id, reference_version,
       count(*), min(seq), max(seq), min(occurred_at), max(occurred_at)
FROM disclosures WHERE {_IN_WINDOW}
GROUP BY ALL
"""

_SUBJECT_MASKS_SQL = f"""
SELECT for_business, m, count(*) FROM (
    SELECT subject_key, disclosure_kind = 'business_purpose' AS for_business,
           bit_or(ccpa_mask) AS m
    FROM disclosures WHERE {_IN_WINDOW}
    GROUP BY subject_key, for_business
)
GROUP BY ALL
"""

_UNKNOWN_LETTERS_SQL = f"""
SELECT DISTINCT letter FROM (
    SELECT unnest(ccpa_letters) AS letter FROM disclosures
    WHERE {_IN_WINDOW} AND (ccpa_mask >> {UNKNOWN_LETTER_BIT}) & 1 = 1
) WHERE length(letter) <> 1 OR instr('{LETTERS}', letter) = 0
ORDER BY letter
"""


@dataclass
class _Accumulated:
    events: int = 0
    kinds: set[str] = field(default_factory=set)
    recipients: set[str] = field(default_factory=set)
    purposes: set[str] = field(default_factory=set)

    def add(self, kind: str, recipient: str, purpose: str, events: int) -> None:
        self.events += events
        self.kinds.add(kind)
        self.recipients.add(recipient)
        self.purposes.add(purpose)


def ccpa_report(
    ledger: Ledger, as_of: date | datetime, *, generated_at: datetime | None = None
) -> CcpaReport:
    """The 1798.130(a)(5)(C) lists for the 12 months before ``as_of`` (see module doc)."""
    require_derived(ledger)
    start, end = report_window(as_of)
    params = {"start": naive_utc(start), "end": naive_utc(end)}
    with read_snapshot(
        ledger, "CCPA report", window_start=start, window_end=end, generated_at=generated_at
    ) as snapshot:
        cursor = snapshot.cursor
        groups = cursor.execute(_GROUPS_SQL, params).fetchall()
        subject_masks = cursor.execute(_SUBJECT_MASKS_SQL, params).fetchall()
        unknown: list[str] = []
        if any(r[3] >> UNKNOWN_LETTER_BIT & 1 for r in groups):
            unknown = [str(r[0]) for r in cursor.execute(_UNKNOWN_LETTERS_SQL, params).fetchall()]
        source = snapshot.provenance(
            count_chains((r[5], r[7], r[8], r[9], r[10], r[11], r[6]) for r in groups)
        )

    if unknown:
        _category_name(unknown[0], ledger)  # raises, naming the letter
    categories: dict[tuple[bool, str], _Accumulated] = defaultdict(_Accumulated)
    subjects: dict[tuple[bool, str], int] = defaultdict(int)
    for for_business, subject_mask, count in subject_masks:
        for i, letter in enumerate(LETTERS):
            if subject_mask >> i & 1:
                subjects[(bool(for_business), letter)] += int(count)
    monthly: dict[tuple[str, str], int] = defaultdict(int)
    for kind, recipient, purpose, mask, month, _chain, _version, events, *_ in groups:
        monthly[(f"{month // 12:04d}-{month % 12 + 1:02d}", recipient)] += int(events)
        if kind not in KNOWN_KINDS:
            raise ReportError(
                f"ledger {ledger.path} holds rows of disclosure_kind {[kind]}; only "
                "business_purpose, sale and share are known"
            )
        for i, letter in enumerate(LETTERS):
            if mask >> i & 1:
                categories[(kind == "business_purpose", letter)].add(
                    kind, recipient, purpose, int(events)
                )

    sold_or_shared: list[CategoryDisclosed] = []
    business: list[CategoryDisclosed] = []
    for (for_business, letter), acc in sorted(categories.items(), key=lambda g: (g[0][1], g[0][0])):
        name = _category_name(letter, ledger)
        common: dict[str, Any] = {
            "letter": letter,
            "name": name,
            "recipient_categories": tuple(sorted(acc.recipients)),
            "events": acc.events,
            "distinct_subjects": subjects.get((for_business, letter), 0),
        }
        if for_business:
            business.append(
                CategoryDisclosed(
                    **common,
                    business_purposes=_business_purposes(letter, acc.purposes, ledger),
                )
            )
        else:
            sold_or_shared.append(
                CategoryDisclosed(**common, disclosure_kinds=tuple(sorted(acc.kinds)))
            )
    return CcpaReport(
        source=source,
        sold_or_shared=tuple(sold_or_shared),
        business_purpose=tuple(business),
        monthly=_monthly([(m, c, n) for (m, c), n in monthly.items()], start, end),
    )


def _monthly(rows: Sequence[tuple[Any, ...]], start: datetime, end: datetime) -> MonthlyVolume:
    months = months_in(start, end)
    position = {m: i for i, m in enumerate(months)}
    series: dict[str, list[int]] = {}
    for month, category, events in rows:
        values = series.setdefault(str(category), [0] * len(months))
        values[position[month]] += int(events)
    ordered = sorted(series, key=_category_order)
    return MonthlyVolume(tuple(months), tuple((c, tuple(series[c])) for c in ordered))


def _category_order(category: str) -> tuple[int, str]:
    known = list(RECIPIENT_CATEGORY_PHRASES)
    return (known.index(category) if category in known else len(known), category)


def _category_name(letter: str, ledger: Ledger) -> str:
    try:
        return CCPA_CATEGORY_NAMES[letter]
    except KeyError:
        raise ReportError(
            f"ledger {ledger.path} holds rows classified with CCPA letter {letter!r}, which is "
            f"not one of {', '.join(CCPA_CATEGORY_NAMES)}; check the category mapping of the "
            "reference data those rows were classified with"
        ) from None


def _business_purposes(
    letter: str, numbers: set[str], ledger: Ledger
) -> tuple[BusinessPurpose, ...]:
    unknown = sorted(n for n in numbers if n not in BUSINESS_PURPOSE_NAMES)
    if unknown:
        raise ReportError(
            f"ledger {ledger.path} holds business-purpose rows of category {letter} with "
            f"business_purpose {unknown}, which are not 1798.140(e) purposes 1 to 8; check the "
            "purpose mapping of the reference data those rows were classified with"
        )
    ordered = sorted(numbers, key=int)
    return tuple(BusinessPurpose(n, BUSINESS_PURPOSE_NAMES[n]) for n in ordered)


# -- rendering ------------------------------------------------------------------------------
def render_ccpa(report: CcpaReport, fmt: str) -> str:
    """The report as ``json`` (shape ``ccpa-report/1``), ``md``, ``html`` or ``csv`` text."""
    return CCPA_FORMATS.render(report, fmt)


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
    monthly = report.monthly
    months_table = Table(
        ("Recipient category", *monthly.months, "Total"),
        tuple(
            (recipient_phrase(c), *(str(v) for v in values), str(sum(values)))
            for c, values in monthly.by_recipient_category
        ),
        (False, *(True for _ in monthly.months), True),
        caption="Disclosures per recipient category per month (UTC), all kinds.",
    )
    chart = stacked_bars(
        chart_id="disclosures-per-month",
        title="Disclosures per recipient category per month",
        description=(
            f"Stacked bars, one per month from {monthly.months[0] if monthly.months else '-'} "
            f"to {monthly.months[-1] if monthly.months else '-'}; the table below gives the "
            "same numbers."
        ),
        periods=monthly.months,
        series=dict(monthly.by_recipient_category),
        labels={c: recipient_phrase(c) for c, _ in monthly.by_recipient_category},
    )
    volume = Section(
        heading="Disclosures per month",
        table=months_table,
        chart_svg=chart,
        section_id="per-month",
    )
    return Document(
        title="Personal information sold, shared or disclosed in the preceding 12 months",
        basis=f"Cal. Civ. Code 1798.130(a)(5)(C), as of {rfc3339(report.as_of)}.",
        sections=(sold, business, volume),
        provenance=report.source,
        provenance_notes=(_COUNTS_NOTE,),
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


CCPA_FORMATS: ReportFormats[CcpaReport] = ReportFormats(
    "CCPA", ccpa_contract, ccpa_document, ccpa_csv
)
