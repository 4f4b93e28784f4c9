"""Proofs read from a ledger's stored nodes are the proofs of the leaves themselves: over a tree
tall enough to have stored levels 8 and 16, every root, inclusion path and consistency proof
read through :class:`ledger.tree.LedgerNodes` (few merged scans) equals the one computed from
the leaves in memory."""

from __future__ import annotations

import random

import duckdb
import pytest

from ledger.merkle import MemorySource, consistency_proof, inclusion_proof, root
from ledger.tree import MERKLE_DDL, LedgerNodes, build_nodes

CHAIN = "t.disclosures/0"
SIZE = 2 * 65536 + 3 * 256 + 17  # two level-16 nodes, three level-8 ones after them, a tail


@pytest.fixture(scope="module")
def tree() -> tuple[duckdb.DuckDBPyConnection, MemorySource]:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE disclosures AS SELECT ? AS chain_id, i AS seq, "
        "unhex(sha256(i::VARCHAR))::BLOB AS leaf_hash FROM range(1, ?) t(i)",
        [CHAIN, SIZE + 1],
    )
    # another chain beside it, interleaved in the table as the consumer leaves them
    con.execute(
        "INSERT INTO disclosures SELECT 't.disclosures/1', i, unhex(sha256('x' || i))::BLOB "
        "FROM range(1, 1000) t(i)"
    )
    con.execute(MERKLE_DDL)
    for chain in (CHAIN, "t.disclosures/1"):
        con.register("_nodes", build_nodes(con, chain))
        con.execute("INSERT INTO merkle_nodes SELECT * FROM _nodes")
        con.unregister("_nodes")
    leaves = [
        bytes(r[0])
        for r in con.execute(
            "SELECT leaf_hash FROM disclosures WHERE chain_id = ? ORDER BY seq", [CHAIN]
        ).fetchall()
    ]
    return con, MemorySource(leaves)


def test_proofs_from_the_stored_nodes_match_the_leaves(
    tree: tuple[duckdb.DuckDBPyConnection, MemorySource],
) -> None:
    con, memory = tree
    stored = LedgerNodes(con, CHAIN)
    rng = random.Random(19)
    sizes = [1, 255, 256, 257, 65536, 65537, SIZE - 1, SIZE, *rng.sample(range(2, SIZE), 12)]
    for size in sizes:
        assert root(size, stored) == root(size, memory), size
        for index in {0, size - 1, size // 2, rng.randrange(size)}:
            assert inclusion_proof(index, size, stored) == inclusion_proof(index, size, memory)
        old = rng.randrange(1, size + 1)
        assert consistency_proof(old, size, stored) == consistency_proof(old, size, memory)


def test_a_read_returns_every_node_asked_for(
    tree: tuple[duckdb.DuckDBPyConnection, MemorySource],
) -> None:
    con, memory = tree
    wanted = [(0, 10, 20), (0, 22, 300), (0, 131000, 131071), (8, 3, 9), (8, 500, 515), (16, 1, 1)]
    got = LedgerNodes(con, CHAIN).stored(wanted)
    expected = memory.stored(wanted)
    assert {k: got[k] for k in expected} == expected
