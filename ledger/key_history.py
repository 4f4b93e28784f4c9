"""The checkpoint key history: which Ed25519 key signs checkpoints from when on.

A text file beside the checkpoint file (``LEDGER.checkpoints.keys``), one line per key,
oldest first, checkable with nothing but the file, the checkpoints and an Ed25519 library::

    disclosure-ledger-key/1 after=- key=<16 hex> pub=<64 hex> prev=- sig=<128 hex> cosig=<128 hex>
    disclosure-ledger-key/1 after=2026-03-01T12:00:00.123Z checkpoint=<64 hex> key=<16 hex>
        pub=<64 hex> prev=<16 hex> sig=<128 hex> cosig=<128 hex>

(each entry one line; wrapped here). ``key`` is the key id a checkpoint line carries
(first 16 hex digits of SHA-256 of the raw public key ``pub``); ``after`` says from when the
key is in force: for every checkpoint whose ``at`` is later than it, until the next entry's
``after``. The first entry is in force from the start (``after=-``). A rotation names the
checkpoint it starts from (``after`` is that checkpoint's time, ``checkpoint`` the SHA-256
of its line): the last checkpoint the previous key signs.

``sig`` is the **previous** key's Ed25519 signature (the first entry's: its own) and
``cosig`` the entry's own key's, both over the UTF-8 bytes of everything before `` sig=``.
So each key vouches for the next, and each new key for the one before it: an auditor who
trusts any one public key in the history can follow the chain both ways.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.checkpoints import Checkpoint, key_id, parse_checkpoint
from ledger.errors import LedgerError

MAGIC = "disclosure-ledger-key/1"
_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_LINE = re.compile(
    rf"{re.escape(MAGIC)} after=(?P<after>-|\S+)(?: checkpoint=(?P<checkpoint>[0-9a-f]{{64}}))?"
    r" key=(?P<key>[0-9a-f]{16}) pub=(?P<pub>[0-9a-f]{64}) prev=(?P<prev>-|[0-9a-f]{16})"
    r" sig=(?P<sig>[0-9a-f]{128}) cosig=(?P<cosig>[0-9a-f]{128})"
)


def key_history_file(checkpoint_file: Path) -> Path:
    """Beside the checkpoint file: ``LEDGER.checkpoints.keys``."""
    return checkpoint_file.with_name(checkpoint_file.name + ".keys")


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class KeyEntry:
    """One key of the history and from when it is in force (``after``: None, the start)."""

    after: str | None
    checkpoint: str | None  # SHA-256 (hex) of the line of the checkpoint it starts from
    key: str
    public: bytes
    prev: str | None
    signature: bytes
    cosignature: bytes

    @property
    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public)

    @property
    def body(self) -> str:
        parts = [MAGIC, f"after={self.after or '-'}"]
        if self.checkpoint is not None:
            parts.append(f"checkpoint={self.checkpoint}")
        parts += [f"key={self.key}", f"pub={self.public.hex()}", f"prev={self.prev or '-'}"]
        return " ".join(parts)

    @property
    def line(self) -> str:
        return f"{self.body} sig={self.signature.hex()} cosig={self.cosignature.hex()}"

    def in_force_at(self, at: str) -> bool:
        """Whether a checkpoint at ``at`` comes after this entry's start (times in the one
        fixed RFC 3339 form compare as text)."""
        return self.after is None or at > self.after


def parse_key_entry(line: str) -> KeyEntry:
    match = _LINE.fullmatch(line.strip())
    if match is None:
        raise LedgerError(
            f"not a {MAGIC} line (after=, key=, pub=, prev=, sig=, cosig= in that order)"
        )
    after = None if match["after"] == "-" else match["after"]
    if after is not None and not _AT.fullmatch(after):
        raise LedgerError(f"after={after} is not - or an RFC 3339 UTC time with milliseconds")
    if (after is None) != (match["checkpoint"] is None):
        raise LedgerError("a rotation (after=<time>) names its checkpoint; the first key does not")
    return KeyEntry(
        after=after,
        checkpoint=match["checkpoint"],
        key=match["key"],
        public=bytes.fromhex(match["pub"]),
        prev=None if match["prev"] == "-" else match["prev"],
        signature=bytes.fromhex(match["sig"]),
        cosignature=bytes.fromhex(match["cosig"]),
    )


def _signed_entry(
    signer: Ed25519PrivateKey,
    new: Ed25519PrivateKey,
    *,
    after: str | None,
    checkpoint: str | None,
    prev: str | None,
) -> KeyEntry:
    public = new.public_key()
    unsigned = KeyEntry(after, checkpoint, key_id(public), _raw(public), prev, b"", b"")
    body = unsigned.body.encode("utf-8")
    return KeyEntry(
        after, checkpoint, unsigned.key, unsigned.public, prev, signer.sign(body), new.sign(body)
    )


@dataclass(frozen=True)
class KeyHistory:
    """A key history and where it came from (for the failure messages)."""

    name: str
    entries: tuple[KeyEntry, ...]

    def problems(self) -> list[str]:
        """What is wrong with the history itself: malformed order, a broken link, a
        signature that does not match. Empty if it is a sound chain of trust."""
        found: list[str] = []
        previous: KeyEntry | None = None
        for number, entry in enumerate(self.entries, start=1):
            where = f"{self.name}, key {number} ({entry.key})"
            if key_id(entry.public_key) != entry.key:
                found.append(f"{where}: key= is not the id of pub=")
            if previous is None:
                if entry.after is not None or entry.prev is not None:
                    found.append(f"{where}: the first key must have after=- and prev=-")
                signer = entry.public_key
            else:
                if entry.after is None or entry.prev != previous.key:
                    found.append(f"{where}: prev= must name the key before it ({previous.key})")
                if (
                    entry.after is not None
                    and previous.after is not None
                    and entry.after <= previous.after
                ):
                    found.append(f"{where}: after= is not later than the key before it's")
                signer = previous.public_key
            body = entry.body.encode("utf-8")
            for what, signature, key in (
                ("sig (by the key before it)", entry.signature, signer),
                ("cosig (by the key itself)", entry.cosignature, entry.public_key),
            ):
                try:
                    key.verify(signature, body)
                except InvalidSignature:
                    found.append(f"{where}: {what} does not match the entry's text")
            previous = entry
        return found

    def in_force(self, at: str) -> KeyEntry | None:
        """The key in force for a checkpoint at ``at``."""
        current = None
        for entry in self.entries:
            if entry.in_force_at(at):
                current = entry
        return current

    def find(self, key: str) -> KeyEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    def check_checkpoint(self, checkpoint: Checkpoint) -> str | None:
        """None if ``checkpoint`` is signed by the key in force at its time; else what is
        wrong."""
        entry = self.in_force(checkpoint.at)
        if entry is None:
            return "no key of the key history is in force at its time"
        if checkpoint.key_id != entry.key:
            other = self.find(checkpoint.key_id)
            when = (
                f"key {entry.key} was (from the start)"
                if entry.after is None
                else f"key {entry.key} was, for checkpoints after {entry.after}"
            )
            if other is None:
                return f"signed by key {checkpoint.key_id}, which is not in the key history; {when}"
            return f"signed by key {checkpoint.key_id}, which was not in force at that time: {when}"
        return checkpoint.verify(entry.public_key)


def read_key_history(path: Path) -> KeyHistory:
    """The key history in ``path``; :class:`LedgerError` naming a malformed line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LedgerError(f"cannot read the key history {path}: {exc}") from exc
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            entries.append(parse_key_entry(line))
        except LedgerError as exc:
            raise LedgerError(f"{path}, line {number}: {exc}") from exc
    if not entries:
        raise LedgerError(f"the key history {path} holds no key")
    return KeyHistory(str(path), tuple(entries))


