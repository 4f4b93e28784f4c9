from __future__ import annotations

import hashlib

from ledger.chain import GENESIS, LEAF_FIELDS, chain_rows, encode_value, leaf_hash, link_hash


def _row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {name: "x" for name in LEAF_FIELDS}
    row.update(
        seq=1,
        kafka_partition=0,
        kafka_offset=0,
        occurred_at_ms=0,
        schema_version=1,
        ingested_at_ms=0,
        sensitive=False,
        declared=True,
        data_categories=["a"],
        ccpa_letters=["A"],
        flags=[],
    )
    row.update(changes)
    return row


def test_values_encode_as_documented_netstrings() -> None:
    assert encode_value("é") == b"2:\xc3\xa9,"
    assert encode_value(42) == b"2:42,"
    assert encode_value(True) == b"4:true,"
    assert encode_value(None) == b"N,"
    assert encode_value(["ab", "c"]) == b"9:2:ab,1:c,,"
    assert encode_value([]) == b"0:,"


def test_field_boundaries_cannot_be_shifted() -> None:
    assert encode_value(["ab", "c"]) != encode_value(["a", "bc"])
    assert leaf_hash(_row(recipient_id="ab", recipient_category="c")) != leaf_hash(
        _row(recipient_id="a", recipient_category="bc")
    )


def test_leaf_and_link_are_domain_separated_sha256() -> None:
    row = _row()
    from ledger.chain import encode_row

    assert leaf_hash(row) == hashlib.sha256(b"\x00" + encode_row(row)).digest()
    leaf = leaf_hash(row)
    assert link_hash(GENESIS, leaf) == hashlib.sha256(b"\x01" + GENESIS + leaf).digest()


def test_every_field_is_covered() -> None:
    base = leaf_hash(_row())
    for name in LEAF_FIELDS:
        changed = _row(**{name: 999 if isinstance(_row()[name], int) else "changed"})
        assert leaf_hash(changed) != base, name


def test_chain_rows_links_each_row_to_the_previous() -> None:
    rows = [_row(seq=1), _row(seq=2), _row(seq=3)]
    leaves, links = chain_rows(rows, GENESIS)
    assert links[0] == link_hash(GENESIS, leaves[0])
    assert links[2] == link_hash(links[1], leaves[2])
    # continuing a chain from its head gives the same links as hashing it whole
    _, tail_links = chain_rows(rows[2:], links[1])
    assert tail_links == links[2:]
