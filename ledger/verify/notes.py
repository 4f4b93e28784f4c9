"""The Merkle trees and the checkpoint notes (C2SP signed notes) against the rows.

* The tree (:func:`verify_tree`): every stored node of every chain recomputed from the rows'
  leaf hashes (:func:`ledger.tree.check_tree`).
* Every stored note (:func:`verify_notes`): the ledger's ``checkpoint_notes`` table, and the
  notes directories given (the one beside the ledger, its copy):

  - its signature, with a :class:`~ledger.notes.Verifier` derived from the note's own origin
    and the public key given; with a key history, by a key of the history in force at the
    note's time or later (``migrate`` signs old checkpoints with the current key), never by
    a key already superseded at that time;
  - its origin: the ledger's log origin (a manifest) or ``<log origin>/<chain>``;
  - each chain checkpoint's root: equal to the root of the tree recomputed from the rows at
    that size (a chain shorter than the size was truncated below it);
  - each manifest: every entry's root (or, for the access log, its chain head) likewise; and
    every chain that had rows at its time is listed. A chain had rows at the manifest's time
    if the one-line checkpoint of that time or before names it, or an earlier manifest
    lists it: a chain left out of a manifest is noticed. On a lake, where each instance
    checkpoints the chains it holds, a manifest must list the chains its writer still holds
    (:class:`_Fences`).

Failures are reported as the other checks' are (:mod:`ledger.verify.result`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.access_log import ACCESS_CHAIN, has_access_log
from ledger.checkpoint_notes import (
    MANIFEST_MAGIC,
    Manifest,
    ledger_notes,
    parse_manifest,
    stored_origin,
)
from ledger.checkpoints import Checkpoint, parse_checkpoint
from ledger.errors import LedgerError
from ledger.fence import owner_of
from ledger.key_history import KeyHistory
from ledger.merkle import MissingNodes, root
from ledger.notes import Note, NoteError, Verifier, parse_checkpoint_text, parse_note
from ledger.tree import LedgerNodes, build_nodes, check_tree, tree_root
from ledger.verify.result import CHECKPOINTS, Failure, VerifyResult

TREE_ALTERED = "tree altered"
ROW_KINDS = frozenset({"row altered", "row deleted", "row inserted", "rows reordered"})
CHAIN_MISSING = "chain missing from a manifest"


def verify_tree(con: duckdb.DuckDBPyConnection, result: VerifyResult) -> set[str]:
    """Every stored node recomputed from the rows; returns the chains whose nodes differ.

    A chain whose rows already failed (altered, deleted, reordered) has a tree that differs
    too, as a consequence: only the rows' failures are reported for it."""
    failed_rows = {f.chain_id for f in result.failures if f.kind in ROW_KINDS}
    bad: set[str] = set()
    for chain, detail in check_tree(con):
        bad.add(chain)
        if chain not in failed_rows:
            result.failures.append(Failure(chain, None, TREE_ALTERED, detail))
    return bad


@dataclass(frozen=True)
class NoteFile:
    """One note and where it was found; ``at`` is its time, when the place records it."""

    where: str
    encoded: str
    at: str | None


def table_notes(con: duckdb.DuckDBPyConnection) -> list[NoteFile]:
    return [
        NoteFile(
            f"checkpoint_notes table, {kind} {chain or ''} at {at}".replace("  ", " "), note, at
        )
        for at, kind, chain, _, note in ledger_notes(con)
    ]


def directory_notes(directory: Path) -> list[NoteFile]:
    """Every note file under ``directory`` (the layout of :func:`note_paths`)."""
    if not directory.is_dir():
        raise LedgerError(
            f"the notes directory {directory} does not exist: give the directory the "
            "checkpoint notes were written to (LEDGER.checkpoint-notes) or copied to"
        )
    found = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            text = f"unreadable: {exc}"
        found.append(NoteFile(str(path), text, None))
    return found


