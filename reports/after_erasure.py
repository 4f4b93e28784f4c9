"""Disclosures after an erasure: the first section of the conformance report.

The consumer flags ``after_erasure`` (:data:`ledger.erasure.AFTER_ERASURE_FLAG`) a
disclosure about a subject on the suppression list: a producing service sent data about a
person after that person's erasure. The ledger records it, because it is evidence, under a
fresh key; through that key the person is identifiable in the ledger again until it is
erased too (``erase-subject`` again, once the producing service has stopped).

This module reads them for the report's window (by ``occurred_at``, as every section):
their number, grouped by recipient, producer service and data categories, and the rows
themselves (event id, occurred_at, when recorded, recipient, producer), up to
:data:`ROWS_LISTED`.

The rows' pseudonym is not shown. It is the fresh key's, which links the rows to the
person again; the conformance report reads no personal data (the compliance role's
report, shared with auditors) and names no subject. The event ids are enough for the
producing service, which knows whom each event was about, to find the person, and for an
investigator to read the rows (``query``, recorded in the access log).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import duckdb

from ledger.erasure import AFTER_ERASURE_FLAG
from reports.contracts import AfterErasureGroupJson, AfterErasureJson, AfterErasureRowJson
from reports.document import Section, Table
from reports.provenance import aware, rfc3339

ROWS_LISTED: Final = 500
"""At most this many flagged rows are listed (earliest first); the count is always whole."""
EXAMPLES: Final = 3

MEANING: Final = (
    "A producing service sent data about a person after that person's erasure. The ledger "
    "recorded each such disclosure as evidence, under a fresh key: through that key the "
    "person is identifiable in the ledger again, until it is erased too. Fix: have the "
    "producing service stop (it should have forgotten the person), then erase the subject "
    "again (`disclosure-ledger erase-subject`); the producing service can tell from the "
    "event ids whom they were about. This report names no subject and shows no pseudonym."
)

_FLAGGED = f"list_contains(flags, '{AFTER_ERASURE_FLAG}')"
_WHERE = f"occurred_at >= $start AND occurred_at < $end AND {_FLAGGED}"

_GROUPS_SQL = f"""
SELECT recipient_id, any_value(recipient_category), producer_service,
       list_sort(data_categories) AS keys, count(*), min(occurred_at), max(occurred_at),
       min_by(event_id::VARCHAR, (occurred_at, event_id), {EXAMPLES})
FROM disclosures WHERE {_WHERE}
GROUP BY recipient_id, producer_service, keys
ORDER BY count(*) DESC, recipient_id, producer_service, keys
"""

_ROWS_SQL = f"""
SELECT event_id::VARCHAR, occurred_at, ingested_at, recipient_id, producer_service
FROM disclosures WHERE {_WHERE}
ORDER BY occurred_at, event_id
LIMIT {ROWS_LISTED}
"""


@dataclass(frozen=True)
class AfterErasureGroup:
    recipient_id: str
    recipient_category: str
    producer_service: str
    data_categories: tuple[str, ...]
    events: int
    first_seen: datetime
    last_seen: datetime
    example_event_ids: tuple[str, ...]


@dataclass(frozen=True)
class AfterErasureRow:
    event_id: str
    occurred_at: datetime
    recorded_at: datetime  # ingested_at: when the ledger received it, after the erasure
    recipient_id: str
    producer_service: str


@dataclass(frozen=True)
class AfterErasure:
    events: int
    groups: tuple[AfterErasureGroup, ...]
    rows: tuple[AfterErasureRow, ...]  # the earliest ROWS_LISTED

    @property
    def rows_cut(self) -> bool:
        return len(self.rows) < self.events


def _at(value: datetime) -> datetime:
    moment = aware(value)
    assert moment is not None
    return moment


def read_after_erasure(
    cursor: duckdb.DuckDBPyConnection, params: Mapping[str, object]
) -> AfterErasure:
    """The flagged disclosures in ``[params.start, params.end)``, in the caller's snapshot."""
    groups = tuple(
        AfterErasureGroup(
            str(rid), str(category), str(producer), tuple(keys), int(n), _at(f), _at(last), tuple(x)
        )
        for rid, category, producer, keys, n, f, last, x in cursor.execute(
            _GROUPS_SQL, dict(params)
        ).fetchall()
    )
    rows = tuple(
        AfterErasureRow(str(e), _at(at), _at(rec), str(r), str(p))
        for e, at, rec, r, p in cursor.execute(_ROWS_SQL, dict(params)).fetchall()
    )
    return AfterErasure(sum(g.events for g in groups), groups, rows)


def count_after_erasure(cursor: duckdb.DuckDBPyConnection) -> int:
    """Every flagged disclosure in the ledger: a scan of the ``flags`` column."""
    found = cursor.execute(f"SELECT count(*) FROM disclosures WHERE {_FLAGGED}").fetchone()
    return int(found[0]) if found else 0


