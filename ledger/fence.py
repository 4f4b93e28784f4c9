"""Fencing of a chain's writer on a shared DuckLake: one conflict domain per chain.

Several ledger services share one lake (issue 21); each appends only the chains of the
Kafka partitions it owns. After a rebalance, an instance that lost a partition may still
hold a batch of that chain in an open transaction. It must be unable to commit it, and
unable to sign that chain's checkpoint. DuckLake's own semantics decide how:

- DuckLake retries non-conflicting concurrent commits by itself: two inserts into one
  table never conflict, so an inserted "epoch" row fences nothing, and it has no UNIQUE
  constraint to make one.
- Two transactions that both delete from (or update) the same table conflict: the later
  commit fails ("Transaction conflict ... another transaction has deleted ... from it").
  An UPDATE of one shared table would make every instance's commit conflict with every
  other's.

So each chain gets a table of its own, ``chain_fence_<16 hex of SHA-256(chain)>``, holding
one row: the chain, the owner's epoch, the owner's name and a counter. Then:

- :func:`claim` (the new owner, after the rebalance assigned it the partition) replaces
  that row with ``epoch + 1`` and commits, retrying when the commit conflicts;
- :func:`hold` (every transaction that appends rows of the chain, or stores its signed
  checkpoint) updates the row ``WHERE epoch = <the epoch it claimed>`` inside that same
  transaction. Zero rows updated: the chain was claimed since; :class:`FencedError`, and the
  caller rolls back. One row updated, but a claim commits before this transaction does:
  both wrote the fence table, so DuckLake refuses this commit.

Either way an old owner's batch never lands after the new owner read the chain's head, and
the chains of other instances (other fence tables) never conflict with it. A signed
checkpoint note is stored in the lake in a transaction that holds the fence, and published
only after that commit: a signature made by a fenced instance is discarded unseen.

This module takes a DuckDB connection whose default catalog is the lake (``USE lake``);
it works unchanged on a one-file ledger, where a single writer makes it a no-op in effect.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

import duckdb
import tenacity

from ledger.errors import LedgerError

__all__ = ["FencedError", "claim", "fence_table", "hold", "owner_of"]

log = logging.getLogger(__name__)

# A claim that conflicts with a concurrent commit on the same fence table (another claim,
# or the old owner's last batch) is tried again: the loser sees the winner's row.
CLAIM_ATTEMPTS = 10


class FencedError(LedgerError):
    """This instance no longer owns the chain: another claimed it after this one did."""


def fence_table(chain_id: str) -> str:
    """The chain's own conflict domain; the name is a hash so any chain id is a safe name."""
    return "chain_fence_" + hashlib.sha256(chain_id.encode()).hexdigest()[:16]


def _ensure(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table} "
        "(chain_id VARCHAR, epoch BIGINT, owner VARCHAR, holds BIGINT)"
    )


def owner_of(con: duckdb.DuckDBPyConnection, chain_id: str) -> tuple[int, str] | None:
    """The chain's current (epoch, owner), or None when no instance has claimed it."""
    table = fence_table(chain_id)
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND database_name = "
        "current_database()",
        [table],
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = con.execute(f"SELECT epoch, owner FROM {table} ORDER BY epoch DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


def claim(con: duckdb.DuckDBPyConnection, chain_id: str, owner: str) -> int:
    """Take the chain for ``owner``: its epoch, one above every earlier claim. Commits on its
    own (call it outside a transaction), so that every later commit of the old owner's
    that holds the fence conflicts with it. Read the chain's head only after it returns."""
    table = fence_table(chain_id)

    def attempt() -> int:
        con.execute("BEGIN TRANSACTION")
        try:
            _ensure(con, table)
            row = con.execute(f"SELECT max(epoch) FROM {table}").fetchone()
            epoch = int(row[0]) + 1 if row and row[0] is not None else 1
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} VALUES (?, ?, ?, 0)", [chain_id, epoch, owner])
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        return epoch

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(duckdb.TransactionException),
        stop=tenacity.stop_after_attempt(CLAIM_ATTEMPTS),
        wait=tenacity.wait_random_exponential(multiplier=0.05, max=1.0),
        reraise=True,
        before_sleep=lambda state: log.info(
            "claim of chain %s conflicted with another commit; trying again (%d)",
            chain_id,
            state.attempt_number,
        ),
    )
    try:
        epoch = retrying(attempt)
    except duckdb.TransactionException as exc:
        raise LedgerError(
            f"could not claim chain {chain_id} after {CLAIM_ATTEMPTS} attempts: other commits "
            f"kept conflicting with it ({exc}); is another instance claiming it in a loop?"
        ) from exc
    log.info("claimed chain %s for %s at epoch %d", chain_id, owner, epoch)
    return epoch


def hold(con: duckdb.DuckDBPyConnection, chain_id: str, epoch: int) -> None:
    """Inside the caller's open transaction: write the chain's fence row if ``epoch`` is
    still the chain's, so that a claim committed before this transaction commits makes the
    commit fail. Raises :class:`FencedError` when the chain was claimed already (the caller
    rolls back; nothing of the batch is kept)."""
    table = fence_table(chain_id)
    try:
        row = con.execute(
            f"UPDATE {table} SET holds = holds + 1 WHERE epoch = ?", [epoch]
        ).fetchone()
    except duckdb.CatalogException as exc:
        raise FencedError(f"chain {chain_id} was never claimed; claim it first") from exc
    if not row or int(row[0]) != 1:
        current = owner_of(con, chain_id)
        raise FencedError(
            f"chain {chain_id} was claimed by {current[1] if current else 'another instance'} "
            f"at epoch {current[0] if current else '?'} after this instance's epoch {epoch}: "
            "this instance no longer owns its partition; the batch is not appended"
        )


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # a failed COMMIT may have ended it already
        con.execute("ROLLBACK")
