"""The hash chain: canonical row encoding, leaf hashes and links. No I/O here.

Encoding (what an auditor re-implements; see README "Verifying a ledger"):

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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


def chain_rows(
    rows: Iterable[Mapping[str, Any]], previous: bytes
) -> tuple[list[bytes], list[bytes]]:
    """Leaf and chain hashes for consecutive rows of one chain after ``previous``."""
    leaves: list[bytes] = []
    links: list[bytes] = []
    for row in rows:
        leaf = leaf_hash(row)
        previous = link_hash(previous, leaf)
        leaves.append(leaf)
        links.append(previous)
    return leaves, links


def columns_to_rows(columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Column-oriented values (as from Arrow's ``to_pydict``) as row dicts."""
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
