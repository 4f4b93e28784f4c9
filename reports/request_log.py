"""The log of consumer requests answered (11 CCR 7101), kept beside the ledger.

Every request a report answers (``report subject``: a request to know; ``report
recipients``: the GDPR Art. 19 list) is recorded: when it was received and how, what
kind it was, when and how it was answered, and the basis of any denial. The log is a
SQLite file of its own (default ``LEDGER.requests.sqlite``): reports open the ledger
read-only, and the consumer may hold the ledger itself.

Retention: 11 CCR 7101 requires these records for at least 24 months. Nothing here ever
deletes an entry; :meth:`RequestLog.prune` refuses any cutoff less than 24 months ago.

Who asked is recorded as ``HMAC-SHA-256(subject secret, "request-log" 0x00 type 0x00 id)``:
enough to count one person's requests, never the raw id and never the ledger pseudonym
(whose key may be erased, while the request record must stay). A business need not
answer a consumer's request to know more than twice in 12 months (Cal. Civ. Code
1798.130(b)); the third and later are answered, and recorded and shown as beyond that
obligation.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

from reports.errors import ReportError
from reports.window import months_before

RETENTION_MONTHS = 24
STATUTORY_REQUESTS_PER_12_MONTHS = 2


class RequestKind(StrEnum):
    know = "know"  # CCPA request to know (1798.110/115), GDPR Art. 15(1)(c)
    recipients = "recipients"  # GDPR Art. 19: who was the data disclosed to


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
"""

_COLUMNS = (
    "request_id, kind, subject_type, received_on, received_via, responded_on, response, "
    "response_detail, denial_basis, number_in_12_months, beyond_statutory_obligation, "
    "recorded_at"
)


def default_request_log(ledger_path: Path) -> Path:
    """The request log lives beside the ledger: ``LEDGER.requests.sqlite``."""
    return ledger_path.with_name(ledger_path.name + ".requests.sqlite")


class RequestLog:
    """The request log (one SQLite file). ``secret`` is the deployment's subject secret."""

    def __init__(self, path: Path, secret: bytes) -> None:
        if len(secret) < 16:
            raise ReportError("the subject secret is shorter than 16 bytes")
        self.path = Path(path)
        self._secret = secret
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode = DELETE")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
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
    ) -> LoggedRequest:
        """Record one request answered; returns it with its number within 12 months."""
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
            )
            self._db.execute(
                "INSERT INTO requests (request_id, requester, subject_type, kind, received_on, "
                "received_via, responded_on, response, response_detail, denial_basis, "
                "number_in_12_months, beyond_statutory_obligation, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ReportError(f"cannot record the request in {self.path}: {exc}") from exc
        return logged

    def entries(self, start: date, end: date) -> list[LoggedRequest]:
        """Requests received in ``[start, end)``, oldest first."""
        return list(self._select("WHERE received_on >= ? AND received_on < ?", start, end))

    def _select(self, where: str, *args: date) -> Iterator[LoggedRequest]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM requests {where} ORDER BY received_on, recorded_at",
            tuple(a.isoformat() for a in args),
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
            )

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
