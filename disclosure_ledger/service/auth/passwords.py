"""What a user name and a password must be, and a generated password.

The password rules are NIST SP 800-63B's: long enough, not absurdly long, not the user's
own name, not one character repeated; no composition rules.
"""

from __future__ import annotations

import re
import secrets

from disclosure_ledger.errors import DisclosureLedgerError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class AccountError(DisclosureLedgerError):
    """A user or token cannot be added, found or changed (named, with what to do)."""


def check_user_name(name: str) -> None:
    """1 to 64 letters, digits and ``._@-``, starting with a letter or digit: nothing that
    could pass for a token (``token:...``) in the access log, or hide in a terminal."""
    if not _USER_NAME.fullmatch(name):
        raise AccountError(
            f"user name {name!r}: give 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )


def check_password(name: str, password: str) -> None:
    """NIST SP 800-63B's rules: long enough, not absurdly long, not the user's own name,
    not one character repeated; no composition rules."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"the password for {name!r} is too short: give {MIN_PASSWORD_LENGTH} characters "
            "or more (a few unrelated words make a good one), or use --generate-password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"the password for {name!r} is longer than {MAX_PASSWORD_LENGTH} characters"
        )
    if name.lower() in password.lower() or len(set(password)) == 1:
        raise AccountError(
            f"the password for {name!r} is too easy to guess (it holds the user name, or "
            "repeats one character): choose another, or use --generate-password"
        )


def generate_password() -> str:
    """A random password of 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)
