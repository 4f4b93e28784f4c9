"""Transfers outside the EEA, with the safeguard in force at each one (GDPR Art. 30(1)(e)).

For the window ``[as_of - 12 months, as_of)`` (or ``[since, as_of)``), every disclosure to
a recipient whose registry entry valid at that disclosure's time (under the reference
version the row was classified with, from the ledger's ``ref_recipients``) places it
outside the European Economic Area, grouped by recipient, country, and the registry
period whose safeguard (GDPR Arts. 45-49) was in force. Transfers with no safeguard come
first, then by recipient. A recipient whose safeguard changed (a processor whose contract,
and SCCs, lapsed) appears once per period.

Disclosures to recipients without a registry entry (each broadcaster, addressed by its
platform id) have no recorded country; the report gives their count.

JSON shape ``transfers-report/1``: :class:`reports.contracts.TransfersReportJson`, published
as ``docs/schemas/transfers-report-1.schema.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from ledger.store import Ledger
from reports.base import ReportFormats, period_policy, read_snapshot, requested_window
from reports.contracts import RegistryPeriod, TransferJson, TransfersReportJson, TransfersSummary
from reports.document import (
    Document,
    Section,
    Table,
    provenance_meta,
    render_csv,
)
from reports.errors import ReportError
from reports.provenance import (
    Provenance,
    aware,
    ledger_report_fields,
    rfc3339,
)
from reports.registry import has_table
from reports.vocabulary import recipient_phrase
from reports.window import naive_utc

JSON_VERSION: Final = "transfers-report/1"
MISSING = frozenset({None, "none"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SAFEGUARD_NAMES = {
    "adequacy_decision": "adequacy decision (Art. 45)",
    "standard_contractual_clauses": "standard contractual clauses (Art. 46(2)(c))",
    "binding_corporate_rules": "binding corporate rules (Arts. 46(2)(b), 47)",
    "derogation": "derogation for a specific situation (Art. 49)",
    "none": "none",
}


@dataclass(frozen=True)
class Transfer:
    recipient_id: str
    legal_name: str
    country: str | None
    recipient_category: str
    role: str
    safeguard: str
    valid_from: datetime
    valid_to: datetime | None
    events: int
    distinct_subjects: int
    letters: tuple[str, ...]
    first_disclosure: datetime
    last_disclosure: datetime

    @property
    def safeguard_missing(self) -> bool:
        return self.safeguard in MISSING


@dataclass(frozen=True)
class TransfersReport:
    source: Provenance
    events: int
    unregistered_recipient_events: int
    transfers: tuple[Transfer, ...]

    @property
    def transfer_events(self) -> int:
        return sum(t.events for t in self.transfers)

    @property
    def without_safeguard_events(self) -> int:
        return sum(t.events for t in self.transfers if t.safeguard_missing)


_IN_WINDOW = "d.occurred_at >= $start AND d.occurred_at < $end"

# The registry of non-EEA recipients is a handful of rows; the disclosures are first
# narrowed to those recipients (a dictionary filter), then matched to the period in force.
_TRANSFERS_SQL = f"""
WITH outside AS (
    SELECT recipient_id, reference_version, legal_name, country, recipient_category, role,
           coalesce(safeguard, 'none') AS safeguard, epoch_ms(valid_from) AS valid_from,
           epoch_ms(valid_to) AS valid_to
    FROM ref_recipients WHERE eea = false
)
SELECT o.recipient_id, o.legal_name, o.country, o.recipient_category, o.role, o.safeguard,
       o.valid_from, o.valid_to, count(*), count(DISTINCT d.subject_pseudonym),
       list_sort(list_distinct(flatten(list(d.ccpa_letters)))),
       min(d.occurred_at), max(d.occurred_at)
FROM disclosures d
JOIN outside o
  ON d.recipient_id = o.recipient_id AND d.reference_version = o.reference_version
 AND epoch_ms(d.occurred_at) >= o.valid_from
 AND (o.valid_to IS NULL OR epoch_ms(d.occurred_at) < o.valid_to)
WHERE {_IN_WINDOW} AND list_contains($outside_ids, d.recipient_id)
GROUP BY ALL
"""

_TOTALS_SQL = f"""
SELECT count(*),
       count(*) FILTER (WHERE NOT list_contains($registered_ids, d.recipient_id))
