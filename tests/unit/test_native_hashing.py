"""The native helper hashes verify's leaves and links many messages at a time (sixteen with
AVX-512, or two with the CPU's SHA extensions, where it has them): every digest must still
be plain SHA-256, and the link check must find exactly what the pure-Python check finds,
whichever row of a group is wrong."""

from __future__ import annotations

import hashlib
import importlib.util
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from ledger import chain, verify
from ledger.chain import GENESIS, encode_value, link_hash

pytestmark = pytest.mark.skipif(
    not chain.NATIVE, reason="ledger._leafhash was not built (no C compiler or OpenSSL headers)"
)


ENGINES = ["avx512", "sha-ni", "openssl"]


@pytest.fixture(autouse=True, params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs on every engine this CPU has: AVX-512's sixteen lanes, SHA-NI pairs,
    and OpenSSL one message at a time, which every other CPU gets."""
    if request.param not in chain.native.ENGINES:
        pytest.skip(f"this CPU cannot hash with {request.param}")
    assert chain.native.use_engine(request.param) == request.param
    yield str(request.param)
    assert chain.native.use_engine(chain.native.ENGINE) == chain.native.ENGINE


def test_messages_of_every_length_up_to_1100_bytes_hash_as_hashlib_does() -> None:
    """Lengths cross every padding case (a tail of 0 to 63 bytes, one or two final blocks);
    neighbouring messages differ in length by up to three blocks either way, so lanes end
    and take new messages at different blocks; and groups of every size up to 40 leave
    lanes empty at the end."""
    rnd = random.Random(7)
    messages = []
    for length in range(1_101):
        messages.append(rnd.randbytes(length))
        messages.append(rnd.randbytes(max(0, length + rnd.randint(-200, 200))))
    expected = [hashlib.sha256(m).digest() for m in messages]
    assert chain.native.sha256_many(messages) == expected
    for n in range(41):
        start = rnd.randrange(len(messages) - n)
        assert chain.native.sha256_many(messages[start : start + n]) == expected[start : start + n]
    # The FIPS 180-4 example, as a check that does not depend on hashlib, in every lane.
    abc = bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    empty = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert chain.native.sha256_many([b"abc", b""] * 9) == [abc, empty] * 9


def test_the_fastest_engine_this_cpu_has_is_the_one_in_use() -> None:
    assert chain.native.ENGINES[0] == chain.native.ENGINE
    assert chain.native.ENGINES[-1] == "openssl"
    with pytest.raises(ValueError, match="avx512, sha-ni or openssl"):
        chain.native.use_engine("md5")


def _interleaved_chains(n: int, chains: int) -> dict[str, list[object]]:
    """n rows of ``chains`` chains, interleaved as a reader returns them, correctly linked."""
    rnd = random.Random(11)
    heads, lengths = [GENESIS] * chains, [0] * chains
    rows: dict[str, list[object]] = {k: [] for k in ("code", "seq", "offset", "leaf", "link")}
    for _ in range(n):
        c = rnd.randrange(chains)
        leaf = rnd.randbytes(32)
        heads[c] = link_hash(heads[c], leaf)
        lengths[c] += 1
        row = {"code": c, "seq": lengths[c], "offset": lengths[c], "leaf": leaf, "link": heads[c]}
        for key, value in row.items():
            rows[key].append(value)
    return rows


def _check(rows: dict[str, list[object]], chains: int, native: bool) -> tuple[list[int], ...]:
    states = [verify._ChainState() for _ in range(chains)]
    found = verify._check_links(
        len(rows["code"]),
        pa.array(rows["code"], pa.int32()),
        pa.array(rows["seq"], pa.int64()),
        pa.array(rows["offset"], pa.int64()),
        pa.array(rows["leaf"], pa.binary()),
        pa.array(rows["link"], pa.binary()),
        states,
        native,
    )
    return (*found, [s.seq for s in states], [s.head for s in states])  # type: ignore[return-value]


@pytest.mark.parametrize("n", [1, 2, 17, 1_001])
def test_the_grouped_link_check_finds_what_the_python_check_finds(n: int) -> None:
    rows = _interleaved_chains(n, chains=3)
    assert _check(rows, 3, native=True)[:2] == ([], [])
    # Damage rows at both places of a pair, the last row, neighbours, rows on both sides of
    # a group of 256, stored hashes of the wrong length (a link that cannot be computed, so
    # the group has fewer messages than rows), a seq out of order.
    for i in {0, 1, n // 2, n // 2 + 1, 255, 256, 257, n - 1} & set(range(n)):
        rows["link"][i] = bytes(32)
    if n > 5:
        rows["leaf"][3] = b"\x02" * 33
        rows["link"][4] = b"\x01" * 31
        rows["seq"][5] = 99
    native, python = _check(rows, 3, native=True), _check(rows, 3, native=False)
    assert native[0] == python[0] and native[1] == python[1]
    assert native[2] == python[2]
    assert 0 in native[0] and n - 1 in native[0]


def test_times_read_as_stored_encode_the_milliseconds_epoch_ms_gives() -> None:
    """verify's native scan reads TIMESTAMP columns as stored (microseconds) and the helper
    turns them into the milliseconds the leaf encodes; that must be exactly what DuckDB's
    epoch_ms (the pure-Python path's reading) gives: for whole milliseconds and, since a
    forger may write them, for sub-millisecond, negative and far-off times."""
    micros = [0, 1, 499, 500, 1_499, 1_500, 999_999, -1, -499, -500, -501, -1_500, -999_999]
    micros += [1_748_736_000_000_000, 1_748_736_000_000_750, -62_135_596_800_000_000]
    micros += [253_402_300_799_999_999, -(2**62), 2**62 + 499]
    table = (
        duckdb.connect()
        .sql(
            "SELECT make_timestamp(v) AS stored, epoch_ms(make_timestamp(v)) AS ms "
            f"FROM unnest({micros}::BIGINT[]) t(v)"
        )
        .to_arrow_table()
        .combine_chunks()
    )
    stored, ms = (table.column(name).chunk(0) for name in ("stored", "ms"))
    n = table.num_rows
    native = chain.native.leaf_hashes([chain.column_spec(stored)], n)
    assert native == chain.native.leaf_hashes([chain.column_spec(ms)], n)
    assert native == b"".join(
        hashlib.sha256(b"\x00" + encode_value(v)).digest() for v in ms.to_pylist()
    )


def test_integers_at_every_digit_count_encode_as_in_python() -> None:
    """The helper counts digits from the bit length and writes four digits a step: every
    power of ten and its neighbours, both signs, and the int64 extremes must come out as
    ledger.chain writes them."""
    values = [0, 2**63 - 1, -(2**63)]
    for k in range(1, 19):
        for v in (10**k - 1, 10**k, 10**k + 1):
            values += [v, -v]
    rnd = random.Random(5)
    values += [rnd.randrange(-(2**63), 2**63) for _ in range(2_000)]
    column = pa.array(values, pa.int64())
    assert chain.native.leaf_hashes([chain.column_spec(column)], len(values)) == b"".join(
        hashlib.sha256(b"\x00" + encode_value(v)).digest() for v in values
    )


def test_text_of_every_length_up_to_1100_encodes_as_in_python() -> None:
    """Lengths below 1,000 take their netstring header from a table and strings up to 256
    bytes are copied inline: every such length, and neighbouring rows that end in a text
    cell (the header is written 4 bytes at a time, past a short cell's end), must come out
    as ledger.chain writes them."""
    rnd = random.Random(3)
    values: list[str | None] = ["", "a", "", ""]
    for length in range(1_101):
        values += [
            "x" * length,
            "",
            "é" * (length % 40),
            None,
            "".join(rnd.choices("ab:,", k=length)),
        ]
    column = pa.array(values, pa.string())
    # Alone, so every row ends in this cell, and before another column, as in a ledger row.
    assert chain.native.leaf_hashes([chain.column_spec(column)], len(values)) == b"".join(
        hashlib.sha256(b"\x00" + encode_value(v)).digest() for v in values
    )
    lists = pa.array([[v, v] if v is not None else None for v in values], pa.list_(pa.string()))
    specs = [chain.column_spec(column), chain.column_spec(lists)]
    assert chain.native.leaf_hashes(specs, len(values)) == b"".join(
        hashlib.sha256(b"\x00" + encode_value(v) + encode_value(w)).digest()
        for v, w in zip(values, lists.to_pylist(), strict=True)
    )


_TEXT, _INT, _TEXTS = 6, 2, 7  # the helper's kinds of DuckDB vectors


def _scan_in_duckdb(
    tmp_path: Path, rows: dict[str, list[Any]], wrong: frozenset[int] = frozenset()
) -> Any:
    """``rows`` (chain_id, seq, kafka_offset, subject_pseudonym, ccpa_letters) stored in a
    DuckDB table with their leaves (those at ``wrong`` stored wrong) and links, read by the
    scan inside DuckDB as ledger rows of those five fields: what duckscan_run returns."""
    n = len(rows["seq"])
    leaves = [
        hashlib.sha256(b"\x00" + b"".join(encode_value(rows[k][i]) for k in rows)).digest()
        for i in range(n)
    ]
    for i in wrong:
        leaves[i] = bytes(32)  # stored wrong; the links are those of the stored leaves
    links, heads = [], {}
    for i, leaf in enumerate(leaves):
        heads[rows["chain_id"][i]] = link_hash(heads.get(rows["chain_id"][i], GENESIS), leaf)
        links.append(heads[rows["chain_id"][i]])
    table = pa.table(
        {
            **{k: pa.array(v, chain.LEAF_TYPES[k]) for k, v in rows.items()},
            "leaf_hash": pa.array(leaves, pa.binary()),
            "chain_hash": pa.array(links, pa.binary()),
        }
    )
    path = tmp_path / "vectors.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("rows", table)
        con.execute("CREATE TABLE disclosures AS SELECT * FROM rows")
    scan = chain.native.duckscan_open(
        importlib.util.find_spec("_duckdb").origin,  # type: ignore[union-attr]
        str(path),
        1,
        [_TEXT, _INT, _INT, _TEXT, _TEXTS, _TEXT, _TEXT],
        (0, 1, 2, 3, 4),
        False,
    )
    try:
        return chain.native.duckscan_run(
            scan,
            0,
            f"SELECT count(_ledger_verify_0(rowid, {', '.join(rows)}, leaf_hash, chain_hash)) "
            "FROM disclosures",
        )
    finally:
        chain.native.duckscan_close(scan)


def test_text_and_lists_read_in_duckdbs_vectors_encode_as_in_python(tmp_path: Path) -> None:
    """The scan inside DuckDB (ledger/_duckscan.c) reads DuckDB's own strings: up to 12
    bytes inline, longer ones by pointer. Texts of every length up to 1,100 bytes, empty
    and null ones, and lists of them must encode as ledger.chain writes them, and a row
    whose stored leaf is wrong must be the one found, wherever it is."""
    rnd = random.Random(4)
    values: list[str | None] = []
    for length in range(1_101):
        values += ["x" * length, "", "é" * (length % 40), None]
        values.append("".join(rnd.choices("ab:,", k=length)))
    n = len(values)
    rows: dict[str, list[Any]] = {
        "chain_id": ["c"] * n,
        "seq": list(range(1, n + 1)),
        "kafka_offset": list(range(n)),
        "subject_pseudonym": values,
        "ccpa_letters": [[v, v] if i % 7 else None if i % 2 else [] for i, v in enumerate(values)],
    }
    wrong = {0, 13, 2_048, n - 1}
    checked, chains, bad_leaves, _ = _scan_in_duckdb(tmp_path, rows, frozenset(wrong))
    assert checked == n
    assert sorted(offset for _, _, offset in bad_leaves) == sorted(wrong)
    [(name, dirty, first, last)] = chains
    assert (name, dirty, first[:2], last[:2]) == ("c", False, (1, 0), (n, n - 1))


def test_the_scan_inside_duckdb_keeps_many_interleaved_chains_apart(tmp_path: Path) -> None:
    """A topic of many partitions: 300 chains, their rows interleaved; a row out of order
    marks its chain dirty and no other, and every chain ends at its own last row."""
    chains, per_chain = 300, 7
    order = [(c, k) for k in range(per_chain) for c in range(chains)]
    random.Random(9).shuffle(order)
    seen: dict[int, int] = {}
    rows: dict[str, list[Any]] = {k: [] for k in ("chain_id", "seq", "kafka_offset")}
    for c, _ in order:
        seen[c] = seen.get(c, 0) + 1
        rows["chain_id"].append(f"topic.with.a.long.name/{c}")
        rows["seq"].append(seen[c])
        rows["kafka_offset"].append(seen[c] * 10)
    rows["seq"][order.index((17, 3))] = 99  # chain 17's fourth row
    rows["subject_pseudonym"] = ["p"] * len(order)
    rows["ccpa_letters"] = [["A"]] * len(order)
    checked, found, bad_leaves, _ = _scan_in_duckdb(tmp_path, rows)
    assert checked == chains * per_chain and bad_leaves == []
    assert len(found) == chains
    assert {name for name, dirty, _, _ in found if dirty} == {"topic.with.a.long.name/17"}
    for name, _, first, last in found:
        assert first[:2] == (1, 10) and last[1] == per_chain * 10, name
