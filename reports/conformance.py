"""Conformance with the privacy policy: unregistered recipients, undeclared flows and
transfers without safeguard.

The consumer flags, at ingest, a disclosure to a recipient that needs a registry entry
and had none at that time (``unregistered_recipient``), a disclosure that matches no flow
the privacy policy declares (``undeclared_flow``) and a disclosure to a recipient outside
the EEA with no transfer safeguard valid at that time (``transfer_without_safeguard``);
see the ``reference`` package. This report lists them for the window
``[as_of - 12 months, as_of)`` (or ``[since, as_of)``):

- first, the disclosures about a subject erased before they arrived (flag
  ``after_erasure``; :mod:`reports.after_erasure`): how many, by recipient, producer service
  and data categories, and the rows, with what they mean;
- each unregistered recipient (its id and the category its events carry) with its
  number of events, first and last seen, up to three example event ids (the earliest) and
  the fix: add it to the recipient registry;
- each undeclared flow (recipient, recipient category, the set of data categories, the
  purpose) with its number of events, first and last seen, and up to three example event
  ids (the earliest), most events first. Recipients that need no registry entry (each
  broadcaster has its own platform id) are grouped by their category, with the number of
  distinct recipients;
- each recipient of transfers without a safeguard, with its country, the same counts and
  examples.

JSON shape ``conformance-report/1``: :class:`reports.contracts.ConformanceReportJson`,
published as ``docs/schemas/conformance-report-1.schema.json``.

CSV: one row per finding, ``finding`` being ``after_erasure`` (one row per group),
``unregistered_recipient``, ``undeclared_flow`` or ``transfer_without_safeguard``; lists
joined with ``;``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from ledger.erasure import AFTER_ERASURE_FLAG
from ledger.store import Ledger
from reports.after_erasure import (
    AfterErasure,
    after_erasure_contract,
    after_erasure_sections,
    read_after_erasure,
)
from reports.base import ReportFormats, period_policy, read_snapshot, requested_window
from reports.contracts import (
    ConformanceReportJson,
    ConformanceSummary,
    UndeclaredFlowJson,
    UnregisteredRecipientJson,
    UnsafeTransferJson,
)
from reports.document import (
    Document,
    Section,
    Table,
    provenance_meta,
    render_csv,
)
from reports.provenance import (
    Provenance,
    aware,
    ledger_report_fields,
    rfc3339,
)
from reports.registry import has_table, read_registry
from reports.vocabulary import recipient_phrase
from reports.window import naive_utc

JSON_VERSION: Final = "conformance-report/1"
# the flags of reference.classification, spelled here as the ledger stores them
UNREGISTERED_RECIPIENT = "unregistered_recipient"
UNDECLARED_FLOW = "undeclared_flow"
TRANSFER_WITHOUT_SAFEGUARD = "transfer_without_safeguard"
EXAMPLES = 3


@dataclass(frozen=True)
class UnregisteredRecipient:
    recipient_id: str
    recipient_category: str  # as the events carry it: their category in every report
    events: int
    first_seen: datetime
    last_seen: datetime
    example_event_ids: tuple[str, ...]

    @property
    def fix(self) -> str:
        return (
            f"add {self.recipient_id!r} ({self.recipient_category}) to the recipient registry, "
            "reference/data/recipients.yaml or the --reference directory the consumer runs "
            "with, valid from its first disclosure"
        )


@dataclass(frozen=True)
class UndeclaredFlow:
    recipient_category: str
    recipient_id: str | None  # None: recipients without registry entries, grouped
    recipients: int
    data_categories: tuple[str, ...]
    purpose: str
    events: int
    first_seen: datetime
    last_seen: datetime
    example_event_ids: tuple[str, ...]


@dataclass(frozen=True)
class UnsafeTransfer:
    recipient_id: str
    recipient_category: str
    legal_name: str | None
    country: str | None
    events: int
    first_seen: datetime
    last_seen: datetime
    example_event_ids: tuple[str, ...]


@dataclass(frozen=True)
class ConformanceReport:
    source: Provenance
    events: int
    unregistered_events: int
    undeclared_events: int
    unsafe_transfer_events: int
    unregistered_recipients: tuple[UnregisteredRecipient, ...]
    undeclared_flows: tuple[UndeclaredFlow, ...]
    transfers_without_safeguard: tuple[UnsafeTransfer, ...]
    after_erasure: AfterErasure


_IN_WINDOW = "occurred_at >= $start AND occurred_at < $end"

_UNREGISTERED_SQL = f"""
SELECT recipient_id, recipient_category, count(*), min(occurred_at), max(occurred_at),
       min_by(event_id::VARCHAR, (occurred_at, event_id), {EXAMPLES})