def _append(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


def check_signer_in_force(signer: Ed25519PrivateKey, checkpoint_file: Path) -> None:
    """Refuse to sign checkpoints with a key the key history has superseded (a service
    restarted with the old key after a rotation would write checkpoints verify rejects)."""
    path = key_history_file(checkpoint_file)
    if not path.exists():
        return
    history = read_key_history(path)
    newest = history.entries[-1]
    mine = key_id(signer.public_key())
    if mine != newest.key:
        superseded = history.find(mine)
        state = (
            f"was superseded after the checkpoint of {newest.after}"
            if superseded is not None
            else "is not in it"
        )
        raise LedgerError(
            f"the checkpoint signing key {mine} {state} (key history {path}): the key in "
            f"force is {newest.key}. Point DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE at "
            "that key's private key file"
        )


@dataclass(frozen=True)
class Rotation:
    entry: KeyEntry
    started_history: bool  # the history was created now, with the old key as its first
    checkpoint_number: int  # in the checkpoint file, 1-based


def rotate_key(
    checkpoint_file: Path,
    old: Ed25519PrivateKey,
    new: Ed25519PrivateKey,
    *,
    from_checkpoint: int | None = None,
) -> Rotation:
    """Put ``new`` in force for every checkpoint after checkpoint number ``from_checkpoint``
    of ``checkpoint_file`` (default its last), signed by ``old`` (the key in force).

    The chosen checkpoint must be signed by ``old``, and every later one in the file (if
    any) by ``new``: otherwise verify would reject them. The caller makes sure nothing
    writes checkpoints meanwhile (no service, no consumer on the ledger)."""
    from ledger.checkpoints import read_checkpoint_file

    history_path = key_history_file(checkpoint_file)
    old_id, new_id = key_id(old.public_key()), key_id(new.public_key())
    if old_id == new_id:
        raise LedgerError("the new key is the key in force: rotate to a new key")
    if not checkpoint_file.exists():
        raise LedgerError(
            f"no checkpoint file {checkpoint_file}: a rotation starts from a checkpoint the "
            "old key signed; give --checkpoints FILE, or let the service write one first"
        )
    lines = read_checkpoint_file(checkpoint_file)
    if not lines:
        raise LedgerError(f"the checkpoint file {checkpoint_file} holds no checkpoint yet")
    number = from_checkpoint or len(lines)
    if not 1 <= number <= len(lines):
        raise LedgerError(
            f"--from-checkpoint {number}: {checkpoint_file} holds checkpoints 1 to {len(lines)}"
        )
    chosen = parse_checkpoint(lines[number - 1])
    started = not history_path.exists()
    history = KeyHistory(str(history_path), ()) if started else read_key_history(history_path)
    if not started:
        problems = history.problems()
        if problems:
            raise LedgerError(
                f"the key history {history_path} does not verify, so no rotation is added to "
                f"it: {'; '.join(problems)}"
            )
        newest = history.entries[-1]
        if newest.key != old_id:
            raise LedgerError(
                f"the key in force is {newest.key} (key history {history_path}), not {old_id}: "
                "give the private key in force as the old key"
            )
        if newest.after is not None and chosen.at <= newest.after:
            raise LedgerError(
                f"checkpoint {number} ({chosen.at}) is not after the last rotation "
                f"({newest.after}): choose a later checkpoint"
            )
    problem = chosen.verify(old.public_key())
    if problem is not None:
        raise LedgerError(
            f"checkpoint {number} of {checkpoint_file} ({chosen.at}) is not signed by the key in "
            f"force ({problem}): a rotation starts from a checkpoint the old key signed"
        )
    later = [parse_checkpoint(line) for line in lines[number:]]
    wrong = [c.at for c in later if c.key_id != new_id]
    if wrong:
        raise LedgerError(
            f"{len(wrong)} checkpoint(s) after checkpoint {number} are not signed by the new key "
            f"(the first at {wrong[0]}): start the rotation from the last checkpoint the old key "
            "signed (the default, the file's last)"
        )
    new_lines = []
    if started:
        new_lines.append(_signed_entry(old, old, after=None, checkpoint=None, prev=None).line)
    digest = hashlib.sha256(chosen.line.encode("utf-8")).hexdigest()
    entry = _signed_entry(old, new, after=chosen.at, checkpoint=digest, prev=old_id)
    new_lines.append(entry.line)
    _append(history_path, new_lines)
    return Rotation(entry, started, number)
