"""The JSON contracts of the reports, as pydantic models, published as JSON Schema.

Every report's ``json`` format is one of the models below, dumped in field order
(:func:`reports.base.json_text`). A contract is stable: fields are only ever added, never
renamed or removed; a breaking change gets a new version (``ccpa-report/2``) and a model
of its own. The schemas are published under ``docs/schemas/`` as
``<report>-<version>.schema.json`` (``ccpa-report-1.schema.json``); regenerate them after
changing a model with::

    python -m reports.contracts docs/schemas

and a unit test fails while the published files differ from the models.

Times are RFC 3339 in UTC (``2025-03-01T09:30:00Z``, milliseconds only when there are
any), days are ISO 8601 dates. Lists are sorted as each field says.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reports.request_log import ReceivedVia, RequestKind, Response

Timestamp = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$",
        description="RFC 3339, UTC",
    ),
]
Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="ISO 8601 date")]
Count = Annotated[int, Field(ge=0)]


class Contract(BaseModel):
    """A JSON object of a report: exactly these fields, in this order."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- what every report over the ledger opens with ------------------------------------------
class Window(Contract):
    start: Timestamp | None = Field(
        description="included; null: from the first event the ledger holds"
    )
    end: Timestamp = Field(
        description="excluded (= as_of, unless a subject's answer was cut at the coverage)"
    )


class ChainSource(Contract):
    """A chain's head at generation time and the rows of it the report counted."""

    chain_id: str
    head_seq: int = Field(description="sequence number of the chain's last row")
    head_chain_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="hex of that row's chain_hash"
    )
    events_counted: Count
    first_seq_counted: int | None = Field(description="null when none was counted")
    last_seq_counted: int | None = Field(description="null when none was counted")


class Source(Contract):
    """What the report was computed from, read in the report's own snapshot."""

    ledger_format_version: str | None
    reference_versions: list[str] = Field(
        description="reference-data versions of the rows counted, sorted"
    )
    events_counted: Count = Field(description="ledger rows in the window")
    first_event_at: Timestamp | None = Field(description="null when nothing was counted")
    last_event_at: Timestamp | None = Field(description="null when nothing was counted")
    chains: list[ChainSource] = Field(description="every chain, sorted by chain_id")


class HoldbackJson(Contract):
    """A producer source or a topic partition, and how far it is complete."""

    kind: Literal["source", "partition"]
    name: str = Field(description='a producer service, or "topic/partition"')
    through: Timestamp | None = Field(description="null: complete through no known time")
    detail: str


class CoverageJson(Contract):
    """How far the ledger is complete, and whether that covers the report's window."""

    complete: bool = Field(
        description="true: every disclosure of the window is recorded; false: the report "
        "is provisional (produced with --allow-incomplete)"
    )
    complete_through: Timestamp | None = Field(
        description="the ledger is complete up to this time; null: through no known time"
    )
    allowance_seconds: Count = Field(description="held back from the evidence for late events")
    holding_back: list[HoldbackJson] = Field(
        description="the sources and partitions that set complete_through, earliest first"
    )
    unanswered: Window | None = Field(
        description="the part of the window asked for that the ledger cannot answer for yet "
        "(a subject's answer is cut at the coverage); null: none"
    )
    statement: str = Field(description="the coverage as the sentence the report prints")


class LedgerReport(Contract):
    """The fields every report over the ledger opens with: what, when, over which rows."""

    report: str
    generated_at: Timestamp
    as_of: Timestamp
    window: Window
    source: Source
    coverage: CoverageJson | None = Field(
        default=None, description="added in place: null only in reports made before it was"
    )


# -- ccpa-report/1 --------------------------------------------------------------------------
class BusinessPurposeJson(Contract):
    number: str = Field(description="1798.140(e) purpose, 1 to 8")
    name: str


class SoldOrSharedCategory(Contract):
    letter: str = Field(description="CCPA category letter, 1798.140(v)(1)")
    name: str
    disclosure_kinds: list[Annotated[str, Field(pattern="^(sale|share)$")]]
    recipient_categories: list[str] = Field(description="sorted")
    events: Count = Field(description="ledger rows (one per disclosure event)")
    distinct_subjects: Count = Field(description="distinct subjects, by subject_key")


