"""verify's scan in DuckDB SQL: the cores it uses, found on every system, and many
interleaved chains kept apart, each linked across ranges of rows."""

from __future__ import annotations

import os
import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ledger.chain import GENESIS, leaf_hash, link_hash
from ledger.leaf_sql import LEAF_SELECT
from ledger.store import Ledger
from ledger.verify import available_cores, verify_ledger
from ledger.verify.diagnosis import link_failures
from ledger.verify.scan import scan_chains
from tests.unit.ledger_rows import CHAIN, disclosure_row, write_ledger


def test_the_cores_are_those_of_the_affinity_where_the_system_has_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5})
        assert available_cores() == 3


def test_without_sched_getaffinity_every_core_of_the_machine_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """macOS and Windows have no os.sched_getaffinity: verify imports and uses them all."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert available_cores() == 7
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "undeterminable"
    assert available_cores() == 1


def _rehashed_ledger(path: Path, rows: list[dict[str, object]]) -> Path:
    """A ledger of ``rows`` (chains numbered by write_ledger) with real leaves and links."""
    write_ledger(path, rows)
    con = duckdb.connect(str(path))
    try:
        table = con.sql(f"SELECT {LEAF_SELECT} FROM disclosures ORDER BY rowid").to_arrow_table()
        heads: dict[str, bytes] = {}
        leaves, links = [], []
        for row in table.to_pylist():
            leaf = leaf_hash(row)
            heads[row["chain_id"]] = link_hash(heads.get(row["chain_id"], GENESIS), leaf)
            leaves.append(leaf)
            links.append(heads[row["chain_id"]])
        con.register(
            "hashes",
            pa.table(
                {
                    "chain_id": table.column("chain_id"),
                    "seq": table.column("seq"),
                    "leaf": pa.array(leaves, pa.binary()),
                    "link": pa.array(links, pa.binary()),
                }
            ),
        )
        con.execute(
            "UPDATE disclosures d SET leaf_hash = h.leaf, chain_hash = h.link FROM hashes h "
            "WHERE d.chain_id = h.chain_id AND d.seq = h.seq"
        )
        con.execute(  # and the head the reports' derived table keeps
            "UPDATE chain_heads h SET head_chain_hash = d.chain_hash FROM disclosures d "
            "WHERE d.chain_id = h.chain_id AND d.seq = h.head_seq"
        )
    finally:
        con.close()
    return path


def test_verify_sets_duckdb_to_the_cores_found_and_puts_the_setting_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _rehashed_ledger(tmp_path / "l.duckdb", [disclosure_row() for _ in range(5)])
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    seen: list[int] = []
    with Ledger(path, read_only=True) as ledger:
        ledger.con.execute("SET threads = 1")

        def threads(done: int, total: int) -> None:
            value = ledger.con.execute("SELECT current_setting('threads')").fetchall()[0][0]
            seen.append(int(value))

        result = verify_ledger(ledger, progress=threads)
        assert result.rows == 5
        assert seen and set(seen) == {3}
        assert ledger.con.execute("SELECT current_setting('threads')").fetchall() == [(1,)]
        verify_ledger(ledger, progress=threads, threads=2)
        assert seen[-1] == 2


def test_many_interleaved_chains_are_kept_apart_across_ranges(tmp_path: Path) -> None:
    """A topic of many partitions: 60 chains, their rows interleaved; a row out of order marks
    its chain dirty and no other, and every chain ends at its own last row, whatever the
    range size."""
    chains, per_chain = 60, 5
    order = [c for _ in range(per_chain) for c in range(chains)]
    random.Random(9).shuffle(order)
    rows = [disclosure_row(chain_id=f"topic.with.a.long.name/{c}") for c in order]
    path = _rehashed_ledger(tmp_path / "l.duckdb", rows)
    dirty = "topic.with.a.long.name/17"
    con = duckdb.connect(str(path))
    try:
        con.execute(f"UPDATE disclosures SET seq = 99 WHERE chain_id = '{dirty}' AND seq = 4")
    finally:
        con.close()
    with Ledger(path, read_only=True) as ledger:
        for range_rows in (1, 7, 64, 10_000):
            found = scan_chains(ledger.con.cursor(), range_rows=range_rows)
            assert found.rows == chains * per_chain
            assert set(found.leaf_bad) == {dirty}  # seq is hashed: its leaf changed too
            assert {c for c, state in found.chains.items() if state.dirty} == {dirty}
            assert all(state.seq == per_chain for c, state in found.chains.items() if c != dirty), (
                range_rows
            )


def test_the_link_check_finds_every_damaged_row_of_a_chain() -> None:
    """Damage rows at both ends, neighbours, stored hashes of the wrong length and a seq out
    of order: each is found at its own position, and an intact chain has none."""
    rnd = random.Random(11)
    n = 300
    leaves = [rnd.randbytes(32) for _ in range(n)]
    links, head = [], GENESIS
    for leaf in leaves:
        head = link_hash(head, leaf)
        links.append(head)
    seqs, offsets = list(range(1, n + 1)), list(range(10, 10 + n))
    assert link_failures(seqs, offsets, leaves, links) == ([], [])
    damaged = {0, 1, 150, 151, n - 1}
    for i in damaged:
        links[i] = bytes(32)
    leaves[3] = b"\x02" * 33
    links[4] = b"\x01" * 31
    seqs[5] = 99
    offsets[7] = offsets[6]
    bad_links, bad_order = link_failures(seqs, offsets, leaves, links)
    # a changed link fails its own row and the next, whose link follows from it
    assert set(bad_links) == {0, 1, 2, 3, 4, 5, 150, 151, 152, n - 1}
    assert bad_order == [5, 6, 7]


def test_an_empty_ledger_verifies_with_no_rows(tmp_path: Path) -> None:
    with Ledger(tmp_path / "empty.duckdb") as ledger:
        result = verify_ledger(ledger)
    assert result.ok and result.rows == 0 and result.chains == {}


def test_a_bad_range_size_is_refused(tmp_path: Path) -> None:
    with (
        Ledger(tmp_path / "empty.duckdb") as ledger,
        pytest.raises(ValueError, match="range_rows must be at least 1"),
    ):
        verify_ledger(ledger, range_rows=0)


def test_one_chain_s_written_order_is_checked(tmp_path: Path) -> None:
    path = _rehashed_ledger(tmp_path / "l.duckdb", [disclosure_row() for _ in range(4)])
    with Ledger(path, read_only=True) as ledger:
        result = verify_ledger(ledger)
    assert result.ok, [str(f) for f in result.failures]
    assert result.chains[CHAIN][0] == 4


def test_the_public_names_of_ledger_verify() -> None:
    """What code outside the package imports from ledger.verify (the CLI, the demo, tests)."""
    import ledger.verify

    assert set(ledger.verify.__all__) == {
        "CHECKPOINTS",
        "DERIVED",
        "LEAF_SELECT",
        "RANGE_ROWS",
        "CheckpointSource",
        "Failure",
        "VerifyResult",
        "available_cores",
        "verify_ledger",
    }
    assert all(hasattr(ledger.verify, name) for name in ledger.verify.__all__)
