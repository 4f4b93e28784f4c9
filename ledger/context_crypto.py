"""Context values encrypted under the subject's key, so erasing the key erases them too.

A disclosure's ``context`` map (order ids, ticket numbers, free text: anything that may carry
personal data) is stored as ``aesgcm1:`` + base64 of ``nonce (12 bytes) || AES-256-GCM
ciphertext and tag`` of the canonical JSON of the map (keys sorted, no spaces, UTF-8).

* The key is ``HMAC-SHA-256(k_s, "disclosure-ledger/context-key/v1")``, where ``k_s`` is the
  subject's random key in the key store (:mod:`ledger.pseudonyms`); the pseudonym uses
  ``k_s`` itself, so the two uses never share a key.
* The associated data is ``"disclosure-ledger/context/v1" 0x00 event_id``, so a ciphertext
  copied onto another row does not decrypt there.
* The nonce is random per row. The leaf hash covers the stored text, so verification never
  needs a key, and keeps passing after a key is destroyed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import LedgerError
from ledger.hmacs import hmac_sha256_many

CONTEXT_PREFIX = "aesgcm1:"
_KEY_LABEL = b"disclosure-ledger/context-key/v1"
_AAD_LABEL = b"disclosure-ledger/context/v1\x00"
_NONCE_BYTES = 12


# json's own string encoder (C), as json.dumps(..., ensure_ascii=False) uses it.
_json_text: Callable[[str], str] = json.encoder.encode_basestring


def canonical_context(context: dict[str, str]) -> str:
    """The canonical JSON of a context map: keys sorted, no spaces, UTF-8 kept as is."""
    try:
        # The schema's map<string>: the same text as json.dumps below, built directly.
        # The C encoder takes only str (subclasses too, as json.dumps encodes them alike).
        return (
            "{"
            + ",".join([_json_text(k) + ":" + _json_text(v) for k, v in sorted(context.items())])
            + "}"
        )
    except TypeError:  # a key or value that is not text; mixed keys do not even sort
        return json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def context_keys(subject_keys: Sequence[bytes]) -> list[bytes]:
    """The AES-256 key for each subject's context values: HMAC-SHA-256 of a fixed label
    under its key-store key."""
    return hmac_sha256_many(subject_keys, _KEY_LABEL)


def context_key(subject_key: bytes) -> bytes:
    """:func:`context_keys` of one subject key."""
    return context_keys([subject_key])[0]


def _seal(cipher: AESGCM, nonce: bytes, event_id: str, context: dict[str, str]) -> str:
    sealed = cipher.encrypt(
        nonce, canonical_context(context).encode("utf-8"), _AAD_LABEL + event_id.encode()
    )
    return CONTEXT_PREFIX + binascii.b2a_base64(nonce + sealed, newline=False).decode("ascii")


def encrypt_context(key: bytes, event_id: str, context: dict[str, str]) -> str:
    """The stored text of ``context`` for the row of ``event_id``."""
    return _seal(AESGCM(key), os.urandom(_NONCE_BYTES), event_id, context)


def encrypt_contexts(items: Sequence[tuple[bytes, str, dict[str, str]]]) -> list[str]:
    """:func:`encrypt_context` of many (key, event_id, context) at once: one cipher per
    key and the random nonces drawn in one call, as the consumer does for a batch."""
    ciphers: dict[bytes, AESGCM] = {}
    nonces = os.urandom(_NONCE_BYTES * len(items))
    stored = []
    for i, (key, event_id, context) in enumerate(items):
        cipher = ciphers.get(key)
        if cipher is None:
            cipher = ciphers[key] = AESGCM(key)
        nonce = nonces[i * _NONCE_BYTES : (i + 1) * _NONCE_BYTES]
        stored.append(_seal(cipher, nonce, event_id, context))
    return stored


def encrypt_canonical_contexts(items: Sequence[tuple[bytes, str, str]]) -> list[str]:
    """:func:`encrypt_contexts` of contexts already in their canonical JSON
    (:func:`canonical_context`: the consumer's decode workers make it)."""
    ciphers: dict[bytes, AESGCM] = {}
    nonces = os.urandom(_NONCE_BYTES * len(items))
    stored = []
    for i, (key, event_id, text) in enumerate(items):
        cipher = ciphers.get(key)
        if cipher is None:
            cipher = ciphers[key] = AESGCM(key)
        nonce = nonces[i * _NONCE_BYTES : (i + 1) * _NONCE_BYTES]
        sealed = cipher.encrypt(nonce, text.encode("utf-8"), _AAD_LABEL + event_id.encode())
        stored.append(CONTEXT_PREFIX + binascii.b2a_base64(nonce + sealed, newline=False).decode())
    return stored


def decrypt_context(key: bytes, event_id: str, stored: str) -> dict[str, str]:
    """The context map of a stored value; :class:`LedgerError` if it does not decrypt."""
    if not stored.startswith(CONTEXT_PREFIX):
        raise LedgerError(
            f"the context of event {event_id} is not an {CONTEXT_PREFIX} value; it was not "
            "written by this version of the consumer"
        )
    try:
        raw = base64.b64decode(stored[len(CONTEXT_PREFIX) :], validate=True)
        plain = AESGCM(key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD_LABEL + event_id.encode()
        )
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise LedgerError(
            f"the context of event {event_id} does not decrypt under this subject's key: it "
            "belongs to another subject or row, or it was altered"
        ) from exc
    value = json.loads(plain)
    if not isinstance(value, dict):
        raise LedgerError(f"the context of event {event_id} is not a JSON object")
    return {str(k): str(v) for k, v in value.items()}
