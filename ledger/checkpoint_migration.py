"""``migrate``'s part for checkpoints: the signed notes of one-line checkpoints written
before the notes existed, written beside them.

For each one-line checkpoint of the ledger's ``checkpoints`` table that has no notes yet:

1. its signature must hold, under the signing key or the key history beside the
   checkpoint file (a line that does not verify is not vouched for again);
2. every chain head it names must still be the chain hash at its length (a chain that no
   longer extends it is reported, and no note is signed for it);
3. the chain checkpoints at those sizes (roots of the trees the writer built on opening:
   :func:`ledger.tree.ensure_tree`) and a manifest with the line's own time and reference
   version are signed with the current signing key, stored in ``checkpoint_notes``, written
   to the notes directory and copied like new ones.

The one-line checkpoints and their file are left as they are, and stay verifiable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.access_log import ACCESS_CHAIN, has_access_log
from ledger.checkpoint_copy import CheckpointCopy
from ledger.checkpoint_notes import (
    ledger_notes,
    log_origin,
    note_paths,
    sign_notes,
    store_notes,
)
from ledger.checkpoints import Checkpoint, ledger_checkpoint_lines, parse_checkpoint
from ledger.errors import LedgerError
from ledger.key_history import check_signer_in_force, key_history_file, read_key_history
from ledger.store import Ledger


@dataclass
class NotesMigration:
    """What migrating the checkpoints did, and what it could not do."""

    signed: list[str] = field(default_factory=list)  # times of checkpoints given notes
    already: int = 0  # checkpoints that had notes
    without_key: list[str] = field(default_factory=list)  # left without notes: no key
    refused: list[tuple[str, str]] = field(default_factory=list)  # (time or line, why)
    copy_failed: bool = False


def migrate_checkpoint_notes(
    ledger: Ledger,
    signer: Ed25519PrivateKey | None,
    checkpoint_file: Path,
    *,
    notes_dir: Path,
    origin: str | None = None,
    copy_to: str | None = None,
) -> NotesMigration:
    """Sign the notes of every old one-line checkpoint without them (writer connection)."""
    outcome = NotesMigration()
    lines = ledger_checkpoint_lines(ledger)
    noted = {at for at, kind, _, _, _ in ledger_notes(ledger.con) if kind == "manifest"}
    todo: list[Checkpoint] = []
    for number, line in enumerate(lines, start=1):
        try:
            checkpoint = parse_checkpoint(line)
        except LedgerError as exc:
            outcome.refused.append((f"checkpoint {number}", f"malformed: {exc}"))
            continue
        if checkpoint.at in noted:
            outcome.already += 1
            continue
        todo.append(checkpoint)
    if not todo:
        return outcome
    if signer is None:
        outcome.without_key = [c.at for c in todo]
        return outcome
    check_signer_in_force(signer, checkpoint_file)
    history_path = key_history_file(checkpoint_file)
    history = read_key_history(history_path) if history_path.exists() else None
    origin = log_origin(ledger.con, origin)
    copy = None if copy_to is None else CheckpointCopy(notes_dir, copy_to)
    copied: list[str] = []
    for checkpoint in todo:
        problem = (
            history.check_checkpoint(checkpoint)
            if history is not None
            else checkpoint.verify(signer.public_key())
        )
        if problem is not None:
            outcome.refused.append((checkpoint.at, f"its signature does not hold: {problem}"))
            continue
        moved = _heads_moved(ledger, checkpoint)
        if moved:
            outcome.refused.append((checkpoint.at, moved))
            continue
        notes = sign_notes(
            ledger.con,
            signer,
            origin,
            [(h.chain_id, h.length, h.head) for h in checkpoint.heads],
            at=checkpoint.at,
            reference_version=checkpoint.reference_version,
        )
        store_notes(ledger.con, notes, checkpoint.at, notes_dir)
        copied += [relative for relative, _, _ in note_paths(notes, checkpoint.at)]
        outcome.signed.append(checkpoint.at)
    if copy is not None and copied:
        outcome.copy_failed = not copy.copy(copied)
    return outcome


def _heads_moved(ledger: Ledger, checkpoint: Checkpoint) -> str | None:
    """What no longer matches between the checkpoint's heads and the rows (None: all do)."""
    for head in checkpoint.heads:
        if head.length == 0:
            continue
        if head.chain_id == ACCESS_CHAIN:
            row = (
                ledger.con.execute(
                    "SELECT chain_hash FROM access_log WHERE seq = ?", [head.length]
                ).fetchone()
                if has_access_log(ledger.con)
                else None
            )
        else:
            row = ledger.con.execute(
                "SELECT chain_hash FROM disclosures WHERE chain_id = ? AND seq = ?",
                [head.chain_id, head.length],
            ).fetchone()
        if row is None or bytes(row[0]) != head.head:
            return (
                f"chain {head.chain_id} no longer extends it (head at seq {head.length} "
                "differs or is gone): run `disclosure-ledger verify`"
            )
    return None
