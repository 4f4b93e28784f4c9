"""The secrets commands need, from the settings: the subject secret and the signing key.

Each is asked for only by the commands that use it, and a missing one is a clear error
naming the variable to set. A subject secret is checked against the key store's key-check
value whenever the store is opened (:mod:`ledger.key_check`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.settings import load_settings
from ledger.key_check import KeyStoreAccess
from ledger.lake import LakeLocation
from ledger.pseudonyms import SubjectKeyStore
from ledger.state_db import StateLocation, state_location

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.store import Ledger

__all__ = ["default_key_store", "signing_key", "subject_keys", "subject_secret"]


def default_key_store(ledger: Path | LakeLocation) -> StateLocation:
    """The per-subject keys live beside, never inside, the ledger: ``LEDGER.keys.sqlite``
    beside a file, the lake's PostgreSQL database beside a lake (:mod:`ledger.state_db`)."""
    return state_location(ledger, ".keys.sqlite", "subject_keys")


def subject_keys(
    ledger_path: Path | LakeLocation,
    key_store: Path | None,
    *,
    access: KeyStoreAccess,
    ledger: Ledger | None = None,
) -> SubjectKeyStore:
    """The subject key store (default: beside the ledger), opened with the subject secret.

    Opening it checks the secret (:mod:`ledger.key_check`): a wrong one is a
    :class:`~ledger.errors.WrongSecretError` naming the store, before anything is recorded.
    ``ledger``, the open ledger if the command has one, can prove the secret of a store
    created before key stores kept a check value.
    """
    path = key_store or default_key_store(ledger_path)
    local = ledger_path.local_path if isinstance(ledger_path, LakeLocation) else ledger_path
    return SubjectKeyStore(path, subject_secret(local, key_store), access=access, ledger=ledger)


def subject_secret(ledger_path: Path | None = None, key_store: Path | None = None) -> bytes:
    """The secret that keys the subject-key lookup; a clear error when it is not set.

    The error suggests generating a secret only for a ledger that does not exist yet (both
    ``ledger_path`` and its key store missing): an existing ledger needs the secret it was
    created with, and no other. Without ``ledger_path`` the ledger is taken to exist.
    """
    settings = load_settings()
    secret: bytes | None = None
    if settings.subject_secret is not None:
        secret = settings.subject_secret.get_secret_value().encode()
    elif settings.subject_secret_file is not None:
        try:
            secret = settings.subject_secret_file.read_bytes().strip()
        except OSError as exc:
            raise DisclosureLedgerError(
                f"cannot read the subject secret file {settings.subject_secret_file}: {exc}"
            ) from exc
    if not secret:
        existing = _existing_ledger_file(ledger_path, key_store)
        if existing is None:
            raise DisclosureLedgerError(
                "no subject secret: set DISCLOSURE_LEDGER_SUBJECT_SECRET, or "
                "DISCLOSURE_LEDGER_SUBJECT_SECRET_FILE naming a file that holds it (at least 16 "
                "bytes; for a new ledger, e.g. from `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`); it keys the lookup of per-subject keys and "
                "must stay the same for the ledger's whole life"
            )
        raise DisclosureLedgerError(
            f"no subject secret for {existing}: set DISCLOSURE_LEDGER_SUBJECT_SECRET to the "
            "secret it was created with, or DISCLOSURE_LEDGER_SUBJECT_SECRET_FILE to a file "
            "that holds it. Never generate a new one for an existing ledger: under another "
            "secret none of its subjects can be found"
        )
    return secret


def _existing_ledger_file(ledger_path: Path | None, key_store: Path | None) -> str | None:
    """What shows the ledger exists (its key store, or the ledger file), or None if new."""
    if ledger_path is None:
        return "this ledger"
    store = key_store or default_key_store(ledger_path)
    if isinstance(store, Path) and store.exists():
        return f"the subject key store {store}"
    if ledger_path.exists():
        return f"the ledger {ledger_path}"
    return None


def signing_key() -> Ed25519PrivateKey:
    """The checkpoint signing key named in the settings; a clear error if there is none."""
    from ledger.checkpoints import load_signing_key

    settings = load_settings()
    if settings.checkpoint_signing_key is not None:
        return load_signing_key(
            settings.checkpoint_signing_key.get_secret_value().encode(),
            "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY",
        )
    if settings.checkpoint_signing_key_file is not None:
        try:
            data = settings.checkpoint_signing_key_file.read_bytes()
        except OSError as exc:
            raise DisclosureLedgerError(
                f"cannot read the checkpoint signing key file "
                f"{settings.checkpoint_signing_key_file}: {exc}"
            ) from exc
        return load_signing_key(data, str(settings.checkpoint_signing_key_file))
    raise DisclosureLedgerError(
        "no checkpoint signing key: set DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE to the "
        "private key file `disclosure-ledger keys generate` wrote (or "
        "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY to its content), or consume with "
        "--no-checkpoints to run without tamper-evident checkpoints"
    )
