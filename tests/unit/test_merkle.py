"""The Merkle tree of each chain (RFC 9162): roots, proofs and their verification, held to a
direct transcription of the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    MemorySource,
    MissingNodes,
    consistency_proof,
    empty_root,
    inclusion_proof,
    root,
    root_from_inclusion_proof,
    verify_consistency,
)
from ledger.tree import Frontier, extend


def _leaf(i: int) -> bytes:
    return hashlib.sha256(b"\x00" + str(i).encode()).digest()


def _mth(d: list[bytes]) -> bytes:  # RFC 9162 2.1.1, literally
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(d[:k]) + _mth(d[k:])).digest()


def _path(m: int, d: list[bytes]) -> list[bytes]:  # RFC 9162 2.1.3.1
    if len(d) <= 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:  # RFC 9162 2.1.4.1
    n = len(d)
    if m == n:
        return [] if b else [_mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


LEAVES = [_leaf(i) for i in range(70_000)]
SOURCE = MemorySource(LEAVES)
SIZES = st.integers(min_value=1, max_value=len(LEAVES))


@settings(max_examples=60, deadline=None)
@given(size=SIZES, data=st.data())
def test_roots_and_inclusion_proofs_are_rfc_9162(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    assert root(size, SOURCE) == _mth(LEAVES[:size])
    path = inclusion_proof(index, size, SOURCE)
    if size <= 4096:
        assert path == _path(index, LEAVES[:size])
    assert root_from_inclusion_proof(LEAVES[index], index, size, path) == root(size, SOURCE)


@settings(max_examples=60, deadline=None)
@given(new=SIZES, data=st.data())
def test_consistency_proofs_are_rfc_9162_and_verify(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(min_value=1, max_value=new))
    proof = consistency_proof(old, new, SOURCE)
    if new <= 4096:
        assert proof == _subproof(old, LEAVES[:new], True)
    old_root, new_root = root(old, SOURCE), root(new, SOURCE)
    assert verify_consistency(old, new, proof, old_root, new_root)
    if old < new:
        assert not verify_consistency(old, new, proof, new_root, new_root) or old_root == new_root
        bad = [*proof]
        bad[-1] = hashlib.sha256(bad[-1]).digest()
        assert not verify_consistency(old, new, bad, old_root, new_root)


def test_a_tampered_path_or_wrong_index_or_size_leads_elsewhere() -> None:
    size, index = 1000, 517
    path = inclusion_proof(index, size, SOURCE)
    good = _mth(LEAVES[:size])
    assert root_from_inclusion_proof(LEAVES[index], index, size, path) == good
    assert root_from_inclusion_proof(LEAVES[index], index + 1, size, path) != good
    assert root_from_inclusion_proof(LEAVES[index], index, size, path[:-1]) is None
    assert root_from_inclusion_proof(LEAVES[index], index, size, [*path, path[0]]) is None
    assert root_from_inclusion_proof(LEAVES[index], size, size, path) is None
    flipped = [path[0][:-1] + bytes([path[0][-1] ^ 1]), *path[1:]]
    assert root_from_inclusion_proof(LEAVES[index], index, size, flipped) != good


def test_the_empty_tree_and_a_single_leaf() -> None:
    assert root(0, SOURCE) == empty_root() == hashlib.sha256(b"").digest()
    assert root(1, SOURCE) == LEAVES[0]
    assert inclusion_proof(0, 1, SOURCE) == []
    assert root_from_inclusion_proof(LEAVES[0], 0, 1, []) == LEAVES[0]


def test_the_ingest_frontier_stores_exactly_the_tile_roots_of_memory_source() -> None:
    frontier = Frontier()
    rows = []
    for start in range(0, 70_000, 6_999):  # batches that cut tiles anywhere
        rows += extend(frontier, "c", LEAVES[start : start + 6_999])
    stored = {(level, idx): h for _, level, idx, h in rows}
    assert len(stored) == 70_000 // 256 + 70_000 // 65_536
    assert stored == SOURCE.stored([(8, 0, 10**9), (16, 0, 10**9)])
    assert frontier.size == 70_000
    assert len(frontier.pending[0]) == 70_000 % 256


def test_a_source_without_the_nodes_says_so() -> None:
    short = MemorySource(LEAVES[:100])
    with pytest.raises(MissingNodes, match="not stored"):
        root(200, short)
