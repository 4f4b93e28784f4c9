"""``backup``: a consistent snapshot of everything a ledger needs, with a manifest.

What is copied (:class:`BackupSources`): the DuckDB ledger, the subject key store (which
holds the suppression list), the request log, the service's users store, the checkpoint
file and the checkpoint key history. Never the checkpoint signing private key or the
subject secret (:data:`~disclosure_ledger.backups.manifest.NOT_INCLUDED`).

Two ways to take it, with the same result:

- **Through the service** (:func:`take_backup` with ``owner`` and ``pause``): the service
  owns the DuckDB file, and its instance cannot write any other file (external access is
  off, so no ``EXPORT``/``COPY``/``ATTACH``). So its writers are paused (the ingest thread
  between two batches, erasures, access-log appends: :meth:`LedgerService.writers_paused`),
  the instance is checkpointed (its write-ahead log folded into the file), the file, the
  key store (SQLite's online backup), the checkpoint file and the key history are copied,
  and the writers resume. The request log and users store, which requests write and
  ingestion never does, are copied after (SQLite's online backup is consistent on its own).
  Readers are never paused. How long the writers waited is in the manifest.
- **On the files** (no ``owner``): the ledger is opened read-only, which fails fast if a
  writer (a service, a consumer) holds it, and keeps any writer out while the file and its
  write-ahead log, if any, are copied.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from disclosure_ledger.backups.errors import BackupError
from disclosure_ledger.backups.manifest import BackupFile, Manifest, sha256_of
from ledger.checkpoints import current_heads, default_checkpoint_file
from ledger.erasure import journal
from ledger.errors import LedgerError, LedgerLockedError
from ledger.key_history import key_history_file
from ledger.store import Ledger

# The name of each file in a backup directory, by role.
LEDGER_NAME = "ledger.duckdb"
WAL_NAME = "ledger.duckdb.wal"
STORE_NAMES = {
    "key_store": "keys.sqlite",
    "request_log": "requests.sqlite",
    "users": "users.sqlite",
}
TEXT_NAMES = {"checkpoints": "checkpoints", "key_history": "checkpoints.keys"}


@dataclass(frozen=True)
class BackupSources:
    """Where a ledger's files are. :meth:`beside` gives the defaults, all beside the ledger."""

    ledger: Path
    key_store: Path
    request_log: Path
    users: Path
    checkpoints: Path
    key_history: Path

    @classmethod
    def beside(
        cls, ledger: Path, *, key_store: Path | None = None, checkpoints: Path | None = None
    ) -> BackupSources:
        checkpoint_file = checkpoints or default_checkpoint_file(ledger)
        return cls(
            ledger=ledger,
            key_store=key_store or ledger.with_name(ledger.name + ".keys.sqlite"),
            request_log=ledger.with_name(ledger.name + ".requests.sqlite"),
            users=ledger.with_name(ledger.name + ".users.sqlite"),
            checkpoints=checkpoint_file,
            key_history=key_history_file(checkpoint_file),
        )

    def stores(self) -> dict[str, Path]:
        return {"key_store": self.key_store, "request_log": self.request_log, "users": self.users}

    def texts(self) -> dict[str, Path]:
        return {"checkpoints": self.checkpoints, "key_history": self.key_history}


def prepare_destination(path: Path) -> Path:
    """The backup directory: an absolute path, new or empty (a backup never mixes with
    another's files), made with mode 0700 (it holds the subject keys)."""
    if not path.is_absolute():
        raise BackupError(
            f"the backup destination {path} is not an absolute path: give the full path of a "
            "new or empty directory"
        )
    if path.exists():
        if not path.is_dir():
            raise BackupError(f"the backup destination {path} exists and is not a directory")
        if any(path.iterdir()):
            raise BackupError(
                f"the backup destination {path} is not empty: give a new or empty directory "
                "(a backup never overwrites or mixes with another)"
            )
        return path
    if not path.parent.is_dir():
        raise BackupError(
            f"the backup destination's parent {path.parent} does not exist: create it first"
        )
    path.mkdir(mode=0o700)
    return path