class BusinessPurposeCategory(Contract):
    letter: str = Field(description="CCPA category letter, 1798.140(v)(1)")
    name: str
    recipient_categories: list[str] = Field(description="sorted")
    business_purposes: list[BusinessPurposeJson] = Field(description="sorted by number")
    events: Count = Field(description="ledger rows (one per disclosure event)")
    distinct_subjects: Count = Field(description="distinct subjects, by subject_key")


class SoldOrShared(Contract):
    none: bool
    statement: str = Field(description="section (i) as the sentence a privacy policy prints")
    categories: list[SoldOrSharedCategory] = Field(description="sorted by letter; [] when none")


class BusinessPurposeList(Contract):
    categories: list[BusinessPurposeCategory] = Field(description="sorted by letter")


class MonthJson(Contract):
    """One calendar month (UTC) of the window, cut to the window."""

    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="calendar month, UTC")
    start: Timestamp = Field(description="included: the month's start, or the window's if later")
    end: Timestamp = Field(
        description="excluded: the next month's start, or the window's end if earlier"
    )
    partial: bool = Field(
        description="true: the window covers only part of the month (start or end is cut), "
        "so its count is not comparable with a whole month's"
    )
    events: Count = Field(description="ledger rows in [start, end), every recipient category")
    by_recipient_category: dict[str, Count] = Field(
        description="ledger rows per recipient category, in the order of "
        "monthly.recipient_categories, zeros included"
    )


class MonthlyBreakdown(Contract):
    """Disclosures per month and recipient category: the table and chart of md and html."""

    recipient_categories: list[str] = Field(
        description="every recipient category with disclosures in the window, in the order "
        "the md and html table shows them"
    )
    months: list[MonthJson] = Field(
        description="every calendar month the window touches, in order; the first and the "
        "last are partial unless the window starts and ends at a month's start"
    )


class CcpaReportJson(LedgerReport):
    """The CCPA privacy-policy lists of Cal. Civ. Code 1798.130(a)(5)(C)."""

    report: Literal["ccpa-report/1"]
    sold_or_shared: SoldOrShared
    business_purpose: BusinessPurposeList
    monthly: MonthlyBreakdown | None = Field(
        default=None,
        description="disclosures per month and recipient category, all kinds; added to "
        "ccpa-report/1 later, so reports written before it lack the field",
    )


# -- subject-report/1, recipients-report/1, request-denial/1 ---------------------------------
class SubjectJson(Contract):
    type: str
    id: str = Field(description="the raw id the person gave (the ledger holds a pseudonym)")


class RequestJson(Contract):
    """The request as recorded in the request log (11 CCR 7101)."""

    request_id: str
    kind: RequestKind
    received_on: Day
    received_via: ReceivedVia
    responded_on: Day | None
    response: Response
    number_in_12_months: int = Field(ge=1, description="this request counted: 1 for the first")
    beyond_statutory_obligation: bool


class Lookback(Contract):
    since_requested: Timestamp | None
    clamped: bool
    floor: Timestamp = Field(description="a longer lookback reaches data of this day on")


class NamedRecipientJson(Contract):
    recipient_id: str
    name: str
    events: Count
    first_disclosed: Timestamp
    last_disclosed: Timestamp


class SubjectCategoryJson(Contract):
    letter: str
    name: str
    disclosure_kinds: list[str]
    recipient_categories: list[str]
    recipients: list[NamedRecipientJson] = Field(description="sorted by category, then id")
    events: Count
    first_disclosed: Timestamp
    last_disclosed: Timestamp


class SubjectRecipientJson(Contract):
    recipient_id: str
    name: str
    registered: bool
    recipient_category: str
    country: str | None
    letters: list[str]
    data_categories: list[str]
    events: Count
    first_disclosed: Timestamp
    last_disclosed: Timestamp


class SubjectPseudonymJson(Contract):
    """What lets the requester see that each row is about them (docs/proofs.md)."""

    subject_type: str
    subject_id: str = Field(description="the id the person gave")
    subject_key: str = Field(
        description="hex: the person's own key k_s in the subject key store", pattern="^[0-9a-f]+$"
    )
    pseudonym: str = Field(description="hex: what every row of theirs carries")
    formula: str = Field(description="how the pseudonym derives from the key and the id")
    consequences: str = Field(description="what holding subject_key allows")


