"""Checking a proof bundle from files, with no ledger at hand (``verify-proof``).

* :func:`read_bundle`: a bundle file (``prove`` wrote it), with a clear error if it is not
  one.
* :func:`read_bundle_key`: the public key to check it with, from either file a verifier has:
  the PEM (or 64 hex digits) public key ``keys generate`` wrote, or a C2SP note verifier key
  ``<name>+<8 hex>+<base64>`` (one or more lines). A note key carries a name: it must be the
  bundle's origin (``<log origin>/<chain>``) or the log origin the chain's origin is under,
  since one Ed25519 key signs every chain's checkpoint under the chain's own name.
* :func:`check_bundle`: :func:`ledger.proofs.verify_bundle` with that key, the key's name
  checked first (step ``key``).
* :func:`check_subject`: that a bundle's row is about a given person: its pseudonym is
  ``HMAC-SHA-256(k_s, type 0x00 id)`` (:mod:`ledger.pseudonyms`), recomputed from the id and
  the subject key ``k_s`` given with a subject report's proofs (step ``subject``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoints import load_public_key
from ledger.errors import LedgerError
from ledger.notes import NoteError, Verifier
from ledger.proofs import FORMAT, Checked, verify_bundle

PSEUDONYM_FORMULA = (
    "pseudonym = hex(HMAC-SHA-256(key = subject_key, message = UTF-8(subject_type) || 0x00 || "
    "UTF-8(subject_id)))"
)


class ProofFileError(LedgerError):
    """A bundle or key file that cannot be read as one."""


@dataclass(frozen=True)
class BundleKey:
    """The public key to check bundles with; ``names``: the note key names it came with
    (empty for a PEM or hex key, which names no log)."""

    public_key: Ed25519PublicKey
    names: tuple[str, ...]
    source: str


def read_bundle(path: Path) -> dict[str, Any]:
    """The bundle in ``path``; :class:`ProofFileError` naming the file if it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProofFileError(f"cannot read the bundle file {path}: {exc}") from exc
    try:
        bundle = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProofFileError(
            f"{path} is not a proof bundle: it is not JSON ({exc}); give the file "
            "`disclosure-ledger prove` wrote (or one bundle of a subject report's proofs)"
        ) from exc
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise ProofFileError(
            f'{path} is not a {FORMAT} bundle (its "format" is not {FORMAT!r}); give the '
            "file `disclosure-ledger prove` wrote (or one bundle of a subject report's proofs)"
        )
    return bundle


def read_bundle_key(path: Path) -> BundleKey:
    """The key in ``path``: a PEM or hex Ed25519 public key, or note verifier key line(s)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProofFileError(f"cannot read the public key file {path}: {exc}") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and not text.startswith("-----BEGIN") and all("+" in line for line in lines):
        try:
            verifiers = [Verifier.parse(line) for line in lines]
        except NoteError as exc:
            raise ProofFileError(
                f"{path} is not a note verifier key ({exc}); give the .pub file or the note "
                "verifier key file `disclosure-ledger keys generate` wrote"
            ) from exc
        keys = {v.public_key.public_bytes_raw() for v in verifiers}
        if len(keys) != 1:
            raise ProofFileError(
                f"{path} holds verifier keys of {len(keys)} different public keys: give a file "
                "of one key (the ledger signs every chain with one key)"
            )
        return BundleKey(verifiers[0].public_key, tuple(v.name for v in verifiers), str(path))
    try:
        return BundleKey(load_public_key(path), (), str(path))
    except LedgerError as exc:
        raise ProofFileError(
            f"{path} is neither an Ed25519 public key (PEM or 64 hex digits) nor a note "
            "verifier key (<name>+<8 hex>+<base64>): give the .pub file or the note verifier "
            "key file that `disclosure-ledger keys generate` wrote"
        ) from exc


def _names_the_origin(names: tuple[str, ...], origin: str) -> bool:
    return any(origin == name or origin.startswith(name + "/") for name in names)


def check_bundle(bundle: Mapping[str, Any], key: BundleKey) -> Checked:
    """The bundle checked with ``key``; a note key must name the bundle's log first."""
    origin = str(bundle.get("origin"))
    if key.names and not _names_the_origin(key.names, origin):
        return Checked(
            False,
            "key",
            f"the verifier key in {key.source} is for {', '.join(key.names)}, not for the "
            f"bundle's log {origin}: give the key of that log (its name is the bundle's "
            "origin, or the ledger's origin it is under)",
        )
    return verify_bundle(bundle, key.public_key)


def subject_pseudonym(subject_key: bytes, subject_type: str, subject_id: str) -> str:
    """:data:`PSEUDONYM_FORMULA`: what the ledger stores for this person."""
    message = subject_type.encode("utf-8") + b"\x00" + subject_id.encode("utf-8")
    return hmac.new(subject_key, message, hashlib.sha256).hexdigest()


def check_subject(
    bundle: Mapping[str, Any], subject_type: str, subject_id: str, subject_key_hex: str
) -> Checked:
    """Whether the bundle's row is about this person (step ``subject``)."""
    try:
        subject_key = bytes.fromhex(subject_key_hex.strip())
    except ValueError:
        return Checked(
            False,
            "subject",
            "--subject-key is not hex: give the subject_key of the report's proofs",
        )
    leaf = bundle.get("leaf")
    if bundle.get("kind") != "inclusion" or not isinstance(leaf, Mapping):
        return Checked(False, "subject", "only an inclusion bundle holds a row's subject")
    expected = subject_pseudonym(subject_key, subject_type, subject_id)
    if leaf.get("subject_pseudonym") != expected or leaf.get("subject_type") != subject_type:
        return Checked(
            False,
            "subject",
            f"the row's subject is {leaf.get('subject_type')} {leaf.get('subject_pseudonym')}; "
            f"{subject_type} {subject_id} under the key given is {expected}: the row is not "
            "about this person, or the key or id is not the one the report gave",
        )
    return Checked(
        True,
        None,
        f"the row's pseudonym is that of {subject_type} {subject_id} ({PSEUDONYM_FORMULA})",
    )
