"""What was disclosed about one person: the request to know, and the GDPR Art. 19 list.

:func:`subject_report` answers a consumer's request to know (Cal. Civ. Code 1798.110 and
1798.115) and GDPR Art. 15(1)(c): for the window ``[as_of - 12 months, as_of)`` (or from
``since``, which may reach back no further than 2022-01-01, the CCPA's floor for a longer
lookback, and says so when clamped), the categories of personal information disclosed
about that person, for each its recipient categories and the named recipients (the actual
identities, as the CJEU requires in C-154/21, not only categories), with the dates of
first and last disclosure.

:func:`recipients_report` (GDPR Art. 19) lists every recipient that ever received that
person's data up to ``as_of``, with the data categories and the last date: the list to
notify of a rectification or erasure.

The person is found through the subject key store: their pseudonym is computed from the
raw id and looked up in the ledger, which never holds the raw id. The reports print the
raw id the person gave, never the pseudonym. When the key store holds no key (never
seen, or erased) the answer is that no data is held. Each answer is recorded in the
request log (:mod:`reports.request_log`) by :func:`answer_subject_request`, with the
ledger's coverage; :func:`reissue_subject_answer` gives an answer again that a late event
changed (:mod:`reports.reissue`).

An answer is given for the period the ledger covers (:mod:`reports.coverage`): a window
ending after the coverage is cut there, and the answer says that the ledger cannot answer
for the rest yet. It never says "we did not disclose" of time the ledger does not cover.

JSON shapes ``subject-report/1``, ``recipients-report/1`` and ``request-denial/1``: the
models in :mod:`reports.contracts`, published as JSON Schema under ``docs/schemas/``.

The package by concern: :mod:`~reports.subject.values` (what an answer holds),
:mod:`~reports.subject.queries` (reading it from the ledger),
:mod:`~reports.subject.answers` (recording it in the request log),
:mod:`~reports.subject.rendering` (JSON, Markdown, HTML, CSV) and
:mod:`~reports.subject.denial` (a request denied: recorded, and its notice written).
"""

from __future__ import annotations

from reports.subject.answers import (
    answer_registered_request,
    answer_subject_request,
    reissue_subject_answer,
)
from reports.subject.denial import (
    DENIAL_JSON_VERSION,
    DenialNotice,
    deny_subject_request,
    render_denial,
)
from reports.subject.queries import recipients_report, subject_report
from reports.subject.rendering import (
    RECIPIENTS_CSV_HEADERS,
    SUBJECT_CSV_HEADERS,
    recipients_csv,
    recipients_document,
    recipients_json,
    render_recipients,
    render_subject,
    subject_csv,
    subject_document,
    subject_json,
)
from reports.subject.values import (
    LOOKBACK_FLOOR,
    RECIPIENTS_JSON_VERSION,
    SUBJECT_JSON_VERSION,
    NamedRecipient,
    PseudonymSource,
    RecipientDisclosed,
    RecipientsReport,
    SubjectCategory,
    SubjectReport,
)

__all__ = [
    "DENIAL_JSON_VERSION",
    "LOOKBACK_FLOOR",
    "RECIPIENTS_CSV_HEADERS",
    "RECIPIENTS_JSON_VERSION",
    "SUBJECT_CSV_HEADERS",
    "SUBJECT_JSON_VERSION",
    "DenialNotice",
    "NamedRecipient",
    "PseudonymSource",
    "RecipientDisclosed",
    "RecipientsReport",
    "SubjectCategory",
    "SubjectReport",
    "answer_registered_request",
    "answer_subject_request",
    "deny_subject_request",
    "recipients_csv",
    "recipients_document",
    "recipients_json",
    "recipients_report",
    "reissue_subject_answer",
    "render_denial",
    "render_recipients",
    "render_subject",
    "subject_csv",
    "subject_document",
    "subject_json",
    "subject_report",
]
