"""Copies of the checkpoint notes, made as they are written, to a second place the ledger's
operator does not control (``checkpoint_copy_to``): a directory, a ``file://`` URL, or an
object store (``s3://bucket/prefix``, ``gs://…``, ``abfs://…``).

Every target goes through :mod:`pyarrow.fs` (already a dependency: no new library, and a
local directory takes the same code path as a bucket). The files are those of the notes
directory (:func:`ledger.checkpoint_notes.note_paths`), under the same relative paths:
``<chain>/checkpoints/<size>`` and ``manifests/<time>`` are written once and never
overwritten; ``<chain>/checkpoint`` and ``manifest`` (the newest) are replaced each time.

A copy that fails does not stop ingest and loses nothing: the checkpoint is in the ledger
and in the notes directory already. The failure is logged and counted
(:class:`CopyStatus`), and the files it missed stay pending; the next checkpoint copies
them first. The first copy after start compares the whole notes directory with the target,
so files a process that stopped never copied are copied too.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from ledger.errors import LedgerError

log = logging.getLogger(__name__)

MUTABLE = ("checkpoint", "manifest")
"""The names of the files that are replaced with every checkpoint (the newest)."""


def is_mutable(relative: str) -> bool:
    return relative.rsplit("/", 1)[-1] in MUTABLE


REMOTE_SCHEMES = frozenset({"s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs"})
"""Object stores :mod:`pyarrow.fs` opens from a URL (opened on first copy: it may need the
network, e.g. to find an S3 bucket's region when the URL gives no ``?region=``)."""


def check_target(target: str) -> str:
    """``target`` if it names a place this module can copy to; :class:`LedgerError` naming
    the setting if not. Needs no network: an unreachable store is a failed copy, later."""
    if not target.strip():
        raise LedgerError("DISCLOSURE_LEDGER_CHECKPOINT_COPY_TO is empty: unset it or name a place")
    if "://" in target:
        scheme = target.split("://", 1)[0].lower()
        if scheme != "file" and scheme not in REMOTE_SCHEMES:
            raise LedgerError(
                f"the checkpoint copy target {target!r} has the scheme {scheme!r}, which "
                "cannot be used: set DISCLOSURE_LEDGER_CHECKPOINT_COPY_TO to a directory, a "
                "file:// URL or an object store URL (s3://, gs://, abfs://, hdfs://)"
            )
        if scheme == "file":
            open_target(target)
    return target


def open_target(target: str) -> tuple[pafs.FileSystem, str]:
    """The file system and base path of a copy target (an object store may be asked over
    the network); :class:`LedgerError` naming the setting if it cannot be opened."""
    try:
        if "://" in target:
            filesystem, base = pafs.FileSystem.from_uri(target)
        else:
            filesystem, base = pafs.LocalFileSystem(), str(Path(target).absolute())
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise LedgerError(
            f"the checkpoint copy target {target!r} cannot be used: {exc}. Set "
            "DISCLOSURE_LEDGER_CHECKPOINT_COPY_TO to a directory, a file:// URL or an object "
            "store URL such as s3://bucket/prefix?region=eu-central-1"
        ) from exc
    return filesystem, base.rstrip("/")


@dataclass
class CopyStatus:
    """What the copies have done since the process started (status and metrics)."""

    target: str
    copied_files: int = 0
    failures: int = 0  # checkpoints whose copy failed, at least in part
    pending_files: int = 0
    last_error: str | None = None
    last_failure_at: datetime | None = None
    last_copied_at: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "copied_files": self.copied_files,
            "failures": self.failures,
            "pending_files": self.pending_files,
            "last_error": self.last_error,
            "last_failure_at": None
            if self.last_failure_at is None
            else self.last_failure_at.isoformat(),
            "last_copied_at": None
            if self.last_copied_at is None
            else self.last_copied_at.isoformat(),
        }


@dataclass
class CheckpointCopy:
    """Copies files of ``source`` (the notes directory) to ``target``."""

    source: Path
    target: str
    status: CopyStatus = field(init=False)
    _pending: set[str] = field(default_factory=set, init=False)
    _compared: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        check_target(self.target)
        self.status = CopyStatus(self.target)
        self._filesystem: pafs.FileSystem | None = None
        self._base = ""

    def _open(self) -> pafs.FileSystem:
        if self._filesystem is None:
            self._filesystem, self._base = open_target(self.target)
        return self._filesystem

    def copy(self, relative_paths: list[str]) -> bool:
        """Copy these files (relative to ``source``) and every one still pending; True if
        nothing is left pending. Never raises for a failed copy: it logs and counts it."""
        with self._lock:
            wanted = set(relative_paths) | self._pending
            try:
                self._open()
                if not self._compared:
                    wanted |= self._missing_at_target()
                    self._compared = True
            except (OSError, pa.ArrowException, LedgerError) as exc:
                self._failed(wanted, exc)
                return False
            left: set[str] = set()
            error: Exception | None = None
            for relative in sorted(wanted, key=lambda p: (is_mutable(p), p)):
                try:
                    self._copy_one(relative)
                    self.status.copied_files += 1
                except (OSError, pa.ArrowException) as exc:
                    left.add(relative)
                    error = exc
            if error is not None:
                self._failed(left, error)
                return False
            self._pending = set()
            self.status.pending_files = 0
            self.status.last_copied_at = datetime.now(UTC)
            return True

    def _failed(self, left: set[str], error: Exception) -> None:
        self._pending = left
        self.status.failures += 1
        self.status.pending_files = len(left)
        self.status.last_error = str(error)
        self.status.last_failure_at = datetime.now(UTC)
        log.warning(
            "checkpoint notes not copied to %s (%d file(s) pending, copied with the next "
            "checkpoint): %s",
            self.target,
            len(left),
            error,
        )

    def _copy_one(self, relative: str) -> None:
        local = self.source / relative
        if not local.exists():  # a mutable file replaced since: the newer one is copied
            return
        data = local.read_bytes()
        filesystem = self._open()
        path = f"{self._base}/{relative}"
        if not is_mutable(relative):
            info = filesystem.get_file_info(path)
            if info.type == pafs.FileType.File:
                return  # written once, never overwritten
        parent = path.rsplit("/", 1)[0]
        filesystem.create_dir(parent, recursive=True)
        if isinstance(filesystem, pafs.LocalFileSystem):
            temporary = path + ".tmp"  # a reader never sees half a file
            with filesystem.open_output_stream(temporary) as out:
                out.write(data)
            filesystem.move(temporary, path)
        else:  # an object store's PUT replaces the object whole
            with filesystem.open_output_stream(path) as out:
                out.write(data)

    def _missing_at_target(self) -> set[str]:
        """Every file of ``source`` not at the target (immutable ones) or to refresh."""
        if not self.source.is_dir():
            return set()
        local = {
            p.relative_to(self.source).as_posix()
            for p in self.source.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        }
        filesystem = self._open()
        selector = pafs.FileSelector(self._base, recursive=True, allow_not_found=True)
        there = {
            info.path[len(self._base) + 1 :]
            for info in filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File
        }
        return {p for p in local if is_mutable(p) or p not in there}
