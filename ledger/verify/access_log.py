"""The access log's chain: every entry's leaf recomputed and every link checked, in seq
order, with :mod:`hashlib` (:func:`ledger.access_log.access_leaf`,
:func:`ledger.chain.link_hash`).

Failures are reported as the disclosures' are, under the chain name ``access_log``: an
entry altered (its fields no longer give its stored leaf, or its chain hash does not follow
from the entry before it), entries deleted (a gap in seq), an entry inserted (a seq twice),
entries reordered (an entry's stored leaf was computed with another entry's seq). A log
cut short at its end shows only against a checkpoint that covered it
(:mod:`ledger.verify.checkpoints`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from ledger.access_log import (
    ACCESS_CHAIN,
    ACCESS_FIELDS,
    ACCESS_LEAF_SELECT,
    access_leaf,
    has_access_log,
)
from ledger.chain import GENESIS, link_hash
from ledger.verify.result import Failure, VerifyResult

_FETCH_ROWS = 10_000
_MOVED_SHOWN = 10


@dataclass(frozen=True)
class _BadLeaf:
    position: int
    fields: dict[str, Any]
    stored_leaf: bytes


def verify_access_log(con: duckdb.DuckDBPyConnection, result: VerifyResult) -> None:
    """Check the whole access log in ``con``'s snapshot; add its head to ``result.chains``
    (when it holds an entry) and every failure to ``result.failures``."""
    if not has_access_log(con):
        return
    cursor = con.execute(
        f"SELECT {ACCESS_LEAF_SELECT}, epoch_us(accessed_at) % 1000 <> 0 AS sub_ms, "
        "leaf_hash, chain_hash FROM access_log ORDER BY seq"
    )
    failures: list[Failure] = []
    seqs: list[int] = []
    bad_links: list[int] = []
    explained: set[int] = set()  # positions whose link failure a finding already explains
    bad_leaves: list[_BadLeaf] = []
    previous_seq, previous_link = 0, GENESIS
    while batch := cursor.fetchmany(_FETCH_ROWS):
        for row in batch:
            fields = dict(zip(ACCESS_FIELDS, row[: len(ACCESS_FIELDS)], strict=True))
            sub_ms, stored_leaf, stored_link = row[len(ACCESS_FIELDS) :]
            stored_leaf, stored_link = bytes(stored_leaf), bytes(stored_link)
            position, seq = len(seqs), int(fields["seq"])
            seqs.append(seq)
            if seq == previous_seq:
                failures.append(
                    Failure(ACCESS_CHAIN, seq, "row inserted", f"a second entry numbered seq {seq}")
                )
                explained.update((position, position + 1))
            elif seq > previous_seq + 1:
                gap = (
                    f"seq {previous_seq + 1}"
                    if seq == previous_seq + 2
                    else f"seqs {previous_seq + 1} to {seq - 1}"
                )
                failures.append(
                    Failure(
                        ACCESS_CHAIN,
                        previous_seq + 1,
                        "row deleted",
                        f"access log {gap} missing before seq {seq}",
                    )
                )
                explained.add(position)
            if sub_ms:
                failures.append(
                    Failure(
                        ACCESS_CHAIN,
                        seq,
                        "row altered",
                        "the access time has a sub-millisecond part; entries are written in "
                        "whole milliseconds",
                    )
                )
            if access_leaf(fields) != stored_leaf:
                bad_leaves.append(_BadLeaf(position, fields, stored_leaf))
            if link_hash(previous_link, stored_leaf) != stored_link:
                bad_links.append(position)
            previous_seq, previous_link = seq, stored_link
    moved = _moved_entries(bad_leaves, seqs)
    if moved:
        shown = ", ".join(
            f"seq {now} was written as seq {then}" for now, then in moved[:_MOVED_SHOWN]
        )
        more = f" and {len(moved) - _MOVED_SHOWN} more" if len(moved) > _MOVED_SHOWN else ""
        failures.append(
            Failure(
                ACCESS_CHAIN,
                min(now for now, _ in moved),
                "rows reordered",
                f"access log entries are not where they were written: {shown}{more}",
            )
        )
        for position in (p for p, s in enumerate(seqs) if s in {now for now, _ in moved}):
            explained.update((position, position + 1))
    moved_positions = {p for p, s in enumerate(seqs) if s in {now for now, _ in moved}}
    failed_links = set(bad_links)
    leaf_bad_positions = {bad.position for bad in bad_leaves}
    for position in bad_links:
        if position + 1 in failed_links and position not in leaf_bad_positions:
            explained.add(position + 1)  # only this entry's stored chain hash changed
    for position in bad_links:
        if position not in explained:
            before = seqs[position - 1] if position else 0
            failures.append(
                Failure(
                    ACCESS_CHAIN,
                    seqs[position],
                    "row altered",
                    f"the access log entry's chain hash does not follow from seq {before} and "
                    "its leaf: this entry or the one before it was replaced with recomputed "
                    "hashes",
                )
            )
    for bad in bad_leaves:
        if bad.position not in moved_positions:
            failures.append(
                Failure(
                    ACCESS_CHAIN,
                    seqs[bad.position],
                    "row altered",
                    "the access log entry's content does not match its stored leaf hash",
                )
            )
    failures.sort(key=lambda f: (f.seq or 0, f.kind))
    result.failures.extend(failures)
    result.access_entries = len(seqs)
    if seqs:
        result.chains[ACCESS_CHAIN] = (seqs[-1], previous_link.hex())


def _moved_entries(bad_leaves: list[_BadLeaf], seqs: list[int]) -> list[tuple[int, int]]:
    """(seq now, seq written as) of each entry whose stored leaf is its content under the
    seq of another entry with a bad leaf: entries moved, not altered. Only entries with a
    bad leaf are tried, each against the others (few: a clean log has none)."""
    candidates = [int(seqs[bad.position]) for bad in bad_leaves]
    moved = []
    for bad in bad_leaves[:1000]:
        now = int(bad.fields["seq"])
        for then in candidates:
            if then != now and access_leaf({**bad.fields, "seq": then}) == bad.stored_leaf:
                moved.append((now, then))
                break
    return sorted(moved)
