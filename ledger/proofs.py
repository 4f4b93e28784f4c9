"""Proof bundles: one self-contained JSON document that anyone can check without the ledger.

An **inclusion** bundle (``prove --event-id``) holds a row's leaf fields (the subject as its
pseudonym, never its id), its leaf index, the RFC 9162 inclusion path and the signed C2SP
checkpoint note of a tree that holds it. A **consistency** bundle (``prove --chain --from
--to``) holds the RFC 9162 consistency proof between two signed checkpoints of one chain.

:func:`verify_bundle` checks a bundle in four steps and names the first that fails:

1. ``leaf``: the leaf fields encode (:mod:`ledger.chain`) to the bundle's leaf hash;
2. ``signature``: the checkpoint note is signed by the public key given, under the chain's
   origin (:mod:`ledger.notes`);
3. ``root``: the signed checkpoint states the bundle's tree size and root;
4. ``path``: the inclusion (or consistency) proof leads from the leaf to that root.

What a proof shows, and what it does not: an inclusion proof shows that this row is in the
log the key holder signed, at this position; it never shows that a list of rows is complete.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.chain import LEAF_FIELDS, LEAF_PREFIX, encode_row
from ledger.checkpoint_notes import (
    chain_origin,
    checkpoint_at_size,
    checkpointed_sizes,
    stored_origin,
)
from ledger.errors import LedgerError
from ledger.lake import cursor_of
from ledger.leaf_sql import LEAF_SELECT
from ledger.merkle import root_from_inclusion_proof, verify_consistency
from ledger.notes import NoteError, Verifier, parse_checkpoint_text, parse_note
from ledger.tree import tree_consistency_proof, tree_inclusion_proof

FORMAT = "disclosure-ledger-proof/1"
INCLUSION_LIMITS = (
    "An inclusion proof shows that this row is in the log signed by the ledger's key, at "
    "this position, and that the row was not altered since. It does not show that a list of "
    "rows is complete: rows left out of an answer are not revealed by the proofs of the rows "
    "put in it."
)
CONSISTENCY_LIMITS = (
    "A consistency proof shows that the log of the larger size extends the log of the smaller "
    "one: no row of the smaller log was changed or removed. It says nothing of rows that were "
    "never written to the log."
)


class ProofError(LedgerError):
    """A proof cannot be made (unknown event, no covering checkpoint, no tree)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def leaf_fields(con: duckdb.DuckDBPyConnection, chain_id: str, seq: int) -> dict[str, Any]:
    row = con.execute(
        f"SELECT {LEAF_SELECT}, leaf_hash FROM disclosures WHERE chain_id = ? AND seq = ?",
        [chain_id, seq],
    ).to_arrow_table()
    if row.num_rows != 1:
        raise ProofError(f"chain {chain_id} has no row {seq}")
    values = row.to_pylist()[0]
    fields = {name: values[name] for name in LEAF_FIELDS}
    return {"fields": fields, "leaf_hash": bytes(values["leaf_hash"])}


def locate_event(con: duckdb.DuckDBPyConnection, event_id: str) -> tuple[str, int]:
    try:
        rows = con.execute(
            "SELECT chain_id, seq FROM disclosures WHERE event_id = ?::UUID", [event_id]
        ).fetchall()
    except duckdb.ConversionException as exc:
        raise ProofError(f"--event-id {event_id!r} is not a UUID") from exc
    if not rows:
        raise ProofError(
            f"event {event_id} is not in the ledger (it may be quarantined, a duplicate, or "
            "not ingested yet: see `disclosure-ledger status`)"
        )
    return str(rows[0][0]), int(rows[0][1])


def _origin_and_covering(
    con: duckdb.DuckDBPyConnection, chain_id: str, seq: int
) -> tuple[str | None, tuple[int, str] | None]:
    """The log origin and the newest checkpoint note of the chain whose tree holds row
    ``seq``, in one query (a ledger that never checkpointed has neither)."""
    try:
        row = con.execute(
            "SELECT (SELECT value FROM ledger_meta WHERE key = 'log_origin'), n.size, n.note "
            "FROM (SELECT 1) LEFT JOIN (SELECT size, note FROM checkpoint_notes "
            "WHERE kind = 'checkpoint' AND chain_id = $chain AND size >= "
            f"{int(seq)} ORDER BY size DESC, checkpoint_at DESC LIMIT 1) n ON true",
            {"chain": chain_id},
        ).fetchone()
    except duckdb.CatalogException:  # a ledger older than checkpoint notes
        return stored_origin(con), None
    if row is None:
        return None, None
    origin = None if row[0] is None else str(row[0])
    return origin, None if row[1] is None else (int(row[1]), str(row[2]))


