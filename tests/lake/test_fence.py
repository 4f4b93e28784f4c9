"""Fencing on a shared DuckLake (docs/scale.md): an instance that lost a chain can neither
append to it nor store its signed checkpoint, even with its commit held back across the
rebalance; other chains' commits never conflict. Two DuckDB instances stand for two
services: each is a database of its own attached to the one lake, as two processes are."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pytest

from ledger.errors import LedgerError
from ledger.fence import FencedError, claim, hold, owner_of

Connect = Callable[[], duckdb.DuckDBPyConnection]


def _rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    return [
        (str(c), int(s)) for c, s in con.execute("SELECT chain, seq FROM t ORDER BY ALL").fetchall()
    ]


def in_fenced_transaction(
    con: duckdb.DuckDBPyConnection, holds: dict[str, int], work: Callable[[], object]
) -> None:
    """What an append does (``Ledger.append_batch`` on a lake): hold every chain, write,
    commit; a commit refused by DuckLake becomes a FencedError, as there."""
    con.execute("BEGIN TRANSACTION")
    try:
        for chain_id, epoch in sorted(holds.items()):
            hold(con, chain_id, epoch)
        work()
    except BaseException:
        con.execute("ROLLBACK")
        raise
    try:
        con.execute("COMMIT")
    except duckdb.TransactionException as exc:
        raise FencedError(f"the commit was refused ({exc})") from exc


@pytest.fixture
def two(lake_connect: Connect) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    a, b = lake_connect(), lake_connect()
    a.execute("CREATE TABLE t (chain VARCHAR, seq BIGINT)")
    return a, b


def test_a_commit_held_back_across_a_claim_is_refused(
    two: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
) -> None:
    a, b = two
    epoch_a = claim(a, "disclosures/0", "A")
    in_fenced_transaction(
        a,
        {"disclosures/0": epoch_a},
        lambda: a.execute("INSERT INTO t VALUES ('disclosures/0', 1)"),
    )
    # A's next batch is open and its commit held back; the partition moves to B
    a.execute("BEGIN TRANSACTION")
    hold(a, "disclosures/0", epoch_a)
    a.execute("INSERT INTO t VALUES ('disclosures/0', 2)")
    epoch_b = claim(b, "disclosures/0", "B")
    assert epoch_b == epoch_a + 1
    assert owner_of(b, "disclosures/0") == (epoch_b, "B")
    with pytest.raises(duckdb.TransactionException):
        a.execute("COMMIT")
    # B continues from the lake's last row: A's held batch is not there
    assert _rows(b) == [("disclosures/0", 1)]
    in_fenced_transaction(
        b,
        {"disclosures/0": epoch_b},
        lambda: b.execute("INSERT INTO t VALUES ('disclosures/0', 2)"),
    )
    assert _rows(a) == [("disclosures/0", 1), ("disclosures/0", 2)]


def test_after_a_claim_the_old_owner_cannot_start_a_batch(
    two: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
) -> None:
    a, b = two
    epoch_a = claim(a, "disclosures/1", "A")
    claim(b, "disclosures/1", "B")
    with pytest.raises(FencedError, match="claimed by B"):
        in_fenced_transaction(
            a,
            {"disclosures/1": epoch_a},
            lambda: a.execute("INSERT INTO t VALUES ('disclosures/1', 1)"),
        )
    assert _rows(b) == []


def test_a_refused_commit_is_reported_as_fenced_and_keeps_nothing(
    two: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
) -> None:
    a, b = two
    epoch_a = claim(a, "disclosures/2", "A")

    def batch_then_rebalance() -> None:
        a.execute("INSERT INTO t VALUES ('disclosures/2', 1)")
        claim(b, "disclosures/2", "B")  # the rebalance lands before A's commit

    with pytest.raises(FencedError, match="refused"):
        in_fenced_transaction(a, {"disclosures/2": epoch_a}, batch_then_rebalance)
    assert _rows(b) == []


def test_other_chains_commit_concurrently_without_conflict(
    two: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
) -> None:
    a, b = two
    epoch_a = claim(a, "disclosures/3", "A")
    epoch_b = claim(b, "disclosures/4", "B")
    a.execute("BEGIN TRANSACTION")
    hold(a, "disclosures/3", epoch_a)
    a.execute("INSERT INTO t VALUES ('disclosures/3', 1)")
    in_fenced_transaction(
        b,
        {"disclosures/4": epoch_b},
        lambda: b.execute("INSERT INTO t VALUES ('disclosures/4', 1)"),
    )
    a.execute("COMMIT")  # DuckLake retries it: nothing of B's conflicts with it
    assert _rows(b) == [("disclosures/3", 1), ("disclosures/4", 1)]


def test_hold_without_a_claim_is_refused(lake_connect: Connect) -> None:
    con = lake_connect()
    con.execute("BEGIN TRANSACTION")
    with pytest.raises(FencedError, match="never claimed"):
        hold(con, "disclosures/9", 1)
    con.execute("ROLLBACK")
    assert isinstance(FencedError("x"), LedgerError)