class AfterErasureTally:
    """The flagged disclosures of one ledger, for the service's status and metrics, without
    a scan of every row on each look.

    The ledger only grows (rows are never deleted or moved), so DuckDB numbers its rows
    ``0 .. count - 1`` in the order they were appended (``rowid``), and each batch's
    ``ingested_at`` is no earlier than the batches before it. The first look counts every
    row's flags (about 130 ms for 10 million rows, 0.8 s for 50 million, on a busy
    two-core machine: ``python -m bench.bench_after_erasure``). A later look counts only
    the rows appended since: those with ``rowid >=`` the count it had, looked for with
    ``ingested_at >=`` the latest it had seen, which DuckDB answers from its row-group
    statistics (about 1 ms). If that finds fewer rows than were appended (the clock went
    back), it counts them by ``rowid`` alone. When the count has not moved (``count(*)``,
    read from metadata) nothing is counted. A snapshot with fewer rows than the tally has
    seen (an older read) is counted whole, and not kept. One look at a time updates it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows = 0
        self._flagged = 0
        self._through: datetime | None = None  # the latest ingested_at of the rows counted

    def count(self, cursor: duckdb.DuckDBPyConnection) -> int:
        """The flagged rows in ``cursor``'s snapshot (read in one transaction)."""
        found = cursor.execute("SELECT count(*) FROM disclosures").fetchone()
        rows = int(found[0]) if found else 0
        with self._lock:
            if rows < self._rows:
                return count_after_erasure(cursor)
            if rows > self._rows:
                added, through = self._appended(cursor, rows - self._rows)
                self._flagged += added
                self._rows = rows
                if through is not None and (self._through is None or through > self._through):
                    self._through = through
            return self._flagged

    def _appended(
        self, cursor: duckdb.DuckDBPyConnection, expected: int
    ) -> tuple[int, datetime | None]:
        """(flagged, latest ingested_at) of the rows appended since the last look."""
        if self._through is not None:
            seen, flagged, through = cursor.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {_FLAGGED}), max(ingested_at) "
                "FROM disclosures WHERE ingested_at >= ? AND rowid >= ?",
                [self._through, self._rows],
            ).fetchone() or (0, 0, None)
            if int(seen) == expected:
                return int(flagged), through
        flagged, through = cursor.execute(
            f"SELECT count(*) FILTER (WHERE {_FLAGGED}), max(ingested_at) FROM disclosures "
            "WHERE rowid >= ?",
            [self._rows],
        ).fetchone() or (0, None)
        return int(flagged), through


def after_erasure_contract(found: AfterErasure) -> AfterErasureJson:
    return AfterErasureJson(
        events=found.events,
        meaning=MEANING,
        groups=[
            AfterErasureGroupJson(
                recipient_id=g.recipient_id,
                recipient_category=g.recipient_category,
                producer_service=g.producer_service,
                data_categories=list(g.data_categories),
                events=g.events,
                first_seen=rfc3339(g.first_seen) or "",
                last_seen=rfc3339(g.last_seen) or "",
                example_event_ids=list(g.example_event_ids),
            )
            for g in found.groups
        ],
        rows=[
            AfterErasureRowJson(
                event_id=r.event_id,
                occurred_at=rfc3339(r.occurred_at) or "",
                recorded_at=rfc3339(r.recorded_at) or "",
                recipient_id=r.recipient_id,
                producer_service=r.producer_service,
            )
            for r in found.rows
        ],
        rows_listed_at_most=ROWS_LISTED,
    )


def after_erasure_sections(found: AfterErasure, period: str) -> tuple[Section, ...]:
    """The report's first section (and, when there are any, the rows as a second)."""
    if not found.events:
        return (
            Section(
                heading="Disclosures after an erasure",
                paragraphs=(
                    f"No disclosure {period} is about a subject erased before it arrived.",
                ),
                section_id="after-erasure",
            ),
        )
    summary = (
        f"{found.events} disclosure{'s' if found.events != 1 else ''} {period} "
        f"{'are' if found.events != 1 else 'is'} about a subject erased before "
        f"{'they' if found.events != 1 else 'it'} arrived (flag {AFTER_ERASURE_FLAG}), by "
        "recipient, producer service and data categories:"
    )
    listed = (
        f"The earliest {len(found.rows)} of {found.events} are listed; query the ledger "
        f"(list_contains(flags, '{AFTER_ERASURE_FLAG}')) for the rest."
        if found.rows_cut
        else "Each of them, earliest first (recorded: when the ledger received it):"
    )
    return (
        Section(
            heading="Disclosures after an erasure",
            paragraphs=(MEANING, summary),
            notice=f"{found.events} disclosures after an erasure",
            table=Table(
                (
                    "Recipient",
                    "Recipient category",
                    "Producer service",
                    "Data categories",
                    "Events",
                    "First seen",
                    "Last seen",
                    "Example event ids",
                ),
                tuple(
                    (
                        g.recipient_id,
                        g.recipient_category,
                        g.producer_service,
                        ", ".join(g.data_categories),
                        str(g.events),
                        rfc3339(g.first_seen) or "",
                        rfc3339(g.last_seen) or "",
                        " ".join(g.example_event_ids),
                    )
                    for g in found.groups
                ),
                (False, False, False, False, True, False, False, False),
            ),
            section_id="after-erasure",
        ),
        Section(
            heading="Disclosures after an erasure, one by one",
            paragraphs=(listed,),
            table=Table(
                ("Event id", "Occurred at", "Recorded at", "Recipient", "Producer service"),
                tuple(
                    (
                        r.event_id,
                        rfc3339(r.occurred_at) or "",
                        rfc3339(r.recorded_at) or "",
                        r.recipient_id,
                        r.producer_service,
                    )
                    for r in found.rows
                ),
            ),
            section_id="after-erasure-rows",
        ),
    )
