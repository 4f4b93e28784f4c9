"""Roles and what each may do. Every permission check is one call: :func:`permission_allowed`.

role          may
compliance    reports, requests to know, request metrics, the request register,
              erasure notices (GDPR Art. 19), a row's proof bundle
investigator  queries, presets, timelines, quarantine, a row's proof bundle
auditor       verify, checkpoints, status, the access log, consistency proofs; no
              personal data
admin         users, tokens, erasure, approving another's erasure or quarantine read,
              backups, erasure notices

A row's proof bundle (``prove --event-id``) shows the row's fields with the subject's
pseudonym: it is a read of a disclosure row, granted as the other such reads are and
recorded in the access log. A consistency proof holds two signed checkpoints and hashes,
no row: every role may have one.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    compliance = "compliance"
    investigator = "investigator"
    auditor = "auditor"
    admin = "admin"


class Action(StrEnum):
    """Everything the API and the console let someone do, each granted to some roles."""

    status = "status"  # ingest health, coverage, checkpoints (no personal data)
    report = "report"  # ccpa, conformance, transfers (no personal data)
    request_to_know = "request_to_know"  # subject and recipients answers (personal data)
    request_metrics = "request_metrics"
    request_register = "request_register"  # open, verify, extend, answer, deny, list
    query = "query"  # investigator SQL and presets (personal data)
    quarantine = "quarantine"  # browsing quarantined messages (personal data)
    verify = "verify"
    checkpoints = "checkpoints"
    access_log = "access_log"
    users = "users"
    tokens = "tokens"
    erase = "erase"  # asks for an erasure (a second admin approves it)
    approve = "approve"  # approves or rejects someone else's erasure or quarantine read
    backup = "backup"  # a snapshot of the ledger and its stores, on the service's machine
    erasure_notices = "erasure_notices"  # Art. 19 notices due and sent (no personal data)
    event_proof = "event_proof"  # a row's inclusion bundle (its fields: personal data)
    consistency_proof = "consistency_proof"  # two checkpoints' consistency (no personal data)


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.compliance: frozenset(
        {
            Action.status,
            Action.report,
            Action.request_to_know,
            Action.request_metrics,
            Action.request_register,
            Action.erasure_notices,
            Action.event_proof,
            Action.consistency_proof,
        }
    ),
    Role.investigator: frozenset(
        {
            Action.status,
            Action.query,
            Action.quarantine,
            Action.event_proof,
            Action.consistency_proof,
        }
    ),
    Role.auditor: frozenset(
        {
            Action.status,
            Action.verify,
            Action.checkpoints,
            Action.access_log,
            Action.consistency_proof,
        }
    ),
    Role.admin: frozenset(
        {
            Action.status,
            Action.users,
            Action.tokens,
            Action.erase,
            Action.approve,
            Action.access_log,
            Action.backup,
            Action.erasure_notices,
            Action.consistency_proof,
        }
    ),
}
"""The table of the issue, as data. Everyone signed in may see the status (the dashboard)."""


def permission_allowed(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]