class RowProofJson(Contract):
    """One row the answer counted, with its inclusion bundle, or why it has none yet."""

    event_id: str
    chain: str
    seq: int = Field(ge=1)
    occurred_at: Timestamp
    recipient_id: str
    bundle: dict[str, Any] | None = Field(
        description="a disclosure-ledger-proof/1 inclusion bundle; null: not yet covered"
    )
    not_covered: str | None = Field(
        description="why the row has no bundle yet (no signed checkpoint covers it)"
    )


class SubjectProofsJson(Contract):
    """report subject --with-proofs: a proof bundle per row of the answer."""

    format: Literal["disclosure-ledger-subject-proofs/1"]
    limits: str = Field(description="inclusion proofs never show that the list is complete")
    how_to_check: str
    pseudonym: SubjectPseudonymJson | None = Field(description="null: no data held")
    rows: list[RowProofJson] = Field(description="sorted by time, then chain and seq")


class SubjectReportJson(LedgerReport):
    """A request to know (Cal. Civ. Code 1798.110, 1798.115; GDPR Art. 15(1)(c))."""

    report: Literal["subject-report/1"]
    subject: SubjectJson
    lookback: Lookback
    data_held: bool = Field(description="false: no key for this person (none, or erased)")
    request: RequestJson | None
    categories: list[SubjectCategoryJson] = Field(description="sorted by letter")
    recipients: list[SubjectRecipientJson] = Field(description="sorted by category, then id")
    proofs: SubjectProofsJson | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="present only when asked for (--with-proofs): a bundle per row",
    )


class RecipientJson(Contract):
    recipient_id: str
    name: str
    registered: bool
    recipient_category: str
    role: str | None
    address: str | None
    country: str | None
    letters: list[str]
    data_categories: list[str]
    events: Count
    first_disclosed: Timestamp
    last_disclosed: Timestamp


class RecipientsReportJson(LedgerReport):
    """Every recipient of a person's data up to as_of (GDPR Art. 19); window.start is null."""

    report: Literal["recipients-report/1"]
    subject: SubjectJson
    data_held: bool = Field(description="false: no key for this person (none, or erased)")
    request: RequestJson | None
    recipients: list[RecipientJson] = Field(description="sorted by category, then id")


class DenialJson(Contract):
    """A request recorded as denied; nothing is read from the ledger."""

    report: Literal["request-denial/1"]
    generated_at: Timestamp
    subject: SubjectJson
    request: RequestJson
    denial_basis: str


# -- transfers-report/1 ---------------------------------------------------------------------
class TransfersSummary(Contract):
    events: Count
    transfer_events: Count
    without_safeguard_events: Count
    unregistered_recipient_events: Count


class RegistryPeriod(Contract):
    valid_from: Timestamp
    valid_to: Timestamp | None = Field(description="null: open")


class TransferJson(Contract):
    recipient_id: str
    legal_name: str
    country: str | None
    recipient_category: str
    role: str
    safeguard: str = Field(
        description="adequacy_decision, standard_contractual_clauses, "
        "binding_corporate_rules, derogation or none"
    )
    safeguard_missing: bool
    registry_period: RegistryPeriod
    events: Count
    distinct_subjects: Count
    letters: list[str]
    first_disclosure: Timestamp
    last_disclosure: Timestamp


class TransfersReportJson(LedgerReport):
    """Transfers outside the EEA with their safeguards (GDPR Art. 30(1)(e))."""

    report: Literal["transfers-report/1"]
    summary: TransfersSummary
    transfers: list[TransferJson] = Field(description="missing safeguards first, then by id")


# -- conformance-report/1 -------------------------------------------------------------------
class ConformanceSummary(Contract):
    events: Count
    unregistered_recipient_events: Count
    undeclared_events: Count
    transfer_without_safeguard_events: Count
    after_erasure_events: Count = Field(
        description="about a subject erased before the event arrived (flag after_erasure)"
    )


class AfterErasureGroupJson(Contract):
    recipient_id: str
    recipient_category: str
    producer_service: str
    data_categories: list[str]
    events: Count
    first_seen: Timestamp
    last_seen: Timestamp
    example_event_ids: list[str] = Field(description="up to three, the earliest")