class _Roots:
    """Tree roots recomputed from the rows (stored nodes, once checked, else rebuilt)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, bad_trees: set[str], failed_rows: set[str]
    ) -> None:
        self.con = con
        self.bad_trees = bad_trees
        self.failed_rows = failed_rows  # chains whose rows failed: roots not compared
        self.skipped: set[str] = set()
        self.lengths = {
            str(c): int(n)
            for c, n in con.execute(
                "SELECT chain_id, max(seq) FROM disclosures GROUP BY chain_id"
            ).fetchall()
        }
        self._cache: dict[tuple[str, int], bytes] = {}
        self._rebuilt: dict[str, dict[tuple[int, int], bytes]] = {}

    def root(self, chain: str, size: int) -> bytes:
        key = (chain, size)
        if key not in self._cache:
            if chain in self.bad_trees:
                self._cache[key] = root(size, _RebuiltNodes(self.con, chain, self._nodes(chain)))
            else:
                self._cache[key] = tree_root(self.con, chain, size)
        return self._cache[key]

    def _nodes(self, chain: str) -> dict[tuple[int, int], bytes]:
        if chain not in self._rebuilt:
            table = build_nodes(self.con, chain)
            self._rebuilt[chain] = {
                (int(level), int(idx)): bytes(h)
                for level, idx, h in zip(
                    table.column("level").to_pylist(),
                    table.column("idx").to_pylist(),
                    table.column("hash").to_pylist(),
                    strict=True,
                )
            }
        return self._rebuilt[chain]


class _RebuiltNodes:
    def __init__(
        self, con: duckdb.DuckDBPyConnection, chain: str, nodes: dict[tuple[int, int], bytes]
    ) -> None:
        self.leaves = LedgerNodes(con, chain)
        self.nodes = nodes

    def stored(self, wanted: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], bytes]:
        got = self.leaves.stored([w for w in wanted if w[0] == 0])
        for level, first, last in wanted:
            if level:
                got.update(
                    {
                        (level, i): self.nodes[(level, i)]
                        for i in range(first, last + 1)
                        if (level, i) in self.nodes
                    }
                )
        return got


def verify_notes(
    con: duckdb.DuckDBPyConnection,
    result: VerifyResult,
    *,
    public_key: Ed25519PublicKey | None,
    key_history: KeyHistory | None = None,
    directories: Sequence[Path] = (),
    bad_trees: set[str] | None = None,
) -> None:
    """Check every note of the ledger's table and of ``directories``; adds failures, and
    the number of notes checked, to ``result``."""
    found = table_notes(con)
    for directory in directories:
        found += directory_notes(directory)
    if not found:
        return
    origin = stored_origin(con)
    roots = _Roots(
        con, bad_trees or set(), {f.chain_id for f in result.failures if f.kind in ROW_KINDS}
    )
    signatures = _Signatures(public_key, key_history)
    seen: set[str] = set()
    manifests: list[tuple[Manifest, str]] = []
    checked = 0
    for item in found:
        if item.encoded in seen:
            continue
        seen.add(item.encoded)
        try:
            note = parse_note(item.encoded)
        except NoteError as exc:
            result.failures.append(
                Failure(CHECKPOINTS, None, "bad signature", f"{item.where} is malformed: {exc}")
            )
            continue
        note_origin = note.text.split("\n", 1)[0]
        is_manifest = note.text.split("\n")[1:2] == [MANIFEST_MAGIC]
        try:
            manifest = parse_manifest(note.text) if is_manifest else None
            head = None if is_manifest else parse_checkpoint_text(note.text)
        except NoteError as exc:
            result.failures.append(
                Failure(CHECKPOINTS, None, "bad signature", f"{item.where} is malformed: {exc}")
            )
            continue
        at = manifest.at if manifest is not None else item.at
        problem = signatures.check(note, note_origin, at)
        if problem is not None:
            result.failures.append(
                Failure(CHECKPOINTS, None, "bad signature", f"{item.where}: {problem}")
            )
            continue
        checked += 1
        if origin is None or not (note_origin == origin or note_origin.startswith(origin + "/")):
            result.failures.append(
                Failure(
                    CHECKPOINTS,
                    None,
                    "bad signature",
                    f"{item.where}: origin {note_origin!r} is not this ledger's log origin "
                    f"({origin or 'none recorded'}) or one of its chains",
                )
            )
            continue
        if manifest is not None:
            if note_origin != origin:
                result.failures.append(
                    Failure(
                        CHECKPOINTS,
                        None,
                        "bad signature",
                        f"{item.where}: a manifest signed under {note_origin!r}, not under "
                        f"the log origin {origin!r}",
                    )
                )
                continue
            manifests.append((manifest, item.where))
            for entry in manifest.entries:
                if entry.kind == "chain":
                    _check_access_head(con, result, item.where, entry.size, entry.hash)
                else:
                    _check_root(roots, result, item.where, entry.chain_id, entry.size, entry.hash)
        elif head is not None:
            chain = note_origin[len(origin) + 1 :]
            _check_root(roots, result, item.where, chain, head.size, head.root)
    _check_manifests_complete(con, result, manifests, signatures)
    result.notes_checked += checked
    if checked and public_key is None and key_history is None:
        result.notes.append(
            f"{checked} checkpoint note(s) compared with the trees but their signatures were "
            "NOT checked: pass --public-key"
        )
    signatures.explain(result)
    if roots.skipped:
        result.notes.append(
            "the checkpoint notes' Merkle roots of "
            + ", ".join(sorted(roots.skipped))
            + " were not compared: the rows of these chains already failed"
        )


def _add(result: VerifyResult, failure: Failure) -> None:
    """Add ``failure`` unless the same (chain, kind, seq) is already reported (the one-line
    checkpoint of the same time finds the same truncation or rewrite)."""
    key = (failure.chain_id, failure.kind, failure.seq)
    if any((f.chain_id, f.kind, f.seq) == key for f in result.failures):
        return
    result.failures.append(failure)


def _check_root(
    roots: _Roots, result: VerifyResult, where: str, chain: str, size: int, signed: bytes
) -> None:
    if size == 0:
        return
    if chain in roots.failed_rows:
        roots.skipped.add(chain)
        return
    length = roots.lengths.get(chain, 0)
    if length < size:
        _add(
            result,
            Failure(
                chain,
                length + 1,
                "chain truncated below a checkpoint",
                f"{where} signed a tree of {size} rows; the ledger holds {length}",
            ),
        )
        return
    try:
        got = roots.root(chain, size)
    except MissingNodes as exc:
        _add(result, Failure(chain, None, TREE_ALTERED, f"{where}: {exc}"))
        return
    if got != signed:
        _add(
            result,
            Failure(
                chain,
                size,
                "chain rewritten since a checkpoint",
                f"{where} signed the Merkle root {signed.hex()[:16]}… of the first {size} rows; "
                f"the rows now give {got.hex()[:16]}…",
            ),
        )


def _check_access_head(
    con: duckdb.DuckDBPyConnection, result: VerifyResult, where: str, size: int, head: bytes
) -> None:
    if size == 0:
        return
    row, length = None, 0
    if has_access_log(con):
        row = con.execute("SELECT chain_hash FROM access_log WHERE seq = ?", [size]).fetchone()
        length = int(con.execute("SELECT coalesce(max(seq), 0) FROM access_log").fetchone()[0])  # type: ignore[index]
    if row is None:
        _add(
            result,
            Failure(
                ACCESS_CHAIN,
                length + 1,
                "chain truncated below a checkpoint",
                f"{where} names access log entry {size}; the ledger has no such entry",
            ),
        )
    elif bytes(row[0]) != head:
        _add(
            result,
            Failure(
                ACCESS_CHAIN,
                size,
                "chain rewritten since a checkpoint",
                f"{where} signed head {head.hex()[:16]}… at entry {size}; the entry there now "
                "has another chain hash",
            ),
        )


def _check_manifests_complete(
    con: duckdb.DuckDBPyConnection,
    result: VerifyResult,
    manifests: list[tuple[Manifest, str]],
    signatures: _Signatures,
) -> None:
    """Every chain that had rows at a manifest's time is in it: named by a one-line
    checkpoint of that time or before, or listed by an earlier manifest."""
    named: list[tuple[str, set[str]]] = []  # (time, chains) of each one-line checkpoint
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "checkpoints" in tables:
        for (line,) in con.execute("SELECT line FROM checkpoints").fetchall():
            try:
                checkpoint = parse_checkpoint(str(line))
            except LedgerError:
                continue  # reported by the checkpoint line check
            if not signatures.trusts_line(checkpoint):
                continue  # a line with a bad signature says nothing (reported there)
            named.append((checkpoint.at, {h.chain_id for h in checkpoint.heads if h.length}))
    fences = _Fences(con)
    reported: set[tuple[str, str]] = set()
    ordered = sorted(manifests, key=lambda m: m[0].at)
    for manifest, where in ordered:
        listed = {e.chain_id for e in manifest.entries}
        expected: dict[str, str] = {}
        for at, chains in named:
            if at <= manifest.at:
                for chain in chains:
                    expected.setdefault(chain, f"the one-line checkpoint of {at} names it")
        for earlier, _ in ordered:
            if earlier.at < manifest.at:
                for entry in earlier.entries:
                    if entry.size:
                        expected.setdefault(
                            entry.chain_id, f"the manifest of {earlier.at} lists it"
                        )
        if fences.writers_of(manifest.at, listed):
            expected = fences.expected(manifest.at, listed, expected)
        for chain in sorted(set(expected) - listed):
            if (chain, manifest.at) in reported:
                continue
            reported.add((chain, manifest.at))
            _add(
                result,
                Failure(
                    chain,
                    None,
                    CHAIN_MISSING,
                    f"{where} ({manifest.at}) does not list chain {chain}, which had rows at "
                    f"its time: {expected[chain]}",
                ),
            )


class _Fences:
    """A lake's ``checkpoint_fences``: which writer stored each chain of each checkpoint, at
    which fence epoch, and each chain's epoch now (:mod:`ledger.fence`).

    On a lake several instances each checkpoint the chains they hold, so a manifest lists
    its writer's chains only. Such a manifest must list every chain its writer checkpointed
    at or before its time at an epoch that is still the chain's epoch now: epochs only grow,
    so that writer held the chain from that checkpoint until now, this manifest's time
    included. A chain claimed by another instance since is that instance's to list. Besides,
    the access log: every manifest lists it once any checkpoint named it."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.records: list[tuple[str, str, str, int]] = []  # (at, writer, chain, epoch)
        self.current: dict[str, int] = {}
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "checkpoint_fences" not in tables:
            return
        self.records = [
            (str(at), str(writer), str(chain), int(epoch))
            for at, writer, chain, epoch in con.execute(
                "SELECT strftime(checkpoint_at, '%Y-%m-%dT%H:%M:%S.%gZ'), writer, chain_id, "
                "epoch FROM checkpoint_fences"
            ).fetchall()
        ]
        for chain in {r[2] for r in self.records}:
            owner = owner_of(con, chain)
            if owner is not None:
                self.current[chain] = owner[0]

    def writers_of(self, at: str, listed: set[str]) -> set[str]:
        return {w for a, w, chain, _ in self.records if a == at and chain in listed}

    def expected(self, at: str, listed: set[str], named: dict[str, str]) -> dict[str, str]:
        writers = self.writers_of(at, listed)
        expected = {ACCESS_CHAIN: named[ACCESS_CHAIN]} if ACCESS_CHAIN in named else {}
        for a, writer, chain, epoch in sorted(self.records):
            if writer in writers and a <= at and self.current.get(chain) == epoch:
                expected.setdefault(
                    chain,
                    f"its writer {writer} checkpointed it at {a} under fence epoch {epoch}, "
                    "which is still the chain's",
                )
        return expected


