"""The leaf encoding of :mod:`ledger.chain` as DuckDB SQL, so DuckDB's vectorised,
multi-threaded engine recomputes every leaf of a ledger (``verify``, the benchmark and
``docs/verify-by-hand.md`` use these very expressions).

The bytes are those of :func:`ledger.chain.encode_row`, field by field in
:data:`~ledger.chain.LEAF_FIELDS` order: ``strlen`` (bytes, not ``length``, which counts
characters) gives a netstring's length, a null is ``N,``, times are epoch milliseconds and
the event id is its UUID text. ``tests/unit/test_leaf_sql.py`` holds the SQL to
:func:`ledger.chain.leaf_hash` byte for byte on random rows.
"""

from __future__ import annotations

from collections.abc import Mapping

from ledger.chain import LEAF_FIELDS

# How each leaf field is read from its ``disclosures`` column, as the encoding needs it.
READ_AS: dict[str, str] = {
    "event_id": "event_id::VARCHAR",
    "occurred_at_ms": "epoch_ms(occurred_at)",
    "ingested_at_ms": "epoch_ms(ingested_at)",
    "kafka_partition": "kafka_partition::BIGINT",
    "schema_version": "schema_version::BIGINT",
}

INTEGER_FIELDS = frozenset(
    {"seq", "kafka_partition", "kafka_offset", "occurred_at_ms", "schema_version", "ingested_at_ms"}
)
BOOLEAN_FIELDS = frozenset({"sensitive", "declared"})
LIST_FIELDS = frozenset({"data_categories", "ccpa_letters", "flags"})

LEAF_SELECT = ", ".join(f"{READ_AS.get(name, name)} AS {name}" for name in LEAF_FIELDS)
"""The leaf fields of a ``disclosures`` row as :func:`ledger.chain.encode_row` takes them
(``SELECT {LEAF_SELECT} FROM disclosures``, then ``.to_pylist()``)."""


def _netstring(text: str) -> str:
    """The netstring of a VARCHAR expression, or ``N,`` for a null, as the arguments of one
    ``concat`` (which skips a null argument: a null ``text`` leaves ``N`` and ``,``).

    Every field's pieces go into the one ``concat`` of the whole row: DuckDB then builds the
    row's bytes once, instead of a string for each ``||`` (about a third faster)."""
    return f"coalesce(strlen({text}) || ':', 'N'), {text}, ','"


def field_sql(name: str, value: str | None = None) -> str:
    """The canonical bytes of leaf field ``name``, as ``concat`` arguments; ``value`` reads
    the field (default: from ``disclosures``' columns, :data:`READ_AS`)."""
    if value is None:
        value = READ_AS.get(name, name)
    if name in BOOLEAN_FIELDS:
        return f"CASE WHEN {value} THEN '4:true,' WHEN NOT {value} THEN '5:false,' ELSE 'N,' END"
    if name in LIST_FIELDS:
        # a null list stays null through array_to_string: its netstring is then N,
        items = "concat(coalesce(strlen(item) || ':', 'N'), item, ',')"
        return _netstring(f"array_to_string(list_transform({value}, lambda item: {items}), '')")
    return _netstring(f"({value})::VARCHAR")


def encoding_sql(read_as: Mapping[str, str] = READ_AS) -> str:
    """The row's encoding as one VARCHAR expression, each field read by ``read_as[name]``
    or, for a field it does not name, by the column of that name."""
    fields = ", ".join(field_sql(name, read_as.get(name, name)) for name in LEAF_FIELDS)
    return f"concat({fields})"


ENCODING_SQL = encoding_sql()
"""The row's encoding (:func:`ledger.chain.encode_row`) as one VARCHAR expression over
``disclosures``' columns."""

LEAF_BYTES_SQL = f"'\\x00'::BLOB || encode({ENCODING_SQL})"
"""``0x00 || encoding``: the bytes whose SHA-256 is the leaf, as one BLOB expression."""

LEAF_HEX_SQL = f"sha256({LEAF_BYTES_SQL})"
"""The leaf hash of a ``disclosures`` row in lower-case hex, as DuckDB's ``sha256`` gives it
(compare it with ``lower(hex(leaf_hash))``: a little cheaper than ``unhex`` on every row)."""

LEAF_HASH_SQL = f"unhex({LEAF_HEX_SQL})"
"""The leaf hash of a ``disclosures`` row, a 32-byte BLOB."""