def take_backup(
    sources: BackupSources,
    destination: Path,
    *,
    owner: Ledger | None = None,
    pause: Callable[[], AbstractContextManager[object]] | None = None,
) -> Manifest:
    """Snapshot ``sources`` into ``destination`` (new or empty) and write its manifest.

    ``owner``: the service's own connection to the ledger (then ``pause`` stops its
    writers); without it the ledger file is opened read-only here."""
    destination = prepare_destination(destination)
    taken_at = datetime.now(UTC)
    copied: list[tuple[str, str, Path]] = []  # (role, name, source)
    paused_ms: float | None = None
    if owner is not None:
        started = time.perf_counter()
        with pause() if pause is not None else nullcontext():
            owner.con.execute("CHECKPOINT")
            copied += _copy_ledger(sources.ledger, destination)
            copied += _copy_others(sources, destination, ("key_store",))
            paused_ms = (time.perf_counter() - started) * 1000
        # written by requests, never by ingestion: copied (consistently) as writers go on
        copied += _copy_others(sources, destination, ("request_log", "users"), texts=False)
    else:
        try:
            held = Ledger(sources.ledger, read_only=True)
        except LedgerLockedError as exc:
            raise BackupError(
                f"{exc}. If a ledger service holds it, ask the service for the backup: "
                "`disclosure-ledger backup --server URL --to DIR` (DIR on the service's machine)"
            ) from exc
        with held:
            copied += _copy_ledger(sources.ledger, destination)
            copied += _copy_others(sources, destination)
    manifest = _describe(destination, sources, taken_at, copied, paused_ms)
    manifest.write(destination)
    return manifest


def _copy_ledger(ledger: Path, destination: Path) -> list[tuple[str, str, Path]]:
    shutil.copyfile(ledger, destination / LEDGER_NAME)
    copied = [("ledger", LEDGER_NAME, ledger)]
    wal = ledger.with_name(ledger.name + ".wal")
    if wal.exists() and wal.stat().st_size > 0:
        shutil.copyfile(wal, destination / WAL_NAME)
        copied.append(("ledger-wal", WAL_NAME, wal))
    return copied


def _copy_others(
    sources: BackupSources,
    destination: Path,
    stores: tuple[str, ...] = ("key_store", "request_log", "users"),
    *,
    texts: bool = True,
) -> list[tuple[str, str, Path]]:
    copied = []
    for role, path in sources.stores().items():
        if role in stores and path.exists():
            _sqlite_backup(path, destination / STORE_NAMES[role])
            copied.append((role, STORE_NAMES[role], path))
    for role, path in sources.texts().items() if texts else ():
        if path.exists():
            shutil.copyfile(path, destination / TEXT_NAMES[role])
            copied.append((role, TEXT_NAMES[role], path))
    return copied


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while another connection writes."""
    try:
        src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from exc
    os.chmod(target, 0o600)


def _describe(
    destination: Path,
    sources: BackupSources,
    taken_at: datetime,
    copied: list[tuple[str, str, Path]],
    paused_ms: float | None,
) -> Manifest:
    """The manifest, read from the copy itself: what the backup holds, not what the
    ledger held a moment later."""
    try:
        with Ledger(destination / LEDGER_NAME, read_only=True) as copy:
            heads = current_heads(copy)
            rows_found = copy.con.execute("SELECT count(*) FROM disclosures").fetchone()
            entries = journal(copy)
    except LedgerError as exc:
        raise BackupError(
            f"the copy of {sources.ledger} in {destination} cannot be read: {exc}"
        ) from exc
    files = [
        BackupFile(
            role,
            name,
            str(source),
            sha256_of(destination / name),
            (destination / name).stat().st_size,
        )
        for role, name, source in copied
    ]
    return Manifest(
        taken_at=taken_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ledger=str(sources.ledger),
        rows=int(rows_found[0]) if rows_found else 0,
        chains={h.chain_id: {"length": h.length, "head": h.head.hex()} for h in heads},
        erasures=len(entries),
        newest_erasure_at=(
            entries[-1].erased_at.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if entries
            else None
        ),
        writers_paused_ms=None if paused_ms is None else round(paused_ms, 1),
        files=files,
    )
