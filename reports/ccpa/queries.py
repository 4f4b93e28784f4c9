"""The CCPA report computed from the ledger: aggregate queries in one snapshot, merged into
the report's values. No disclosure row reaches Python, only groups of them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ledger.derived import LETTERS, UNKNOWN_LETTER_BIT, require_derived
from ledger.store import Ledger
from reports.base import period_policy, read_snapshot
from reports.ccpa.values import (
    KNOWN_KINDS,
    BusinessPurpose,
    CategoryDisclosed,
    CcpaReport,
    MonthlyVolume,
)
from reports.errors import ReportError
from reports.provenance import (
    count_chains,
)
from reports.vocabulary import (
    BUSINESS_PURPOSE_NAMES,
    CCPA_CATEGORY_NAMES,
    RECIPIENT_CATEGORY_PHRASES,
)
from reports.window import month_spans, naive_utc, report_window

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
    ledger: Ledger,
    as_of: date | datetime,
    *,
    generated_at: datetime | None = None,
    allow_incomplete: bool = False,
) -> CcpaReport:
    """The 1798.130(a)(5)(C) lists for the 12 months before ``as_of`` (see module doc). A
    window past the ledger's coverage is refused
    (:class:`~reports.errors.IncompleteLedgerError`) unless ``allow_incomplete``, which marks
    the report provisional (:mod:`reports.coverage`)."""
    require_derived(ledger)
    start, end = report_window(as_of)
    params = {"start": naive_utc(start), "end": naive_utc(end)}
    with read_snapshot(
        ledger,
        "CCPA report",
        window_start=start,
        window_end=end,
        generated_at=generated_at,
        on_incomplete=period_policy(allow_incomplete),
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
    spans = month_spans(start, end)
    position = {span.month: i for i, span in enumerate(spans)}
    series: dict[str, list[int]] = {}
    for month, category, events in rows:
        values = series.setdefault(str(category), [0] * len(spans))
        values[position[month]] += int(events)
    ordered = sorted(series, key=_category_order)
    return MonthlyVolume(tuple(spans), tuple((c, tuple(series[c])) for c in ordered))


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
