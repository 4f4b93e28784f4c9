"""Each chain's Merkle tree in the ledger: the ``merkle_nodes`` table, extended with the rows.

The leaves are ``disclosures.leaf_hash`` (leaf index ``seq - 1``); the table holds the nodes
at levels 8, 16, 24, … (:data:`ledger.merkle.TILE_HEIGHT`), one row per complete subtree of
2**8, 2**16, … leaves: about one row per 255 leaves, 0.4% of the rows. Every other node is
hashed up from at most 2**7 stored ones (:mod:`ledger.merkle`).

* Ingest: :class:`TreeBuilder` keeps, per chain, the nodes of the incomplete tile at every
  stored level (at most 255 each) and turns a batch's leaves into the rows of the tiles they
  complete, which :meth:`ledger.store.Ledger.append_batch` inserts in the batch's own
  transaction.
* Rows appended without nodes (bulk loads, ledgers older than the tree) get theirs when a
  writer opens the ledger (:func:`ensure_tree`), as derived data does.
* ``verify`` recomputes every stored node from the rows (:func:`check_tree`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ledger.merkle import (
    NODE_PREFIX,
    TILE_HEIGHT,
    TILE_WIDTH,
    MissingNodes,
    consistency_proof,
    inclusion_proof,
    root,
    subtree_root,
)

MERKLE_DDL = """
CREATE TABLE IF NOT EXISTS merkle_nodes (
    chain_id VARCHAR NOT NULL, level UTINYINT NOT NULL, idx BIGINT NOT NULL,
    hash BLOB USING COMPRESSION uncompressed NOT NULL
);
"""

NodeRow = tuple[str, int, int, bytes]  # (chain, level, index, hash)

NODE_COLUMNS = pa.schema(
    [
        ("chain_id", pa.string()),
        ("level", pa.uint8()),
        ("idx", pa.int64()),
        ("hash", pa.binary(32)),
    ]
)


def has_tree(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'merkle_nodes'"
        ).fetchone()[0]  # type: ignore[index]
    )


# -- reading nodes -------------------------------------------------------------------------
class LedgerNodes:
    """The stored nodes of one chain, read through a DuckDB connection (one query a call).

    A proof's reads are few and short, so what a query costs beside its scans counts: the
    leaf ranges within a tile of each other are read as one (a proof's two ranges on either
    side of its leaf become one scan, the leaf included), the stored levels' ranges in one
    scan of ``merkle_nodes``, and the bounds are written into the SQL as integers (each bound
    parameter costs the DuckDB client about 0.1 ms); the chain id stays a parameter."""

    def __init__(self, con: duckdb.DuckDBPyConnection, chain_id: str) -> None:
        self.con = con
        self.chain_id = chain_id

    def stored(self, wanted: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], bytes]:
        if not wanted:
            return {}
        leaves: list[tuple[int, int]] = []
        for level, first, last in sorted(wanted):
            if level != 0:
                continue
            if leaves and first <= leaves[-1][1] + TILE_WIDTH:
                leaves[-1] = (leaves[-1][0], max(leaves[-1][1], int(last)))
            else:
                leaves.append((int(first), int(last)))
        parts = [
            "SELECT 0 AS level, seq - 1 AS idx, leaf_hash AS hash FROM disclosures "
            f"WHERE chain_id = $chain AND seq BETWEEN {first + 1} AND {last + 1}"
            for first, last in leaves
        ]
        ranges = [
            f"(level = {int(level)} AND idx BETWEEN {int(first)} AND {int(last)})"
            for level, first, last in wanted
            if level != 0
        ]
        if ranges:
            parts.append(
                "SELECT level, idx, hash FROM merkle_nodes "
                f"WHERE chain_id = $chain AND ({' OR '.join(ranges)})"
            )
        rows = self.con.execute(" UNION ALL ".join(parts), {"chain": self.chain_id}).fetchall()
        return {(int(level), int(idx)): bytes(h) for level, idx, h in rows}


def tree_root(con: duckdb.DuckDBPyConnection, chain_id: str, size: int) -> bytes:
    """The Merkle root of the chain's first ``size`` rows."""
    return root(size, LedgerNodes(con, chain_id))


def tree_inclusion_proof(
    con: duckdb.DuckDBPyConnection, chain_id: str, index: int, size: int
) -> list[bytes]:
    return inclusion_proof(index, size, LedgerNodes(con, chain_id))


def tree_consistency_proof(
    con: duckdb.DuckDBPyConnection, chain_id: str, old: int, new: int
) -> list[bytes]:
    return consistency_proof(old, new, LedgerNodes(con, chain_id))


