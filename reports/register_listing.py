"""The request register as JSON (the API's answer) and as the lines ``requests list`` and
``requests show`` print. The CLI prints from the JSON, on a ledger file and through the
service alike, so both print the same."""

from __future__ import annotations

from datetime import date
from typing import Any

from reports.request_register import RegisterEntry, identity_required


def entry_json(entry: RegisterEntry, as_of: date) -> dict[str, Any]:
    logged = entry.logged
    identity = entry.identity
    return {
        "request_id": entry.request_id,
        "kind": entry.kind.value,
        "law": None if entry.law is None else entry.law.value,
        "subject_type": entry.subject_type,
        "received_on": entry.received_on.isoformat(),
        "received_via": entry.received_via.value,
        "opened_by": entry.opened_by,
        "status": entry.status.value,
        "due_on": None if entry.due_on is None else entry.due_on.isoformat(),
        "extended_due_on": None
        if entry.extended_due_on is None
        else entry.extended_due_on.isoformat(),
        "deadline": None if entry.deadline is None else entry.deadline.isoformat(),
        "extension_notice_on": None
        if entry.extension_notice_on is None
        else entry.extension_notice_on.isoformat(),
        "extension_reason": entry.extension_reason,
        "identity_required": None
        if entry.law is None
        else identity_required(entry.kind, entry.law),
        "identity": None
        if identity is None
        else {
            "method": identity.method,
            "verified_by": identity.verified_by,
            "verified_at": identity.verified_at.isoformat(),
        },
        "responded_on": None if entry.responded_on is None else entry.responded_on.isoformat(),
        "response": None if logged is None else logged.response.value,
        "response_detail": None if logged is None else logged.response_detail,
        "closed_by": entry.closed_by,
        "denial_ground": None if entry.denial_ground is None else entry.denial_ground.value,
        "denial_basis": None if logged is None else logged.denial_basis,
        "answer_sha256": entry.answer_sha256,
        "answer_stored_at": entry.answer_stored_at,
        "erasure_id": entry.erasure_id,
        "reissue_due_since": None
        if entry.reissue_due_since is None
        else entry.reissue_due_since.isoformat(),
        "open": entry.open_on(as_of),
        "overdue": entry.overdue_on(as_of),
        "days_left": entry.days_left(as_of) if entry.open_on(as_of) else None,
        "answered_late": entry.late(),
    }


def listing_json(entries: list[RegisterEntry], as_of: date) -> dict[str, Any]:
    return {
        "as_of": as_of.isoformat(),
        "entries": [entry_json(e, as_of) for e in entries],
        "limits": LIMITS,
    }


LIMITS = (
    "Deadlines are computed from the day received: CCPA 45 calendar days (90 once "
    "extended), GDPR one calendar month (three once extended). Requests answered before the "
    "register existed show no law and no deadline. The register holds what was recorded in "
    "it: a request received but never opened here is not listed."
)


def state_text(doc: dict[str, Any]) -> str:
    """How the request stands, in a few words."""
    if doc["overdue"]:
        return f"OVERDUE by {-int(doc['days_left'])} day(s)"
    if doc["open"]:
        left = int(doc["days_left"])
        waiting = "" if doc["identity"] or not doc["identity_required"] else "; identity pending"
        return f"due in {left} day(s){waiting}" if left else f"due today{waiting}"
    late = " (late)" if doc["answered_late"] else ""
    reissue = "; RE-ISSUE DUE" if doc["reissue_due_since"] else ""
    return f"{doc['status']} on {doc['responded_on']}{late}{reissue}"


def listing_lines(listing: dict[str, Any]) -> list[str]:
    entries = listing["entries"]
    if not entries:
        return [f"no request matches, as of {listing['as_of']}", f"note: {listing['limits']}"]
    lines = [
        f"{'request id':36}  {'kind':10}  {'law':4}  {'received':10}  {'deadline':10}  "
        f"{'status':8}  state"
    ]
    for doc in entries:
        lines.append(
            f"{doc['request_id']:36}  {doc['kind']:10}  {doc['law'] or '-':4}  "
            f"{doc['received_on']:10}  {doc['deadline'] or '-':10}  {doc['status']:8}  "
            f"{state_text(doc)}"
        )
    overdue = sum(1 for doc in entries if doc["overdue"])
    lines.append(
        f"{len(entries)} request(s) listed as of {listing['as_of']}, {overdue} overdue "
        "(overdue first, then by deadline)"
    )
    lines.append(f"note: {listing['limits']}")
    return lines


_SHOWN = (
    ("request_id", "request id"),
    ("kind", "kind"),
    ("law", "law"),
    ("subject_type", "subject type"),
    ("received_on", "received on"),
    ("received_via", "received via"),
    ("opened_by", "opened by"),
    ("status", "status"),
    ("due_on", "statutory deadline"),
    ("extended_due_on", "extended deadline"),
    ("extension_notice_on", "extension notice sent on"),
    ("extension_reason", "extension reasons"),
    ("responded_on", "responded on"),
    ("response", "response"),
    ("response_detail", "response detail"),
    ("closed_by", "closed by"),
    ("denial_ground", "denial ground"),
    ("denial_basis", "denial basis"),
    ("answer_sha256", "answer document SHA-256"),
    ("answer_stored_at", "answer document stored at"),
    ("erasure_id", "erasure"),
    ("reissue_due_since", "re-issue due since"),
)


def entry_lines(doc: dict[str, Any]) -> list[str]:
    lines = [f"{label}: {doc[key]}" for key, label in _SHOWN if doc.get(key) is not None]
    identity = doc["identity"]
    if identity is not None:
        lines.append(
            f"identity verified: {identity['method']}, by {identity['verified_by']}, "
            f"at {identity['verified_at']}"
        )
    elif doc["identity_required"]:
        lines.append("identity verified: not yet (required before an answer)")
    elif doc["identity_required"] is False:
        lines.append("identity verified: not required (a CCPA opt-out, 11 CCR 7026)")
    lines.append(f"state: {state_text(doc)}")
    return lines