class _Signatures:
    """How a note's signature is checked: with the public key, or the key history."""

    def __init__(self, public_key: Ed25519PublicKey | None, history: KeyHistory | None) -> None:
        self.public_key = public_key
        self.history = history
        self.timeless = 0

    def check(self, note: Note, origin: str, at: str | None) -> str | None:
        try:
            if self.history is None:
                if self.public_key is None:
                    return None
                try:
                    note.verify(Verifier.of(origin, self.public_key))
                except NoteError as exc:
                    return (
                        f"{exc}; if the signing key was rotated, notes signed before the "
                        "rotation need the key history: pass --key-history"
                    )
                return None
            return self._with_history(note, origin, at)
        except NoteError as exc:
            return str(exc)

    def _with_history(self, note: Note, origin: str, at: str | None) -> str | None:
        assert self.history is not None
        entries = list(self.history.entries)
        first = 0
        if at is None:
            self.timeless += 1
        else:
            current = self.history.in_force(at)
            first = entries.index(current) if current is not None else len(entries)
        ids = {(s.name, s.key_id) for s in note.signatures}
        for number, entry in enumerate(entries):
            verifier = Verifier.of(origin, entry.public_key)
            if (verifier.name, verifier.key_id) not in ids:
                continue
            if number < first:
                return (
                    f"signed by key {entry.key}, which the key history had superseded by its "
                    f"time ({at})"
                )
            note.verify(verifier)
            return None
        return f"no signature by a key of the key history {self.history.name} under {origin!r}"

    def trusts_line(self, checkpoint: Checkpoint) -> bool:
        """Whether a one-line checkpoint's signature holds (every line, with no key)."""
        if self.history is not None:
            return self.history.check_checkpoint(checkpoint) is None
        if self.public_key is not None:
            return checkpoint.verify(self.public_key) is None
        return True

    def explain(self, result: VerifyResult) -> None:
        if self.timeless:
            result.notes.append(
                f"{self.timeless} checkpoint note file(s) carry no time: each was accepted "
                "signed by any key of the key history"
            )
