"""``verify_ledger``: every check of a ledger, in one read snapshot.

1. The scan (:mod:`ledger.verify.scan`): every leaf recomputed and every link, sequence
   number and offset order checked, in DuckDB SQL on every core.
2. The diagnosis (:mod:`ledger.verify.diagnosis`) of each chain the scan found out of order
   or unlinked: what exactly is wrong, row by row.
3. The access log (:mod:`ledger.verify.access_log`): its own chain, ``access_log``.
4. Derived data (:func:`ledger.derived.check_derived`), checkpoints
   (:mod:`ledger.verify.checkpoints`) and offsets (:mod:`ledger.verify.offsets`).
5. The Merkle trees recomputed from the rows, and every checkpoint note (C2SP signed
   notes) against them (:mod:`ledger.verify.notes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoints import ledger_checkpoint_lines
from ledger.derived import check_derived
from ledger.key_history import KeyHistory
from ledger.lake import cursor_of
from ledger.store import Ledger
from ledger.verify.access_log import verify_access_log
from ledger.verify.checkpoints import verify_checkpoints
from ledger.verify.diagnosis import diagnose_chain
from ledger.verify.notes import verify_notes, verify_tree
from ledger.verify.offsets import verify_offsets
from ledger.verify.result import DERIVED, CheckpointSource, Failure, VerifyResult, row_altered
from ledger.verify.scan import (
    RANGE_ROWS,
    available_cores,
    scan_chains,
    use_threads,
    verify_whole_milliseconds,
)


def verify_ledger(
    ledger: Ledger,
    *,
    checkpoints: Sequence[CheckpointSource] = (),
    public_key: Ed25519PublicKey | None = None,
    key_history: KeyHistory | None = None,
    notes_dirs: Sequence[Path] = (),
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    range_rows: int = RANGE_ROWS,
) -> VerifyResult:
    """Verify ``ledger``; ``progress(rows_done, rows_total)`` is called as rows are checked.

    ``checkpoints`` are checked in addition to the ledger's own ``checkpoints`` table;
    signatures are checked when ``public_key`` is given (else a note says they were not),
    each with the key in force at its time when a ``key_history`` is given (``public_key``
    then anchors the history). The checkpoint notes of the ledger's ``checkpoint_notes``
    table are checked, and those of the directories ``notes_dirs`` (the notes directory, a
    copy of it).
    DuckDB works on ``threads`` threads, by default one for each core this process may run
    on; the scan reads ``range_rows`` rows at a time.
    """
    result = VerifyResult()
    con = cursor_of(ledger.con)  # one read transaction: every check sees the same rows
    restore_threads = use_threads(con, threads or available_cores())
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("BEGIN TRANSACTION")
        scan = scan_chains(con, range_rows=range_rows, progress=progress)
        result.rows = scan.rows
        for chain in sorted(scan.chains):
            state = scan.chains[chain]
            if state.dirty:
                diagnose_chain(con, chain, scan.leaf_bad.get(chain, set()), result)
            else:
                result.chains[chain] = (state.seq, state.head.hex())
                for seq, _ in sorted(scan.leaf_bad.get(chain, set())):
                    result.failures.append(row_altered(chain, seq))
        verify_whole_milliseconds(con, result)
        verify_access_log(con, result)
        for where, at, detail in check_derived(ledger):
            result.failures.append(Failure(where or DERIVED, at, "derived data altered", detail))
        sources = [
            CheckpointSource("the ledger's checkpoints table", ledger_checkpoint_lines(ledger))
        ]
        verify_checkpoints(con, [*sources, *checkpoints], public_key, result, key_history)
        bad_trees = verify_tree(con, result)
        verify_notes(
            con,
            result,
            public_key=public_key,
            key_history=key_history,
            directories=notes_dirs,
            bad_trees=bad_trees,
        )
        clean = not scan.leaf_bad and not any(state.dirty for state in scan.chains.values())
        verify_offsets(con, result, accepted_unique=clean)
        con.execute("ROLLBACK")
    finally:
        try:
            restore_threads()
        finally:
            con.close()
    return result
