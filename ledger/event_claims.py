"""One row per event across instances: which of two partitions holding the same event
appends it, when several ledger services share one lake (docs/scale.md).

The ledger deduplicates by ``event_id``: a message whose event the ledger already holds is
recorded as a duplicate pointing at the row. One writer checks the ledger and appends in
order, so that is enough. With several instances, the same event re-sent under another
Kafka key lands on another partition, owned by another instance; both check the lake
before either commits, neither finds the event, and both would append it. DuckLake has no
UNIQUE constraint to refuse the second, and two inserts never conflict.

So on a lake, before a batch is prepared, each new event is *claimed*: a row (event id,
chain, offset, the chain's fence epoch) is inserted into ``event_claims`` and committed on
its own. DuckLake numbers every commit (the ``snapshot_id`` of a row is the snapshot its
insert committed in), and a claim that another instance did not see when it read the
claims was committed after that read, so *the live claim with the smallest snapshot wins*
the same way for every instance:

- a claim is **live** while its epoch is the chain's current one (its instance still owns
  the partition); a claim made before a rebalance, whose batch never committed, is dead;
- the batch holding the winning claim appends the event; any other waits until the event
  is in the lake (the winner's batch committed) and records a duplicate of it; if the
  winner's instance loses its partition meanwhile, its claim dies and the next live claim
  wins (the new owner's re-read, or this one's);
- waiting is bounded (:data:`WAIT_SECONDS`): after that the batch is dropped with
  :class:`EventClaimedElsewhere` (a :class:`~ledger.fence.FencedError`), and the consumer
  rejoins its group and reads it again.

A ledger file has one writer: nothing is claimed there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import duckdb
import pyarrow as pa

from ledger.fence import FencedError, owner_of

log = logging.getLogger(__name__)

EVENT_CLAIMS_DDL = """
CREATE TABLE IF NOT EXISTS event_claims (
    event_id UUID NOT NULL, chain_id VARCHAR NOT NULL, kafka_offset BIGINT NOT NULL,
    epoch BIGINT NOT NULL
);
"""

WAIT_SECONDS = 10.0
"""How long a batch waits for an event another instance claimed first to reach the lake."""


class EventClaimedElsewhere(FencedError):
    """An event of the batch was claimed first by another instance, whose batch has not
    committed it in time: the batch is dropped whole and read again."""


def settle(
    cursor: duckdb.DuckDBPyConnection,
    claims: pa.Table,
    epochs: dict[str, int],
    find: Callable[[pa.Array], dict[str, tuple[str, int]]],
) -> dict[str, tuple[str, int]]:
    """Claim ``claims`` (columns event_id, chain_id, kafka_offset: the batch's new events,
    each at its first position) at ``epochs`` (this instance's epoch of each chain), and
    return the events another instance's claim won, each with the (chain, seq) of its row in
    the lake once there (``find``: the ledger's event-id lookup). Raises
    :class:`EventClaimedElsewhere` when one is not there within :data:`WAIT_SECONDS`."""
    chains, offsets = claims.column("chain_id").to_pylist(), claims.column("kafka_offset")
    mine = dict(
        zip(
            claims.column("event_id").to_pylist(),
            zip(chains, offsets.to_pylist(), strict=True),
            strict=True,
        )
    )
    cursor.register("_claiming", claims)
    try:
        _insert(cursor, claims, epochs)
        deadline = time.monotonic() + WAIT_SECONDS
        pause = 0.05
        while True:
            rivals = _rival_winners(cursor, mine)
            if not rivals:
                return {}
            found = find(pa.array(sorted(rivals), pa.string()))
            if len(found) == len(rivals):
                return dict(found)
            if time.monotonic() > deadline:
                waiting = sorted(set(rivals) - set(found))
                chain, offset = rivals[waiting[0]]
                raise EventClaimedElsewhere(
                    f"{len(waiting)} event(s) of this batch (e.g. {waiting[0]}) were claimed "
                    f"first by the owner of {chain} (offset {offset}), whose batch has not "
                    f"reached the lake in {WAIT_SECONDS:.0f} s: the batch is dropped and read "
                    "again"
                )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
    finally:
        cursor.unregister("_claiming")


def _insert(cursor: duckdb.DuckDBPyConnection, claims: pa.Table, epochs: dict[str, int]) -> None:
    """The claims, committed on their own (the cursor is in autocommit)."""
    chains = claims.column("chain_id").to_pylist()
    with_epochs = claims.append_column("epoch", pa.array([epochs[c] for c in chains], pa.int64()))
    cursor.register("_claims_in", with_epochs)
    try:
        cursor.execute(
            "INSERT INTO event_claims SELECT event_id::UUID, chain_id, kafka_offset, epoch "
            "FROM _claims_in"
        )
    finally:
        cursor.unregister("_claims_in")


def _rival_winners(
    cursor: duckdb.DuckDBPyConnection, mine: dict[str, tuple[str, int]]
) -> dict[str, tuple[str, int]]:
    """The events whose winning live claim is not this batch's: event -> (chain, offset)."""
    rows = cursor.execute(
        "SELECT c.event_id::VARCHAR, c.chain_id, c.kafka_offset, c.epoch, c.snapshot_id "
        "FROM event_claims c SEMI JOIN _claiming m ON c.event_id = m.event_id::UUID"
    ).fetchall()
    epochs: dict[str, int | None] = {}
    best: dict[str, tuple[int, str, int]] = {}
    for event_id, chain, offset, epoch, snapshot in rows:
        if chain not in epochs:
            owner = owner_of(cursor, chain)
            epochs[chain] = owner[0] if owner else None
        if epochs[chain] != epoch:
            continue  # dead: its instance lost the partition before the batch committed
        if event_id not in best or snapshot < best[event_id][0]:
            best[event_id] = (int(snapshot), str(chain), int(offset))
    return {
        e: (chain, offset)
        for e, (_, chain, offset) in best.items()
        if (chain, offset) != mine.get(e)
    }


def claimable(event_ids: Sequence[str], chains: Sequence[str], offsets: Sequence[int]) -> pa.Table:
    """The claims table :func:`settle` takes."""
    return pa.table(
        {
            "event_id": pa.array(event_ids, pa.string()),
            "chain_id": pa.array(chains, pa.string()),
            "kafka_offset": pa.array(offsets, pa.int64()),
        }
    )
