"""The log of consumer requests answered (11 CCR 7101), kept beside the ledger.

Every request a report answers (``report subject``: a request to know; ``report
recipients``: the GDPR Art. 19 list) is recorded: when it was received and how, what
kind it was, when and how it was answered, and the basis of any denial. The log is a
SQLite file of its own (default ``LEDGER.requests.sqlite``): reports open the ledger
read-only, and the consumer may hold the ledger itself. Beside a DuckLake it is tables in
the lake's PostgreSQL database instead, shared by every instance (:mod:`ledger.state_db`).

Retention: 11 CCR 7101 requires these records for at least 24 months. Nothing here ever
deletes an entry; :meth:`RequestLog.prune` refuses any cutoff less than 24 months ago.

Who asked is recorded as ``HMAC-SHA-256(subject secret, "request-log" 0x00 type 0x00 id)``:
enough to count one person's requests, never the raw id and never the ledger pseudonym
(whose key may be erased, while the request record must stay). A business need not
answer a consumer's request to know more than twice in 12 months (Cal. Civ. Code
1798.130(b)); the third and later are answered, and recorded and shown as beyond that
obligation.

Coverage (issue 16): each answer records the ledger's coverage when it was given
(``coverage_through``) and the window it answered for. While an answer may still change
(a late event inside its window), the log keeps an *answer watch*: the person's ledger
pseudonym, that window, and the chain heads the answer read. :mod:`reports.reissue` finds
rows added since inside a watched window and marks the answer for re-issue; a re-issue is
recorded against the original request (:meth:`RequestLog.record_reissue`), never as a new
request, so the 11 CCR 7102 metrics count each request once.

The watch links the log to the ledger, so it never holds the pseudonym in the clear: it is
sealed (AES-256-GCM, :mod:`ledger.context_crypto`, under ``HMAC-SHA-256(subject secret,
"request-log/answer-watch/v1")``, the request id as associated data) and found by a keyed
token (``HMAC-SHA-256(subject secret, "answer-watch" 0x00 pseudonym)``). Erasing a subject
must also call :meth:`RequestLog.forget_pseudonym`, which drops that subject's watches: the
request records stay (11 CCR 7101), the link does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.context_crypto import decrypt_context, encrypt_context
from ledger.errors import LedgerError
from ledger.state_db import STATE_ERRORS, StateLocation, connect_state, state_location
from reports.errors import ReportError
from reports.window import months_before

if TYPE_CHECKING:
    from ledger.lake import LakeLocation

RETENTION_MONTHS = 24
STATUTORY_REQUESTS_PER_12_MONTHS = 2


class RequestKind(StrEnum):
    know = "know"  # CCPA request to know (1798.110/115), GDPR Art. 15(1)(c)
    recipients = "recipients"  # GDPR Art. 19: who was the data disclosed to
    access = "access"  # GDPR Art. 15: a copy of the personal data (the request register)
    delete = "delete"  # CCPA 1798.105, GDPR Art. 17 (the request register)
    opt_out = "opt_out"  # CCPA 1798.120: opt-out of sale or sharing (the request register)


class ReceivedVia(StrEnum):
    """How the request was submitted (11 CCR 7020: the methods a business offers)."""

    web_form = "web_form"
    email = "email"
    toll_free_phone = "toll_free_phone"
    mail = "mail"
    in_person = "in_person"
    authorized_agent = "authorized_agent"
    other = "other"


class Response(StrEnum):
    complied = "complied"  # in whole
    complied_in_part = "complied_in_part"
    denied = "denied"


@dataclass(frozen=True)
class LoggedRequest:
    request_id: str
    kind: RequestKind
    subject_type: str
    received_on: date
    received_via: ReceivedVia
    responded_on: date | None
    response: Response
    response_detail: str
    denial_basis: str | None
    number_in_12_months: int  # this request counted: 1 for the first
    beyond_statutory_obligation: bool
    recorded_at: datetime
    coverage_through: datetime | None = None  # the ledger's coverage when answered
    answered_start: datetime | None = None  # the window answered for; None: from the start
    answered_end: datetime | None = None
    reissue_due_since: datetime | None = None  # a late event landed inside that window

    @property
    def days_to_respond(self) -> int | None:
        if self.responded_on is None:
            return None
        return (self.responded_on - self.received_on).days


_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    kind TEXT NOT NULL,
    received_on TEXT NOT NULL,
    received_via TEXT NOT NULL,
    responded_on TEXT,
    response TEXT NOT NULL,
    response_detail TEXT NOT NULL,
    denial_basis TEXT,
    number_in_12_months INTEGER NOT NULL,
    beyond_statutory_obligation INTEGER NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_by_requester ON requests (requester, kind, received_on);
CREATE INDEX IF NOT EXISTS requests_by_day ON requests (received_on);
CREATE TABLE IF NOT EXISTS answer_watch (
    request_id TEXT PRIMARY KEY REFERENCES requests (request_id),
    watch_token TEXT NOT NULL,
    sealed_pseudonym TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT NOT NULL,
    chain_heads TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reissues (
    request_id TEXT NOT NULL REFERENCES requests (request_id),
    reissued_at TEXT NOT NULL,
    coverage_through TEXT,
    response_detail TEXT NOT NULL
);
"""
_ADDED_COLUMNS = {  # columns added to requests after logs were first written
    "coverage_through": "TEXT",
    "answered_start": "TEXT",
    "answered_end": "TEXT",
    "reissue_due_since": "TEXT",
}


