"""GDPR Art. 19 notices: after an erasure, each recipient the subject's data was disclosed
to is told of it. The ledger tracks which notices are due and which were sent.

The erasure journal (:mod:`ledger.erasure`) records, with each erasure, the recipients of
the subject's data (``erasure_recipients``, read from the ledger before the key was
destroyed). :func:`record_notice` appends one notice sent to ``erasure_notices``;
:func:`erasure_notices` lists, for every erasure in the journal, each recipient without a
notice (due, and since when) and each notice sent. Neither needs the subject: after an
erasure the subject cannot be looked up, and the journal names only recipients.

Notices are only ever appended, one per erasure and recipient: a second record for the same
pair is refused, and a notice recorded in error stays (the ledger is evidence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb

from ledger.erasure import ensure_erasure_tables
from ledger.errors import LedgerError
from ledger.store import Ledger

__all__ = [
    "NoticeDue",
    "NoticeError",
    "NoticeSent",
    "NoticesState",
    "check_notice",
    "erasure_notices",
    "notices_due_count",
    "record_notice",
]

NOTE_MAX = 2000


class NoticeError(LedgerError):
    """A notice that cannot be recorded as given (unknown erasure, recipient, bad date)."""


@dataclass(frozen=True)
class NoticeSent:
    erasure_id: str
    erased_at: datetime  # UTC, aware
    recipient_id: str
    sent_on: date
    recorded_at: datetime  # UTC, aware
    recorded_by: str
    note: str | None


@dataclass(frozen=True)
class NoticeDue:
    erasure_id: str
    erased_at: datetime  # UTC, aware
    recipient_id: str
    recipient_category: str
    ledger_rows: int  # the subject's rows this recipient received
    last_disclosed_at: datetime  # UTC, aware

    def days_due(self, today: date) -> int:
        """Whole days since the erasure: how long the notice has been due."""
        return max(0, (today - self.erased_at.date()).days)


@dataclass(frozen=True)
class NoticesState:
    """Every erasure's notices: ``due`` oldest erasure first, ``sent`` in the order sent."""

    erasures: int  # erasures in the journal
    due: tuple[NoticeDue, ...]
    sent: tuple[NoticeSent, ...]
    read_at: datetime  # UTC, aware


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_notice(
    ledger: Ledger,
    *,
    erasure_id: str,
    recipient_id: str,
    sent_on: date,
    recorded_by: str,
    note: str | None = None,
    now: datetime | None = None,
) -> datetime:
    """Refuse a notice that cannot be recorded (:class:`NoticeError`, naming the fix): an
    erasure id not in the journal, a recipient that did not receive that subject's data, a
    day before the erasure or after today (UTC), a notice already recorded for that erasure
    and recipient. Returns when the erasure was made (UTC)."""
    if not recorded_by.strip():
        raise NoticeError("a notice needs who records it (--actor)")
    if note is not None and len(note) > NOTE_MAX:
        raise NoticeError(f"the note is {len(note)} characters; keep it under {NOTE_MAX}")
    today = _aware(now or datetime.now(UTC)).date()
    con = ledger.con
    erasure_id = erasure_id.strip()
    try:
        found = con.execute(
            "SELECT erased_at FROM erasures WHERE erasure_id = ?", [erasure_id]
        ).fetchone()
    except duckdb.CatalogException:  # no erasure was ever journalled (read-only view)
        found = None
    if found is None:
        raise NoticeError(
            f"no erasure {erasure_id!r} in the erasure journal of {ledger.path}; "
            "`disclosure-ledger report recipients --notices-due` lists every erasure id with "
            "the notices still due"
        )
    erased_at = _aware(found[0])
    recipients = [
        str(r[0])
        for r in con.execute(
            "SELECT recipient_id FROM erasure_recipients WHERE erasure_id = ? ORDER BY 1",
            [erasure_id],
        ).fetchall()
    ]
    if recipient_id not in recipients:
        held = ", ".join(recipients) if recipients else "none: no notice is due for it"
        raise NoticeError(
            f"recipient {recipient_id!r} did not receive the erased subject's data, so no "
            f"notice is due to it for erasure {erasure_id}; the recipients of that erasure "
            f"are: {held} (give one of them as --recipient)"
        )
    if sent_on < erased_at.date():
        raise NoticeError(
            f"--sent-on {sent_on.isoformat()} is before the erasure it tells of "
            f"({erased_at.date().isoformat()}); give the day the notice was sent"
        )
    if sent_on > today:
        raise NoticeError(
            f"--sent-on {sent_on.isoformat()} is in the future (today is "
            f"{today.isoformat()}, UTC); record a notice once it has been sent"
        )
    earlier = con.execute(
        "SELECT sent_on, recorded_by FROM erasure_notices WHERE erasure_id = ? "
        "AND recipient_id = ? ORDER BY sent_on LIMIT 1",
        [erasure_id, recipient_id],
    ).fetchone()
    if earlier is not None:
        raise NoticeError(
            f"a notice to {recipient_id!r} for erasure {erasure_id} is already recorded "
            f"(sent on {earlier[0].isoformat()}, recorded by {earlier[1]}); notices are "
            "append-only, nothing was recorded"
        )
    return erased_at


