"""The request register: each consumer request handled as a workflow, in the request log.

A request is *opened* when it is received (when, through which channel, under which law),
its requester's identity is *verified* (method, by whom, when), it may be *extended* once,
and it is *answered* (the answer document's SHA-256 and where it is stored) or *denied*
(the ground and the basis). The register is a table of the request log's SQLite file
(:mod:`reports.request_log`); an answered or denied request is also written to the log's
``requests`` table under the same id, so the 11 CCR 7101 record and the 11 CCR 7102
metrics count it once, with the requests logged before the register existed.

Statutory deadlines, from the day the request was received:

- CCPA (Cal. Civ. Code 1798.130(a)(2)): 45 calendar days; extendable once by 45 more when
  the consumer is given notice within the first 45 days.
- GDPR (Art. 12(3)): one month; extendable by two further months, the data subject told
  within the first month with the reasons. Months are calendar months
  (``dateutil.relativedelta``): from 31 January one month ends on 28 (29) February, and
  the extended deadline is three months from receipt (30 April).

Identity: a request cannot be answered before the requester's identity is verified, except
a CCPA request to opt-out of sale or sharing, which need not be a verifiable consumer
request (11 CCR 7026). A request can always be denied (e.g. "identity not verifiable").

Re-issues: an answer a late event changed (``reissue_due_since`` in the log,
:mod:`reports.reissue`) shows in the register beside its request.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final

from dateutil.relativedelta import relativedelta

from ledger.state_db import STATE_ERRORS, StateLocation
from reports.errors import ReportError
from reports.request_log import (
    STATUTORY_REQUESTS_PER_12_MONTHS,
    AnswerWatch,
    LoggedRequest,
    ReceivedVia,
    RequestKind,
    RequestLog,
    Response,
)
from reports.window import months_before


class UnknownRequestError(ReportError):
    """No request with that id in the register (the service answers 404)."""


class Law(StrEnum):
    ccpa = "ccpa"
    gdpr = "gdpr"


class Status(StrEnum):
    open = "open"
    extended = "extended"
    answered = "answered"
    denied = "denied"


class DenialGround(StrEnum):
    """The grounds 11 CCR 7102(a) names for requests denied in whole or in part."""

    not_verifiable = "not_verifiable"  # the request could not be verified
    not_a_consumer = "not_a_consumer"  # the request was not made by a consumer
    exempt = "exempt"  # it called for information exempt from disclosure
    other = "other"  # denied on other grounds


CCPA_DAYS: Final = 45
CCPA_EXTENSION_DAYS: Final = 45
GDPR_MONTHS: Final = 1
GDPR_EXTENSION_MONTHS: Final = 2
OPEN_STATUSES: Final = (Status.open, Status.extended)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS register (
    request_id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    kind TEXT NOT NULL,
    law TEXT NOT NULL,
    received_on TEXT NOT NULL,
    received_via TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    due_on TEXT NOT NULL,
    extended_due_on TEXT,
    extension_notice_on TEXT,
    extension_reason TEXT,
    identity_method TEXT,
    identity_verified_by TEXT,
    identity_verified_at TEXT,
    status TEXT NOT NULL,
    closed_by TEXT,
    answer_sha256 TEXT,
    answer_stored_at TEXT,
    denial_ground TEXT,
    erasure_id TEXT
);
CREATE INDEX IF NOT EXISTS register_by_status ON register (status, due_on);
"""

_REGISTER_COLUMNS = (
    "request_id, subject_type, kind, law, received_on, received_via, opened_at, opened_by, "
    "due_on, extended_due_on, extension_notice_on, extension_reason, identity_method, "
    "identity_verified_by, identity_verified_at, status, closed_by, answer_sha256, "
    "answer_stored_at, denial_ground, erasure_id"
)


def statutory_deadline(law: Law, received_on: date) -> date:
    """The last day to answer, from the day the request was received."""
    if law is Law.ccpa:
        return received_on + timedelta(days=CCPA_DAYS)
    return received_on + relativedelta(months=GDPR_MONTHS)


def extended_deadline(law: Law, received_on: date) -> date:
    """The last day once the one extension is taken (CCPA 45 + 45 days; GDPR one month and
    two further months, counted from receipt)."""
    if law is Law.ccpa:
        return received_on + timedelta(days=CCPA_DAYS + CCPA_EXTENSION_DAYS)
    return received_on + relativedelta(months=GDPR_MONTHS + GDPR_EXTENSION_MONTHS)


