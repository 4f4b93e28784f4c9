"""Checkpoints against the chains: every signed head must still be the chain hash at its
length. A chain shorter than a checkpoint was truncated below it; another hash at that
length means the chain was rewritten since. Signatures are checked when a public key is
given, or, across key rotations, with the key in force at each checkpoint's time from the
key history (:mod:`ledger.key_history`). The access log is a chain like the others
(``access_log=<length>:<head>``), looked up in its own table; a checkpoint written before
it was covered simply does not name it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.access_log import ACCESS_CHAIN, has_access_log
from ledger.chain import GENESIS
from ledger.checkpoints import Checkpoint, key_id, parse_checkpoint
from ledger.errors import LedgerError
from ledger.key_history import KeyHistory
from ledger.verify.result import CHECKPOINTS, CheckpointSource, Failure, VerifyResult


def verify_checkpoints(
    con: duckdb.DuckDBPyConnection,
    sources: Sequence[CheckpointSource],
    public_key: Ed25519PublicKey | None,
    result: VerifyResult,
    key_history: KeyHistory | None = None,
) -> None:
    """Check every checkpoint line of ``sources``: its signature (with ``public_key``, or,
    given a ``key_history``, with the key in force at its time), then its heads against the
    chains. With a history, ``public_key`` is the anchor: it must be one of the history's
    keys, and the history's own signatures must hold."""
    signature_check = _signature_check(public_key, key_history, result)
    trusted: dict[str, tuple[Checkpoint, str]] = {}  # line -> (checkpoint, where)
    for source in sources:
        for number, line in enumerate(source.lines, start=1):
            where = f"{source.name}, checkpoint {number}"
            if line in trusted:
                continue
            try:
                checkpoint = parse_checkpoint(line)
            except LedgerError as exc:
                result.failures.append(
                    Failure(CHECKPOINTS, None, "bad signature", f"{where} is malformed: {exc}")
                )
                continue
            if signature_check is not None:
                problem = signature_check(checkpoint)
                if problem is not None:
                    result.failures.append(
                        Failure(
                            CHECKPOINTS,
                            None,
                            "bad signature",
                            f"{where} ({checkpoint.at}): {problem}",
                        )
                    )
                    continue
            trusted[line] = (checkpoint, where)
    result.signatures_checked = public_key is not None
    result.checkpoints = len(trusted)
    if trusted and public_key is None and key_history is None:
        result.notes.append(
            f"{len(trusted)} checkpoint(s) compared with the chains but their signatures were "
            "NOT checked: pass --public-key"
        )
    heads = [
        (head.chain_id, head.length, head.head, checkpoint.at, where)
        for checkpoint, where in trusted.values()
        for head in checkpoint.heads
        if head.length > 0
    ]
    if not heads:
        return
    at_length = _access_log_hashes(con, heads)
    disclosed = [(position, h) for position, h in enumerate(heads) if h[0] != ACCESS_CHAIN]
    probe = pa.table(
        {
            "chain_id": pa.array([h[0] for _, h in disclosed], pa.string()),
            "length": pa.array([h[1] for _, h in disclosed], pa.int64()),
            "position": pa.array([position for position, _ in disclosed], pa.int64()),
        }
    )
    con.register("_verify_heads", probe)
    try:
        found = con.execute(
            "SELECT p.position, list(d.chain_hash) FILTER (WHERE d.chain_hash IS NOT NULL) "
            "FROM _verify_heads p LEFT JOIN disclosures d "
            "ON d.chain_id = p.chain_id AND d.seq = p.length GROUP BY p.position"
        ).fetchall()
    finally:
        con.unregister("_verify_heads")
    at_length.update({int(pos): [bytes(h) for h in (hashes or [])] for pos, hashes in found})
    matched: dict[str, list[tuple[int, str]]] = {}
    problems: list[tuple[int, str, int, bytes, str, str]] = []
    for position, (chain, length, head, at, where) in enumerate(heads):
        if head in at_length.get(position, []):
            matched.setdefault(chain, []).append((length, at))
        else:
            problems.append((position, chain, length, head, at, where))
    reported: set[tuple[str, str, int]] = set()
    for _, chain, length, head, at, where in sorted(problems, key=lambda p: (p[1], p[2])):
        current = result.chains.get(chain, (0, GENESIS.hex()))[0]
        good = [m for m in matched.get(chain, []) if m[0] < length]
        since = (
            f"; rows up to seq {max(good)[0]} still match the checkpoint of {max(good)[1]}"
            if good
            else ""
        )
        if current < length:
            kind = "chain truncated below a checkpoint"
            seq = current + 1
            detail = (
                f"{where} ({at}) recorded {length} rows with head {head.hex()[:16]}…; the "
                f"ledger holds {current}{since}"
            )
        else:
            kind = "chain rewritten since a checkpoint"
            seq = length
            detail = (
                f"{where} ({at}) recorded head {head.hex()[:16]}… at seq {length}; the row "
                f"there now has another chain hash{since}"
            )
        key = (chain, kind, seq)
        if key in reported:
            continue
        reported.add(key)
        result.failures.append(Failure(chain, seq, kind, detail))


def _signature_check(
    public_key: Ed25519PublicKey | None, history: KeyHistory | None, result: VerifyResult
) -> Callable[[Checkpoint], str | None] | None:
    """How each checkpoint's signature is checked (None: it is not)."""
    if history is None:
        if public_key is None:
            return None
        given = key_id(public_key)

        def with_the_key(checkpoint: Checkpoint) -> str | None:
            problem = checkpoint.verify(public_key)
            if problem is not None and checkpoint.key_id != given:
                problem += (
                    "; if the signing key was rotated, checkpoints signed before the rotation "
                    "need the key history: pass --key-history (LEDGER.checkpoints.keys)"
                )
            return problem

        return with_the_key
    for problem in history.problems():
        result.failures.append(Failure(CHECKPOINTS, None, "bad key history", problem))
    if public_key is None:
        result.notes.append(
            f"checkpoint signatures were checked with the keys of {history.name}, but no "
            "--public-key anchors that history to a key you trust: pass --public-key (any key "
            "in the history; each key signs the next and the one before it)"
        )
    elif history.find(key_id(public_key)) is None:
        result.failures.append(
            Failure(
                CHECKPOINTS,
                None,
                "bad key history",
                f"the public key given ({key_id(public_key)}) is not in {history.name}: the "
                "history cannot be trusted through it",
            )
        )
    return history.check_checkpoint


def _access_log_hashes(
    con: duckdb.DuckDBPyConnection, heads: Sequence[tuple[str, int, bytes, str, str]]
) -> dict[int, list[bytes]]:
    """Position of each ``access_log`` head -> the chain hashes the access log holds at its
    length (none, or one: seq is the table's key)."""
    wanted = [(position, h[1]) for position, h in enumerate(heads) if h[0] == ACCESS_CHAIN]
    if not wanted or not has_access_log(con):
        return {position: [] for position, _ in wanted}
    probe = pa.table(
        {
            "position": pa.array([position for position, _ in wanted], pa.int64()),
            "length": pa.array([length for _, length in wanted], pa.int64()),
        }
    )
    con.register("_verify_access_heads", probe)
    try:
        rows = con.execute(
            "SELECT p.position, list(a.chain_hash) FILTER (WHERE a.chain_hash IS NOT NULL) "
            "FROM _verify_access_heads p LEFT JOIN access_log a ON a.seq = p.length "
            "GROUP BY p.position"
        ).fetchall()
    finally:
        con.unregister("_verify_access_heads")
    return {int(position): [bytes(h) for h in (hashes or [])] for position, hashes in rows}