# -- extending the tree ---------------------------------------------------------------------
@dataclass
class Frontier:
    """One chain's incomplete tiles: ``pending[level]`` holds the nodes at that stored level
    since the last complete tile, ``size`` is the number of leaves."""

    size: int = 0
    pending: dict[int, list[bytes]] = field(default_factory=dict)

    def copy(self) -> Frontier:
        return Frontier(self.size, {level: list(h) for level, h in self.pending.items()})


def load_frontier(con: duckdb.DuckDBPyConnection, chain_id: str, size: int) -> Frontier:
    """The frontier of the chain's first ``size`` leaves, read from the ledger."""
    frontier = Frontier(size)
    level, count = 0, size
    source = LedgerNodes(con, chain_id)
    while count:
        first = count - count % TILE_WIDTH
        if first < count:
            got = source.stored([(level, first, count - 1)])
            try:
                frontier.pending[level] = [got[(level, i)] for i in range(first, count)]
            except KeyError as exc:
                raise MissingNodes(
                    f"chain {chain_id}: node {exc.args[0]} is missing; open the ledger as its "
                    "writer to build the tree"
                ) from None
        level += TILE_HEIGHT
        count //= TILE_WIDTH
    return frontier


def extend(frontier: Frontier, chain_id: str, leaves: Iterable[bytes]) -> list[NodeRow]:
    """Add ``leaves`` to ``frontier`` (in place); the rows of the nodes they complete."""
    rows: list[NodeRow] = []
    for leaf in leaves:
        frontier.size += 1
        level, carry, index = 0, leaf, frontier.size - 1
        while True:
            pending = frontier.pending.setdefault(level, [])
            pending.append(carry)
            if len(pending) < TILE_WIDTH:
                break
            carry = subtree_root(pending)
            pending.clear()
            level += TILE_HEIGHT
            index >>= TILE_HEIGHT
            rows.append((chain_id, level, index, carry))
    return rows


def node_table(rows: Sequence[NodeRow]) -> pa.Table:
    columns: list[Sequence[object]] = (
        [list(c) for c in zip(*rows, strict=True)] if rows else [[], [], [], []]
    )
    return pa.table(
        [pa.array(column, f.type) for column, f in zip(columns, NODE_COLUMNS, strict=True)],
        schema=NODE_COLUMNS,
    )


