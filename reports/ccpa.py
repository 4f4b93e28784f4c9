"""The CCPA privacy-policy lists of Cal. Civ. Code 1798.130(a)(5)(C), from the ledger.

For the window ``[as_of - 12 calendar months, as_of)`` in UTC (:mod:`reports.window`):

(i)  the categories of personal information sold or shared, with the categories of
     recipients, or the statement that none were;
(ii) the categories disclosed for a business purpose, each with its recipient categories,
     business purposes (1798.140(e)), number of events and of distinct subjects.

A row counts under every CCPA letter it was classified with at ingest (``ccpa_letters``,
each letter once per row). Everything is computed by DuckDB in two aggregate queries read
in one transaction; no row reaches Python. The report also states what it was computed
from: the window, the reference-data versions of the rows counted, each chain's head
(sequence number and hash) and the range of sequence numbers counted, and when it was
generated.

JSON shape ``ccpa-report/1`` (stable: fields are only ever added, never renamed or
removed; a breaking change gets ``ccpa-report/2``)::

    {
      "report": "ccpa-report/1",
      "generated_at": "2025-03-01T09:30:00Z",          # RFC 3339, UTC
      "as_of": "2025-03-01T00:00:00Z",
      "window": {"start": "2024-03-01T00:00:00Z",        # included
                 "end": "2025-03-01T00:00:00Z"},         # excluded (= as_of)
      "source": {
        "ledger_format_version": "1",
        "reference_versions": ["2025.1"],                # of the rows counted, sorted
        "events_counted": 1234,                          # rows in the window
        "first_event_at": "2024-03-01T00:00:05Z",        # null when nothing was counted
        "last_event_at": "2025-02-28T23:59:01Z",
        "chains": [                                      # every chain, sorted by chain_id
          {"chain_id": "privacy.disclosures.v1/0",
           "head_seq": 2000,                             # last row at generation time
           "head_chain_hash": "9f0c...",                 # hex of that row's chain_hash
           "events_counted": 1234,
           "first_seq_counted": 1, "last_seq_counted": 1999}   # null when none counted
        ]
      },
      "sold_or_shared": {
        "none": true,
        "statement": "We did not sell or share personal information ... .",
        "categories": [                                  # sorted by letter; [] when none
          {"letter": "F", "name": "Internet or other electronic network activity information",
           "disclosure_kinds": ["share"],                # "sale" and/or "share"
           "recipient_categories": ["service_provider"], # sorted keys
           "events": 10, "distinct_subjects": 7}
        ]
      },
      "business_purpose": {
        "categories": [                                  # sorted by letter
          {"letter": "A", "name": "Identifiers",
           "recipient_categories": ["payment_provider", "service_provider"],
           "business_purposes": [{"number": "2", "name": "Helping to ensure ..."},
                                 {"number": "5", "name": "Performing services ..."}],
           "events": 900, "distinct_subjects": 311}
        ]
      }
    }

``events`` counts ledger rows (one per disclosure event); ``distinct_subjects`` counts
distinct subject pseudonyms. The Markdown rendering reads like the paragraph a privacy
policy publishes, followed by the tables and the provenance.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import duckdb

from ledger.store import Ledger
from reports.render import markdown_table
from reports.vocabulary import (
    BUSINESS_PURPOSE_NAMES,
    CCPA_CATEGORY_NAMES,
    DISCLOSURE_KIND_PHRASES,
    DISCLOSURE_KIND_TO,
    recipient_phrase,
)
from reports.window import naive_utc, report_window
from schemas.errors import ReportError

JSON_VERSION = "ccpa-report/1"
CcpaFormat = Literal["json", "md"]
CCPA_FORMATS: tuple[CcpaFormat, ...] = ("json", "md")
SOLD_OR_SHARED_KINDS = ("sale", "share")


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
class ChainRange:
    """A chain's head at generation time and the rows of it the report counted."""

    chain_id: str
    head_seq: int
    head_chain_hash: str
    events_counted: int
    first_seq_counted: int | None
    last_seq_counted: int | None


