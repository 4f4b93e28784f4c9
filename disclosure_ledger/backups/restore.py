"""``restore``: a backup put back in place, with every erasure made since re-applied first.

The order, so that no reader ever sees a key store that holds an erased key:

1. The manifest's sizes and SHA-256 are checked; a mismatch refuses before anything moves.
2. A service on the ledger, or any process holding the ledger file, refuses the restore.
3. The erasure journal is read from the ledger now at the path (if there is one), before
   it is replaced, and from the backup's own ledger.
4. The backup is copied into a staging directory beside the ledger. There, journal entries
   the backup's ledger lacks are appended to it (with their recipients and notices), every
   journalled erasure is applied again to the staged key store
   (:func:`ledger.erasure.reapply_erasures`), the suppression list of the key store in place
   is carried into the staged one, and the staged request log forgets the erased subjects'
   pseudonyms.
5. Only then are the files moved into place. The files they replace are moved aside into
   ``LEDGER.before-restore-<time>/``, never deleted. A checkpoint file or key history
   already in place is kept (both are append-only: the one in place holds at least as much).

Limits: an erasure made after the backup is re-applied only if some journal still records
it; if the ledger was lost with the disk, its journal went with it. Keys created after the
backup are not in the restored key store: rows written under them can no longer be linked
to anyone. Rows appended after the backup are not in the restored ledger; the service
re-reads them from the source topic, from the offsets the restored ledger holds, as far as
the topic's retention still keeps them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from disclosure_ledger.backups.errors import BackupError
from disclosure_ledger.backups.manifest import Manifest, check_files, read_manifest
from disclosure_ledger.backups.snapshot import BackupSources
from ledger.erasure import journal, reapply_erasures
from ledger.errors import LedgerError, LedgerLockedError
from ledger.key_check import KeyStoreAccess
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger

JOURNAL_TABLES = ("erasures", "erasure_recipients", "erasure_notices")
_SIDECARS = {
    "ledger": (".wal",),
    "key_store": ("-journal", "-wal", "-shm"),
    "request_log": ("-journal", "-wal", "-shm"),
    "users": ("-journal", "-wal", "-shm"),
}


@dataclass
class RestoreOutcome:
    manifest: Manifest
    restored: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # append-only files already in place
    set_aside: Path | None = None
    journal_entries: int = 0  # erasures known after the restore
    since_snapshot: int = 0  # of which recorded after the snapshot (appended to the ledger)
    keys_deleted: int = 0  # keys the restored store still held, deleted again
    without_key_id: int = 0  # entries after the snapshot too old to carry a key id
    request_log_links: int = 0
    suppressions_carried: int = 0  # suppression-list entries made after the backup, kept
    current_ledger_read: bool = False
    key_store_restored: bool = False


def restore_backup(backup: Path, sources: BackupSources, secret: bytes) -> RestoreOutcome:
    """Restore the backup in ``backup`` to the paths of ``sources``; see the module."""
    manifest = read_manifest(backup)
    check_files(backup, manifest)
    _refuse_if_served(sources.ledger)
    current = _current_journal(sources.ledger)
    outcome = RestoreOutcome(manifest, current_ledger_read=sources.ledger.exists())
    targets = _targets(sources)
    staging = sources.ledger.with_name(sources.ledger.name + ".restoring")
    staging.parent.mkdir(parents=True, exist_ok=True)
    if staging.exists():  # an interrupted restore's copies: the backup still has them
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700)
    try:
        staged: dict[str, Path] = {}
        for entry in manifest.files:
            target = targets.get(entry.role)
            if target is None:
                continue
            staged[entry.role] = staging / target.name
            shutil.copyfile(backup / entry.name, staged[entry.role])
        _apply_erasures(staged, current, secret, outcome)
        if "key_store" in staged:
            outcome.suppressions_carried = _carry_suppressions(
                sources.key_store, staged["key_store"], secret
            )
        _move_into_place(staged, targets, sources.ledger, outcome)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return outcome


def _refuse_if_served(ledger: Path) -> None:
    from disclosure_ledger.service.state_file import read_service_state

    state = read_service_state(ledger)
    if state is not None:
        raise BackupError(
            f"a ledger service (process {state.pid}, {state.url}) serves {ledger}: stop it "
            "first (`disclosure-ledger service stop` or SIGTERM), then restore, then start it"
        )


def _targets(sources: BackupSources) -> dict[str, Path]:
    ledger = sources.ledger
    return {
        "ledger": ledger,
        "ledger-wal": ledger.with_name(ledger.name + ".wal"),
        **sources.stores(),
        **sources.texts(),
    }


@dataclass(frozen=True)
class _Journal:
    """The journal tables of the ledger in place, as rows by column name."""

    tables: dict[str, list[dict[str, Any]]]


def _current_journal(ledger_path: Path) -> _Journal:
    """The erasure journal of the ledger now at the path (read before it is replaced)."""
    if not ledger_path.exists():
        return _Journal({})
    try:
        ledger = Ledger(ledger_path, read_only=True)
    except LedgerLockedError as exc:
        raise BackupError(
            f"{exc}. Stop the process that holds it before restoring over it"
        ) from exc
    except LedgerError as exc:
        raise BackupError(
            f"the ledger now at {ledger_path} cannot be read ({exc}), so the erasures it "
            "records cannot be carried over: move it aside (keep it) and restore again; "
            "then re-run `erase-subject` for every erasure made since the backup"
        ) from exc
    with ledger:
        tables: dict[str, list[dict[str, Any]]] = {}
        present = {
            str(r[0])
            for r in ledger.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        for table in JOURNAL_TABLES:
            if table in present:
                cursor = ledger.con.execute(f"SELECT * FROM {table}")
                names = [d[0] for d in cursor.description]
                tables[table] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return _Journal(tables)


def _apply_erasures(
    staged: dict[str, Path], current: _Journal, secret: bytes, outcome: RestoreOutcome
) -> None:
    with Ledger(staged["ledger"]) as ledger:
        in_snapshot = {e.erasure_id for e in journal(ledger)}
        missing = [
            row
            for row in current.tables.get("erasures", [])
            if row["erasure_id"] not in in_snapshot
        ]
        _append_rows(ledger, "erasures", missing)
        ids = {row["erasure_id"] for row in missing}
        _append_rows(
            ledger,
            "erasure_recipients",
            [r for r in current.tables.get("erasure_recipients", []) if r["erasure_id"] in ids],
        )
        _append_missing_notices(ledger, current.tables.get("erasure_notices", []))
        entries = journal(ledger)
        pseudonyms = [
            str(r[0])
            for r in ledger.con.execute("SELECT subject_pseudonym FROM erasures").fetchall()
        ]
        outcome.journal_entries = len(entries)
        outcome.since_snapshot = len(missing)
        outcome.without_key_id = sum(1 for row in missing if row.get("key_id") is None)
        if "key_store" in staged:
            outcome.key_store_restored = True
            with SubjectKeyStore(
                staged["key_store"], secret, access=KeyStoreAccess.erase, ledger=ledger
            ) as keys:
                outcome.keys_deleted = reapply_erasures(keys, entries)
    if "request_log" in staged:
        from reports.request_log import RequestLog

        with RequestLog(staged["request_log"], secret) as log:
            outcome.request_log_links = sum(log.forget_pseudonym(p) for p in pseudonyms)


def _carry_suppressions(current: Path, staged: Path, secret: bytes) -> int:
    """The suppression list of the key store now in place, carried into the staged one: a
    subject erased after the backup while no key was held for them (nothing journalled)
    stays listed. A store in place that cannot be read (the reason for a restore, often)
    carries nothing."""
    if not current.exists():
        return 0
    try:
        with SubjectKeyStore(current, secret, access=KeyStoreAccess.read) as keys:
            entries = keys.suppression_entries()
    except (LedgerError, sqlite3.Error):  # unreadable, or older than the list
        return 0
    with SubjectKeyStore(staged, secret, access=KeyStoreAccess.erase) as keys:
        return keys.add_suppression_entries(entries)


def _append_rows(ledger: Ledger, table: str, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    placeholders = ", ".join("?" for _ in columns)
    ledger.con.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
        [[row[c] for c in columns] for row in rows],
    )


def _append_missing_notices(ledger: Ledger, notices: Sequence[dict[str, Any]]) -> None:
    """Notices (Art. 19) recorded after the snapshot, for any erasure."""
    if not notices:
        return
    cursor = ledger.con.execute("SELECT * FROM erasure_notices")
    names = [d[0] for d in cursor.description]
    have = {tuple(sorted(dict(zip(names, row, strict=True)).items())) for row in cursor.fetchall()}
    _append_rows(
        ledger,
        "erasure_notices",
        [n for n in notices if tuple(sorted(n.items())) not in have],
    )


def _move_into_place(
    staged: dict[str, Path], targets: dict[str, Path], ledger: Path, outcome: RestoreOutcome
) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = ledger.with_name(f"{ledger.name}.before-restore-{stamp}")

    def set_aside(path: Path) -> None:
        if not path.exists():
            return
        aside.mkdir(mode=0o700, exist_ok=True)
        os.replace(path, aside / path.name)
        outcome.set_aside = aside

    for role, path in staged.items():
        if not path.exists():  # the staged write-ahead log, folded into the staged ledger
            continue
        target = targets[role]
        if role in ("checkpoints", "key_history") and target.exists():
            outcome.kept.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        set_aside(target)
        # a journal or write-ahead log left beside the old file would be replayed onto the
        # restored one
        for suffix in _SIDECARS.get(role, ()):
            set_aside(target.with_name(target.name + suffix))
        os.replace(path, target)
        outcome.restored.append(target)


def restore_lines(outcome: RestoreOutcome, ledger: Path) -> list[str]:
    """What ``restore`` prints: what was restored, what was re-applied, and the limits."""
    manifest = outcome.manifest
    lines = [
        f"restored the backup taken at {manifest.taken_at} ({manifest.rows} ledger rows) to "
        f"{ledger}:",
        *(f"  {path}" for path in outcome.restored),
    ]
    for path in outcome.kept:
        lines.append(
            f"kept {path} in place: it is append-only and already holds what the backup's "
            "copy held (checkpoints after the backup describe rows the restored ledger no "
            "longer has: `verify --checkpoints` reports them until ingestion re-reads them)"
        )
    if outcome.set_aside is not None:
        lines.append(
            f"the files replaced were moved to {outcome.set_aside} (delete it once the "
            "restored ledger is back in service and verified)"
        )
    lines.append(
        f"erasure journal: {outcome.journal_entries} erasure(s); {outcome.since_snapshot} "
        "recorded after the backup, carried over from the ledger that was in place"
        if outcome.current_ledger_read
        else f"erasure journal: {outcome.journal_entries} erasure(s), from the backup only: "
        f"there was no ledger at {ledger} to carry later erasures over from"
    )
    if outcome.key_store_restored:
        lines.append(
            f"re-applied every journalled erasure to the restored key store before moving it "
            f"into place: {outcome.keys_deleted} key(s) it still held were deleted again"
        )
    else:
        lines.append("the backup holds no key store: no key was restored")
    if outcome.suppressions_carried:
        lines.append(
            f"kept {outcome.suppressions_carried} suppression-list entr(ies) made after the "
            "backup (subjects erased while no key was held for them)"
        )
    if outcome.request_log_links:
        lines.append(
            f"the restored request log forgot {outcome.request_log_links} link(s) to erased "
            "subjects"
        )
    if outcome.without_key_id:
        lines.append(
            f"WARNING: {outcome.without_key_id} erasure(s) after the backup were journalled "
            "before the journal kept key ids and could not be re-applied: run `erase-subject` "
            "again for those subjects"
        )
    lines += [
        "limits: an erasure made after this backup is re-applied only if a journal still "
        "records it (if the ledger was lost too, run `erase-subject` again for every erasure "
        "made since the backup, from your request records); keys created after the backup "
        "are not restored, so rows written under them can no longer be linked to anyone; "
        "rows appended after the backup are re-read from the source topic when ingestion "
        "resumes, as far as its retention still holds them.",
    ]
    return lines
