"""The native helper hashes verify's leaves and links many messages at a time (sixteen with
AVX-512, or two with the CPU's SHA extensions, where it has them): every digest must still
be plain SHA-256, and the link check must find exactly what the pure-Python check finds,
whichever row of a group is wrong."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

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