FROM disclosures
WHERE {_IN_WINDOW} AND list_contains(flags, '{UNREGISTERED_RECIPIENT}')
GROUP BY ALL
ORDER BY count(*) DESC, recipient_id, recipient_category
"""

_UNDECLARED_SQL = f"""
WITH flagged AS (
    SELECT d.recipient_category, d.recipient_id, list_sort(d.data_categories) AS keys,
           d.purpose, d.occurred_at, d.event_id::VARCHAR AS event_id,
           {{registered}} AS registered
    FROM disclosures d {{join}}
    WHERE {_IN_WINDOW} AND list_contains(d.flags, '{UNDECLARED_FLOW}')
)
SELECT recipient_category, CASE WHEN registered THEN recipient_id END AS recipient,
       count(DISTINCT recipient_id), keys, purpose, count(*), min(occurred_at),
       max(occurred_at), min_by(event_id, (occurred_at, event_id), {EXAMPLES})
FROM flagged
GROUP BY ALL
ORDER BY count(*) DESC, recipient_category, recipient NULLS LAST, keys, purpose
"""

_UNSAFE_SQL = f"""
SELECT recipient_id, recipient_category, count(*), min(occurred_at), max(occurred_at),
       min_by(event_id::VARCHAR, (occurred_at, event_id), {EXAMPLES}),
       arg_max(reference_version, occurred_at)
FROM disclosures
WHERE {_IN_WINDOW} AND list_contains(flags, '{TRANSFER_WITHOUT_SAFEGUARD}')
GROUP BY ALL
ORDER BY count(*) DESC, recipient_id
"""

_TOTALS_SQL = f"""
SELECT count(*),
       count(*) FILTER (WHERE list_contains(flags, '{UNREGISTERED_RECIPIENT}')),
       count(*) FILTER (WHERE list_contains(flags, '{UNDECLARED_FLOW}')),
       count(*) FILTER (WHERE list_contains(flags, '{TRANSFER_WITHOUT_SAFEGUARD}'))
