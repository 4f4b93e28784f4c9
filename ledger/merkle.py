"""RFC 9162 Merkle trees over a chain's leaves: roots, inclusion and consistency proofs, and
their verification. No I/O here; where node hashes come from is a :class:`NodeSource`.

* The leaves are the chain's stored ``leaf_hash`` values in sequence order (leaf index
  ``seq - 1``), which already are ``SHA-256(0x00 || leaf bytes)`` (:mod:`ledger.chain`).
* An interior node is ``SHA-256(0x01 || left || right)``; ``MTH`` of a range that is not a
  power of two splits it at the largest power of two below its size (RFC 9162 §2.1.1).

Node ``(level, index)`` is the root of the complete subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``. Only levels that are multiples of
:data:`TILE_HEIGHT` are stored (level 0 is the ``leaf_hash`` column; 8, 16, 24, … the
``merkle_nodes`` table, :mod:`ledger.tree`), as C2SP ``tlog-tiles`` stores tiles of height 8:
any other node is hashed up from at most 2**7 stored ones, so every proof reads a handful of
short ranges (O(log n) rows) and hashes at most a few thousand times.

Proof verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 to the letter; tests hold both
proof makers to them, and ``tests/go_verifier`` to Go's ``golang.org/x/mod/sumdb/tlog``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

NODE_PREFIX = b"\x01"
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

Node = tuple[int, int]  # (level, index)


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """MTH of the empty tree: SHA-256 of nothing (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"").digest()


def subtree_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a complete subtree whose 2**k bottom nodes are ``hashes``, in order."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"a complete subtree has a power-of-two number of nodes, not {len(level)}")
    sha256 = hashlib.sha256
    while len(level) > 1:
        level = [
            sha256(NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
    return level[0]


def decompose(start: int, end: int) -> list[Node]:
    """The complete subtrees ``[start, end)`` splits into, left to right, largest first
    (``start`` must be aligned as RFC 9162 ranges are: a multiple of the power of two at or
    above ``end - start``, or any range ending at a tree's size)."""
    nodes: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the roots of its :func:`decompose` subtrees: folded from the right,
    ``H(s1, H(s2, … H(sk-1, sk)))``."""
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


# -- what proofs need, as ranges of leaves -------------------------------------------------
def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTH make up the inclusion path of leaf ``index`` in a tree of
    ``size`` leaves, from the leaf up (RFC 9162 §2.1.3.1, PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = 1 << ((end - start - 1).bit_length() - 1)  # largest power of two < size
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTH make up the consistency proof from size ``old`` to ``new``
    (RFC 9162 §2.1.4.1, SUBPROOF(m, D[0:n], true))."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    out: list[tuple[int, int]] = []

    def subproof(m: int, start: int, end: int, whole: bool) -> None:
        n = end - start
        if m == n:
            if not whole:
                out.append((start, end))
            return
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            subproof(m, start, start + k, whole)
            out.append((start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            out.append((start, start + k))

    subproof(old, 0, new, True)
    return out


# -- where node hashes come from -----------------------------------------------------------
class NodeSource(Protocol):
    """Stored node hashes: level 0 (the leaves) and multiples of :data:`TILE_HEIGHT`."""

    def stored(self, wanted: Sequence[tuple[int, int, int]]) -> Mapping[tuple[int, int], bytes]:
        """For each ``(level, first, last)`` (a stored level, an index range, both ends
        included), the hash of every node in it, keyed by ``(level, index)``. A node the
        source does not hold is simply missing from the answer."""
        ...


class MissingNodes(LookupError):
    """The source lacks nodes a root or proof needs (the tree is not built that far)."""


def resolve(nodes: Iterable[Node], source: NodeSource) -> dict[Node, bytes]:
    """The hash of every node in ``nodes``, each hashed up from its stored level below."""
    wanted = sorted(set(nodes))
    ranges: dict[tuple[int, int, int], None] = {}
    for level, index in wanted:
        base = level - level % TILE_HEIGHT
        span = level - base
        ranges[(base, index << span, ((index + 1) << span) - 1)] = None
    got = source.stored(_merged(ranges))
    out: dict[Node, bytes] = {}
    for level, index in wanted:
        base = level - level % TILE_HEIGHT
        span = level - base
        first = index << span
        try:
            below = [got[(base, i)] for i in range(first, first + (1 << span))]
        except KeyError as exc:
            raise MissingNodes(
                f"node {exc.args[0]} is not stored: the tree does not reach level {level} "
                f"index {index}"
            ) from None
        out[(level, index)] = subtree_root(below)
    return out


def _merged(ranges: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Overlapping or adjacent ranges of one level as one."""
    merged: list[tuple[int, int, int]] = []
    for level, first, last in sorted(ranges):
        if merged and merged[-1][0] == level and first <= merged[-1][2] + 1:
            merged[-1] = (level, merged[-1][1], max(merged[-1][2], last))
        else:
            merged.append((level, first, last))
    return merged


def range_hashes(ranges: Sequence[tuple[int, int]], source: NodeSource) -> list[bytes]:
    """MTH of each leaf range, reading every stored node they need in one call."""
    parts = [decompose(start, end) for start, end in ranges]
    known = resolve((node for nodes in parts for node in nodes), source)
    return [fold([known[node] for node in nodes]) for nodes in parts]


def root(size: int, source: NodeSource) -> bytes:
    """MTH of the first ``size`` leaves."""
    if size == 0:
        return empty_root()
    return range_hashes([(0, size)], source)[0]


def inclusion_proof(index: int, size: int, source: NodeSource) -> list[bytes]:
    return range_hashes(inclusion_ranges(index, size), source)


def consistency_proof(old: int, new: int, source: NodeSource) -> list[bytes]:
    return range_hashes(consistency_ranges(old, new), source)


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -----------------------------------------
def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, path: Sequence[bytes]
) -> bytes | None:
    """The root the path leads to from ``leaf`` at ``index`` of a tree of ``size``; None
    when the path cannot belong to that index and size (its length is wrong)."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_consistency(
    old: int, new: int, path: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """Whether ``path`` proves that the tree of size ``new`` with ``new_root`` extends the
    tree of size ``old`` with ``old_root``."""
    if not 0 < old <= new:
        return False
    if old == new:
        return not path and old_root == new_root
    proof = list(path)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        proof.insert(0, old_root)
    if not proof:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class MemorySource:
    """Every leaf in memory; the tests' and ``verify-proof``'s reference."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._levels: dict[int, list[bytes]] = {0: list(leaves)}
        level, below = 0, list(leaves)
        while len(below) >= TILE_WIDTH:
            level += TILE_HEIGHT
            below = [
                subtree_root(below[i : i + TILE_WIDTH])
                for i in range(0, len(below) - TILE_WIDTH + 1, TILE_WIDTH)
            ]
            self._levels[level] = below

    def stored(self, wanted: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], bytes]:
        out: dict[tuple[int, int], bytes] = {}
        for level, first, last in wanted:
            hashes = self._levels.get(level, [])
            for index in range(first, min(last, len(hashes) - 1) + 1):
                out[(level, index)] = hashes[index]
        return out
