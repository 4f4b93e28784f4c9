"""C2SP signed notes with Ed25519, and the C2SP ``tlog-checkpoint`` each chain publishes.

Specifications: https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint; Go's
``golang.org/x/mod/sumdb/note`` verifies these notes unmodified (``tests/go_verifier``).

* A note is UTF-8 text ending in a newline, a blank line, then one line per signature:
  ``— <key name> <base64(key ID || signature)>`` (U+2014, then a space).
* An Ed25519 key's ID is the first four bytes of ``SHA-256(name || 0x0A || 0x01 ||
  public key)``; its verifier key is ``<name>+<ID as 8 hex digits>+<base64(0x01 || public
  key)>``. The signature is Ed25519 over the note's text, newline included.
* A checkpoint's text is three lines: the origin, the tree size in decimal, the root hash in
  base64; this project writes no extension lines. The key name is the origin, as the spec
  recommends: one Ed25519 key signs every chain's checkpoint, each under its own name.

The signing itself is the ``cryptography`` package's Ed25519; nothing here is hand-written
cryptography.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import LedgerError

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash, space

_NAME = re.compile(r"[^\s+]+")
_SIZE = re.compile(r"0|[1-9][0-9]*")


class NoteError(LedgerError):
    """A note that is malformed, or whose signature does not verify."""


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise NoteError(
            f"{name!r} cannot name a note key: a key name is non-empty, with no spaces and "
            "no '+' (C2SP signed-note)"
        )
    return name


def key_hash(name: str, public_key: Ed25519PublicKey) -> int:
    """The key ID: the first four bytes of SHA-256(name || "\\n" || 0x01 || public key)."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + _raw(public_key)
    ).digest()
    return int.from_bytes(digest[:4], "big")


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """``<name>+<8 hex>+<base64(0x01 || key)>``: what Go's ``note.NewVerifier`` takes."""
    check_name(name)
    encoded = base64.b64encode(bytes([ALG_ED25519]) + _raw(public_key)).decode("ascii")
    return f"{name}+{key_hash(name, public_key):08x}+{encoded}"


def signer_key(name: str, private_key: Ed25519PrivateKey) -> str:
    """``PRIVATE+KEY+<name>+<8 hex>+<base64(0x01 || seed)>``: Go's ``note.NewSigner`` form."""
    check_name(name)
    seed = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode("ascii")
    return f"PRIVATE+KEY+{name}+{key_hash(name, private_key.public_key()):08x}+{encoded}"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: int
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """A verifier key, as :func:`verifier_key` writes it."""
        parts = vkey.strip().split("+", 2)  # the base64 key may hold "+" (as Go chops it)
        if len(parts) != 3:
            raise NoteError(f"{vkey!r} is not a verifier key <name>+<8 hex>+<base64 key>")
        name, hex_id, encoded = parts
        check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
            key_id = int(hex_id, 16)
        except (binascii.Error, ValueError) as exc:
            raise NoteError(f"verifier key {vkey!r}: {exc}") from exc
        if len(hex_id) != 8 or len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError(f"verifier key {vkey!r} is not an Ed25519 note key")
        public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        if key_hash(name, public_key) != key_id:
            raise NoteError(f"verifier key {vkey!r}: its key ID does not match its name and key")
        return cls(name, key_id, public_key)

    @classmethod
    def of(cls, name: str, public_key: Ed25519PublicKey) -> Verifier:
        return cls(check_name(name), key_hash(name, public_key), public_key)


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    @property
    def encoded(self) -> str:
        return self.text + "\n" + "".join(s.line for s in self.signatures)

    def verify(self, verifier: Verifier) -> None:
        """Raise :class:`NoteError` unless a signature by ``verifier`` holds."""
        for sig in self.signatures:
            if sig.name == verifier.name and sig.key_id == verifier.key_id:
                try:
                    verifier.public_key.verify(sig.signature, self.text.encode("utf-8"))
                except InvalidSignature:
                    raise NoteError(
                        f"the signature by {verifier.name} does not match the note's text"
                    ) from None
                return
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in self.signatures) or "none"
        raise NoteError(
            f"the note has no signature by {verifier.name}+{verifier.key_id:08x} (it is signed "
            f"by: {names}); check the key, and that the note is this log's"
        )


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note's text holds no control characters but newlines")


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> Note:
    _check_text(text)
    public_key = private_key.public_key()
    signature = Signature(
        check_name(name), key_hash(name, public_key), private_key.sign(text.encode("utf-8"))
    )
    return Note(text, (signature,))


def parse_note(encoded: str) -> Note:
    """A note from its encoding; signatures are parsed, not checked."""
    split = encoded.rfind("\n\n")
    if split < 0:
        raise NoteError("not a signed note: no blank line before the signatures")
    text, block = encoded[: split + 1], encoded[split + 2 :]
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("a signed note ends with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"signature line {line!r} does not start with '— '")
        parts = line[len(SIG_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise NoteError(f"signature line {line!r} is not '— <name> <base64>'")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except binascii.Error as exc:
            raise NoteError(f"signature line {line!r}: {exc}") from exc
        if len(blob) < 5:
            raise NoteError(f"signature line {line!r} is too short")
        signatures.append(Signature(parts[0], int.from_bytes(blob[:4], "big"), blob[4:]))
    if not signatures:
        raise NoteError("a signed note has at least one signature")
    return Note(text, tuple(signatures))


# -- tlog-checkpoint -------------------------------------------------------------------------
@dataclass(frozen=True)
class TreeHead:
    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"

    def sign(self, private_key: Ed25519PrivateKey) -> Note:
        return sign_note(self.text, self.origin, private_key)


def parse_checkpoint_text(text: str) -> TreeHead:
    """Origin, size and root of a checkpoint note's text (extension lines refused)."""
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise NoteError(
            "a checkpoint's text is three lines: origin, tree size, base64 root (this log "
            "writes no extension lines)"
        )
    origin, size, encoded = lines[:3]
    if not origin or not _SIZE.fullmatch(size):
        raise NoteError(f"checkpoint origin {origin!r} or size {size!r} is malformed")
    try:
        root = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"checkpoint root {encoded!r}: {exc}") from exc
    if len(root) != 32:
        raise NoteError(f"checkpoint root {encoded!r} is not 32 bytes")
    return TreeHead(origin, int(size), root)
