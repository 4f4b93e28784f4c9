"""The access report: every read of personal data in a window, from the access log.

Who read, with which role, when, what (the action, the query text, the detail), why (the
stated reason) and how many rows were returned, in seq order, with the log's chain head
at generation time, so a reader can check the report against a signed checkpoint. The
subject appears as the pseudonym the entry holds, never resolved to an id: after an
erasure nothing links it to a person. Read in one snapshot (a transaction of its own).

JSON shape ``access-report/1``: :class:`reports.contracts.AccessReportJson`, published as
``docs/schemas/access-report-1.schema.json``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

import duckdb

from ledger.access_log import has_access_log
from ledger.lake import cursor_of
from ledger.store import Ledger
from reports.base import ReportFormats
from reports.contracts import AccessEntryJson, AccessLogHead, AccessReportJson, AccessWindow
from reports.document import Document, Section, Table, render_csv
from reports.errors import ReportError
from reports.window import as_utc, rfc3339

JSON_VERSION: Final = "access-report/1"


@dataclass(frozen=True)
class AccessRow:
    seq: int
    accessed_at: datetime
    actor: str
    role: str
    action: str
    reason: str
    subject_pseudonym: str | None
    query_text: str | None
    detail: str | None
    rows_returned: int
    chain_hash: str  # hex


@dataclass(frozen=True)
class AccessReport:
    since: datetime
    until: datetime
    generated_at: datetime
    log_length: int
    log_head: str | None  # hex; None while the log is empty
    entries: tuple[AccessRow, ...]


def access_report(
    ledger: Ledger,
    *,
    since: date | datetime,
    until: date | datetime | None = None,
    generated_at: datetime | None = None,
) -> AccessReport:
    """The access log's entries with ``since <= accessed_at < until`` (default: now)."""
    now = as_utc(generated_at) if generated_at is not None else datetime.now(UTC)
    start = as_utc(since)
    end = as_utc(until) if until is not None else now
    if start >= end:
        raise ReportError(
            f"--since {rfc3339(start)} must be before --until {rfc3339(end)} (the end is "
            "excluded; without --until it is now)"
        )
    cursor = cursor_of(ledger.con)  # its own transaction: the head and the rows agree
    try:
        cursor.execute("BEGIN TRANSACTION")
        if not has_access_log(cursor):  # a ledger older than the access log, read read-only
            return AccessReport(start, end, now, 0, None, ())
        head = cursor.execute(
            "SELECT seq, chain_hash FROM access_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        rows = cursor.execute(
            "SELECT seq, accessed_at, actor, role, action, reason, subject_pseudonym, "
            "query_text, detail, rows_returned, lower(hex(chain_hash)) FROM access_log "
            "WHERE accessed_at >= $start AND accessed_at < $end ORDER BY seq",
            {"start": _naive(start), "end": _naive(end)},
        ).fetchall()
        cursor.execute("COMMIT")
    except duckdb.Error as exc:
        raise ReportError(f"cannot read the access log of ledger {ledger.path}: {exc}") from exc
    finally:
        cursor.close()
    return AccessReport(
        since=start,
        until=end,
        generated_at=now,
        log_length=0 if head is None else int(head[0]),
        log_head=None if head is None else bytes(head[1]).hex(),
        entries=tuple(
            AccessRow(
                seq=int(seq),
                accessed_at=as_utc(at),
                actor=str(actor),
                role=str(role),
                action=str(action),
                reason=str(reason),
                subject_pseudonym=pseudonym,
                query_text=query,
                detail=detail,
                rows_returned=int(returned),
                chain_hash=str(link),
            )
            for (
                seq,
                at,
                actor,
                role,
                action,
                reason,
                pseudonym,
                query,
                detail,
                returned,
                link,
            ) in rows
        ),
    )


