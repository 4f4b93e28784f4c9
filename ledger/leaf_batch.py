"""Leaf hashes of a whole batch at once, for the ingest path.

DuckDB builds every row's leaf bytes (``0x00 || encoding``) in one query over the Arrow
batch, with the very leaf SQL ``verify`` checks the stored rows with
(:func:`ledger.leaf_sql.encoding_sql`, here over the int64 milliseconds of
:func:`ledger.store.leaf_view` instead of stored timestamps), and :mod:`hashlib` hashes
them. :func:`ledger.chain.leaf_hash` stays the specification: ``tests/unit/test_leaf_batch.py``
holds this to it on random rows.

Why this split (measured on the simulator's rows, 5,000 a batch, CPU µs per row;
docs/performance.md, "After batch leaf hashing"): ``ledger.chain.leaf_hashes`` in Python
19.9; DuckDB's bytes then ``hashlib`` 4.8 to 5.0; DuckDB's bytes and DuckDB's ``sha256``
6.6 (``hashlib`` uses the CPU's SHA extensions, DuckDB's ``sha256`` does not).
"""

from __future__ import annotations

import hashlib
import os
import threading

import duckdb
import pyarrow as pa

from ledger.chain import LEAF_FIELDS, LEAF_PREFIX, LEAF_TYPES
from ledger.leaf_sql import encoding_sql

# The leaf view's columns are the leaf fields themselves (times already epoch milliseconds,
# so no TIMESTAMP conversion can fail here that the Python encoding would not).
_LEAF_BYTES_QUERY = (
    f"SELECT '\\x{LEAF_PREFIX.hex()}'::BLOB || encode({encoding_sql({})}) FROM _leaf_batch"
)

# One in-memory DuckDB per thread (a connection serves one thread at a time), and per
# process (a forked child makes its own), apart from the ledger's database, which the commit
# thread is using meanwhile (the ledger's reader cursor measured the same: 4.8 to 5.0 µs a
# row). One DuckDB thread: a batch is a few vectors, and a second thread cost more CPU than
# it saved (5.4 against 4.8 µs a row on a quiet machine, 8 against 5 on a busy one).
_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    owned: tuple[int, duckdb.DuckDBPyConnection] | None = getattr(_local, "owned", None)
    if owned is None or owned[0] != os.getpid():
        connection = duckdb.connect(
            config={
                "threads": 1,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "python_enable_replacements": False,
            }
        )
        owned = (os.getpid(), connection)
        _local.owned = owned
    return owned[1]


def batch_leaf_hashes(table: pa.Table) -> list[bytes]:
    """The leaf hash of every row of ``table``, in order: what
    ``[ledger.chain.leaf_hash(row) for row in table.to_pylist()]`` gives, computed batch-wise.

    ``table`` holds the :data:`~ledger.chain.LEAF_FIELDS` with the Arrow types of
    :data:`~ledger.chain.LEAF_TYPES` (:func:`ledger.store.leaf_view` of disclosures columns
    gives them); other columns are ignored."""
    leaf = _leaf_columns(table)
    if leaf.num_rows == 0:
        return []
    connection = _connection()
    connection.register("_leaf_batch", leaf)
    try:
        leaf_bytes = connection.execute(_LEAF_BYTES_QUERY).fetchall()
    finally:
        connection.unregister("_leaf_batch")
    sha256 = hashlib.sha256
    return [sha256(row[0]).digest() for row in leaf_bytes]


def _leaf_columns(table: pa.Table) -> pa.Table:
    """The leaf fields of ``table``; a missing field or another type is refused, since
    DuckDB would turn, say, a timestamp into other text than its epoch milliseconds."""
    schema = table.schema
    for name, kind in LEAF_TYPES.items():
        index = schema.get_field_index(name)
        if index < 0:
            raise ValueError(
                f"leaf field {name!r} is missing from the table to hash; pass the leaf view "
                "of disclosures columns (ledger.store.leaf_view)"
            )
        if schema.field(index).type != kind:
            raise TypeError(
                f"leaf field {name!r} is {schema.field(index).type}, not {kind}; pass the "
                "leaf view of disclosures columns (ledger.store.leaf_view), which casts it"
            )
    return table.select(list(LEAF_FIELDS))
