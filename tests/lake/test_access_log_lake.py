"""Two services of one lake answer reads at once: each read is appended to the one
hash-chained access log, and the chain never forks (ledger/access_log.py, ``shared``).
Real DuckLake on PostgreSQL."""

from __future__ import annotations

import pytest

import ledger.access_log
from ledger.access_log import AccessEntry, AccessLog
from ledger.store import Ledger
from ledger.verify import verify_ledger
from tests.conftest import LedgerLocation

pytestmark = pytest.mark.parametrize("ledger_backend", ["ducklake"], indirect=True)


def _read(n: int) -> AccessEntry:
    return AccessEntry(f"user-{n}", "investigator", "query", f"CASE-{n}", n)


def test_two_instances_appending_at_once_extend_one_chain(
    ledger_location: LedgerLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B's append commits while A's is open (after A read the head): A's commit is refused
    and A appends again after B's entry, as entry 2."""
    with Ledger(ledger_location) as a, Ledger(ledger_location) as b:
        a_con, b_con = a.view(writable=True), b.view(writable=True)
        log_a, log_b = AccessLog(shared=True), AccessLog(shared=True)
        real_leaf = ledger.access_log.access_leaf
        calls: list[int] = []

        def leaf_then_b_appends(fields: dict[str, object]) -> bytes:
            calls.append(1)
            if len(calls) == 1:  # inside A's first attempt, after it read the head
                monkeypatch.setattr(ledger.access_log, "access_leaf", real_leaf)
                log_b.append(b_con.con, _read(2))
                monkeypatch.setattr(ledger.access_log, "access_leaf", leaf_then_b_appends)
            return real_leaf(fields)

        monkeypatch.setattr(ledger.access_log, "access_leaf", leaf_then_b_appends)
        record = log_a.append(a_con.con, _read(1))
        monkeypatch.undo()
        assert record.seq == 2 and len(calls) == 2  # refused once, then linked after B's
        rows = a.con.execute("SELECT seq, actor FROM access_log ORDER BY seq").fetchall()
        assert rows == [(1, "user-2"), (2, "user-1")]
        assert verify_ledger(a).ok
        a_con.close()
        b_con.close()