FROM disclosures d WHERE {_IN_WINDOW}
"""

_COUNTED_SQL = (
    f"SELECT chain_id, seq, occurred_at, reference_version FROM disclosures d WHERE {_IN_WINDOW}"
)


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else _EPOCH + timedelta(milliseconds=int(ms))


def transfers_report(
    ledger: Ledger,
    as_of: date | datetime,
    *,
    since: date | datetime | None = None,
    generated_at: datetime | None = None,
    allow_incomplete: bool = False,
) -> TransfersReport:
    """Disclosures to recipients outside the EEA in the window, with their safeguards. A
    window past the ledger's coverage is refused unless ``allow_incomplete``, which marks
    the report provisional (:mod:`reports.coverage`)."""
    start, end, _ = requested_window(as_of, since)
    params: dict[str, Any] = {"start": naive_utc(start), "end": naive_utc(end)}
    with read_snapshot(
        ledger,
        "transfers report",
        window_start=start,
        window_end=end,
        generated_at=generated_at,
        on_incomplete=period_policy(allow_incomplete),
    ) as snapshot:
        cursor = snapshot.cursor
        if not has_table(cursor, "ref_recipients"):
            raise ReportError(
                f"ledger {ledger.path} holds no recipient registry (table ref_recipients): "
                "the consumer stores the reference data with the first batch it ingests; "
                "without it, no disclosure can be placed in a country"
            )
        outside = [
            str(r[0])
            for r in cursor.execute(
                "SELECT DISTINCT recipient_id FROM ref_recipients WHERE eea = false"
            ).fetchall()
        ]
        registered = [
            str(r[0])
            for r in cursor.execute("SELECT DISTINCT recipient_id FROM ref_recipients").fetchall()
        ]
        rows = cursor.execute(_TRANSFERS_SQL, {**params, "outside_ids": outside}).fetchall()
        totals = cursor.execute(_TOTALS_SQL, {**params, "registered_ids": registered}).fetchone()
        source = snapshot.provenance_of(_COUNTED_SQL, params)
    transfers = [
        Transfer(
            recipient_id=str(r[0]),
            legal_name=str(r[1]),
            country=r[2],
            recipient_category=str(r[3]),
            role=str(r[4]),
            safeguard=str(r[5]),
            valid_from=_from_ms(r[6]) or _EPOCH,
            valid_to=_from_ms(r[7]),
            events=int(r[8]),
            distinct_subjects=int(r[9]),
            letters=tuple(r[10]),
            first_disclosure=aware(r[11]) or _EPOCH,
            last_disclosure=aware(r[12]) or _EPOCH,
        )
        for r in rows
    ]
    transfers.sort(key=lambda t: (not t.safeguard_missing, t.recipient_id, t.valid_from))
    events, unregistered = totals or (0, 0)
    return TransfersReport(
        source=source,
        events=int(events),
        unregistered_recipient_events=int(unregistered),
        transfers=tuple(transfers),
    )


# -- rendering ------------------------------------------------------------------------------
def render_transfers(report: TransfersReport, fmt: str) -> str:
    return TRANSFERS_REPORT_FORMATS.render(report, fmt)


def transfers_contract(report: TransfersReport) -> TransfersReportJson:
    return TransfersReportJson(
        report=JSON_VERSION,
        **ledger_report_fields(report.source),
        summary=TransfersSummary(
            events=report.events,
            transfer_events=report.transfer_events,
            without_safeguard_events=report.without_safeguard_events,
            unregistered_recipient_events=report.unregistered_recipient_events,
        ),
        transfers=[
            TransferJson(
                recipient_id=t.recipient_id,
                legal_name=t.legal_name,
                country=t.country,
                recipient_category=t.recipient_category,
                role=t.role,
                safeguard=t.safeguard,
                safeguard_missing=t.safeguard_missing,
                registry_period=RegistryPeriod(
                    valid_from=rfc3339(t.valid_from), valid_to=rfc3339(t.valid_to)
                ),
                events=t.events,
                distinct_subjects=t.distinct_subjects,
                letters=list(t.letters),
                first_disclosure=rfc3339(t.first_disclosure),
                last_disclosure=rfc3339(t.last_disclosure),
            )
            for t in report.transfers
        ],
    )


def transfers_json(report: TransfersReport) -> dict[str, Any]:
    return transfers_contract(report).model_dump(mode="json")


def _period(t: Transfer) -> str:
    end = "open" if t.valid_to is None else f"{t.valid_to:%Y-%m-%d}"
    return f"{t.valid_from:%Y-%m-%d} to {end}"


def transfers_document(report: TransfersReport) -> Document:
    s = report.source
    assert s.window_start is not None
    period = f"from {s.window_start:%Y-%m-%d} up to {s.window_end:%Y-%m-%d} (excluded)"
    missing = [t for t in report.transfers if t.safeguard_missing]
    if not report.transfers:
        summary = f"No disclosure {period} went to a registered recipient outside the EEA."
    else:
        summary = (
            f"{report.transfer_events} of the {report.events} disclosures {period} went to "
            f"{len({t.recipient_id for t in report.transfers})} recipients outside the "
            "European Economic Area. "
            + (
                f"{report.without_safeguard_events} of them had no transfer safeguard in force: "
                "they are listed first."
                if missing
                else "Every one had a safeguard in force at the time."
            )
        )
    notes = []
    if report.unregistered_recipient_events:
        notes.append(
            f"{report.unregistered_recipient_events} disclosures in the window went to "
            "recipients without a registry entry (such as broadcasters, each addressed by "
            "its platform id); their country is not recorded, so they are not listed here."
        )
    return Document(
        title="Transfers of personal data outside the European Economic Area",
        basis=(
            "Record of processing, GDPR Art. 30(1)(e); safeguards under Arts. 44-49; as of "
            f"{rfc3339(s.as_of)}."
        ),
        sections=(
            Section(
                heading="Transfers by recipient and safeguard",
                paragraphs=(summary, *notes),
                notice=(
                    f"{report.without_safeguard_events} disclosures without a transfer "
                    "safeguard in force."
                    if missing
                    else None
                ),
                table=Table(
                    (
                        "Recipient",
                        "Country",
                        "Category",
                        "Role",
                        "Safeguard in force",
                        "Registry period",
                        "Events",
                        "Subjects",
                        "CCPA categories",
                        "First",
                        "Last",
                    ),
                    tuple(
                        (
                            f"{t.legal_name} ({t.recipient_id})",
                            t.country or "?",
                            recipient_phrase(t.recipient_category),
                            t.role.replace("_", " "),
                            "NONE"
                            if t.safeguard_missing
                            else SAFEGUARD_NAMES.get(t.safeguard, t.safeguard),
                            _period(t),
                            str(t.events),
                            str(t.distinct_subjects),
                            ", ".join(t.letters),
                            f"{t.first_disclosure:%Y-%m-%d}",
                            f"{t.last_disclosure:%Y-%m-%d}",
                        )
                        for t in report.transfers
                    ),
                    (False, False, False, False, False, False, True, True, False, False, False),
                )
                if report.transfers
                else None,
                section_id="transfers",
            ),
        ),
        provenance=s,
        provenance_notes=(
            "Country and safeguard come from the recipient registry entry valid at each "
            "disclosure, under the reference data version the disclosure was classified with.",
        ),
    )


CSV_HEADERS = (
    "recipient_id",
    "legal_name",
    "country",
    "recipient_category",
    "role",
    "safeguard",
    "safeguard_missing",
    "valid_from",
    "valid_to",
    "events",
    "distinct_subjects",
    "letters",
    "first_disclosure",
    "last_disclosure",
)


def transfers_csv(report: TransfersReport) -> str:
    rows = [
        (
            t.recipient_id,
            t.legal_name,
            t.country,
            t.recipient_category,
            t.role,
            t.safeguard,
            t.safeguard_missing,
            rfc3339(t.valid_from),
            rfc3339(t.valid_to),
            t.events,
            t.distinct_subjects,
            t.letters,
            rfc3339(t.first_disclosure),
            rfc3339(t.last_disclosure),
        )
        for t in report.transfers
    ]
    meta = [
        *provenance_meta(report.source),
        ("events", str(report.events)),
        ("transfer_events", str(report.transfer_events)),
        ("without_safeguard_events", str(report.without_safeguard_events)),
        ("unregistered_recipient_events", str(report.unregistered_recipient_events)),
    ]
    return render_csv(JSON_VERSION, meta, CSV_HEADERS, rows)


TRANSFERS_REPORT_FORMATS: ReportFormats[TransfersReport] = ReportFormats(
    "transfers", transfers_contract, transfers_document, transfers_csv
)