@dataclass(frozen=True)
class AnswerWatch:
    """What an answer read, to find rows added later inside its window."""

    subject_pseudonym: str
    subject_type: str
    window_start: datetime | None
    window_end: datetime
    chain_heads: dict[str, int]  # chain_id -> head seq the answer's snapshot held


_COLUMNS = (
    "request_id, kind, subject_type, received_on, received_via, responded_on, response, "
    "response_detail, denial_basis, number_in_12_months, beyond_statutory_obligation, "
    "recorded_at, coverage_through, answered_start, answered_end, reissue_due_since"
)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def default_request_log(ledger: Path | LakeLocation) -> StateLocation:
    """The request log lives beside the ledger: ``LEDGER.requests.sqlite``, or beside a
    lake in the lake's PostgreSQL database (:mod:`ledger.state_db`)."""
    return state_location(ledger, ".requests.sqlite", "requests")


class RequestLog:
    """The request log (one SQLite file, or tables in a lake's PostgreSQL database).
    ``secret`` is the deployment's subject secret."""

    def __init__(self, path: StateLocation, secret: bytes) -> None:
        if len(secret) < 16:
            raise ReportError("the subject secret is shorter than 16 bytes")
        self.path = path
        self._secret = secret
        try:
            if isinstance(path, Path):
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect_state(path)
            self._db.execute("PRAGMA journal_mode = DELETE")
            self._db.executescript(_SCHEMA)
            present = self._db.columns("requests")
            for column, kind in _ADDED_COLUMNS.items():
                if column not in present:
                    self._db.execute(f"ALTER TABLE requests ADD COLUMN {column} {kind}")
        except OSError as exc:
            raise ReportError(f"cannot open the request log {self.path}: {exc}") from exc
        except STATE_ERRORS as exc:
            raise ReportError(f"cannot open the request log {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def requester(self, subject_type: str, subject_id: str) -> str:
        message = b"request-log\x00" + subject_type.encode() + b"\x00" + subject_id.encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def record(
        self,
        *,
        kind: RequestKind,
        subject_type: str,
        subject_id: str,
        received_on: date,
        received_via: ReceivedVia,
        responded_on: date | None,
        response: Response,
        response_detail: str,
        denial_basis: str | None = None,
        recorded_at: datetime | None = None,
        coverage_through: datetime | None = None,
        watch: AnswerWatch | None = None,
    ) -> LoggedRequest:
        """Record one request answered; returns it with its number within 12 months.
        ``watch`` (an answer given from the ledger) is kept to find late events in its
        window (:mod:`reports.reissue`)."""
        if responded_on is not None and responded_on < received_on:
            raise ReportError(
                f"the response date {responded_on} is before the request was received "
                f"({received_on}); check --received-on"
            )
        requester = self.requester(subject_type, subject_id)
        since = months_before(datetime(received_on.year, received_on.month, received_on.day), 12)
        moment = (recorded_at or datetime.now(UTC)).astimezone(UTC)
        try:
            self._db.execute("BEGIN IMMEDIATE")  # count and insert as one
            found = self._db.execute(
                "SELECT count(*) FROM requests WHERE requester = ? AND kind = ? "
                "AND received_on > ? AND received_on <= ?",
                (requester, kind.value, since.date().isoformat(), received_on.isoformat()),
            ).fetchone()
            number = int(found[0]) + 1 if found else 1
            logged = LoggedRequest(
                request_id=str(uuid.uuid4()),
                kind=kind,
                subject_type=subject_type,
                received_on=received_on,
                received_via=received_via,
                responded_on=responded_on,
                response=response,
                response_detail=response_detail,
                denial_basis=denial_basis,
                number_in_12_months=number,
                beyond_statutory_obligation=kind is RequestKind.know
                and number > STATUTORY_REQUESTS_PER_12_MONTHS,
                recorded_at=moment,
                coverage_through=coverage_through,
                answered_start=None if watch is None else watch.window_start,
                answered_end=None if watch is None else watch.window_end,
            )
            self._db.execute(
                "INSERT INTO requests (request_id, requester, subject_type, kind, received_on, "
                "received_via, responded_on, response, response_detail, denial_basis, "
                "number_in_12_months, beyond_statutory_obligation, recorded_at, "
                "coverage_through, answered_start, answered_end) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    logged.request_id,
                    requester,
                    subject_type,
                    kind.value,
                    received_on.isoformat(),
                    received_via.value,
                    None if responded_on is None else responded_on.isoformat(),
                    response.value,
                    response_detail,
                    denial_basis,
                    number,
                    int(logged.beyond_statutory_obligation),
                    moment.isoformat(),
                    _iso(coverage_through),
                    _iso(logged.answered_start),
                    _iso(logged.answered_end),
                ),
            )
            if watch is not None:
                self._watch(logged.request_id, watch)
            self._db.execute("COMMIT")
        except STATE_ERRORS as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ReportError(f"cannot record the request in {self.path}: {exc}") from exc
        return logged

    def entries(self, start: date, end: date) -> list[LoggedRequest]:
        """Requests received in ``[start, end)``, oldest first."""
        return list(self._select("WHERE received_on >= ? AND received_on < ?", start, end))

    def _select(self, where: str, *args: date) -> Iterator[LoggedRequest]:
        return self._select_where(where, *(a.isoformat() for a in args))

    def _select_where(self, where: str, *args: str) -> Iterator[LoggedRequest]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM requests {where} ORDER BY received_on, recorded_at", args
        ).fetchall()
        for row in rows:
            yield LoggedRequest(
                request_id=row[0],
                kind=RequestKind(row[1]),
                subject_type=row[2],
                received_on=date.fromisoformat(row[3]),
                received_via=ReceivedVia(row[4]),
                responded_on=None if row[5] is None else date.fromisoformat(row[5]),
                response=Response(row[6]),
                response_detail=row[7],
                denial_basis=row[8],
                number_in_12_months=int(row[9]),
                beyond_statutory_obligation=bool(row[10]),
                recorded_at=datetime.fromisoformat(row[11]),
                coverage_through=_moment(row[12]),
                answered_start=_moment(row[13]),
                answered_end=_moment(row[14]),
                reissue_due_since=_moment(row[15]),
            )

    # -- answers that may change: watched for late events, re-issued ------------------------
    def _watch_token(self, subject_pseudonym: str) -> str:
        message = b"answer-watch\x00" + subject_pseudonym.encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _seal_key(self) -> bytes:
        return hmac.new(self._secret, b"request-log/answer-watch/v1", hashlib.sha256).digest()

    def _watch(self, request_id: str, watch: AnswerWatch) -> None:
        sealed = encrypt_context(
            self._seal_key(), request_id, {"pseudonym": watch.subject_pseudonym}
        )
        # what INSERT OR REPLACE does, on either backend: the request's one watch replaced
        self._db.execute("DELETE FROM answer_watch WHERE request_id = ?", (request_id,))
        self._db.execute(
            "INSERT INTO answer_watch VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                self._watch_token(watch.subject_pseudonym),
                sealed,
                watch.subject_type,
                _iso(watch.window_start),
                _iso(watch.window_end),
                json.dumps(watch.chain_heads, sort_keys=True),
            ),
        )

    def watches(self) -> list[tuple[str, AnswerWatch]]:
        """Every answer watched for late events, with its request id."""
        rows = self._db.execute(
            "SELECT request_id, sealed_pseudonym, subject_type, window_start, window_end, "
            "chain_heads FROM answer_watch ORDER BY request_id"
        ).fetchall()
        return [
            (
                str(r[0]),
                AnswerWatch(
                    subject_pseudonym=self._unseal(str(r[0]), str(r[1])),
                    subject_type=str(r[2]),
                    window_start=_moment(r[3]),
                    window_end=datetime.fromisoformat(r[4]),
                    chain_heads={str(k): int(v) for k, v in json.loads(r[5]).items()},
                ),
            )
            for r in rows
        ]

    def _unseal(self, request_id: str, sealed: str) -> str:
        try:
            return decrypt_context(self._seal_key(), request_id, sealed)["pseudonym"]
        except (LedgerError, KeyError) as exc:
            raise ReportError(
                f"the answer watch of request {request_id} in {self.path} does not open with "
                "this subject secret: give the secret the log was written with"
            ) from exc

    def mark_reissue_due(self, request_id: str, since: datetime) -> None:
        """A late event landed inside the answer's window (kept from the first time seen)."""
        self._write(
            "UPDATE requests SET reissue_due_since = coalesce(reissue_due_since, ?) "
            "WHERE request_id = ?",
            (_iso(since), request_id),
        )

    def requester_of(self, request_id: str) -> str | None:
        found = self._db.execute(
            "SELECT requester FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if found is None else str(found[0])

    def request(self, request_id: str) -> LoggedRequest | None:
        found = list(self._select_where("WHERE request_id = ?", request_id))
        return found[0] if found else None

    def reissues_due(self) -> list[LoggedRequest]:
        """Answers marked for re-issue and not re-issued since, oldest first."""
        return list(self._select("WHERE reissue_due_since IS NOT NULL"))

    def record_reissue(
        self,
        request_id: str,
        *,
        reissued_at: datetime,
        coverage_through: datetime | None,
        response_detail: str,
        watch: AnswerWatch | None,
    ) -> None:
        """The answer to ``request_id`` given again: recorded against that request (no new
        request is counted), its due mark cleared, and the new answer watched instead."""
        found = self._db.execute(
            "SELECT count(*) FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        if not found or not found[0]:
            raise ReportError(
                f"no request {request_id!r} in the request log {self.path}: give the id "
                "`report requests` lists under answers to re-issue"
            )
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO reissues VALUES (?, ?, ?, ?)",
                (request_id, _iso(reissued_at), _iso(coverage_through), response_detail),
            )
            self._db.execute(
                "UPDATE requests SET reissue_due_since = NULL, coverage_through = ?, "
                "answered_start = ?, answered_end = ? WHERE request_id = ?",
                (
                    _iso(coverage_through),
                    _iso(None if watch is None else watch.window_start),
                    _iso(None if watch is None else watch.window_end),
                    request_id,
                ),
            )
            self._db.execute("DELETE FROM answer_watch WHERE request_id = ?", (request_id,))
            if watch is not None:
                self._watch(request_id, watch)
            self._db.execute("COMMIT")
        except STATE_ERRORS as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ReportError(f"cannot record the re-issue in {self.path}: {exc}") from exc

    def forget_pseudonym(self, subject_pseudonym: str) -> int:
        """Drop the watches of an erased subject (the link from this log to the ledger)."""
        return self._write(
            "DELETE FROM answer_watch WHERE watch_token = ?",
            (self._watch_token(subject_pseudonym),),
        )

    def forget_subject(self, subject_type: str, subject_id: str) -> int:
        """Unlink an erased subject's requests: every token computable from the subject id
        (the requester HMAC, in the log and in the request register) is replaced by a
        random value of its own per row. The rows stay (11 CCR 7101); someone holding the
        subject secret can no longer find them from the id. Returns the rows changed."""
        token = self.requester(subject_type, subject_id)
        tables = [name for name in ("register", "requests") if self._db.has_table(name)]
        changed = 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for table in sorted(tables):
                rows = self._db.execute(
                    f"SELECT request_id FROM {table} WHERE requester = ?", (token,)
                ).fetchall()
                for (request_id,) in rows:
                    self._db.execute(
                        f"UPDATE {table} SET requester = ? WHERE request_id = ?",
                        ("forgotten:" + secrets.token_hex(32), request_id),
                    )
                changed += len(rows)
            self._db.execute("COMMIT")
        except STATE_ERRORS as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ReportError(f"cannot forget the subject in {self.path}: {exc}") from exc
        return changed

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        try:
            return self._db.execute(sql, params).rowcount
        except STATE_ERRORS as exc:
            raise ReportError(f"cannot update the request log {self.path}: {exc}") from exc

    def prune(self, before: date, *, today: date) -> int:
        """Delete entries received before ``before``, never within 24 months of ``today``."""
        floor = months_before(datetime(today.year, today.month, today.day), RETENTION_MONTHS)
        if before > floor.date():
            raise ReportError(
                f"refused: entries received on or after {floor.date()} are less than "
                f"{RETENTION_MONTHS} months old and must be kept (11 CCR 7101)"
            )
        cursor = self._db.execute(
            "DELETE FROM requests WHERE received_on < ?", (before.isoformat(),)
        )
        return cursor.rowcount

    # -- what an erasure could not reach (disclosure_ledger/erasure_reach.py) ------------
    # Its own table, created on first use: the statement erase-subject made, kept with the
    # erasure (by the journal's erasure id), so "was this erasure complete?" has an answer
    # that says what stayed outside it and until when.
    def _erasure_statements(self) -> None:
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS erasure_statements (erasure_id TEXT PRIMARY KEY, "
            "recorded_at TEXT NOT NULL, statement_json TEXT NOT NULL)"
        )

    def after_erasure(
        self,
        subject_type: str,
        subject_id: str,
        *,
        pseudonym: str | None,
        erasure_id: str | None,
        statement: Mapping[str, object],
    ) -> int:
        """Everything an erasure asks of this log, at one opening: the subject's requests
        unlinked (:meth:`forget_subject`), the watches of its answers dropped
        (:meth:`forget_pseudonym`, if a key was held) and what the erasure could not reach
        kept with it (:meth:`record_erasure_statement`, if it was journalled). Returns the
        watches dropped: earlier answers no longer linked to the subject."""
        self.forget_subject(subject_type, subject_id)
        watches = 0 if pseudonym is None else self.forget_pseudonym(pseudonym)
        if erasure_id is not None:
            self.record_erasure_statement(erasure_id, statement)
        return watches

    def record_erasure_statement(self, erasure_id: str, statement: Mapping[str, object]) -> bool:
        """Keep ``statement`` (:meth:`disclosure_ledger.erasure_reach.OutsideReach.to_json`)
        with the erasure ``erasure_id``; False if one is kept for it already (the first
        stays: it is what was said at the time)."""
        try:
            self._erasure_statements()
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO erasure_statements VALUES (?, ?, ?)",
                (
                    erasure_id,
                    datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    json.dumps(statement, sort_keys=True),
                ),
            )
        except STATE_ERRORS as exc:
            raise ReportError(
                f"cannot keep the erasure's statement in the request log {self.path}: {exc}"
            ) from exc
        return cursor.rowcount == 1

    def erasure_statement(self, erasure_id: str) -> dict[str, Any] | None:
        """The statement kept with erasure ``erasure_id``, or None."""
        try:
            self._erasure_statements()
            found = self._db.execute(
                "SELECT statement_json FROM erasure_statements WHERE erasure_id = ?",
                (erasure_id,),
            ).fetchone()
        except STATE_ERRORS as exc:
            raise ReportError(f"cannot read the request log {self.path}: {exc}") from exc
        if found is None:
            return None
        statement: dict[str, Any] = json.loads(found[0])
        return statement