def inclusion_bundle(con: duckdb.DuckDBPyConnection, chain_id: str, seq: int) -> dict[str, Any]:
    """The inclusion bundle of row ``seq`` of ``chain_id`` against the newest checkpoint
    that holds it.

    The row's fields are read on a second cursor while this one reads the covering
    checkpoint and then the inclusion path (on a 10M-row ledger about 6 ms against 2 + 5 ms:
    together they take the longer of the two, not the sum; docs/performance.md). Both read
    only rows the checkpoint covers, which never change, so the two snapshots agree."""
    with cursor_of(con) as other, ThreadPoolExecutor(max_workers=1) as pool:
        leaf_read = pool.submit(leaf_fields, other, chain_id, seq)
        origin, covering = _origin_and_covering(con, chain_id, seq)
        if origin is None or covering is None:
            leaf_read.cancel()
            raise ProofError(
                f"no signed checkpoint covers row {seq} of chain {chain_id} yet: checkpoints "
                "are written every DISCLOSURE_LEDGER_CHECKPOINT_EVERY_ROWS rows or _SECONDS "
                "seconds, and when the consumer stops cleanly; ask again after the next one"
            )
        size, note = covering
        path = tree_inclusion_proof(con, chain_id, seq - 1, size)
        leaf = leaf_read.result()
    head = parse_checkpoint_text(parse_note(note).text)
    return {
        "format": FORMAT,
        "kind": "inclusion",
        "chain": chain_id,
        "origin": chain_origin(origin, chain_id),
        "leaf": leaf["fields"],
        "leaf_hash": _b64(leaf["leaf_hash"]),
        "leaf_index": seq - 1,
        "tree_size": size,
        "root": _b64(head.root),
        "inclusion_path": [_b64(h) for h in path],
        "checkpoint": note,
        "limits": INCLUSION_LIMITS,
    }


def event_bundle(con: duckdb.DuckDBPyConnection, event_id: str) -> dict[str, Any]:
    chain_id, seq = locate_event(con, event_id)
    try:
        return inclusion_bundle(con, chain_id, seq)
    except ProofError as exc:
        raise ProofError(f"event {event_id}: {exc}") from exc


def consistency_bundle(
    con: duckdb.DuckDBPyConnection, chain_id: str, old: int, new: int
) -> dict[str, Any]:
    origin = stored_origin(con)
    notes = {size: checkpoint_at_size(con, chain_id, size) for size in (old, new)}
    if origin is None or None in notes.values() or not 0 < old <= new:
        sizes = checkpointed_sizes(con, chain_id)
        shown = ", ".join(str(s) for s in sizes[-20:]) or "none yet"
        raise ProofError(
            f"a consistency proof joins two signed checkpoints of chain {chain_id}, with "
            f"0 < --from <= --to; --from {old} --to {new} are not both checkpointed sizes. "
            f"Checkpointed sizes: {shown}"
        )
    old_note, new_note = str(notes[old]), str(notes[new])
    return {
        "format": FORMAT,
        "kind": "consistency",
        "chain": chain_id,
        "origin": chain_origin(origin, chain_id),
        "old_size": old,
        "new_size": new,
        "old_root": _b64(parse_checkpoint_text(parse_note(old_note).text).root),
        "new_root": _b64(parse_checkpoint_text(parse_note(new_note).text).root),
        "consistency_path": [_b64(h) for h in tree_consistency_proof(con, chain_id, old, new)],
        "old_checkpoint": old_note,
        "new_checkpoint": new_note,
        "limits": CONSISTENCY_LIMITS,
    }


# -- checking a bundle, with no ledger at hand -----------------------------------------------
@dataclass(frozen=True)
class Checked:
    ok: bool
    step: str | None  # the step that failed: leaf, signature, root or path
    detail: str


def _fail(step: str, detail: str) -> Checked:
    return Checked(False, step, detail)


def _decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{what} is not base64: {exc}") from exc


def verify_bundle(bundle: Mapping[str, Any], public_key: Ed25519PublicKey) -> Checked:
    """Check a bundle; the first failing step is named (see the module's docstring)."""
    if bundle.get("format") != FORMAT or bundle.get("kind") not in ("inclusion", "consistency"):
        return _fail("bundle", f"not a {FORMAT} bundle (format or kind missing)")
    try:
        if bundle["kind"] == "inclusion":
            return _verify_inclusion(bundle, public_key)
        return _verify_consistency(bundle, public_key)
    except (KeyError, TypeError, ValueError) as exc:
        return _fail("bundle", f"the bundle is malformed: {exc!r}")