class AfterErasureRowJson(Contract):
    event_id: str
    occurred_at: Timestamp
    recorded_at: Timestamp = Field(description="when the ledger received it (ingested_at)")
    recipient_id: str
    producer_service: str


class AfterErasureJson(Contract):
    """Disclosures about a subject erased before they arrived; no subject, no pseudonym."""

    events: Count
    meaning: str = Field(description="what these are and what to do")
    groups: list[AfterErasureGroupJson] = Field(description="most events first")
    rows: list[AfterErasureRowJson] = Field(
        description="earliest first, at most rows_listed_at_most of them"
    )
    rows_listed_at_most: Count


class UnregisteredRecipientJson(Contract):
    recipient_id: str
    recipient_category: str = Field(description="as the events carry it")
    events: Count
    first_seen: Timestamp
    last_seen: Timestamp
    example_event_ids: list[str] = Field(description="up to three, the earliest")
    fix: str = Field(description="what to add to the reference data")


class UndeclaredFlowJson(Contract):
    recipient_category: str
    recipient_id: str | None = Field(description="null: recipients not registered, grouped")
    recipients: Count = Field(description="distinct recipient ids in the group")
    data_categories: list[str]
    purpose: str
    events: Count
    first_seen: Timestamp
    last_seen: Timestamp
    example_event_ids: list[str] = Field(description="up to three, the earliest")


class UnsafeTransferJson(Contract):
    recipient_id: str
    recipient_category: str
    legal_name: str | None
    country: str | None
    events: Count
    first_seen: Timestamp
    last_seen: Timestamp
    example_event_ids: list[str] = Field(description="up to three, the earliest")


class ConformanceReportJson(LedgerReport):
    """Unregistered recipients, undeclared flows, and transfers outside the EEA without a
    safeguard."""

    report: Literal["conformance-report/1"]
    summary: ConformanceSummary
    after_erasure: AfterErasureJson = Field(description="listed first: act on these first")
    unregistered_recipients: list[UnregisteredRecipientJson] = Field(
        description="most events first"
    )
    undeclared_flows: list[UndeclaredFlowJson] = Field(description="most events first")
    transfers_without_safeguard: list[UnsafeTransferJson] = Field(description="most events first")


# -- erasure-notices/1 ---------------------------------------------------------------------
class NoticesSummary(Contract):
    erasures: Count = Field(description="erasures in the journal")
    notices_due: Count
    notices_sent: Count


class NoticeDueJson(Contract):
    erasure_id: str
    erased_at: Timestamp
    recipient_id: str
    recipient_category: str
    ledger_rows: Count = Field(description="the erased subject's rows this recipient received")
    last_disclosed_at: Timestamp
    days_due: Count = Field(description="whole days from the erasure to the report")


class NoticeSentJson(Contract):
    erasure_id: str
    erased_at: Timestamp
    recipient_id: str
    sent_on: Day
    recorded_at: Timestamp
    recorded_by: str
    note: str | None


class ErasureNoticesReportJson(Contract):
    """GDPR Art. 19 notices: for every erasure in the journal, the recipients of the
    subject's data not yet told of it, and the notices sent."""

    report: Literal["erasure-notices/1"]
    generated_at: Timestamp
    ledger: str = Field(description="path of the ledger whose erasure journal was read")
    summary: NoticesSummary
    due: list[NoticeDueJson] = Field(description="oldest erasure first, then by recipient")
    sent: list[NoticeSentJson] = Field(description="in the order sent")


# -- requests-report/1 ----------------------------------------------------------------------
class Period(Contract):
    start: Day
    end: Day = Field(description="excluded")


class RequestLogSource(Contract):
    request_log: str = Field(description="path of the request log")
    entries_counted: Count


class KindMetricsJson(Contract):
    kind: RequestKind
    name: str
    received: Count
    complied_in_whole: Count
    complied_in_part: Count
    denied: Count
    median_days_to_respond: float | None = Field(description="null when none was answered")
    beyond_twice_in_12_months: Count
    denied_not_verifiable: Count = Field(description="denied: the request could not be verified")
    denied_not_a_consumer: Count = Field(description="denied: not made by a consumer")
    denied_exempt: Count = Field(description="denied: called for information exempt")
    denied_other: Count = Field(description="denied on other grounds")
    denied_ground_not_recorded: Count = Field(
        description="denied before the register recorded grounds"
    )
    answered_late: Count = Field(description="answered or denied after the deadline")
    open_at_period_end: Count = Field(
        description="received by open_counted_on and neither answered nor denied by then"
    )
    overdue_at_period_end: Count = Field(description="of those, past their deadline")


