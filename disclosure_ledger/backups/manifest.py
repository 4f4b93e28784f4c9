"""``manifest.json``: what a backup holds, and the hashes a restore checks first.

One JSON object: the format, when the snapshot was taken, the ledger it was taken of, each
chain's length and head and the row count, the erasure journal's length and newest entry,
how long the service's writers were paused, and every file's role, name, SHA-256 and size.
What a backup deliberately does not hold is listed under ``not_included``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disclosure_ledger.backups.errors import BackupError

MANIFEST = "manifest.json"
FORMAT = "disclosure-ledger-backup/1"

NOT_INCLUDED = {
    "checkpoint signing private key": (
        "kept out of every backup on purpose: whoever holds it can sign checkpoints. Back it "
        "up on its own (an offline copy, a password manager, an HSM), never beside the ledger"
    ),
    "subject secret": (
        "kept out of every backup on purpose: with it and the key store, pseudonyms can be "
        "linked to candidate ids. Back it up on its own, in a secrets store; a restore needs it"
    ),
}


@dataclass(frozen=True)
class BackupFile:
    """One file of a backup: its role (``ledger``, ``ledger-wal``, ``key_store``,
    ``request_log``, ``users``, ``checkpoints``, ``key_history``), its name in the backup
    directory, where it was taken from, its SHA-256 and size."""

    role: str
    name: str
    source: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass
class Manifest:
    taken_at: str  # RFC 3339 UTC
    ledger: str
    rows: int
    chains: dict[str, dict[str, Any]]  # chain id -> {"length", "head"}
    erasures: int
    newest_erasure_at: str | None
    writers_paused_ms: float | None  # None: taken directly on the files, no service
    files: list[BackupFile] = field(default_factory=list)

    def file(self, role: str) -> BackupFile | None:
        return next((f for f in self.files if f.role == role), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "taken_at": self.taken_at,
            "ledger": self.ledger,
            "rows": self.rows,
            "chains": self.chains,
            "erasure_journal": {"entries": self.erasures, "newest_at": self.newest_erasure_at},
            "writers_paused_ms": self.writers_paused_ms,
            "files": [f.to_json() for f in self.files],
            "not_included": NOT_INCLUDED,
        }

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: Path) -> Manifest:
    """The manifest of the backup in ``directory``; :class:`BackupError` if it is missing or
    not one this version wrote."""
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(
            f"{directory} holds no {MANIFEST}: it is not a backup `disclosure-ledger backup` "
            "wrote (give --from the directory that backup wrote)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read the backup manifest {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{path} is not a {FORMAT} manifest")
    try:
        journal = data["erasure_journal"]
        return Manifest(
            taken_at=str(data["taken_at"]),
            ledger=str(data["ledger"]),
            rows=int(data["rows"]),
            chains=dict(data["chains"]),
            erasures=int(journal["entries"]),
            newest_erasure_at=journal["newest_at"],
            writers_paused_ms=data.get("writers_paused_ms"),
            files=[
                BackupFile(
                    str(f["role"]),
                    str(f["name"]),
                    str(f["source"]),
                    str(f["sha256"]),
                    int(f["size"]),
                )
                for f in data["files"]
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"the backup manifest {path} is incomplete or malformed: {exc}") from exc


def check_files(directory: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is there with its size and SHA-256; else
    :class:`BackupError` naming each file that differs (nothing has been restored yet)."""
    problems = []
    for entry in manifest.files:
        path = directory / entry.name
        if Path(entry.name).name != entry.name:
            problems.append(f"{entry.name}: not a plain file name")
        elif not path.is_file():
            problems.append(f"{entry.name}: missing")
        elif path.stat().st_size != entry.size:
            problems.append(
                f"{entry.name}: {path.stat().st_size} bytes, the manifest says {entry.size}"
            )
        elif sha256_of(path) != entry.sha256:
            problems.append(f"{entry.name}: SHA-256 differs from the manifest's")
    if manifest.file("ledger") is None:
        problems.append("the manifest lists no ledger file")
    if problems:
        raise BackupError(
            f"the backup in {directory} does not match its manifest, so nothing was restored: "
            + "; ".join(problems)
            + ". Restore from another backup (or a copy of this one that matches)"
        )