class TreeBuilder:
    """The ingest path's trees: each chain's :class:`Frontier`, loaded on first use."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.frontiers: dict[str, Frontier] = {}

    def extend(self, chain_id: str, size_before: int, leaves: Sequence[bytes]) -> list[NodeRow]:
        """The node rows that ``leaves``, appended after the chain's first ``size_before``
        rows, complete."""
        frontier = self.frontiers.get(chain_id)
        if frontier is None or frontier.size != size_before:
            frontier = load_frontier(self._con, chain_id, size_before)
            self.frontiers[chain_id] = frontier
        return extend(frontier, chain_id, leaves)

    def snapshot(self) -> dict[str, Frontier]:
        return {chain: f.copy() for chain, f in self.frontiers.items()}

    def restore(self, frontiers: Mapping[str, Frontier]) -> None:
        self.frontiers = {chain: f.copy() for chain, f in frontiers.items()}


# -- bringing the tree up to the rows (writer, on opening) ---------------------------------
def _stale_chains(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int]]:
    """Chains whose level-8 nodes do not cover their rows: (chain, rows, level-8 nodes)."""
    return [
        (str(c), int(n), int(k))
        for c, n, k in con.execute(
            """
            SELECT h.chain_id, h.head_seq, coalesce(m.nodes, 0) FROM chain_heads h
            LEFT JOIN (SELECT chain_id, count(*) AS nodes FROM merkle_nodes WHERE level = 8
                       GROUP BY chain_id) m USING (chain_id)
            WHERE h.head_seq // 256 IS DISTINCT FROM coalesce(m.nodes, 0)
            ORDER BY h.chain_id
            """
        ).fetchall()
    ]


def ensure_tree(con: duckdb.DuckDBPyConnection) -> int:
    """Build the nodes of rows appended without them (one transaction; the writer calls it
    after :func:`ledger.derived.ensure_derived`, which keeps ``chain_heads``). Returns the
    number of node rows written."""
    con.execute(MERKLE_DDL)
    stale = _stale_chains(con)
    if not stale:
        return 0
    written = 0
    con.execute("BEGIN TRANSACTION")
    try:
        for chain_id, _, _ in stale:
            con.execute("DELETE FROM merkle_nodes WHERE chain_id = ?", [chain_id])
            rows = build_nodes(con, chain_id)
            if rows.num_rows:
                con.register("_built_nodes", rows)
                try:
                    con.execute("INSERT INTO merkle_nodes SELECT * FROM _built_nodes")
                finally:
                    con.unregister("_built_nodes")
            written += rows.num_rows
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return written


_CHUNK_TILES = 4096  # leaves read at a time: 4096 tiles of 256 (1M leaves, 32 MB of hashes)


def build_nodes(con: duckdb.DuckDBPyConnection, chain_id: str) -> pa.Table:
    """Every stored node of the chain, computed from its rows' leaf hashes in seq order.

    Whole levels are hashed at once (:func:`_complete_tiles`): a chunk's leaves pair up into
    the level above, eight times over, with no per-leaf bookkeeping; only the leaves of the
    last, incomplete tile are left over (ingest extends one leaf at a time: :func:`extend`)."""
    pending: dict[int, list[bytes]] = {}
    done: dict[int, int] = {}
    rows: list[NodeRow] = []

    def push(level: int, nodes: list[bytes]) -> None:
        buffer = pending.setdefault(level, [])
        buffer.extend(nodes)
        full = len(buffer) - len(buffer) % TILE_WIDTH
        if not full:
            return
        above = _complete_tiles(buffer[:full])
        del buffer[:full]
        first = done.get(level + TILE_HEIGHT, 0)
        done[level + TILE_HEIGHT] = first + len(above)
        rows.extend((chain_id, level + TILE_HEIGHT, first + i, h) for i, h in enumerate(above))
        push(level + TILE_HEIGHT, above)

    chunk = _CHUNK_TILES * TILE_WIDTH
    start = 1
    while True:
        leaves = (
            con.execute(
                "SELECT leaf_hash FROM disclosures WHERE chain_id = ? AND seq BETWEEN ? AND ? "
                "ORDER BY seq",
                [chain_id, start, start + chunk - 1],
            )
            .to_arrow_table()["leaf_hash"]
            .to_pylist()
        )
        if len(leaves) == 0:
            break
        push(0, leaves)
        start += chunk
        if len(leaves) < chunk:
            break
    return node_table(rows)


def _complete_tiles(nodes: list[bytes]) -> list[bytes]:
    """The roots of consecutive complete tiles of ``nodes`` (a multiple of 256 of them),
    one level of the tree at a time."""
    sha256 = hashlib.sha256
    level = nodes
    for _ in range(TILE_HEIGHT):
        level = [
            sha256(NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=True)
        ]
    return level


def check_tree(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Every stored node recomputed from the rows' leaf hashes: ``(chain, what is wrong)``
    for each chain whose stored nodes differ (missing, extra or altered). The leaf hashes
    themselves are checked against the rows by the scan."""
    if not has_tree(con):
        return []
    problems: list[tuple[str, str]] = []
    chains = [
        str(r[0])
        for r in con.execute(
            "SELECT DISTINCT chain_id FROM disclosures UNION SELECT DISTINCT chain_id "
            "FROM merkle_nodes ORDER BY 1"
        ).fetchall()
    ]
    for chain_id in chains:
        expected = build_nodes(con, chain_id)
        stored = con.execute(
            "SELECT level, idx, hash FROM merkle_nodes WHERE chain_id = ? ORDER BY level, idx",
            [chain_id],
        ).fetchall()
        want = sorted(
            zip(
                expected.column("level").to_pylist(),
                expected.column("idx").to_pylist(),
                expected.column("hash").to_pylist(),
                strict=True,
            )
        )
        have = [(int(level), int(idx), bytes(h)) for level, idx, h in stored]
        if have == want:
            continue
        have_at = {(level, idx): h for level, idx, h in have}
        want_at = {(level, idx): h for level, idx, h in want}
        missing = sorted(set(want_at) - set(have_at))
        extra = sorted(set(have_at) - set(want_at))
        altered = sorted(k for k in set(want_at) & set(have_at) if want_at[k] != have_at[k])
        parts = []
        if altered:
            level, idx = altered[0]
            parts.append(
                f"{len(altered)} stored node(s) differ from the rows (first: level {level} "
                f"index {idx}, leaves {idx * (1 << level) + 1}..{(idx + 1) * (1 << level)})"
            )
        if missing:
            parts.append(
                f"{len(missing)} node(s) missing (first: level {missing[0][0]} index "
                f"{missing[0][1]})"
            )
        if extra:
            parts.append(
                f"{len(extra)} node(s) beyond the rows (first: level {extra[0][0]} "
                f"index {extra[0][1]})"
            )
        problems.append((chain_id, "; ".join(parts)))
    return problems