class ReissueDueJson(Contract):
    """An answer a late event changed: to be given again, against the same request."""

    request_id: str
    kind: RequestKind
    received_on: Day
    responded_on: Day | None
    coverage_through: Timestamp | None = Field(
        description="the ledger's coverage when the answer was given"
    )
    answered_start: Timestamp | None = Field(description="null: from the first event")
    answered_end: Timestamp | None
    due_since: Timestamp = Field(description="when a late event inside that window was found")


class RequestsReportJson(Contract):
    """The 11 CCR 7102 metrics of one calendar year, from the request log."""

    report: Literal["requests-report/1"]
    generated_at: Timestamp
    year: int
    period: Period
    source: RequestLogSource
    open_counted_on: Day = Field(
        description="the day open and overdue requests are counted on: the period's last "
        "day, or the day the report was generated if earlier"
    )
    kinds: list[KindMetricsJson]
    reissues_due: list[ReissueDueJson] = Field(
        default_factory=list,
        description="answers to give again (any year), oldest request first; a re-issue is "
        "not a new request and is not counted in kinds",
    )


# -- access-report/1 ------------------------------------------------------------------------
class AccessLogHead(Contract):
    """The access log's chain at generation time: what a signed checkpoint names."""

    length: Count = Field(description="entries in the whole log (its highest seq)")
    head_chain_hash: str | None = Field(
        pattern=r"^[0-9a-f]{64}$", description="hex of the last entry's chain_hash; null: empty"
    )


class AccessEntryJson(Contract):
    """One read of personal data, as recorded before it was answered."""

    seq: int = Field(ge=1)
    accessed_at: Timestamp
    actor: str
    role: str
    action: str = Field(description='what was read: "report subject", "query", ...')
    reason: str = Field(description="the reason the reader stated (a case number)")
    subject_pseudonym: str | None = Field(
        description="the subject as the ledger knows it (never resolved to an id); null: "
        "no one subject"
    )
    query_text: str | None
    detail: str | None
    rows_returned: Count
    chain_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class AccessWindow(Contract):
    start: Timestamp = Field(description="included: --since")
    end: Timestamp = Field(description="excluded: --until, else the time of generation")


class AccessReportJson(Contract):
    """Who read personal data, when, why and how much, from the hash-chained access log."""

    report: Literal["access-report/1"]
    generated_at: Timestamp
    window: AccessWindow = Field(description="entries with start <= accessed_at < end")
    access_log: AccessLogHead
    entries_counted: Count
    entries: list[AccessEntryJson] = Field(description="in seq order")


# -- publishing -----------------------------------------------------------------------------
CONTRACTS: tuple[type[Contract], ...] = (
    CcpaReportJson,
    SubjectReportJson,
    RecipientsReportJson,
    DenialJson,
    TransfersReportJson,
    ConformanceReportJson,
    RequestsReportJson,
    AccessReportJson,
    ErasureNoticesReportJson,
)
"""Every report's JSON contract."""


def contract_version(model: type[Contract]) -> str:
    """``ccpa-report/1``: the value of the model's ``report`` field."""
    annotation = model.model_fields["report"].annotation
    (version,) = getattr(annotation, "__args__", (None,))
    if not isinstance(version, str):
        raise TypeError(f"{model.__name__}.report is not one Literal version")
    return version


def schema_file_name(model: type[Contract]) -> str:
    """``ccpa-report-1.schema.json``."""
    return contract_version(model).replace("/", "-") + ".schema.json"


def json_schema(model: type[Contract]) -> dict[str, Any]:
    """The model's JSON Schema (draft 2020-12), as published."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_file_name(model),
        **model.model_json_schema(mode="serialization"),
    }


def json_schema_text(model: type[Contract]) -> str:
    return json.dumps(json_schema(model), indent=2, ensure_ascii=False) + "\n"


def write_json_schemas(folder: Path) -> list[Path]:
    """Write every contract's schema into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for model in CONTRACTS:
        path = folder / schema_file_name(model)
        path.write_text(json_schema_text(model), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_json_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written_path)
