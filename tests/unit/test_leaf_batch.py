"""The ingest path's batch leaf hashes (ledger/leaf_batch.py: DuckDB builds the bytes,
hashlib hashes them) are ledger.chain.leaf_hash's, the specification, on random rows:
non-ASCII text, empty strings and lists, nulls in every field and list item, and int64
extremes in every integer field."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.chain import LEAF_FIELDS, LEAF_TYPES, leaf_hash, leaf_table
from ledger.leaf_batch import batch_leaf_hashes

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
ODD_TEXT = st.one_of(TEXT, st.sampled_from(["", "é", "😀", "漢字", "N,", "3:abc,", "\x00"]))
UUID_TEXT = st.integers(0, 2**128 - 1).map(lambda n: str(uuid.UUID(int=n)))


def _value(name: str) -> st.SearchStrategy[Any]:
    kind = LEAF_TYPES[name]
    if kind == pa.int64():
        return INT64
    if kind == pa.bool_():
        return st.booleans()
    if pa.types.is_list(kind):
        return st.lists(st.one_of(ODD_TEXT, st.none()), max_size=5)
    return UUID_TEXT if name == "event_id" else ODD_TEXT


@st.composite
def leaf_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A row of the leaf fields; any of them may be null (the encoding's ``N,``)."""
    return {name: draw(st.one_of(st.none(), _value(name))) for name in LEAF_FIELDS}


@settings(max_examples=200, deadline=None, database=None)
@given(rows=st.lists(leaf_rows(), max_size=6))
def test_batch_leaf_hashes_are_ledger_chain_s_leaf_hashes(rows: list[dict[str, Any]]) -> None:
    assert batch_leaf_hashes(leaf_table(rows)) == [leaf_hash(row) for row in rows]


def test_a_real_shaped_batch_spanning_several_vectors_hashes_as_the_specification() -> None:
    """More rows than one DuckDB vector (2,048), so order across vectors is held too."""
    rows = [
        {
            name: i * 7 - 3
            if LEAF_TYPES[name] == pa.int64()
            else i % 3 == 0
            if LEAF_TYPES[name] == pa.bool_()
            else ["é" * (i % 4), "x"][: i % 3]
            if pa.types.is_list(LEAF_TYPES[name])
            else f"{name}-{i}-漢"
            for name in LEAF_FIELDS
        }
        for i in range(5_000)
    ]
    assert batch_leaf_hashes(leaf_table(rows)) == [leaf_hash(row) for row in rows]


def test_extra_columns_and_column_order_do_not_change_the_hashes() -> None:
    rows = [{name: None for name in LEAF_FIELDS} | {"purpose": "ünïcode"}]
    table = leaf_table(rows)
    shuffled = table.select(list(reversed(LEAF_FIELDS))).append_column("extra", pa.array([1]))
    assert batch_leaf_hashes(shuffled) == [leaf_hash(rows[0])]


def test_each_thread_gets_the_same_hashes() -> None:
    rows = [{name: None for name in LEAF_FIELDS} | {"seq": i} for i in range(50)]
    expected = [leaf_hash(row) for row in rows]
    found: list[list[bytes]] = []
    threads = [
        threading.Thread(target=lambda: found.append(batch_leaf_hashes(leaf_table(rows))))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [expected] * 3


def test_a_column_of_another_type_is_refused_naming_it_and_the_fix() -> None:
    table = leaf_table([{name: None for name in LEAF_FIELDS}])
    timestamps = table.set_column(
        LEAF_FIELDS.index("occurred_at_ms"),
        "occurred_at_ms",
        pa.array([0], pa.timestamp("ms")),
    )
    with pytest.raises(TypeError, match=r"'occurred_at_ms' is timestamp\[ms\].*leaf_view"):
        batch_leaf_hashes(timestamps)
    with pytest.raises(ValueError, match=r"'flags' is missing.*leaf_view"):
        batch_leaf_hashes(table.drop_columns(["flags"]))