def record_notice(
    ledger: Ledger,
    *,
    erasure_id: str,
    recipient_id: str,
    sent_on: date,
    recorded_by: str,
    note: str | None = None,
    now: datetime | None = None,
) -> NoticeSent:
    """Record that ``recipient_id`` was told of erasure ``erasure_id`` on ``sent_on``,
    after :func:`check_notice` (whose errors it raises)."""
    if ledger.read_only:
        raise LedgerError(f"ledger {ledger.path} is open read-only; a notice must be recorded")
    moment = _aware(now or datetime.now(UTC))
    ensure_erasure_tables(ledger.con)
    erasure_id = erasure_id.strip()
    erased_at = check_notice(
        ledger,
        erasure_id=erasure_id,
        recipient_id=recipient_id,
        sent_on=sent_on,
        recorded_by=recorded_by,
        note=note,
        now=moment,
    )
    ledger.con.execute(
        "INSERT INTO erasure_notices (erasure_id, recipient_id, sent_on, recorded_at, "
        "recorded_by, note) VALUES (?, ?, ?, ?, ?, ?)",
        [erasure_id, recipient_id, sent_on, moment.replace(tzinfo=None), recorded_by, note],
    )
    return NoticeSent(erasure_id, erased_at, recipient_id, sent_on, moment, recorded_by, note)


_DUE_SQL = """
SELECT r.erasure_id, e.erased_at, r.recipient_id, r.recipient_category, r.ledger_rows,
       r.last_disclosed_at
FROM erasure_recipients r JOIN erasures e USING (erasure_id)
WHERE NOT EXISTS (
    SELECT 1 FROM erasure_notices n
    WHERE n.erasure_id = r.erasure_id AND n.recipient_id = r.recipient_id
)
ORDER BY e.erased_at, r.erasure_id, r.recipient_id
"""

_SENT_SQL = """
SELECT n.erasure_id, e.erased_at, n.recipient_id, n.sent_on, n.recorded_at, n.recorded_by,
       n.note
FROM erasure_notices n JOIN erasures e USING (erasure_id)
ORDER BY n.sent_on, n.recorded_at, n.erasure_id, n.recipient_id
"""


def notices_due_count(cursor: duckdb.DuckDBPyConnection) -> int:
    """How many notices are due (recipients of an erasure without a notice); 0 with no
    journal. Reads the journal's small tables only."""
    try:
        found = cursor.execute(f"SELECT count(*) FROM ({_DUE_SQL})").fetchone()
    except duckdb.CatalogException:
        return 0
    return int(found[0]) if found else 0


def erasure_notices(
    cursor: duckdb.DuckDBPyConnection | Ledger, *, now: datetime | None = None
) -> NoticesState:
    """The notices due and sent for every erasure in the journal (one read; a ledger with
    no journal yet has none)."""
    con = cursor.con if isinstance(cursor, Ledger) else cursor
    read_at = _aware(now or datetime.now(UTC))
    try:
        erasures = int((con.execute("SELECT count(*) FROM erasures").fetchone() or (0,))[0])
        due_rows = con.execute(_DUE_SQL).fetchall()
        sent_rows = con.execute(_SENT_SQL).fetchall()
    except duckdb.CatalogException:  # a ledger with no erasure yet, opened read-only
        return NoticesState(0, (), (), read_at)
    due = tuple(
        NoticeDue(str(i), _aware(at), str(r), str(c), int(n), _aware(last))
        for i, at, r, c, n, last in due_rows
    )
    sent = tuple(
        NoticeSent(
            str(i),
            _aware(at),
            str(r),
            on,
            _aware(rec),
            str(by),
            None if note is None else str(note),
        )
        for i, at, r, on, rec, by, note in sent_rows
    )
    return NoticesState(erasures, due, sent, read_at)
