"""Signed checkpoints: every chain's length and head, signed with Ed25519, kept twice.

A checkpoint is one line of text (see README "Checkpoints")::

    disclosure-ledger-checkpoint/1 at=2026-03-01T12:00:00.123Z ref=2026.11.0+d772838d
    key=5f1c0e9a2b3d4c6e privacy.disclosures.v1/0=1234:<64 hex> ... sig=<128 hex>

(one line; wrapped here). Besides one ``topic/partition`` chain per source partition, a
line names the access log's chain, ``access_log=<length>:<head>`` (:mod:`ledger.access_log`),
once it holds an entry; lines written before it was covered do not name it, and stay
valid. The signature is Ed25519 over the UTF-8 bytes of everything
before `` sig=``. Chains are sorted by id; ``ref`` is the reference-data version the
consumer was classifying with, percent-encoded; ``key`` is the first 16 hex digits of
SHA-256 of the raw 32-byte public key. The line is stored in the ledger's ``checkpoints``
table and appended to a checkpoint file outside the ledger, which can be published
anywhere (a git repository, a ticket, an e-mail): whoever holds the public key and a copy
of that file can later prove that the ledger still extends every checkpointed head.

The private key never enters the ledger: it is read from a file or an environment
variable named in the settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

import duckdb
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.access_log import ACCESS_CHAIN, access_log_head
from ledger.checkpoint_copy import CheckpointCopy, CopyStatus
from ledger.checkpoint_notes import (
    StoredNote,
    default_notes_dir,
    insert_notes,
    log_origin,
    note_paths,
    sign_notes,
    store_notes,
    write_note_files,
)
from ledger.errors import LedgerError
from ledger.fence import FencedError, hold
from ledger.store import Ledger

log = logging.getLogger(__name__)

MAGIC = "disclosure-ledger-checkpoint/1"

CHECKPOINTS_DDL = """
CREATE TABLE IF NOT EXISTS checkpoints (
    checkpoint_at TIMESTAMP NOT NULL, reference_version VARCHAR NOT NULL,
    key_id VARCHAR NOT NULL, chains INTEGER NOT NULL, line VARCHAR NOT NULL
);
"""

CHECKPOINT_FENCES_DDL = """
CREATE TABLE IF NOT EXISTS checkpoint_fences (
    checkpoint_at TIMESTAMP NOT NULL, writer VARCHAR NOT NULL, chain_id VARCHAR NOT NULL,
    epoch BIGINT NOT NULL
);
"""
"""On a lake only: for each chain a checkpoint covers, the writer that stored it and the
fence epoch it held (inserted in the same transaction). ``verify`` reads it to tell a chain
another instance owns from one left out of a manifest (:mod:`ledger.verify.notes`)."""

_HEAD = re.compile(r"(?P<chain>[^\s=]+)=(?P<length>\d+):(?P<head>[0-9a-f]{64})")
_AT = re.compile(r"at=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")


# -- keys -------------------------------------------------------------------------------
def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair(private_path: Path, public_path: Path, *, overwrite: bool = False) -> str:
    """Write a new Ed25519 key pair as PEM files (private one mode 0600); returns its key id."""
    for path in (private_path, public_path):
        if path.exists() and not overwrite:
            raise LedgerError(
                f"{path} already exists; a new key pair would orphan every checkpoint signed "
                "with the old one. Choose other paths, or pass --force to replace it"
            )
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(public_pem)
    return key_id(private.public_key())


def load_signing_key(data: bytes, source: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or 64 hex digits (the raw 32 bytes)."""
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(text, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text.decode("ascii")))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise LedgerError(
            f"the checkpoint signing key in {source} is not an Ed25519 private key (PEM or 64 "
            "hex digits); create one with `disclosure-ledger keys generate`"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(f"the checkpoint signing key in {source} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file or a file of 64 hex digits."""
    try:
        text = path.read_bytes().strip()
    except OSError as exc:
        raise LedgerError(f"cannot read the public key file {path}: {exc}") from exc
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
        else:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode("ascii")))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise LedgerError(
            f"{path} is not an Ed25519 public key (PEM or 64 hex digits); it is the .pub file "
            "that `disclosure-ledger keys generate` wrote"
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerError(f"{path} is not an Ed25519 public key")
    return key


# -- the checkpoint line -----------------------------------------------------------------
@dataclass(frozen=True)
class ChainHead:
    chain_id: str
    length: int
    head: bytes


@dataclass(frozen=True)
class Checkpoint:
    at: str  # RFC 3339 UTC with milliseconds, e.g. 2026-03-01T12:00:00.123Z
    reference_version: str
    key_id: str
    heads: tuple[ChainHead, ...]
    signature: bytes

    @property
    def body(self) -> str:
        """The signed text: everything before `` sig=``."""
        return _body(self.at, self.reference_version, self.key_id, self.heads)

    @property
    def line(self) -> str:
        return f"{self.body} sig={self.signature.hex()}"

    def verify(self, public_key: Ed25519PublicKey) -> str | None:
        """None if the signature is good under ``public_key``; else what is wrong."""
        expected = key_id(public_key)
        if self.key_id != expected:
            return f"signed by key {self.key_id}, not by the public key given ({expected})"
        try:
            public_key.verify(self.signature, self.body.encode("utf-8"))
        except InvalidSignature:
            return "the Ed25519 signature does not match the checkpoint's text"
        return None


def _body(at: str, reference_version: str, key: str, heads: Iterable[ChainHead]) -> str:
    parts = [MAGIC, f"at={at}", f"ref={quote(reference_version, safe='+.-_:/')}", f"key={key}"]
    parts += [f"{h.chain_id}={h.length}:{h.head.hex()}" for h in sorted(heads, key=_by_chain)]
    return " ".join(parts)


def _by_chain(head: ChainHead) -> str:
    return head.chain_id


def parse_checkpoint(line: str) -> Checkpoint:
    """A checkpoint from its line; :class:`LedgerError` naming what is malformed."""
    words = line.strip().split(" ")
    if len(words) < 5 or words[0] != MAGIC:
        raise LedgerError(f"not a {MAGIC} line")
    at_match = _AT.fullmatch(words[1])
    if not at_match:
        raise LedgerError(f"second field {words[1]!r} is not at=<RFC 3339 UTC time>")
    if not words[2].startswith("ref=") or not words[3].startswith("key="):
        raise LedgerError("fields 3 and 4 must be ref=... and key=...")
    if not words[-1].startswith("sig="):
        raise LedgerError("the last field must be sig=<128 hex digits>")
    try:
        signature = bytes.fromhex(words[-1][4:])
    except ValueError as exc:
        raise LedgerError("sig= is not hex") from exc
    heads = []
    for word in words[4:-1]:
        match = _HEAD.fullmatch(word)
        if not match:
            raise LedgerError(f"{word!r} is not <chain>=<length>:<64 hex head>")
        heads.append(ChainHead(match["chain"], int(match["length"]), bytes.fromhex(match["head"])))
    checkpoint = Checkpoint(
        at=at_match.group(1),
        reference_version=unquote(words[2][4:]),
        key_id=words[3][4:],
        heads=tuple(heads),
        signature=signature,
    )
    if checkpoint.line != line.strip():
        raise LedgerError("the line is not in canonical form (chain order, spacing or case)")
    return checkpoint


def sign_checkpoint(
    signer: Ed25519PrivateKey, heads: Iterable[ChainHead], reference_version: str, at_ms: int
) -> Checkpoint:
    at = datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{at_ms % 1000:03d}Z"
    )
    heads = tuple(sorted(heads, key=_by_chain))
    key = key_id(signer.public_key())
    signature = signer.sign(_body(at, reference_version, key, heads).encode("utf-8"))
    return Checkpoint(at, reference_version, key, heads, signature)