FROM disclosures WHERE {_IN_WINDOW}
"""

_COUNTED_SQL = (
    f"SELECT chain_id, seq, occurred_at, reference_version FROM disclosures WHERE {_IN_WINDOW}"
)


def conformance_report(
    ledger: Ledger,
    as_of: date | datetime,
    *,
    since: date | datetime | None = None,
    generated_at: datetime | None = None,
    allow_incomplete: bool = False,
) -> ConformanceReport:
    """Unregistered recipients, undeclared flows and transfers without safeguard in
    ``[as_of - 12 months, as_of)``, or ``[since, as_of)`` when ``since`` is given. A window
    past the ledger's coverage is refused unless ``allow_incomplete``, which marks the report
    provisional."""
    start, end, _ = requested_window(as_of, since)
    params = {"start": naive_utc(start), "end": naive_utc(end)}
    with read_snapshot(
        ledger,
        "conformance report",
        window_start=start,
        window_end=end,
        generated_at=generated_at,
        on_incomplete=period_policy(allow_incomplete),
    ) as snapshot:
        cursor = snapshot.cursor
        if has_table(cursor, "ref_recipients"):
            undeclared_sql = _UNDECLARED_SQL.format(
                # an unregistered recipient that should be registered is shown by its id
                registered="r.recipient_id IS NOT NULL "
                f"OR list_contains(d.flags, '{UNREGISTERED_RECIPIENT}')",
                join="LEFT JOIN (SELECT DISTINCT recipient_id, reference_version "
                "FROM ref_recipients) r USING (recipient_id, reference_version)",
            )
        else:  # no registry stored: every recipient is shown by its own id
            undeclared_sql = _UNDECLARED_SQL.format(registered="true", join="")
        unregistered_rows = cursor.execute(_UNREGISTERED_SQL, params).fetchall()
        undeclared_rows = cursor.execute(undeclared_sql, params).fetchall()
        unsafe_rows = cursor.execute(_UNSAFE_SQL, params).fetchall()
        totals = cursor.execute(_TOTALS_SQL, params).fetchone() or (0, 0, 0, 0)
        after_erasure = read_after_erasure(cursor, params)
        registry = read_registry(cursor, [str(r[0]) for r in unsafe_rows])
        source = snapshot.provenance_of(_COUNTED_SQL, params)

    unregistered = tuple(
        UnregisteredRecipient(
            recipient_id=str(rid),
            recipient_category=str(category),
            events=int(events),
            first_seen=_at(first),
            last_seen=_at(last),
            example_event_ids=tuple(examples),
        )
        for rid, category, events, first, last, examples in unregistered_rows
    )
    flows = tuple(
        UndeclaredFlow(
            recipient_category=str(category),
            recipient_id=None if recipient is None else str(recipient),
            recipients=int(recipients),
            data_categories=tuple(keys),
            purpose=str(purpose),
            events=int(events),
            first_seen=_at(first),
            last_seen=_at(last),
            example_event_ids=tuple(examples),
        )
        for category, recipient, recipients, keys, purpose, events, first, last, examples in (
            undeclared_rows
        )
    )
    transfers = []
    for rid, category, events, first, last, examples, version in unsafe_rows:
        entry = registry.at(str(rid), str(version), _at(last))
        transfers.append(
            UnsafeTransfer(
                recipient_id=str(rid),
                recipient_category=str(category),
                legal_name=None if entry is None else entry.legal_name,
                country=None if entry is None else entry.country,
                events=int(events),
                first_seen=_at(first),
                last_seen=_at(last),
                example_event_ids=tuple(examples),
            )
        )
    return ConformanceReport(
        source=source,
        events=int(totals[0]),
        unregistered_events=int(totals[1]),
        undeclared_events=int(totals[2]),
        unsafe_transfer_events=int(totals[3]),
        unregistered_recipients=unregistered,
        undeclared_flows=flows,
        transfers_without_safeguard=tuple(transfers),
        after_erasure=after_erasure,
    )


def _at(value: datetime) -> datetime:
    moment = aware(value)
    assert moment is not None
    return moment


# -- rendering ------------------------------------------------------------------------------
def render_conformance(report: ConformanceReport, fmt: str) -> str:
    return CONFORMANCE_REPORT_FORMATS.render(report, fmt)


def conformance_contract(report: ConformanceReport) -> ConformanceReportJson:
    return ConformanceReportJson(
        report=JSON_VERSION,
        **ledger_report_fields(report.source),
        summary=ConformanceSummary(
            events=report.events,
            unregistered_recipient_events=report.unregistered_events,
            undeclared_events=report.undeclared_events,
            transfer_without_safeguard_events=report.unsafe_transfer_events,
            after_erasure_events=report.after_erasure.events,
        ),
        after_erasure=after_erasure_contract(report.after_erasure),
        unregistered_recipients=[
            UnregisteredRecipientJson(
                recipient_id=u.recipient_id,
                recipient_category=u.recipient_category,
                events=u.events,
                first_seen=rfc3339(u.first_seen),
                last_seen=rfc3339(u.last_seen),
                example_event_ids=list(u.example_event_ids),
                fix=u.fix,
            )
            for u in report.unregistered_recipients
        ],
        undeclared_flows=[
            UndeclaredFlowJson(
                recipient_category=f.recipient_category,
                recipient_id=f.recipient_id,
                recipients=f.recipients,
                data_categories=list(f.data_categories),
                purpose=f.purpose,
                events=f.events,
                first_seen=rfc3339(f.first_seen),
                last_seen=rfc3339(f.last_seen),
                example_event_ids=list(f.example_event_ids),
            )
            for f in report.undeclared_flows
        ],
        transfers_without_safeguard=[
            UnsafeTransferJson(
                recipient_id=t.recipient_id,
                recipient_category=t.recipient_category,
                legal_name=t.legal_name,
                country=t.country,
                events=t.events,
                first_seen=rfc3339(t.first_seen),
                last_seen=rfc3339(t.last_seen),
                example_event_ids=list(t.example_event_ids),
            )
            for t in report.transfers_without_safeguard
        ],
    )


def conformance_json(report: ConformanceReport) -> dict[str, Any]:
    return conformance_contract(report).model_dump(mode="json")


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "0%"


def _recipient_text(flow: UndeclaredFlow) -> str:
    if flow.recipient_id is not None:
        return flow.recipient_id
    noun = "recipient" if flow.recipients == 1 else "recipients"
    return f"{flow.recipients} {recipient_phrase(flow.recipient_category)} ({noun} not registered)"


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def conformance_document(report: ConformanceReport) -> Document:
    s = report.source
    assert s.window_start is not None
    period = f"from {_day(s.window_start)} up to {_day(s.window_end)} (excluded)"
    if report.unregistered_recipients:
        count = len(report.unregistered_recipients)
        unregistered_text = (
            f"{report.unregistered_events} of the {report.events} disclosures {period} "
            f"({_share(report.unregistered_events, report.events)}) went to {count} "
            f"recipient{'s' if count != 1 else ''} that must be in the recipient registry and "
            "were not at the time. They are recorded and counted under the recipient "
            "category their events carry. Fix: add each to the registry "
            "(reference/data/recipients.yaml, or the --reference directory the consumer "
            "runs with), valid from its first disclosure; rows already recorded keep their "
            "flag, since the ledger is append-only."
        )
    else:
        unregistered_text = (
            f"Every one of the {report.events} disclosures {period} went to a recipient "
            "in the registry at the time, or to one that needs no registry entry."
        )
    if report.undeclared_flows:
        undeclared_text = (
            f"{report.undeclared_events} of the {report.events} disclosures {period} "
            f"({_share(report.undeclared_events, report.events)}) match no flow the privacy "
            f"policy declares, in {len(report.undeclared_flows)} distinct flow"
            f"{'s' if len(report.undeclared_flows) != 1 else ''}. Either the policy (and the "
            "declared flows of the reference data) must say so, or the disclosures must stop."
        )
    else:
        undeclared_text = (
            f"Every one of the {report.events} disclosures {period} matches a flow the "
            "privacy policy declares."
        )
    if report.transfers_without_safeguard:
        unsafe_text = (
            f"{report.unsafe_transfer_events} disclosures {period} went to recipients outside "
            "the European Economic Area with no transfer safeguard (GDPR Arts. 44-46) in "
            "force at the time:"
        )
    else:
        unsafe_text = (
            f"No disclosure {period} went outside the European Economic Area without a "
            "transfer safeguard in force at the time."
        )
    return Document(
        title="Conformance with the privacy policy",
        basis=(
            "Disclosures about a subject erased before they arrived (listed first), "
            "disclosures to recipients missing from the recipient registry, disclosures "
            "that match no flow the privacy policy declares, and transfers outside the EEA "
            f"without a safeguard (GDPR Arts. 44-46), as of {rfc3339(s.as_of)}."
        ),
        sections=(
            *after_erasure_sections(report.after_erasure, period),
            Section(
                heading="Unregistered recipients",
                paragraphs=(unregistered_text,),
                table=Table(
                    (
                        "Recipient",
                        "Recipient category",
                        "Events",
                        "First seen",
                        "Last seen",
                        "Example event ids",
                    ),
                    tuple(
                        (
                            u.recipient_id,
                            u.recipient_category,
                            str(u.events),
                            rfc3339(u.first_seen) or "",
                            rfc3339(u.last_seen) or "",
                            " ".join(u.example_event_ids),
                        )
                        for u in report.unregistered_recipients
                    ),
                    (False, False, True, False, False, False),
                )
                if report.unregistered_recipients
                else None,
                section_id="unregistered-recipients",
            ),
            Section(
                heading="Undeclared flows",
                paragraphs=(undeclared_text,),
                table=Table(
                    (
                        "Recipient",
                        "Recipient category",
                        "Data categories",
                        "Purpose",
                        "Events",
                        "First seen",
                        "Last seen",
                        "Example event ids",
                    ),
                    tuple(
                        (
                            _recipient_text(f),
                            f.recipient_category,
                            ", ".join(f.data_categories),
                            f.purpose,
                            str(f.events),
                            rfc3339(f.first_seen) or "",
                            rfc3339(f.last_seen) or "",
                            " ".join(f.example_event_ids),
                        )
                        for f in report.undeclared_flows
                    ),
                    (False, False, False, False, True, False, False, False),
                )
                if report.undeclared_flows
                else None,
                section_id="undeclared-flows",
            ),
            Section(
                heading="Transfers without a safeguard",
                paragraphs=(unsafe_text,),
                table=Table(
                    (
                        "Recipient",
                        "Legal name",
                        "Country",
                        "Events",
                        "First seen",
                        "Last seen",
                        "Example event ids",
                    ),
                    tuple(
                        (
                            t.recipient_id,
                            t.legal_name or "(not in the registry)",
                            t.country or "?",
                            str(t.events),
                            rfc3339(t.first_seen) or "",
                            rfc3339(t.last_seen) or "",
                            " ".join(t.example_event_ids),
                        )
                        for t in report.transfers_without_safeguard
                    ),
                    (False, False, False, True, False, False, False),
                )
                if report.transfers_without_safeguard
                else None,
                section_id="transfers-without-safeguard",
            ),
        ),
        provenance=s,
        provenance_notes=(
            "Flags are set at ingest by the reference data version each row records; "
            "example event ids are the earliest of each group.",
        ),
    )


CSV_HEADERS = (
    "finding",
    "recipient_category",
    "recipient_id",
    "recipients",
    "data_categories",
    "purpose",
    "country",
    "events",
    "first_seen",
    "last_seen",
    "example_event_ids",
    "producer_service",
)


def conformance_csv(report: ConformanceReport) -> str:
    rows: list[tuple[object, ...]] = [
        (
            AFTER_ERASURE_FLAG,
            g.recipient_category,
            g.recipient_id,
            1,
            g.data_categories,
            None,
            None,
            g.events,
            rfc3339(g.first_seen),
            rfc3339(g.last_seen),
            g.example_event_ids,
            g.producer_service,
        )
        for g in report.after_erasure.groups
    ]
    rows += [
        (
            UNREGISTERED_RECIPIENT,
            u.recipient_category,
            u.recipient_id,
            1,
            (),
            None,
            None,
            u.events,
            rfc3339(u.first_seen),
            rfc3339(u.last_seen),
            u.example_event_ids,
            None,
        )
        for u in report.unregistered_recipients
    ]
    rows += [
        (
            UNDECLARED_FLOW,
            f.recipient_category,
            f.recipient_id,
            f.recipients,
            f.data_categories,
            f.purpose,
            None,
            f.events,
            rfc3339(f.first_seen),
            rfc3339(f.last_seen),
            f.example_event_ids,
            None,
        )
        for f in report.undeclared_flows
    ]
    rows += [
        (
            TRANSFER_WITHOUT_SAFEGUARD,
            t.recipient_category,
            t.recipient_id,
            1,
            (),
            None,
            t.country,
            t.events,
            rfc3339(t.first_seen),
            rfc3339(t.last_seen),
            t.example_event_ids,
            None,
        )
        for t in report.transfers_without_safeguard
    ]
    meta = [
        *provenance_meta(report.source),
        ("events", str(report.events)),
        ("unregistered_recipient_events", str(report.unregistered_events)),
        ("undeclared_events", str(report.undeclared_events)),
        ("transfer_without_safeguard_events", str(report.unsafe_transfer_events)),
        ("after_erasure_events", str(report.after_erasure.events)),
    ]
    return render_csv(JSON_VERSION, meta, CSV_HEADERS, rows)


CONFORMANCE_REPORT_FORMATS: ReportFormats[ConformanceReport] = ReportFormats(
    "conformance", conformance_contract, conformance_document, conformance_csv
)