@dataclass(frozen=True)
class CcpaReport:
    as_of: datetime
    window_start: datetime
    window_end: datetime
    generated_at: datetime
    ledger_format_version: str | None
    reference_versions: tuple[str, ...]
    events_counted: int
    first_event_at: datetime | None
    last_event_at: datetime | None
    chains: tuple[ChainRange, ...]
    sold_or_shared: tuple[CategoryDisclosed, ...]
    business_purpose: tuple[CategoryDisclosed, ...]

    @property
    def none_sold_or_shared(self) -> bool:
        return not self.sold_or_shared


# -- computing it ----------------------------------------------------------------------------
_IN_WINDOW = "occurred_at >= $start AND occurred_at < $end"

_CATEGORIES_SQL = f"""
SELECT disclosure_kind = 'business_purpose' AS for_business_purpose,
       letter,
       list_sort(list(DISTINCT disclosure_kind)) AS disclosure_kinds,
       list_sort(list(DISTINCT recipient_category)) AS recipient_categories,
       list_sort(list(DISTINCT business_purpose)) AS business_purposes,
       count(*) AS events,
       count(DISTINCT subject_pseudonym) AS distinct_subjects
FROM (
    SELECT disclosure_kind, recipient_category, business_purpose, subject_pseudonym,
           ccpa_letters,
           unnest(ccpa_letters) AS letter,
           generate_subscripts(ccpa_letters, 1) AS position
    FROM disclosures
    WHERE {_IN_WINDOW}
)
WHERE list_position(ccpa_letters, letter) = position  -- each letter once per row
GROUP BY ALL
ORDER BY letter, for_business_purpose
"""
# (list_position keeps a letter's first occurrence: much cheaper than list_distinct per row)

_CHAINS_SQL = f"""
SELECT chain_id,
       max(seq) AS head_seq,
       arg_max(chain_hash, seq) AS head_chain_hash,
       count(*) FILTER (WHERE {_IN_WINDOW}) AS events_counted,
       min(seq) FILTER (WHERE {_IN_WINDOW}) AS first_seq_counted,
       max(seq) FILTER (WHERE {_IN_WINDOW}) AS last_seq_counted,
       min(occurred_at) FILTER (WHERE {_IN_WINDOW}) AS first_event_at,
       max(occurred_at) FILTER (WHERE {_IN_WINDOW}) AS last_event_at,
       list(DISTINCT reference_version) FILTER (WHERE {_IN_WINDOW}) AS reference_versions
FROM disclosures
GROUP BY chain_id
ORDER BY chain_id
"""


