"""Answers to re-issue: a late event landed inside a period an earlier answer covered.

An answer to a person (``report subject``, ``report recipients``) read the ledger up to its
chain heads, for its window. A row for that person added to the ledger since (past those
heads) whose ``occurred_at`` falls inside that window is one the answer could not count:
an event that arrived late (the consumer flags it ``late`` when it falls under a
watermark already consumed), or one of a period the ledger did not yet cover. Either way
the answer is no longer the whole truth, and :func:`mark_reissues_due` marks it in the
request log for re-issue; ``report requests`` lists it. Chain heads, not clocks, say what
an answer saw, so no ingest time is compared with a report's time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from ledger.lake import cursor_of
from ledger.store import Ledger
from reports.errors import ReportError
from reports.request_log import LoggedRequest, RequestLog
from reports.window import naive_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_LATE_ROWS_SQL = """
SELECT count(*) FROM disclosures d
LEFT JOIN (
    SELECT unnest($chains::VARCHAR[]) AS chain_id, unnest($heads::BIGINT[]) AS head
) h USING (chain_id)
WHERE d.subject_pseudonym = $pseudonym AND d.subject_type = $subject_type
  AND d.occurred_at >= $start AND d.occurred_at < $end
  AND d.seq > coalesce(h.head, 0)
"""


def mark_reissues_due(
    log: RequestLog, ledger: Ledger, *, now: datetime | None = None
) -> list[LoggedRequest]:
    """Mark every watched answer a later row falls inside of; returns all answers due."""
    found_at = now or datetime.now(UTC)
    watches = log.watches()
    if watches:
        cursor = cursor_of(ledger.con)
        try:
            cursor.execute("BEGIN TRANSACTION")
            for request_id, watch in watches:
                late = cursor.execute(
                    _LATE_ROWS_SQL,
                    {
                        "chains": list(watch.chain_heads),
                        "heads": list(watch.chain_heads.values()),
                        "pseudonym": watch.subject_pseudonym,
                        "subject_type": watch.subject_type,
                        "start": naive_utc(watch.window_start or _EPOCH),
                        "end": naive_utc(watch.window_end),
                    },
                ).fetchone()
                if late and late[0]:
                    log.mark_reissue_due(request_id, found_at)
            cursor.execute("COMMIT")
        except duckdb.Error as exc:
            raise ReportError(
                f"cannot look for late events in ledger {ledger.path}: {exc}"
            ) from exc
        finally:
            cursor.close()
    return log.reissues_due()
