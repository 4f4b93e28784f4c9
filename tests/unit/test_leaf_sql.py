"""The leaf encoding in DuckDB SQL (ledger/leaf_sql.py), which verify, the benchmark and
docs/verify-by-hand.md use, is ledger.chain's byte for byte: on random rows in a real
``disclosures`` table with the ledger's column types, non-ASCII text, empty strings and
lists, null list items and legal references, and extreme integers and times included."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.chain import LEAF_FIELDS, encode_row, encode_value, leaf_hash, leaf_table
from ledger.leaf_sql import ENCODING_SQL, LEAF_HASH_SQL, LEAF_SELECT
from ledger.store import Ledger

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
# DuckDB's TIMESTAMP holds int64 microseconds; its largest values are infinities, kept away
MILLISECONDS = st.integers(min_value=-(2**63) // 1000 + 1, max_value=(2**63 - 1) // 1000 - 1)
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
ODD_TEXT = st.one_of(TEXT, st.sampled_from(["", "é", "😀", "漢字", "N,", "3:abc,", "\x00"]))
ITEMS = st.lists(st.one_of(ODD_TEXT, st.none()), max_size=5)


@st.composite
def leaf_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A row of the leaf fields, as ledger.chain.encode_row takes it."""
    row: dict[str, Any] = {}
    for name in LEAF_FIELDS:
        if name in ("seq", "kafka_offset"):
            row[name] = draw(INT64)
        elif name in ("kafka_partition", "schema_version"):
            row[name] = draw(INT32)
        elif name in ("occurred_at_ms", "ingested_at_ms"):
            row[name] = draw(MILLISECONDS)
        elif name == "event_id":
            row[name] = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
        elif name in ("sensitive", "declared"):
            row[name] = draw(st.booleans())
        elif name in ("data_categories", "ccpa_letters", "flags"):
            row[name] = draw(ITEMS)
        elif name == "legal_reference":
            row[name] = draw(st.one_of(st.none(), ODD_TEXT))
        else:
            row[name] = draw(ODD_TEXT)
    return row


_INSERT = """
INSERT INTO disclosures BY NAME
SELECT * EXCLUDE (event_id, occurred_at_ms, ingested_at_ms),
    event_id::UUID AS event_id,
    make_timestamp(occurred_at_ms * 1000) AS occurred_at,
    make_timestamp(ingested_at_ms * 1000) AS ingested_at,
    ''::BLOB AS leaf_hash, ''::BLOB AS chain_hash
FROM _rows
"""


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a real ledger file: the disclosures table as the writer creates it."""
    path = tmp_path_factory.mktemp("leaf-sql") / "ledger.duckdb"
    Ledger(path).close()
    connection = duckdb.connect(str(path))
    yield connection
    connection.close()


def _in_sql(
    con: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, Any]]
) -> list[tuple[bytes, bytes, dict[str, Any]]]:
    """Store ``rows`` in the disclosures table; for each, in order, the encoding and leaf
    the SQL computes and the row as the table gives it back (LEAF_SELECT)."""
    con.execute("DELETE FROM disclosures")
    con.register("_rows", leaf_table(rows))
    try:
        con.execute(_INSERT)
    finally:
        con.unregister("_rows")
    found = con.execute(
        f"SELECT encode({ENCODING_SQL}), {LEAF_HASH_SQL}, {LEAF_SELECT} "
        "FROM disclosures ORDER BY rowid"
    )
    names = [d[0] for d in found.description or []][2:]
    return [
        (bytes(r[0]), bytes(r[1]), dict(zip(names, r[2:], strict=True))) for r in found.fetchall()
    ]


@settings(max_examples=150, deadline=None, database=None)
@given(rows=st.lists(leaf_rows(), min_size=1, max_size=4))
def test_the_sql_leaf_is_ledger_chain_s_leaf_byte_for_byte(
    con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]
) -> None:
    for row, (encoding, leaf, stored) in zip(rows, _in_sql(con, rows), strict=True):
        assert stored == row  # the table holds the row as drawn
        assert encoding == encode_row(row)
        assert leaf == leaf_hash(row)


def _template() -> dict[str, Any]:
    return {
        name: 1
        if name in ("seq", "kafka_partition", "kafka_offset", "schema_version")
        else 1_767_225_600_123
        if name.endswith("_ms")
        else "5d0c7a31-6c6e-4b3a-9f53-2b0f2a7c1e11"
        if name == "event_id"
        else True
        if name in ("sensitive", "declared")
        else ["a"]
        if name in ("data_categories", "ccpa_letters", "flags")
        else "x"
        for name in LEAF_FIELDS
    }


def test_integers_at_every_digit_count_and_text_of_every_length_encode_as_in_python(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Every power of ten and its neighbours in both signs, the int64 extremes, and texts
    and list items of every byte length up to 1,100 (one- and two-byte characters), in
    one table: each row's SQL leaf is ledger.chain's."""
    numbers = [0, 2**63 - 1, -(2**63)]
    for k in range(1, 19):
        numbers += [10**k - 1, 10**k, 10**k + 1, -(10**k - 1), -(10**k), -(10**k + 1)]
    rows = []
    for i, number in enumerate(numbers):
        rows.append({**_template(), "seq": number, "kafka_offset": numbers[-1 - i]})
    for length in range(1_101):
        rows.append(
            {
                **_template(),
                "purpose": "x" * length,
                "context": "é" * (length % 50),
                "legal_reference": None if length % 3 else "ab:," * (length % 7),
                "flags": ["y" * length, "", None][: length % 4],
            }
        )
    for row, (encoding, leaf, _) in zip(rows, _in_sql(con, rows), strict=True):
        assert encoding == encode_row(row), row
        assert leaf == leaf_hash(row)


def test_a_list_is_the_netstring_of_its_items_netstrings() -> None:
    assert encode_value(["a", None, ""]) == b"9:1:a,N,0:,,"
