"""The quarantine, as ``quarantine show`` shows it: a listing of metadata (no personal
data), and one message's unsealed bytes (personal data: recorded in the access log first).

A message sealed under an erased subject's key has no bytes to show: its ``unreadable``
says so (:data:`ledger.quarantine.UNREADABLE_ERASED`), as does a purged one's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ledger.access_log import AccessEntry
from ledger.key_check import KeyStoreAccess
from ledger.quarantine import read_quarantine
from reports.errors import ReportError

if TYPE_CHECKING:
    from disclosure_ledger.service.auth.accounts import Actor
    from disclosure_ledger.service.runtime import LedgerService


class NotQuarantinedError(ReportError):
    """No quarantined message at that topic, partition and offset."""


@dataclass(frozen=True)
class QuarantineEntry:
    topic: str
    partition: int
    offset: int
    error: str
    quarantined_at: datetime
    sealed_with: str | None = None  # the subject key's id; None: the deployment key
    purged_at: datetime | None = None


@dataclass(frozen=True)
class QuarantinePage:
    total: int
    offset: int
    limit: int
    entries: tuple[QuarantineEntry, ...]


@dataclass(frozen=True)
class QuarantineMessage:
    """One quarantined message with its original bytes (None: the part was absent)."""

    entry: QuarantineEntry
    key: bytes | None
    value: bytes | None
    unreadable: str | None = None  # why there are no bytes to show (erased, or purged)


def quarantine_listing(
    service: LedgerService,
    *,
    offset: int,
    limit: int,
    topic: str | None = None,
    partition: int | None = None,
) -> QuarantinePage:
    """Quarantined messages in source order, without their bytes; ``limit`` at a time."""
    if offset < 0 or limit < 1:
        raise ReportError(f"offset {offset}, limit {limit}: give offset >= 0 and limit >= 1")
    where, params = _where(topic, partition)
    with service.view() as view:
        cursor = view.con
        cursor.execute("BEGIN TRANSACTION")
        try:
            total = (
                cursor.execute(f"SELECT count(*) FROM quarantine{where}", params).fetchone() or (0,)
            )[0]
            rows = cursor.execute(
                "SELECT topic, kafka_partition, kafka_offset, error, quarantined_at, "
                f"sealed_with, purged_at FROM quarantine{where} "
                "ORDER BY topic, kafka_partition, kafka_offset LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        finally:
            cursor.execute("ROLLBACK")
    return QuarantinePage(
        total=int(total),
        offset=offset,
        limit=limit,
        entries=tuple(
            QuarantineEntry(str(t), int(p), int(o), str(e), at, w, purged)
            for t, p, o, e, at, w, purged in rows
        ),
    )


def _where(topic: str | None, partition: int | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if topic is not None:
        clauses.append("topic = ?")
        params.append(topic)
    if partition is not None:
        clauses.append("kafka_partition = ?")
        params.append(partition)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def quarantine_message(
    service: LedgerService,
    actor: Actor,
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    approval: str,
) -> QuarantineMessage:
    """One message's unsealed key and value; the read is in the access log before they
    are returned (a failure to write it fails the read). ``approval`` names the approved
    request that allows it (:func:`disclosure_ledger.service.answers.approvals.read_approved`
    is the only caller in the service)."""
    with service.view() as view, service.subject_keys(KeyStoreAccess.read, view) as keys:
        found = read_quarantine(
            view, keys, topic=topic, partition=partition, offsets=(offset, offset)
        )
    if not found:
        raise NotQuarantinedError(
            f"no quarantined message at {topic}/{partition} offset {offset}; "
            "GET /api/v1/quarantine lists them"
        )
    message = found[0]
    service.record_access(
        AccessEntry(
            actor=actor.name,
            role=actor.role.value,
            action="quarantine bytes",
            reason=reason,
            rows_returned=1,
            detail=f"{topic}/{partition} offset {offset}; {approval}",
        )
    )
    return QuarantineMessage(
        QuarantineEntry(
            message.topic,
            message.partition,
            message.offset,
            message.error,
            message.quarantined_at,
            message.sealed_with,
            message.purged_at,
        ),
        message.key,
        message.value,
        message.unreadable,
    )
