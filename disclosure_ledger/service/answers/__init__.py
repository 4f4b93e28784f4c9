"""What the service answers, one function per question, shared by the API and the console.

Each function takes the :class:`~disclosure_ledger.service.runtime.LedgerService` and calls
the same library functions as the CLI command it stands for, on a view of the one ledger
instance, so the text is the CLI's text. A read of personal data is recorded in the access
log (:meth:`~disclosure_ledger.service.runtime.LedgerService.record_access`) before the
answer is handed back; if the entry cannot be written the read fails.

- :mod:`.periods`: ``period_report`` (ccpa, conformance, transfers) and
  ``request_metrics`` (the request log's 11 CCR 7102 metrics);
- :mod:`.subjects`: ``SubjectRequest`` and ``subject_answer`` (request to know, recipients);
- :mod:`.erasure`: ``erase`` (``erase-subject`` while ingestion continues);
- :mod:`.quarantine`: ``quarantine_listing`` (metadata) and ``quarantine_message`` (bytes).
"""

from __future__ import annotations

from disclosure_ledger.service.answers.erasure import ErasureOutcome, erase, erasure_lines
from disclosure_ledger.service.answers.periods import (
    PERIOD_KINDS,
    NoRequestLogError,
    PeriodKind,
    period_report,
    request_metrics,
)
from disclosure_ledger.service.answers.quarantine import (
    QuarantineEntry,
    QuarantineMessage,
    QuarantinePage,
    quarantine_listing,
    quarantine_message,
)
from disclosure_ledger.service.answers.subjects import (
    SubjectRequest,
    SubjectRequestFields,
    subject_answer,
)

__all__ = [
    "PERIOD_KINDS",
    "ErasureOutcome",
    "NoRequestLogError",
    "PeriodKind",
    "QuarantineEntry",
    "QuarantineMessage",
    "QuarantinePage",
    "SubjectRequest",
    "SubjectRequestFields",
    "erase",
    "erasure_lines",
    "period_report",
    "quarantine_listing",
    "quarantine_message",
    "request_metrics",
    "subject_answer",
]