def identity_required(kind: RequestKind, law: Law) -> bool:
    """A CCPA opt-out need not be verifiable (11 CCR 7026); every other request must be."""
    return not (kind is RequestKind.opt_out and law is Law.ccpa)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ReportError(f"cannot read the answer document {path}: {exc}") from exc
    return digest.hexdigest()


@dataclass(frozen=True)
class IdentityCheck:
    method: str
    verified_by: str
    verified_at: datetime


@dataclass(frozen=True)
class RegisterEntry:
    """One request as the register holds it (or, for a request logged before the register
    existed, as the log holds it: ``law`` and ``due_on`` are None then)."""

    request_id: str
    kind: RequestKind
    law: Law | None
    subject_type: str
    received_on: date
    received_via: ReceivedVia
    status: Status
    due_on: date | None
    opened_by: str | None = None
    extended_due_on: date | None = None
    extension_notice_on: date | None = None
    extension_reason: str | None = None
    identity: IdentityCheck | None = None
    closed_by: str | None = None
    answer_sha256: str | None = None
    answer_stored_at: str | None = None
    denial_ground: DenialGround | None = None
    erasure_id: str | None = None
    logged: LoggedRequest | None = None  # the log's record, once answered or denied

    @property
    def deadline(self) -> date | None:
        return self.extended_due_on or self.due_on

    @property
    def responded_on(self) -> date | None:
        return None if self.logged is None else self.logged.responded_on

    @property
    def reissue_due_since(self) -> datetime | None:
        return None if self.logged is None else self.logged.reissue_due_since

    def open_on(self, day: date) -> bool:
        """Received by ``day`` and not answered or denied before it."""
        if self.received_on > day:
            return False
        return self.responded_on is None or self.responded_on > day

    def overdue_on(self, day: date) -> bool:
        """Still open on ``day`` and its deadline has passed (the deadline day itself is in
        time)."""
        deadline = self.deadline
        return self.open_on(day) and deadline is not None and day > deadline

    def late(self) -> bool:
        """Answered or denied after its deadline."""
        responded, deadline = self.responded_on, self.deadline
        return responded is not None and deadline is not None and responded > deadline

    def days_left(self, day: date) -> int | None:
        deadline = self.deadline
        return None if deadline is None else (deadline - day).days


