"""HMAC-SHA-256 of many messages at once: the key store derives three per new subject.

One ``hmac.digest`` call per item (the standard library over OpenSSL): one shape for a
shared key or message and for pairs of them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from itertools import repeat


def hmac_sha256_many(
    keys: bytes | Sequence[bytes], messages: bytes | Sequence[bytes]
) -> list[bytes]:
    """``hmac.digest(key, message, "sha256")`` for each item. Either argument is one bytes
    value used for every item, or a sequence; two sequences pair up item by item."""
    one_key, one_message = isinstance(keys, bytes), isinstance(messages, bytes)
    if one_key and one_message:
        raise TypeError("give a sequence of keys or a sequence of messages")
    if not one_key and not one_message and len(keys) != len(messages):
        raise ValueError(f"{len(keys)} keys for {len(messages)} messages")
    each_key: Iterable[bytes] = repeat(keys) if isinstance(keys, bytes) else keys
    each_message: Iterable[bytes] = repeat(messages) if isinstance(messages, bytes) else messages
    # One side may repeat without end; two sequences' lengths were checked above.
    return [hmac.digest(k, m, "sha256") for k, m in zip(each_key, each_message, strict=False)]