def _check_note(encoded: Any, origin: str, public_key: Ed25519PublicKey) -> Checked | None:
    try:
        note = parse_note(str(encoded))
        note.verify(Verifier.of(origin, public_key))
    except NoteError as exc:
        return _fail("signature", f"the checkpoint's signature does not hold: {exc}")
    return None


def _signed_head(encoded: Any, origin: str, size: int, root: bytes) -> Checked | None:
    try:
        head = parse_checkpoint_text(parse_note(str(encoded)).text)
    except NoteError as exc:
        return _fail("root", f"the signed checkpoint is not a tlog-checkpoint: {exc}")
    if head.origin != origin:
        return _fail("root", f"the checkpoint is of {head.origin!r}, not {origin!r}")
    if head.size != size or head.root != root:
        return _fail(
            "root",
            f"the signed checkpoint states size {head.size} and root {_b64(head.root)}; the "
            f"bundle claims size {size} and root {_b64(root)}",
        )
    return None


def _verify_inclusion(bundle: Mapping[str, Any], public_key: Ed25519PublicKey) -> Checked:
    fields = bundle["leaf"]
    missing = [name for name in LEAF_FIELDS if name not in fields]
    if missing:
        return _fail("leaf", f"the leaf lacks the field(s) {', '.join(missing)}")
    extra = sorted(set(fields) - set(LEAF_FIELDS))
    if extra:  # a field the hash does not cover would read as proven
        return _fail(
            "leaf", f"the leaf holds field(s) the leaf hash does not cover: {', '.join(extra)}"
        )
    leaf_hash = _decode(bundle["leaf_hash"], "leaf_hash")
    recomputed = hashlib.sha256(LEAF_PREFIX + encode_row(fields)).digest()
    if recomputed != leaf_hash:
        return _fail(
            "leaf",
            f"the leaf fields hash to {_b64(recomputed)}, not to the bundle's leaf hash "
            f"{_b64(leaf_hash)}: a field was changed",
        )
    origin = str(bundle["origin"])
    if (failed := _check_note(bundle["checkpoint"], origin, public_key)) is not None:
        return failed
    size, index = int(bundle["tree_size"]), int(bundle["leaf_index"])
    claimed = _decode(bundle["root"], "root")
    if (failed := _signed_head(bundle["checkpoint"], origin, size, claimed)) is not None:
        return failed
    if fields.get("seq") != index + 1 or fields.get("chain_id") != bundle["chain"]:
        return _fail("leaf", "the leaf's chain and seq are not the bundle's chain and index + 1")
    path = [_decode(h, "inclusion_path item") for h in bundle["inclusion_path"]]
    reached = root_from_inclusion_proof(leaf_hash, index, size, path)
    if reached is None:
        return _fail(
            "path",
            f"the inclusion path has {len(path)} hashes, which no path of leaf {index} in a "
            f"tree of {size} has",
        )
    if reached != claimed:
        return _fail("path", f"the inclusion path leads to {_b64(reached)}, not to the root")
    return Checked(
        True,
        None,
        f"row {index + 1} of {bundle['chain']} is leaf {index} of the log of {size} rows "
        f"signed under {origin}",
    )


def _verify_consistency(bundle: Mapping[str, Any], public_key: Ed25519PublicKey) -> Checked:
    origin = str(bundle["origin"])
    for name in ("old_checkpoint", "new_checkpoint"):
        if (failed := _check_note(bundle[name], origin, public_key)) is not None:
            return failed
    old, new = int(bundle["old_size"]), int(bundle["new_size"])
    old_root = _decode(bundle["old_root"], "old_root")
    new_root = _decode(bundle["new_root"], "new_root")
    for note, size, claimed in (
        (bundle["old_checkpoint"], old, old_root),
        (bundle["new_checkpoint"], new, new_root),
    ):
        if (failed := _signed_head(note, origin, size, claimed)) is not None:
            return failed
    path = [_decode(h, "consistency_path item") for h in bundle["consistency_path"]]
    if not verify_consistency(old, new, path, old_root, new_root):
        return _fail(
            "path",
            f"the consistency proof does not lead from the root of size {old} to the root "
            f"of size {new}",
        )
    return Checked(
        True,
        None,
        f"the log of {new} rows extends the log of {old} rows, both signed under {origin}",
    )