def _date(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _now() -> datetime:
    return datetime.now(UTC)


class RequestRegister(RequestLog):
    """The request log with its register of requests handled as a workflow."""

    def __init__(self, path: StateLocation, secret: bytes) -> None:
        super().__init__(path, secret)
        try:
            self._db.executescript(_SCHEMA)
        except STATE_ERRORS as exc:
            raise ReportError(f"cannot open the request register in {self.path}: {exc}") from exc

    def __enter__(self) -> RequestRegister:
        return self

    @classmethod
    def over(cls, log: RequestLog) -> RequestRegister:
        """The register of the same file as ``log`` (a second connection; close it)."""
        return cls(log.path, log._secret)

    # -- opening and the workflow steps -----------------------------------------------------
    def open_request(
        self,
        *,
        kind: RequestKind,
        law: Law,
        subject_type: str,
        subject_id: str,
        received_on: date,
        received_via: ReceivedVia,
        opened_by: str,
        opened_at: datetime | None = None,
    ) -> RegisterEntry:
        """Record a request received; returns it with its statutory deadline."""
        moment = (opened_at or _now()).astimezone(UTC)
        if received_on > moment.date():
            raise ReportError(
                f"the request cannot be received on {received_on}, after today "
                f"({moment.date()}); check --received-on"
            )
        request_id = str(uuid.uuid4())
        self._change(
            f"INSERT INTO register ({_REGISTER_COLUMNS}, requester) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, NULL, ?, NULL, NULL, "
            "NULL, NULL, NULL, ?)",
            (
                request_id,
                subject_type,
                kind.value,
                law.value,
                received_on.isoformat(),
                received_via.value,
                moment.isoformat(),
                opened_by,
                statutory_deadline(law, received_on).isoformat(),
                Status.open.value,
                self.requester(subject_type, subject_id),
            ),
        )
        return self.entry(request_id)

    def verify_identity(
        self, request_id: str, *, method: str, verified_by: str, verified_at: datetime | None = None
    ) -> RegisterEntry:
        entry = self._open_entry(request_id, "record the identity verification of")
        if not method.strip() or not verified_by.strip():
            raise ReportError("give the verification --method and who verified it (--by)")
        moment = (verified_at or _now()).astimezone(UTC)
        if moment.date() < entry.received_on:
            raise ReportError(
                f"the identity cannot be verified on {moment.date()}, before the request was "
                f"received ({entry.received_on})"
            )
        self._change(
            "UPDATE register SET identity_method = ?, identity_verified_by = ?, "
            "identity_verified_at = ? WHERE request_id = ?",
            (method, verified_by, moment.isoformat(), request_id),
        )
        return self.entry(request_id)

    def extend(self, request_id: str, *, notice_sent_on: date, reason: str) -> RegisterEntry:
        """The one extension: notice (with the reasons) sent within the first period."""
        entry = self._open_entry(request_id, "extend")
        assert entry.law is not None and entry.due_on is not None
        if entry.status is Status.extended:
            raise ReportError(
                f"request {request_id} was already extended (to {entry.extended_due_on}); "
                "the law allows one extension"
            )
        if not reason.strip():
            raise ReportError("an extension states its reasons: give --reason")
        if not entry.received_on <= notice_sent_on <= entry.due_on:
            raise ReportError(
                f"the extension notice must be sent between the day the request was received "
                f"({entry.received_on}) and its first deadline ({entry.due_on}); "
                f"--notice-sent-on {notice_sent_on} is outside"
            )
        new_deadline = extended_deadline(entry.law, entry.received_on)
        self._change(
            "UPDATE register SET status = ?, extended_due_on = ?, extension_notice_on = ?, "
            "extension_reason = ? WHERE request_id = ?",
            (
                Status.extended.value,
                new_deadline.isoformat(),
                notice_sent_on.isoformat(),
                reason,
                request_id,
            ),
        )
        return self.entry(request_id)

    def answer(
        self,
        request_id: str,
        *,
        answered_by: str,
        document_sha256: str | None,
        stored_at: str | None,
        response_detail: str,
        in_part: bool = False,
        erasure_id: str | None = None,
        answered_on: date | None = None,
        recorded_at: datetime | None = None,
    ) -> RegisterEntry:
        """Close the request as answered: the answer document's hash and where it is kept
        (a deletion answered by an erasure names the erasure instead or as well)."""
        entry = self._open_entry(request_id, "answer")
        assert entry.law is not None
        if identity_required(entry.kind, entry.law) and entry.identity is None:
            raise ReportError(
                f"request {request_id} cannot be answered before the requester's identity is "
                "verified: record it with `requests verify-identity` (or deny the request)"
            )
        if document_sha256 is None and erasure_id is None:
            raise ReportError(
                "an answer is recorded with its document (--document) or, for a deletion, "
                "the erasure that carried it out (--erasure-id)"
            )
        if erasure_id is not None and entry.kind is not RequestKind.delete:
            raise ReportError(f"--erasure-id applies to deletion requests, not {entry.kind}")
        response = Response.complied_in_part if in_part else Response.complied
        self._close(
            entry,
            status=Status.answered,
            closed_by=answered_by,
            response=response,
            response_detail=response_detail,
            denial_basis=None,
            answered_on=answered_on,
            recorded_at=recorded_at,
            extra=(document_sha256, stored_at, None, erasure_id),
        )
        return self.entry(request_id)

    def deny(
        self,
        request_id: str,
        *,
        ground: DenialGround,
        basis: str,
        denied_by: str,
        denied_on: date | None = None,
        document_sha256: str | None = None,
        stored_at: str | None = None,
        recorded_at: datetime | None = None,
    ) -> RegisterEntry:
        """Close the request as denied, with the ground (11 CCR 7102) and basis (7101)."""
        entry = self._open_entry(request_id, "deny")
        if not basis.strip():
            raise ReportError("a denial must state its basis (11 CCR 7101(a)): give --basis")
        self._close(
            entry,
            status=Status.denied,
            closed_by=denied_by,
            response=Response.denied,
            response_detail="denied: " + basis,
            denial_basis=basis,
            answered_on=denied_on,
            recorded_at=recorded_at,
            extra=(document_sha256, stored_at, ground.value, None),
        )
        return self.entry(request_id)

    def _close(
        self,
        entry: RegisterEntry,
        *,
        status: Status,
        closed_by: str,
        response: Response,
        response_detail: str,
        denial_basis: str | None,
        answered_on: date | None,
        recorded_at: datetime | None,
        extra: tuple[str | None, str | None, str | None, str | None],
    ) -> None:
        moment = (recorded_at or _now()).astimezone(UTC)
        day = answered_on or moment.date()
        if day < entry.received_on:
            raise ReportError(
                f"the response date {day} is before the request was received ({entry.received_on})"
            )
        requester = self._requester_in_register(entry.request_id)
        since = months_before(datetime(day.year, day.month, day.day), 12).date()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            found = self._db.execute(
                "SELECT count(*) FROM requests WHERE requester = ? AND kind = ? "
                "AND received_on > ? AND received_on <= ?",
                (requester, entry.kind.value, since.isoformat(), entry.received_on.isoformat()),
            ).fetchone()
            number = int(found[0]) + 1 if found else 1
            self._db.execute(
                "INSERT INTO requests (request_id, requester, subject_type, kind, received_on, "
                "received_via, responded_on, response, response_detail, denial_basis, "
                "number_in_12_months, beyond_statutory_obligation, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.request_id,
                    requester,
                    entry.subject_type,
                    entry.kind.value,
                    entry.received_on.isoformat(),
                    entry.received_via.value,
                    day.isoformat(),
                    response.value,
                    response_detail,
                    denial_basis,
                    number,
                    int(
                        entry.kind is RequestKind.know and number > STATUTORY_REQUESTS_PER_12_MONTHS
                    ),
                    moment.isoformat(),
                ),
            )
            self._db.execute(
                "UPDATE register SET status = ?, closed_by = ?, answer_sha256 = ?, "
                "answer_stored_at = ?, denial_ground = ?, erasure_id = ? WHERE request_id = ?",
                (status.value, closed_by, *extra, entry.request_id),
            )
            self._db.execute("COMMIT")
        except STATE_ERRORS as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ReportError(f"cannot record the response in {self.path}: {exc}") from exc

    def answer_from_report(
        self,
        request_id: str,
        *,
        answered_by: str,
        response: Response,
        response_detail: str,
        recorded_at: datetime,
        coverage_through: datetime | None,
        watch: AnswerWatch | None,
    ) -> RegisterEntry:
        """Close the request with an answer drawn from the ledger (``report subject
        --request``), watched for late events as :meth:`RequestLog.record` watches it; the
        document's hash follows with :meth:`attach_answer` once the text is written."""
        entry = self._open_entry(request_id, "answer")
        self._close(
            entry,
            status=Status.answered,
            closed_by=answered_by,
            response=response,
            response_detail=response_detail,
            denial_basis=None,
            answered_on=None,
            recorded_at=recorded_at,
            extra=(None, None, None, None),
        )
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE requests SET coverage_through = ?, answered_start = ?, answered_end = ? "
                "WHERE request_id = ?",
                (
                    None if coverage_through is None else coverage_through.isoformat(),
                    None
                    if watch is None or watch.window_start is None
                    else watch.window_start.isoformat(),
                    None if watch is None else watch.window_end.isoformat(),
                    request_id,
                ),
            )
            if watch is not None:
                self._watch(request_id, watch)
            self._db.execute("COMMIT")
        except STATE_ERRORS as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ReportError(f"cannot record the answer in {self.path}: {exc}") from exc
        return self.entry(request_id)

    def attach_answer(
        self, request_id: str, *, document_sha256: str, stored_at: str | None
    ) -> RegisterEntry:
        """The answer document of a request answered from the ledger (``report subject
        --request``): its hash and where it is kept, once the text is written."""
        self._change(
            "UPDATE register SET answer_sha256 = ?, answer_stored_at = ? WHERE request_id = ?",
            (document_sha256, stored_at, request_id),
        )
        return self.entry(request_id)

    def check_answerable(
        self, request_id: str, kind: RequestKind, subject_type: str, subject_id: str
    ) -> RegisterEntry:
        """The open entry ``report subject``/``report recipients --request`` answers."""
        entry = self._open_entry(request_id, "answer")
        assert entry.law is not None
        if entry.kind is not kind:
            raise ReportError(
                f"request {request_id} is a {entry.kind} request, not {kind}: answer it with "
                "the matching report (know: report subject; recipients: report recipients)"
            )
        if self._requester_in_register(request_id) != self.requester(subject_type, subject_id):
            raise ReportError(
                f"request {request_id} was made by someone else: give the --subject-type and "
                "--subject-id it was opened for"
            )
        if identity_required(entry.kind, entry.law) and entry.identity is None:
            raise ReportError(
                f"request {request_id} cannot be answered before the requester's identity is "
                "verified: record it with `requests verify-identity` (or deny the request)"
            )
        return entry

    # -- reading --------------------------------------------------------------------------
    def entry(self, request_id: str) -> RegisterEntry:
        found = self._entries("WHERE request_id = ?", (request_id,))
        if found:
            return found[0]
        logged = self.request(request_id)
        if logged is None:
            raise UnknownRequestError(
                f"no request {request_id!r} in the request register {self.path}: "
                "`requests list` shows the ids"
            )
        return _legacy(logged)

    def register_entries(self, *, received_before: date | None = None) -> list[RegisterEntry]:
        """Every request, registered or only logged, oldest received first."""
        where, params = (
            ("", ())
            if received_before is None
            else (
                "WHERE received_on < ?",
                (received_before.isoformat(),),
            )
        )
        registered = self._entries(where, params)
        known = {e.request_id for e in registered}
        legacy = [
            _legacy(logged)
            for logged in self._select_where(
                "WHERE request_id NOT IN (SELECT request_id FROM register)"
                + ("" if received_before is None else " AND received_on < ?"),
                *params,
            )
            if logged.request_id not in known
        ]
        return sorted([*registered, *legacy], key=lambda e: (e.received_on, e.request_id))

    def _entries(self, where: str, params: tuple[str, ...]) -> list[RegisterEntry]:
        rows = self._db.execute(
            f"SELECT {_REGISTER_COLUMNS} FROM register {where} ORDER BY received_on, opened_at",
            params,
        ).fetchall()
        entries = []
        for r in rows:
            identity = (
                None
                if r[12] is None
                else IdentityCheck(str(r[12]), str(r[13]), datetime.fromisoformat(r[14]))
            )
            entries.append(
                RegisterEntry(
                    request_id=r[0],
                    subject_type=r[1],
                    kind=RequestKind(r[2]),
                    law=Law(r[3]),
                    received_on=date.fromisoformat(r[4]),
                    received_via=ReceivedVia(r[5]),
                    opened_by=r[7],
                    due_on=date.fromisoformat(r[8]),
                    extended_due_on=_date(r[9]),
                    extension_notice_on=_date(r[10]),
                    extension_reason=r[11],
                    identity=identity,
                    status=Status(r[15]),
                    closed_by=r[16],
                    answer_sha256=r[17],
                    answer_stored_at=r[18],
                    denial_ground=None if r[19] is None else DenialGround(r[19]),
                    erasure_id=r[20],
                    logged=self.request(r[0]),
                )
            )
        return entries

    def _open_entry(self, request_id: str, what: str) -> RegisterEntry:
        entry = self.entry(request_id)
        if entry.law is None:
            raise ReportError(
                f"cannot {what} request {request_id}: it was answered before the request "
                "register existed"
            )
        if entry.status not in OPEN_STATUSES:
            raise ReportError(
                f"cannot {what} request {request_id}: it is already {entry.status.value}"
            )
        return entry

    def _requester_in_register(self, request_id: str) -> str:
        found = self._db.execute(
            "SELECT requester FROM register WHERE request_id = ?", (request_id,)
        ).fetchone()
        if found is None:
            raise UnknownRequestError(
                f"no request {request_id!r} in the request register {self.path}"
            )
        return str(found[0])

    def _change(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            self._db.execute(sql, params)
        except STATE_ERRORS as exc:
            raise ReportError(f"cannot update the request register {self.path}: {exc}") from exc


def _legacy(logged: LoggedRequest) -> RegisterEntry:
    """A request logged (answered or denied at once) before the register existed."""
    return RegisterEntry(
        request_id=logged.request_id,
        kind=logged.kind,
        law=None,
        subject_type=logged.subject_type,
        received_on=logged.received_on,
        received_via=logged.received_via,
        status=Status.denied if logged.response is Response.denied else Status.answered,
        due_on=None,
        logged=logged,
    )


def select_entries(
    entries: list[RegisterEntry],
    *,
    as_of: date,
    overdue: bool = False,
    due_within: int | None = None,
    statuses: tuple[Status, ...] = (),
) -> list[RegisterEntry]:
    """``requests list``: overdue first, then by deadline; closed requests last."""
    chosen = []
    for entry in entries:
        if statuses and entry.status not in statuses:
            continue
        if overdue and not entry.overdue_on(as_of):
            continue
        if due_within is not None:
            left = entry.days_left(as_of)
            if not entry.open_on(as_of) or left is None or left > due_within:
                continue
        chosen.append(entry)

    def order(entry: RegisterEntry) -> tuple[int, date, date]:
        rank = 0 if entry.overdue_on(as_of) else 1 if entry.open_on(as_of) else 2
        return (rank, entry.deadline or date.max, entry.received_on)

    return sorted(chosen, key=order)
