"""The hash chain: canonical row encoding, leaf hashes and links. No I/O here.

Encoding (what an auditor re-implements; see docs/verify-by-hand.md):

* Every field of a row is turned into bytes in the fixed order of :data:`LEAF_FIELDS`.
* A text is its UTF-8 bytes; an integer its decimal digits; a boolean ``true`` or
  ``false``; a list is the concatenation of its items' netstrings; a null is the two
  bytes ``N,`` (a netstring never starts with ``N``).
* Every non-null value is written as a netstring (D. J. Bernstein): the byte length in
  decimal, ``:``, the bytes, ``,``.
* ``leaf = SHA-256(0x00 || encoding)`` and ``chain_hash(n) = SHA-256(0x01 ||
  chain_hash(n-1) || leaf(n))``, with ``chain_hash(0)`` = 32 zero bytes: the 0x00 / 0x01
  prefixes separate leaves from links as in RFC 6962, so one can never pass for the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

GENESIS = bytes(32)
LEAF_PREFIX = b"\x00"
LINK_PREFIX = b"\x01"

# Everything a disclosures row asserts, in hashing order.
LEAF_FIELDS: tuple[str, ...] = (
    "chain_id",
    "seq",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "event_id",
    "occurred_at_ms",
    "subject_pseudonym",
    "subject_type",
    "recipient_id",
    "recipient_category",
    "data_categories",
    "purpose",
    "legal_basis",
    "legal_reference",
    "disclosure_kind",
    "producer_service",
    "producer_version",
    "context",
    "schema_version",
    "reference_version",
    "ccpa_letters",
    "business_purpose",
    "sensitive",
    "declared",
    "flags",
    "ingested_at_ms",
)


def _netstring(data: bytes) -> bytes:
    return b"%d:%b," % (len(data), data)


def encode_value(value: Any) -> bytes:
    """Canonical bytes of one field value."""
    if value is None:
        return b"N,"
    if isinstance(value, bool):
        return _netstring(b"true" if value else b"false")
    if isinstance(value, int):
        return _netstring(b"%d" % value)
    if isinstance(value, str):
        return _netstring(value.encode("utf-8"))
    if isinstance(value, bytes):
        return _netstring(value)
    if isinstance(value, (list, tuple)):
        return _netstring(b"".join(encode_value(item) for item in value))
    raise TypeError(f"cannot encode {type(value).__name__} in a ledger leaf")


def encode_row(row: Mapping[str, Any]) -> bytes:
    return b"".join(encode_value(row[name]) for name in LEAF_FIELDS)


def leaf_hash(row: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + encode_row(row)).digest()


def link_hash(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(LINK_PREFIX + previous + leaf).digest()


# The Arrow type of each leaf field, as the ingest path hands them to leaf_hashes().
_LIST = pa.list_(pa.string())
LEAF_TYPES: dict[str, pa.DataType] = {
    name: pa.int64()
    if name
    in (
        "seq",
        "kafka_partition",
        "kafka_offset",
        "occurred_at_ms",
        "schema_version",
        "ingested_at_ms",
    )
    else pa.bool_()
    if name in ("sensitive", "declared")
    else _LIST
    if name in ("data_categories", "ccpa_letters", "flags")
    else pa.string()
    for name in LEAF_FIELDS
}


def leaf_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The leaf fields of ``rows`` as one Arrow table of :data:`LEAF_TYPES`."""
    return pa.table(
        {name: pa.array([row[name] for row in rows], kind) for name, kind in LEAF_TYPES.items()}
    )


def leaf_hashes(table: pa.Table) -> list[bytes]:
    """Leaf hashes of the rows of a table holding the :data:`LEAF_FIELDS`."""
    return [leaf_hash(row) for row in table.select(list(LEAF_FIELDS)).to_pylist()]


def link_hashes(previous: bytes, leaves: Sequence[bytes]) -> list[bytes]:
    """Chain hashes of consecutive leaves after ``previous``."""
    links = []
    for leaf in leaves:
        previous = link_hash(previous, leaf)
        links.append(previous)
    return links


def chain_rows(
    rows: Sequence[Mapping[str, Any]], previous: bytes
) -> tuple[list[bytes], list[bytes]]:
    """Leaf and chain hashes for consecutive rows of one chain after ``previous``."""
    leaves = leaf_hashes(leaf_table(rows))
    return leaves, link_hashes(previous, leaves)
