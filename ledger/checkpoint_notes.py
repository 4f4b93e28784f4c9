"""Checkpoints as C2SP signed notes: one ``tlog-checkpoint`` per chain, and a manifest.

Written with every checkpoint (:class:`ledger.checkpoints.Checkpointer`), beside the one-line
form that ``verify`` has always checked:

* each chain's checkpoint (:class:`ledger.notes.TreeHead`): origin ``<log origin>/<chain>``,
  the chain's row count, its Merkle root (:mod:`ledger.tree`), signed under that origin;
* the manifest, signed under the log origin itself, lists every chain with its size and root,
  the time and the reference-data version, so a chain left out is noticed::

      <log origin>
      disclosure-ledger-manifest/1
      time 2026-03-01T12:00:00.123Z
      reference 2026.11.0+d772838d
      tree privacy.disclosures.v1/0 1234 <base64 Merkle root>
      chain access_log 55 <base64 chain head>

  (the access log is a hash chain without a tree: its line gives the chain head).

They are stored in the ledger's ``checkpoint_notes`` table and as files in a directory
outside it (:func:`default_notes_dir`), laid out for publishing: ``<chain>/checkpoint`` is
the newest, ``<chain>/checkpoints/<size>`` every one; ``manifest`` and ``manifests/<time>``.

The log origin names the ledger. It is chosen once (the ``checkpoint_origin`` setting, or a
random one) and kept in ``ledger_meta``: a log's name never changes.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.access_log import ACCESS_CHAIN
from ledger.errors import LedgerError
from ledger.notes import Note, NoteError, TreeHead, check_name, sign_note
from ledger.tree import tree_root

CHECKPOINT_NOTES_DDL = """
CREATE TABLE IF NOT EXISTS checkpoint_notes (
    checkpoint_at TIMESTAMP NOT NULL, kind VARCHAR NOT NULL, chain_id VARCHAR,
    size BIGINT NOT NULL, note VARCHAR NOT NULL
);
"""

MANIFEST_MAGIC = "disclosure-ledger-manifest/1"
_ORIGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:/-]*[A-Za-z0-9._~-]")


def chain_origin(origin: str, chain_id: str) -> str:
    return check_name(f"{origin}/{chain_id}")


def check_origin(origin: str, source: str = "the checkpoint origin") -> str:
    if not _ORIGIN.fullmatch(origin) or "//" in origin:
        raise LedgerError(
            f"{source} {origin!r} is not a log origin: a schema-less URL such as "
            "example.com/disclosure-ledger (letters, digits, '.', '-', '_', '~', ':', '/'; no "
            "spaces or '+'); set DISCLOSURE_LEDGER_CHECKPOINT_ORIGIN"
        )
    return origin


def stored_origin(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("SELECT value FROM ledger_meta WHERE key = 'log_origin'").fetchone()
    return None if row is None else str(row[0])


def log_origin(con: duckdb.DuckDBPyConnection, wanted: str | None) -> str:
    """The ledger's log origin, recorded on first use (writer connection)."""
    held = stored_origin(con)
    if held is not None:
        if wanted and wanted != held:
            raise LedgerError(
                f"this ledger's checkpoints are published under the origin {held!r}, not "
                f"{wanted!r}: a log keeps its name. Unset DISCLOSURE_LEDGER_CHECKPOINT_ORIGIN, "
                f"or set it to {held!r}"
            )
        return held
    origin = check_origin(wanted) if wanted else f"disclosure-ledger.invalid/{secrets.token_hex(6)}"
    con.execute(
        "MERGE INTO ledger_meta USING (SELECT 'log_origin' AS key, ?::VARCHAR AS value) "
        "USING (key) WHEN NOT MATCHED THEN INSERT",
        [origin],
    )
    return stored_origin(con) or origin


@dataclass(frozen=True)
class ManifestEntry:
    chain_id: str
    size: int
    hash: bytes
    kind: str  # "tree": a Merkle root; "chain": a chain head (the access log)


@dataclass(frozen=True)
class Manifest:
    origin: str
    at: str
    reference_version: str
    entries: tuple[ManifestEntry, ...]

    @property
    def text(self) -> str:
        lines = [
            self.origin,
            MANIFEST_MAGIC,
            f"time {self.at}",
            f"reference {self.reference_version}",
        ]
        lines += [
            f"{e.kind} {e.chain_id} {e.size} {base64.b64encode(e.hash).decode('ascii')}"
            for e in sorted(self.entries, key=lambda e: e.chain_id)
        ]
        return "\n".join(lines) + "\n"


def parse_manifest(text: str) -> Manifest:
    lines = text.split("\n")
    if len(lines) < 5 or lines[-1] != "" or lines[1] != MANIFEST_MAGIC:
        raise NoteError(f"not a {MANIFEST_MAGIC} note")
    if not lines[2].startswith("time ") or not lines[3].startswith("reference "):
        raise NoteError("a manifest's lines 3 and 4 are 'time <RFC 3339>' and 'reference <v>'")
    entries = []
    for line in lines[4:-1]:
        parts = line.split(" ")
        if len(parts) != 4 or parts[0] not in ("tree", "chain") or not parts[2].isdigit():
            raise NoteError(f"manifest line {line!r} is not '<tree|chain> <id> <size> <b64>'")
        entries.append(
            ManifestEntry(
                parts[1], int(parts[2]), base64.b64decode(parts[3], validate=True), parts[0]
            )
        )
    return Manifest(lines[0], lines[2][5:], lines[3][10:], tuple(entries))


@dataclass(frozen=True)
class StoredNote:
    kind: str  # "checkpoint" or "manifest"
    chain_id: str | None
    size: int
    note: Note

    @property
    def encoded(self) -> str:
        return self.note.encoded


