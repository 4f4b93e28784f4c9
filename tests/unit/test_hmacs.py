"""Batched HMAC-SHA-256 equals hmac.digest item by item, for every shape of arguments."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.hmacs import hmac_sha256_many

keys = st.binary(max_size=200)  # past 64 bytes, a key is hashed first (RFC 2104)
messages = st.lists(st.binary(max_size=300), max_size=8)


def _expected(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


@given(key=keys, items=messages)
def test_one_key_many_messages(key: bytes, items: list[bytes]) -> None:
    assert hmac_sha256_many(key, items) == [_expected(key, m) for m in items]


@given(items=st.lists(keys, max_size=8), message=st.binary(max_size=100))
def test_many_keys_one_message(items: list[bytes], message: bytes) -> None:
    assert hmac_sha256_many(items, message) == [_expected(k, message) for k in items]


@given(pairs=st.lists(st.tuples(keys, st.binary(max_size=300)), max_size=8))
def test_pairs(pairs: list[tuple[bytes, bytes]]) -> None:
    ks, ms = [k for k, _ in pairs], [m for _, m in pairs]
    assert hmac_sha256_many(ks, ms) == [_expected(k, m) for k, m in pairs]


def test_mismatched_lengths_and_two_single_values_are_refused() -> None:
    with pytest.raises(ValueError, match="2 keys for 1 messages"):
        hmac_sha256_many([b"a", b"b"], [b"m"])
    with pytest.raises(TypeError):
        hmac_sha256_many(b"k", b"m")