# -- in the ledger and in the file -------------------------------------------------------
def current_heads(ledger: Ledger, chains: Iterable[str] | None = None) -> tuple[ChainHead, ...]:
    """Every chain's length (its highest seq) and head (the chain hash of that row): one
    per source partition, and the access log's once it holds an entry. ``chains`` limits
    the source partitions' chains to those (on a lake, the chains this instance holds)."""
    select = "SELECT chain_id, max(seq), arg_max(chain_hash, seq) FROM disclosures "
    group = "GROUP BY chain_id ORDER BY chain_id"
    if chains is None:
        rows = ledger.con.execute(select + group).fetchall()
    else:
        rows = ledger.con.execute(
            select + "WHERE chain_id IN (SELECT unnest(?::VARCHAR[])) " + group, [sorted(chains)]
        ).fetchall()
    heads = [ChainHead(str(c), int(n), bytes(h)) for c, n, h in rows]
    access = access_log_head(ledger.con)
    if access is not None:
        heads.append(ChainHead(ACCESS_CHAIN, *access))
    return tuple(sorted(heads, key=_by_chain))


def _access_length(heads: Iterable[ChainHead]) -> int:
    return next((h.length for h in heads if h.chain_id == ACCESS_CHAIN), 0)


def ledger_checkpoint_lines(ledger: Ledger) -> list[str]:
    """The checkpoint lines stored in the ledger, oldest first ([] if it has none)."""
    tables = {r[0] for r in ledger.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "checkpoints" not in tables:
        return []
    rows = ledger.con.execute("SELECT line FROM checkpoints ORDER BY checkpoint_at").fetchall()
    return [str(r[0]) for r in rows]


def read_checkpoint_file(path: Path) -> list[str]:
    """The non-blank lines of a checkpoint file ('#' starts a comment line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LedgerError(f"cannot read the checkpoint file {path}: {exc}") from exc
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def store_checkpoint(ledger: Ledger, checkpoint: Checkpoint, checkpoint_file: Path) -> None:
    """Insert into the ledger's ``checkpoints`` table, then append to the file and fsync."""
    ledger.con.execute(CHECKPOINTS_DDL)
    insert_checkpoint(ledger.con, checkpoint)
    append_to_checkpoint_file(checkpoint_file, checkpoint)


def insert_checkpoint(con: duckdb.DuckDBPyConnection, checkpoint: Checkpoint) -> None:
    """Insert into the ledger's ``checkpoints`` table only."""
    con.execute(
        "INSERT INTO checkpoints VALUES (strptime(?, '%Y-%m-%dT%H:%M:%S.%gZ'), ?, ?, ?, ?)",
        [
            checkpoint.at,
            checkpoint.reference_version,
            checkpoint.key_id,
            len(checkpoint.heads),
            checkpoint.line,
        ],
    )


def append_to_checkpoint_file(checkpoint_file: Path, checkpoint: Checkpoint) -> None:
    """Append the line to the checkpoint file, fsynced."""
    checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
    with checkpoint_file.open("a", encoding="utf-8") as out:
        out.write(checkpoint.line + "\n")
        out.flush()
        os.fsync(out.fileno())


def default_checkpoint_file(ledger_path: Path) -> Path:
    """Beside, never inside, the ledger: ``LEDGER.checkpoints``."""
    return ledger_path.with_name(ledger_path.name + ".checkpoints")


class Checkpointer:
    """Writes a checkpoint every ``every_rows`` appended rows or ``every_seconds`` seconds
    (whichever comes first, and only if rows were appended, or entries added to the access
    log, since the last one), and on a clean shutdown if the chains moved since the last
    checkpoint.

    The consumer calls :meth:`after_batch` after every committed batch (the
    :class:`~consumers.pipeline.Ingestor` does it itself when given a checkpointer) and
    :meth:`shutdown` when it stops cleanly.
    """

    def __init__(
        self,
        ledger: Ledger,
        signer: Ed25519PrivateKey,
        checkpoint_file: Path,
        *,
        reference_version: str,
        every_rows: int = 100_000,
        every_seconds: float = 300.0,
        clock_ms: Callable[[], int] | None = None,
        notes_dir: Path | None = None,
        origin: str | None = None,
        copy_to: str | None = None,
    ) -> None:
        """``notes_dir`` receives the C2SP signed notes of every checkpoint
        (:mod:`ledger.checkpoint_notes`; default ``LEDGER.checkpoint-notes`` beside the
        ledger); ``origin`` is the log's name, recorded in the ledger on first use;
        ``copy_to`` is a second place the notes are copied to as they are made
        (:mod:`ledger.checkpoint_copy`)."""
        if every_rows < 1 or every_seconds <= 0:
            raise LedgerError(
                f"checkpoint interval must be at least 1 row and more than 0 seconds, got "
                f"{every_rows} rows and {every_seconds} s"
            )
        from ledger.key_history import check_signer_in_force  # it builds on this module

        check_signer_in_force(signer, checkpoint_file)
        self.ledger = ledger
        self.checkpoint_file = checkpoint_file
        self.reference_version = reference_version
        self.every_rows = every_rows
        self.every_seconds = every_seconds
        self._signer = signer
        self.notes_dir = notes_dir if notes_dir is not None else default_notes_dir(ledger.path)
        self.origin = log_origin(ledger.con, origin)
        self.copy = None if copy_to is None else CheckpointCopy(self.notes_dir, copy_to)
        self.last_notes: list[StoredNote] = []
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._pending_rows = 0
        self._last_ms = self._clock_ms()
        self.last: Checkpoint | None = None
        # on a lake: who stores the checkpoints, as recorded in checkpoint_fences
        self.writer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        heads = current_heads(ledger, self._held_chains())
        lines = ledger_checkpoint_lines(ledger)
        try:
            last_heads = parse_checkpoint(lines[-1]).heads if lines else ()
        except LedgerError:
            last_heads = ()
        self._moved = bool(heads) and heads != last_heads
        self._access_checkpointed = _access_length(last_heads)

    @property
    def copy_status(self) -> CopyStatus | None:
        return None if self.copy is None else self.copy.status

    def _access_log_moved(self) -> bool:
        """Whether the access log grew since the last checkpoint (the service appends to it
        on other threads; this reads what they committed)."""
        head = access_log_head(self.ledger.con)
        return head is not None and head[0] != self._access_checkpointed

    def after_batch(self, appended_rows: int) -> Checkpoint | None:
        """Call after each committed batch; writes a checkpoint when one is due."""
        self._pending_rows += appended_rows
        if appended_rows or (not self._moved and self._access_log_moved()):
            self._moved = True
        if not self._moved:
            return None
        due_by_rows = self._pending_rows >= self.every_rows
        due_by_time = self._clock_ms() - self._last_ms >= self.every_seconds * 1000
        return self.checkpoint() if due_by_rows or due_by_time else None

    def shutdown(self) -> Checkpoint | None:
        """Call on a clean stop: a final checkpoint, unless the last one is still current."""
        return self.checkpoint() if self._moved or self._access_log_moved() else None

    def _held_chains(self) -> dict[str, int] | None:
        """On a lake, the chains this instance holds, with the fence epoch of each
        (:meth:`Ledger.claim_chains`); None on a ledger file, whose one writer holds all."""
        return None if self.ledger.lake is None else self.ledger.held_chains()

    def _sign_notes(self, checkpoint: Checkpoint) -> list[StoredNote]:
        return sign_notes(
            self.ledger.con,
            self._signer,
            self.origin,
            [(h.chain_id, h.length, h.head) for h in checkpoint.heads],
            at=checkpoint.at,
            reference_version=self.reference_version,
        )

    def checkpoint(self) -> Checkpoint | None:
        """Write a checkpoint now. On a lake, of the chains this instance holds only, stored
        under their fences (:meth:`_store_on_lake`); None if it holds none."""
        now = self._clock_ms()
        held = self._held_chains()
        if held is None:
            checkpoint = sign_checkpoint(
                self._signer, current_heads(self.ledger), self.reference_version, now
            )
            store_checkpoint(self.ledger, checkpoint, self.checkpoint_file)
            notes = self._sign_notes(checkpoint)
            store_notes(self.ledger.con, notes, checkpoint.at, self.notes_dir)
        elif not held:
            log.info("no checkpoint: this instance holds no chain of the lake yet")
            return None
        else:
            stored = self._store_on_lake(held, now)
            if stored is None:
                return None
            checkpoint, notes = stored
        self.last_notes = notes
        if self.copy is not None:  # a failure is logged, counted and retried next time
            self.copy.copy([relative for relative, _, _ in note_paths(notes, checkpoint.at)])
        self._pending_rows = 0
        self._last_ms = now
        self._moved = False
        self._access_checkpointed = _access_length(checkpoint.heads)
        self.last = checkpoint
        log.info(
            "checkpoint at %s over %d chain(s), appended to %s",
            checkpoint.at,
            len(checkpoint.heads),
            self.checkpoint_file,
        )
        return checkpoint

    def _store_on_lake(
        self, held: dict[str, int], now: int
    ) -> tuple[Checkpoint, list[StoredNote]] | None:
        """One transaction that holds the fence of every chain this instance holds
        (:func:`ledger.fence.hold`), reads their heads, and stores the signed line, its notes
        and the epochs held; the checkpoint file and the notes directory are written, and
        the copy made, only after it commits.

        A chain another instance claimed before the transaction is left out (its hold finds
        another epoch), and stays claimed here, so appends to it stay refused; None if
        every chain was. A claim committed while the transaction is open makes its commit
        fail (:class:`FencedError`): nothing is stored, written or copied, and the
        signature made in memory is discarded."""
        con = self.ledger.con
        con.execute("BEGIN TRANSACTION")
        try:
            for chain in sorted(held):
                try:
                    hold(con, chain, held[chain])
                except FencedError as exc:
                    why = str(exc).replace("; the batch is not appended", "")
                    log.warning("the checkpoint leaves out chain %s: %s", chain, why)
                    del held[chain]
            if not held:
                con.execute("ROLLBACK")
                return None
            checkpoint = sign_checkpoint(
                self._signer, current_heads(self.ledger, held), self.reference_version, now
            )
            insert_checkpoint(con, checkpoint)
            notes = self._sign_notes(checkpoint)
            insert_notes(con, notes, checkpoint.at)
            covered = [h.chain_id for h in checkpoint.heads if h.chain_id in held]
            con.execute(
                "INSERT INTO checkpoint_fences SELECT strptime($at, '%Y-%m-%dT%H:%M:%S.%gZ'), "
                "$writer, unnest($chains::VARCHAR[]), unnest($epochs::BIGINT[])",
                {
                    "at": checkpoint.at,
                    "writer": self.writer,
                    "chains": covered,
                    "epochs": [held[c] for c in covered],
                },
            )
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        try:
            con.execute("COMMIT")
        except duckdb.TransactionException as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise FencedError(
                f"the checkpoint of {', '.join(sorted(held))} was refused: another instance "
                f"claimed one of these chains while it was being stored ({exc}); nothing was "
                "stored or published"
            ) from exc
        append_to_checkpoint_file(self.checkpoint_file, checkpoint)
        write_note_files(self.notes_dir, notes, checkpoint.at)
        return checkpoint, notes