def sign_notes(
    con: duckdb.DuckDBPyConnection,
    signer: Ed25519PrivateKey,
    origin: str,
    heads: Iterable[tuple[str, int, bytes]],
    *,
    at: str,
    reference_version: str,
) -> list[StoredNote]:
    """The notes of one checkpoint: ``heads`` are ``(chain, length, chain head)`` as the
    one-line checkpoint has them; each disclosure chain's root is read from its tree."""
    notes: list[StoredNote] = []
    entries: list[ManifestEntry] = []
    for chain_id, size, head in sorted(heads):
        if chain_id == ACCESS_CHAIN:
            entries.append(ManifestEntry(chain_id, size, head, "chain"))
            continue
        head_root = tree_root(con, chain_id, size)
        entries.append(ManifestEntry(chain_id, size, head_root, "tree"))
        tree_head = TreeHead(chain_origin(origin, chain_id), size, head_root)
        notes.append(StoredNote("checkpoint", chain_id, size, tree_head.sign(signer)))
    manifest = Manifest(origin, at, reference_version, tuple(entries))
    notes.append(
        StoredNote(
            "manifest",
            None,
            sum(e.size for e in entries),
            sign_note(manifest.text, origin, signer),
        )
    )
    return notes


def store_notes(
    con: duckdb.DuckDBPyConnection, notes: Sequence[StoredNote], at: str, directory: Path
) -> None:
    """Insert into ``checkpoint_notes``, then write the files (each fsynced)."""
    con.execute(CHECKPOINT_NOTES_DDL)
    insert_notes(con, notes, at)
    write_note_files(directory, notes, at)


def insert_notes(con: duckdb.DuckDBPyConnection, notes: Sequence[StoredNote], at: str) -> None:
    """Insert into ``checkpoint_notes`` only (on a lake, inside the transaction that holds
    the chains' fences; the files are written after it commits)."""
    for stored in notes:
        con.execute(
            "INSERT INTO checkpoint_notes "
            "VALUES (strptime(?, '%Y-%m-%dT%H:%M:%S.%gZ'), ?, ?, ?, ?)",
            [at, stored.kind, stored.chain_id, stored.size, stored.encoded],
        )


def note_paths(notes: Sequence[StoredNote], at: str) -> list[tuple[str, str, bool]]:
    """``(relative path, content, immutable)`` of each file a checkpoint's notes make."""
    files: list[tuple[str, str, bool]] = []
    stamp = at.replace(":", "").replace("-", "")
    for stored in notes:
        if stored.kind == "manifest":
            files.append((f"manifests/{stamp}", stored.encoded, True))
            files.append(("manifest", stored.encoded, False))
        else:
            files.append((f"{stored.chain_id}/checkpoints/{stored.size}", stored.encoded, True))
            files.append((f"{stored.chain_id}/checkpoint", stored.encoded, False))
    return files


def write_note_files(directory: Path, notes: Sequence[StoredNote], at: str) -> None:
    for relative, content, _ in note_paths(notes, at):
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)


def has_notes(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the ledger has the ``checkpoint_notes`` table (older ledgers opened read-only
    do not)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'checkpoint_notes'"
    ).fetchone()
    return bool(found and found[0])


def default_notes_dir(ledger_path: Path) -> Path:
    """Beside, never inside, the ledger: ``LEDGER.checkpoint-notes/``."""
    return ledger_path.with_name(ledger_path.name + ".checkpoint-notes")


def ledger_notes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str | None, int, str]]:
    """Every stored note, oldest first: ``(at, kind, chain, size, note)``."""
    if not has_notes(con):
        return []
    return [
        (str(at), str(kind), None if chain is None else str(chain), int(size), str(note))
        for at, kind, chain, size, note in con.execute(
            "SELECT strftime(checkpoint_at, '%Y-%m-%dT%H:%M:%S.%gZ'), kind, chain_id, size, note "
            "FROM checkpoint_notes ORDER BY checkpoint_at, kind, chain_id"
        ).fetchall()
    ]


def covering_checkpoint(
    con: duckdb.DuckDBPyConnection, chain_id: str, seq: int
) -> tuple[int, str] | None:
    """The newest signed checkpoint note of ``chain_id`` whose tree holds row ``seq``:
    ``(size, note)``, or None if none does yet."""
    if not has_notes(con):
        return None
    row = con.execute(
        "SELECT size, note FROM checkpoint_notes WHERE kind = 'checkpoint' AND chain_id = ? "
        "AND size >= ? ORDER BY size DESC, checkpoint_at DESC LIMIT 1",
        [chain_id, seq],
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def checkpoint_at_size(con: duckdb.DuckDBPyConnection, chain_id: str, size: int) -> str | None:
    """The signed checkpoint note of ``chain_id`` at exactly ``size`` rows, if one was made."""
    if not has_notes(con):
        return None
    row = con.execute(
        "SELECT note FROM checkpoint_notes WHERE kind = 'checkpoint' AND chain_id = ? "
        "AND size = ? ORDER BY checkpoint_at DESC LIMIT 1",
        [chain_id, size],
    ).fetchone()
    return None if row is None else str(row[0])


def checkpointed_sizes(con: duckdb.DuckDBPyConnection, chain_id: str) -> list[int]:
    if not has_notes(con):
        return []
    return [
        int(r[0])
        for r in con.execute(
            "SELECT DISTINCT size FROM checkpoint_notes WHERE kind = 'checkpoint' "
            "AND chain_id = ? ORDER BY size",
            [chain_id],
        ).fetchall()
    ]