def _naive(moment: datetime) -> datetime:
    """The ledger stores UTC timestamps without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def render_access(report: AccessReport, fmt: str) -> str:
    return ACCESS_REPORT_FORMATS.render(report, fmt)


def access_contract(report: AccessReport) -> AccessReportJson:
    return AccessReportJson(
        report=JSON_VERSION,
        generated_at=rfc3339(report.generated_at),
        window=AccessWindow(start=rfc3339(report.since), end=rfc3339(report.until)),
        access_log=AccessLogHead(length=report.log_length, head_chain_hash=report.log_head),
        entries_counted=len(report.entries),
        entries=[
            AccessEntryJson(
                seq=e.seq,
                accessed_at=rfc3339(e.accessed_at),
                actor=e.actor,
                role=e.role,
                action=e.action,
                reason=e.reason,
                subject_pseudonym=e.subject_pseudonym,
                query_text=e.query_text,
                detail=e.detail,
                rows_returned=e.rows_returned,
                chain_hash=e.chain_hash,
            )
            for e in report.entries
        ],
    )


def _summary(report: AccessReport) -> str:
    entries = report.entries
    if not entries:
        return (
            f"No read of personal data was recorded from {rfc3339(report.since)} to "
            f"{rfc3339(report.until)}."
        )
    actors = Counter(e.actor for e in entries)
    subjects = {e.subject_pseudonym for e in entries if e.subject_pseudonym}
    return (
        f"{len(entries)} read{'s' if len(entries) != 1 else ''} of personal data by "
        f"{len(actors)} actor{'s' if len(actors) != 1 else ''}, "
        f"{sum(e.rows_returned for e in entries)} rows returned in all, "
        f"{len(subjects)} subject{'s' if len(subjects) != 1 else ''} named by pseudonym."
    )


def access_document(report: AccessReport) -> Document:
    return Document(
        title=f"Reads of personal data, {rfc3339(report.since)} to {rfc3339(report.until)}",
        basis="From the append-only, hash-chained access log: every read of personal data "
        "is recorded before it is answered.",
        sections=(
            Section(
                heading="Reads",
                paragraphs=(_summary(report),),
                table=Table(
                    (
                        "Seq",
                        "At",
                        "Actor",
                        "Role",
                        "Action",
                        "Reason",
                        "Subject (pseudonym)",
                        "Rows",
                        "Query or detail",
                    ),
                    tuple(
                        (
                            str(e.seq),
                            rfc3339(e.accessed_at),
                            e.actor,
                            e.role,
                            e.action,
                            e.reason,
                            e.subject_pseudonym or "-",
                            str(e.rows_returned),
                            "; ".join(t for t in (e.query_text, e.detail) if t) or "-",
                        )
                        for e in report.entries
                    ),
                    (True, False, False, False, False, False, False, True, False),
                )
                if report.entries
                else None,
                section_id="reads",
            ),
        ),
        provenance=None,
        source_lines=(
            f"Window: entries from {rfc3339(report.since)} (included) to "
            f"{rfc3339(report.until)} (excluded).",
            f"Generated at: {rfc3339(report.generated_at)}.",
            (
                f"Source: the ledger's access log, {report.log_length} entries in all, head "
                f"chain hash {report.log_head} (the chain `access_log` of the signed "
                "checkpoints)."
                if report.log_head
                else "Source: the ledger's access log, which holds no entry."
            ),
            "Subjects are shown as the pseudonyms the entries hold, never resolved to ids.",
        ),
    )


CSV_HEADERS = (
    "seq",
    "accessed_at",
    "actor",
    "role",
    "action",
    "reason",
    "subject_pseudonym",
    "query_text",
    "detail",
    "rows_returned",
    "chain_hash",
)


def access_csv(report: AccessReport) -> str:
    meta = [
        ("window_start", rfc3339(report.since)),
        ("window_end", rfc3339(report.until)),
        ("generated_at", rfc3339(report.generated_at)),
        ("access_log_length", str(report.log_length)),
        ("access_log_head_chain_hash", report.log_head or "none"),
        ("entries_counted", str(len(report.entries))),
    ]
    rows = [
        (
            e.seq,
            rfc3339(e.accessed_at),
            e.actor,
            e.role,
            e.action,
            e.reason,
            e.subject_pseudonym,
            e.query_text,
            e.detail,
            e.rows_returned,
            e.chain_hash,
        )
        for e in report.entries
    ]
    return render_csv(JSON_VERSION, meta, CSV_HEADERS, rows)


ACCESS_REPORT_FORMATS: ReportFormats[AccessReport] = ReportFormats(
    "access", access_contract, access_document, access_csv
)