def ccpa_report(
    ledger: Ledger, as_of: date | datetime, *, generated_at: datetime | None = None
) -> CcpaReport:
    """The 1798.130(a)(5)(C) lists for the 12 months before ``as_of`` (see module doc)."""
    start, end = report_window(as_of)
    params = {"start": naive_utc(start), "end": naive_utc(end)}
    cursor = ledger.con.cursor()  # its own transaction: both queries see one snapshot
    try:
        cursor.execute("SET enable_progress_bar = false")
        cursor.execute("BEGIN TRANSACTION")
        category_rows = cursor.execute(_CATEGORIES_SQL, params).fetchall()
        chain_rows = cursor.execute(_CHAINS_SQL, params).fetchall()
        meta = cursor.execute(
            "SELECT value FROM ledger_meta WHERE key = 'format_version'"
        ).fetchone()
        cursor.execute("COMMIT")
    except duckdb.Error as exc:
        raise ReportError(
            f"cannot compute the CCPA report from ledger {ledger.path}: {exc}"
        ) from exc
    finally:
        cursor.close()

    sold_or_shared: list[CategoryDisclosed] = []
    business: list[CategoryDisclosed] = []
    for for_business, letter, kinds, recipients, purposes, events, subjects in category_rows:
        name = _category_name(letter, ledger)
        if for_business:
            business.append(
                CategoryDisclosed(
                    letter=letter,
                    name=name,
                    recipient_categories=tuple(recipients),
                    events=int(events),
                    distinct_subjects=int(subjects),
                    business_purposes=_business_purposes(letter, purposes, ledger),
                )
            )
        else:
            unknown = sorted(set(kinds) - set(SOLD_OR_SHARED_KINDS))
            if unknown:
                raise ReportError(
                    f"ledger {ledger.path} holds rows of disclosure_kind {unknown} (category "
                    f"{letter}); only business_purpose, sale and share are known"
                )
            sold_or_shared.append(
                CategoryDisclosed(
                    letter=letter,
                    name=name,
                    recipient_categories=tuple(recipients),
                    events=int(events),
                    distinct_subjects=int(subjects),
                    disclosure_kinds=tuple(kinds),
                )
            )

    chains = tuple(
        ChainRange(
            chain_id=chain_id,
            head_seq=int(head_seq),
            head_chain_hash=bytes(head_hash).hex(),
            events_counted=int(counted),
            first_seq_counted=None if first is None else int(first),
            last_seq_counted=None if last is None else int(last),
        )
        for chain_id, head_seq, head_hash, counted, first, last, *_ in chain_rows
    )
    versions = sorted({v for row in chain_rows for v in (row[8] or [])})
    firsts = [row[6] for row in chain_rows if row[6] is not None]
    lasts = [row[7] for row in chain_rows if row[7] is not None]
    return CcpaReport(
        as_of=end,
        window_start=start,
        window_end=end,
        generated_at=(generated_at or datetime.now(UTC)).astimezone(UTC),
        ledger_format_version=None if meta is None else str(meta[0]),
        reference_versions=tuple(versions),
        events_counted=sum(c.events_counted for c in chains),
        first_event_at=min(firsts).replace(tzinfo=UTC) if firsts else None,
        last_event_at=max(lasts).replace(tzinfo=UTC) if lasts else None,
        chains=chains,
        sold_or_shared=tuple(sold_or_shared),
        business_purpose=tuple(business),
    )


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
    letter: str, numbers: Sequence[str], ledger: Ledger
) -> tuple[BusinessPurpose, ...]:
    unknown = [n for n in numbers if n not in BUSINESS_PURPOSE_NAMES]
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
    """The report as ``json`` (shape ``ccpa-report/1``) or ``md`` text."""
    if fmt == "json":
        return json.dumps(ccpa_json(report), indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return ccpa_markdown(report)
    raise ReportError(
        f"unknown format {fmt!r} for the CCPA report; choose one of {', '.join(CCPA_FORMATS)}"
    )


def _rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _category_json(category: CategoryDisclosed, *, for_business: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"letter": category.letter, "name": category.name}
    if not for_business:
        data["disclosure_kinds"] = list(category.disclosure_kinds)
    data["recipient_categories"] = list(category.recipient_categories)
    if for_business:
        data["business_purposes"] = [
            {"number": p.number, "name": p.name} for p in category.business_purposes
        ]
    data["events"] = category.events
    data["distinct_subjects"] = category.distinct_subjects
    return data


def ccpa_json(report: CcpaReport) -> dict[str, Any]:
    """The report as the documented ``ccpa-report/1`` JSON object."""
    return {
        "report": JSON_VERSION,
        "generated_at": _rfc3339(report.generated_at),
        "as_of": _rfc3339(report.as_of),
        "window": {"start": _rfc3339(report.window_start), "end": _rfc3339(report.window_end)},
        "source": {
            "ledger_format_version": report.ledger_format_version,
            "reference_versions": list(report.reference_versions),
            "events_counted": report.events_counted,
            "first_event_at": _rfc3339(report.first_event_at),
            "last_event_at": _rfc3339(report.last_event_at),
            "chains": [
                {
                    "chain_id": c.chain_id,
                    "head_seq": c.head_seq,
                    "head_chain_hash": c.head_chain_hash,
                    "events_counted": c.events_counted,
                    "first_seq_counted": c.first_seq_counted,
                    "last_seq_counted": c.last_seq_counted,
                }
                for c in report.chains
            ],
        },
        "sold_or_shared": {
            "none": report.none_sold_or_shared,
            "statement": sold_or_shared_statement(report),
            "categories": [_category_json(c, for_business=False) for c in report.sold_or_shared],
        },
        "business_purpose": {
            "categories": [_category_json(c, for_business=True) for c in report.business_purpose]
        },
    }


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def window_phrase(report: CcpaReport) -> str:
    """``1 March 2024 to 28 February 2025`` (whole days), else exact UTC times."""
    start, end = report.window_start, report.window_end
    midnight = all(m.time() == datetime.min.time() for m in (start, end))
    if midnight:
        return f"{_day(start)} to {_day(end - timedelta(days=1))}"
    return f"{start:%Y-%m-%d %H:%M:%S} UTC up to {end:%Y-%m-%d %H:%M:%S} UTC"


def _and_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _recipients(category: CategoryDisclosed) -> str:
    return _and_list([recipient_phrase(r) for r in category.recipient_categories])


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


def ccpa_markdown(report: CcpaReport) -> str:
    """The report as Markdown: the privacy-policy paragraphs, tables, then provenance."""
    out = [
        "# Personal information sold, shared or disclosed in the preceding 12 months",
        "",
        f"*Cal. Civ. Code 1798.130(a)(5)(C), as of {_rfc3339(report.as_of)}.*",
        "",
        "## Categories sold or shared",
        "",
        sold_or_shared_statement(report),
        "",
    ]
    if report.sold_or_shared:
        out.append(
            markdown_table(
                ["Category", "Sold or shared", "Recipient categories", "Events", "Subjects"],
                [
                    [
                        f"{c.name} ({c.letter})",
                        _and_list([DISCLOSURE_KIND_PHRASES[k] for k in c.disclosure_kinds]),
                        ", ".join(recipient_phrase(r) for r in c.recipient_categories),
                        str(c.events),
                        str(c.distinct_subjects),
                    ]
                    for c in report.sold_or_shared
                ],
            )
        )
    out += [
        "## Categories disclosed for a business purpose",
        "",
        business_purpose_statement(report),
        "",
    ]
    if report.business_purpose:
        out.append(
            markdown_table(
                ["Category", "Recipient categories", "Business purposes", "Events", "Subjects"],
                [
                    [
                        f"{c.name} ({c.letter})",
                        ", ".join(recipient_phrase(r) for r in c.recipient_categories),
                        "; ".join(f"({p.number}) {p.name}" for p in c.business_purposes),
                        str(c.events),
                        str(c.distinct_subjects),
                    ]
                    for c in report.business_purpose
                ],
            )
        )
    out += [
        "## How this report was produced",
        "",
        f"- Window: from {_rfc3339(report.window_start)} (included) to "
        f"{_rfc3339(report.window_end)} (excluded), UTC.",
        f"- Generated at: {_rfc3339(report.generated_at)}.",
        f"- Events counted: {report.events_counted}"
        + (
            f", which occurred from {_rfc3339(report.first_event_at)} to "
            f"{_rfc3339(report.last_event_at)}."
            if report.first_event_at and report.last_event_at
            else "."
        ),
        "- Reference data version(s) of the events counted: "
        + (", ".join(report.reference_versions) or "none")
        + ".",
        f"- Ledger format version: {report.ledger_format_version or 'unknown'}.",
        "- Counts are ledger events (one per disclosure) and distinct subject pseudonyms; an "
        "event counts under every category its data belongs to.",
        "",
    ]
    if report.chains:
        out.append(
            markdown_table(
                ["Chain", "Head seq", "Head chain hash", "Events counted", "Seq range counted"],
                [
                    [
                        c.chain_id,
                        str(c.head_seq),
                        c.head_chain_hash,
                        str(c.events_counted),
                        "-"
                        if c.first_seq_counted is None
                        else f"{c.first_seq_counted}..{c.last_seq_counted}",
                    ]
                    for c in report.chains
                ],
            )
        )
    else:
        out.append("The ledger holds no events.\n")
    return "\n".join(out)
