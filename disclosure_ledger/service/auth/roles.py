"""Roles and what each may do. Every permission check is one call: :func:`permission_allowed`.

role          may
compliance    reports, requests to know, request metrics, the request register,
              erasure notices (GDPR Art. 19)
investigator  queries, presets, timelines, quarantine
auditor       verify, checkpoints, status, the access log; no personal data
admin         users, tokens, erasure, approving another's erasure or quarantine read,
              backups, erasure notices
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


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.compliance: frozenset(
        {
            Action.status,
            Action.report,
            Action.request_to_know,
            Action.request_metrics,
            Action.request_register,
            Action.erasure_notices,
        }
    ),
    Role.investigator: frozenset({Action.status, Action.query, Action.quarantine}),
    Role.auditor: frozenset({Action.status, Action.verify, Action.checkpoints, Action.access_log}),
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
        }
    ),
}
"""The table of the issue, as data. Everyone signed in may see the status (the dashboard)."""


def permission_allowed(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]
