"""GDPR Art. 19 notices in the service: ``notices record`` and ``report recipients
--notices-due``, on the service's one ledger instance.

Recording a notice is checked first (:func:`ledger.notices.check_notice`), then written to
the access log (who recorded which notice), then appended to ``erasure_notices`` through
the writable view: a notice whose record cannot be logged is not recorded. Listing the
notices reads no personal data (erasure ids and recipients): no access-log entry.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ledger.access_log import AccessEntry
from ledger.notices import NoticeSent, check_notice, record_notice

if TYPE_CHECKING:
    from disclosure_ledger.service.auth.accounts import Actor
    from disclosure_ledger.service.runtime import LedgerService

NOTICE_REASON = "GDPR Art. 19 notice of an erasure to a recipient"


def notice_line(notice: NoticeSent) -> str:
    """What ``notices record`` prints."""
    return (
        f"recorded: {notice.recipient_id} was notified on {notice.sent_on.isoformat()} of "
        f"erasure {notice.erasure_id} (erased {notice.erased_at:%Y-%m-%d}); recorded by "
        f"{notice.recorded_by}"
    )


def record_erasure_notice(
    service: LedgerService,
    actor: Actor,
    *,
    erasure_id: str,
    recipient_id: str,
    sent_on: date,
    note: str | None = None,
) -> NoticeSent:
    """Check, log and record one notice sent (raises :class:`ledger.notices.NoticeError`)."""
    with service.writable_view() as view:
        check_notice(
            view,
            erasure_id=erasure_id,
            recipient_id=recipient_id,
            sent_on=sent_on,
            recorded_by=actor.name,
            note=note,
        )
        service.record_access(
            AccessEntry(
                actor=actor.name,
                role=actor.role.value,
                action="record erasure notice",
                reason=NOTICE_REASON,
                rows_returned=0,
                detail=f"erasure {erasure_id}; recipient {recipient_id}; sent on "
                f"{sent_on.isoformat()}",
            )
        )
        return record_notice(
            view,
            erasure_id=erasure_id,
            recipient_id=recipient_id,
            sent_on=sent_on,
            recorded_by=actor.name,
            note=note,
        )


def notices_report_text(service: LedgerService, fmt: str) -> str:
    """``report recipients --notices-due``: every erasure's notices due and sent."""
    from disclosure_ledger.service.answers.periods import check_format
    from reports.erasure_notices import erasure_notices_report, render_notices

    check_format(fmt)
    with service.view() as view:
        report = erasure_notices_report(view)
    return render_notices(report, fmt)
