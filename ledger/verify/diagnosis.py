"""Diagnosis of a chain the scan found out of order or unlinked: read it alone, in sequence
order, and say what is wrong with it row by row: a row altered, deleted, inserted, or rows
reordered. Pure Python over :mod:`hashlib` (:func:`ledger.chain.link_hash`); only dirty
chains come here, so the cost of a clean ledger is the scan's alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ledger.chain import GENESIS, leaf_hash, link_hash
from ledger.leaf_sql import LEAF_SELECT
from ledger.verify.result import Failure, VerifyResult, row_altered


def link_failures(
    seqs: Sequence[int], offsets: Sequence[int], leaves: Sequence[bytes], links: Sequence[bytes]
) -> tuple[list[int], list[int]]:
    """Positions of one chain's rows, in the order given, whose link fails, and whose seq
    does not follow the previous by one or whose offset does not exceed the previous."""
    bad_links, bad_order = [], []
    seq, offset, head = 0, -1, GENESIS
    for i, (s, o, leaf, link) in enumerate(zip(seqs, offsets, leaves, links, strict=True)):
        if s != seq + 1 or o <= offset:
            bad_order.append(i)
        if link_hash(head, leaf) != link:
            bad_links.append(i)
        seq, offset, head = s, o, link
    return bad_links, bad_order


def diagnose_chain(
    con: duckdb.DuckDBPyConnection,
    chain: str,
    leaf_bad: set[tuple[int, int]],
    result: VerifyResult,
) -> None:
    """Read one chain in seq order and say what is wrong with it, row by row."""
    table = (
        con.execute(
            "SELECT seq, kafka_offset, leaf_hash, chain_hash FROM disclosures "
            "WHERE chain_id = $chain ORDER BY seq, kafka_offset",
            {"chain": chain},
        )
        .to_arrow_table()
        .combine_chunks()
    )
    n = table.num_rows
    seq_list = table.column("seq").to_pylist()
    offset_list = table.column("kafka_offset").to_pylist()
    link_list = [bytes(h) for h in table.column("chain_hash").to_pylist()]
    bad_links, bad_order = link_failures(
        seq_list, offset_list, [bytes(h) for h in table.column("leaf_hash").to_pylist()], link_list
    )

    def seq_at(i: int) -> int:
        return int(seq_list[i]) if i >= 0 else 0

    def offset_at(i: int) -> int:
        return int(offset_list[i]) if i >= 0 else -1

    failures: list[Failure] = []
    explained: set[int] = set()  # positions whose link failure a finding already explains
    excused_leaf: set[tuple[int, int]] = set()
    for i in bad_order:
        seq, offset, previous_seq = seq_at(i), offset_at(i), seq_at(i - 1)
        if seq == previous_seq:
            failures.append(Failure(chain, seq, "row inserted", f"a second row numbered seq {seq}"))
            explained.update((i, i + 1))
            excused_leaf.add((seq, offset))
        elif seq > previous_seq + 1:
            gap = (
                f"seq {previous_seq + 1}"
                if seq == previous_seq + 2
                else f"seqs {previous_seq + 1} to {seq - 1}"
            )
            failures.append(
                Failure(chain, previous_seq + 1, "row deleted", f"{gap} missing before seq {seq}")
            )
            explained.add(i)
        elif offset == offset_at(i - 1):
            failures.append(
                Failure(
                    chain,
                    seq,
                    "row inserted",
                    f"claims Kafka offset {offset}, which seq {previous_seq} already holds",
                )
            )
            explained.update((i, i + 1))
            excused_leaf.add((seq, offset))
    if bad_order:
        reordered = _reordered(con, chain, table)
        if reordered is not None:
            failure, positions, intact = reordered
            failures.append(failure)
            for position in positions:
                explained.update((position, position + 1))
                if intact:
                    excused_leaf.add((seq_at(position), offset_at(position)))
    failed_links = set(bad_links)
    for i in bad_links:
        if i + 1 in failed_links and (seq_at(i), offset_at(i)) not in leaf_bad:
            explained.add(i + 1)  # only row i's stored chain hash changed: i + 1 follows it
    for i in bad_links:
        if i not in explained:
            failures.append(
                Failure(
                    chain,
                    seq_at(i),
                    "row altered",
                    f"its chain hash does not follow from seq {seq_at(i - 1)} and its leaf: "
                    "this row or the one before it was replaced with recomputed hashes",
                )
            )
    for seq, _ in leaf_bad - excused_leaf:
        failures.append(row_altered(chain, seq))
    failures.sort(key=lambda f: (f.seq or 0, f.kind))
    result.failures.extend(failures)
    head = link_list[n - 1] if n else GENESIS
    result.chains[chain] = (seq_at(n - 1) if n else 0, head.hex())


def _reordered(
    con: duckdb.DuckDBPyConnection, chain: str, table: pa.Table
) -> tuple[Failure, list[int], bool] | None:
    """Rows whose place in seq order differs from their place in Kafka offset order."""
    by_offset = pc.sort_indices(
        table, sort_keys=[("kafka_offset", "ascending"), ("seq", "ascending")]
    )
    ranks = pa.array(range(table.num_rows), pa.uint64())
    displaced_ranks = pc.indices_nonzero(pc.not_equal(by_offset, ranks)).to_pylist()
    if not displaced_ranks:
        return None
    order = by_offset.to_pylist()
    displaced = sorted(order[r] for r in displaced_ranks)
    seqs = table.column("seq")
    offsets = table.column("kafka_offset")
    leaves = table.column("leaf_hash")
    links = table.column("chain_hash")
    shown = ", ".join(str(seqs[p].as_py()) for p in displaced[:10])
    more = f" and {len(displaced) - 10} more" if len(displaced) > 10 else ""
    failure = Failure(
        chain,
        int(seqs[displaced[0]].as_py()),
        "rows reordered",
        f"rows at seq {shown}{more} are not in Kafka offset order",
    )
    # Were the rows only moved? Then in offset order, numbered by their rank, every leaf and
    # link over the displaced stretch holds as it was written.
    first, last = min(displaced_ranks), max(displaced_ranks)
    stretch = order[first : last + 1]
    keys = [(int(seqs[p].as_py()), int(offsets[p].as_py())) for p in stretch]
    rows = _full_rows(con, chain, keys)
    previous = bytes(links[first - 1].as_py()) if first else GENESIS
    intact = True
    for rank, (position, key) in enumerate(zip(stretch, keys, strict=True), start=first):
        row = rows.get(key)
        leaf, link = bytes(leaves[position].as_py()), bytes(links[position].as_py())
        if row is None:
            intact = False
            break
        row["seq"] = int(seqs[rank].as_py())
        if leaf_hash(row) != leaf or link_hash(previous, leaf) != link:
            intact = False
            break
        previous = link
    return failure, displaced, intact


def _full_rows(
    con: duckdb.DuckDBPyConnection, chain: str, wanted: list[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, Any]]:
    probe = pa.table(
        {
            "seq": pa.array([s for s, _ in wanted], pa.int64()),
            "kafka_offset": pa.array([o for _, o in wanted], pa.int64()),
        }
    )
    con.register("_verify_probe", probe)
    try:
        table = con.execute(
            f"SELECT {LEAF_SELECT} FROM disclosures d SEMI JOIN _verify_probe p "
            "ON d.seq = p.seq AND d.kafka_offset = p.kafka_offset WHERE d.chain_id = $chain",
            {"chain": chain},
        ).to_arrow_table()
    finally:
        con.unregister("_verify_probe")
    return {(row["seq"], row["kafka_offset"]): row for row in table.to_pylist()}
