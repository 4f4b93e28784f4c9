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
month), ``csv`` (one row per list and category, provenance in ``#`` lines above). The
monthly breakdown (one row per month, one column per recipient category) is in json, md
and html alike; the first and last months are marked partial when the window covers them
only in part (:func:`reports.window.month_spans`).

JSON shape ``ccpa-report/1``: :class:`reports.contracts.CcpaReportJson`, published as
``docs/schemas/ccpa-report-1.schema.json``.

``events`` counts ledger rows (one per disclosure event); ``distinct_subjects`` counts
distinct subjects, by ``subject_key`` (the first 64 bits of the pseudonym: exact unless two
pseudonyms share them, see :mod:`ledger.derived`).

CSV columns: ``list`` (``sold_or_shared`` or ``business_purpose``), ``letter``, ``name``,
``disclosure_kinds``, ``recipient_categories``, ``business_purposes`` (lists joined with
``;``), ``events``, ``distinct_subjects``.

The package by concern: :mod:`~reports.ccpa.values` (what the report holds),
:mod:`~reports.ccpa.queries` (computing it from the ledger) and
:mod:`~reports.ccpa.rendering` (JSON, Markdown, HTML, CSV).
"""

from __future__ import annotations

from reports.ccpa.queries import ccpa_report
from reports.ccpa.rendering import (
    CCPA_REPORT_FORMATS,
    CSV_HEADERS,
    business_purpose_statement,
    ccpa_contract,
    ccpa_csv,
    ccpa_document,
    ccpa_json,
    render_ccpa,
    sold_or_shared_statement,
    window_phrase,
)
from reports.ccpa.values import (
    JSON_VERSION,
    BusinessPurpose,
    CategoryDisclosed,
    CcpaReport,
    MonthlyVolume,
)
from reports.provenance import ChainRange

__all__ = [
    "CCPA_REPORT_FORMATS",
    "CSV_HEADERS",
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
