"""Batched HMAC-SHA-256 (native helper, or hmac.digest without it) equals hmac.digest."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledger.hmacs as hmacs
from ledger.hmacs import hmac_sha256_many

# the fixture only picks the implementation: the same for every example
same_fixture = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
keys = st.binary(max_size=200)  # past 64 bytes, a key is hashed first (RFC 2104)
messages = st.lists(st.binary(max_size=300), max_size=8)


def _expected(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


@pytest.fixture(params=["native", "fallback"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "native":
        if hmacs._native_hmac is None:
            pytest.skip("the native helper is not built")
    else:
        monkeypatch.setattr(hmacs, "_native_hmac", None)
    return str(request.param)


@same_fixture
@given(key=keys, items=messages)
def test_one_key_many_messages(implementation: str, key: bytes, items: list[bytes]) -> None:
    assert hmac_sha256_many(key, items) == [_expected(key, m) for m in items]


@same_fixture
@given(items=st.lists(keys, max_size=8), message=st.binary(max_size=100))
def test_many_keys_one_message(implementation: str, items: list[bytes], message: bytes) -> None:
    assert hmac_sha256_many(items, message) == [_expected(k, message) for k in items]


@same_fixture
@given(pairs=st.lists(st.tuples(keys, st.binary(max_size=300)), max_size=8))
def test_pairs(implementation: str, pairs: list[tuple[bytes, bytes]]) -> None:
    ks, ms = [k for k, _ in pairs], [m for _, m in pairs]
    assert hmac_sha256_many(ks, ms) == [_expected(k, m) for k, m in pairs]


def test_mismatched_lengths_and_two_single_values_are_refused(implementation: str) -> None:
    with pytest.raises(ValueError, match="2 keys for 1 messages"):
        hmac_sha256_many([b"a", b"b"], [b"m"])
    with pytest.raises(TypeError):
        hmac_sha256_many(b"k", b"m")
