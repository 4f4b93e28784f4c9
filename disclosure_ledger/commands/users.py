"""``users``: the service's local accounts and API tokens, in ``LEDGER.users.sqlite``.

Works while the service runs (the store is SQLite; the service reads it at every request):
a disabled user, a reset password or a revoked token takes effect at the next request.
Passwords are read from a terminal prompt or from standard input (``--password-stdin``),
never from the command line, where ``ps`` and the shell history would show them.
``--generate-password`` makes a random one and prints it once, on standard output alone
(the bootstrap of the first admin, ``make demo``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from tabulate import tabulate

from disclosure_ledger.commands.options import add_command, ledger_location, ledger_option
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.auth.roles import Role

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands
    from disclosure_ledger.service.auth.accounts import AccountStore

ROLES = [role.value for role in Role]


def register(commands: Subcommands) -> None:
    users = add_command(
        commands,
        "users",
        run_users,
        "Manage the service's accounts and API tokens (works while the service runs).",
    )
    actions = users.add_subparsers(dest="users_action", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        ledger_option(sub)
        return sub

    add = action("add", "Add a user with one role; the password is prompted for.")
    add.add_argument("name", help="user name (letters, digits, '.', '_', '@', '-')")
    add.add_argument("--role", choices=ROLES, required=True, help="what the user may do")
    _password_options(add)

    reset = action("reset-password", "Give a user a new password; every session of the user ends.")
    reset.add_argument("name", help="user name")
    _password_options(reset)

    disable = action("disable", "Disable a user: no sign-in, every session ends at once.")
    disable.add_argument("name", help="user name")
    enable = action("enable", "Enable a disabled user again.")
    enable.add_argument("name", help="user name")

    listing = action("list", "List the users, their roles and live sessions (no secrets).")
    _format_option(listing)

    token = actions.add_parser(
        "token", help="Issue or revoke an API token.", description="Issue or revoke an API token."
    )
    token_actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    issue_help = (
        "Issue an API token of one role; it is printed once, on standard output alone, "
        "and stored only as a hash."
    )
    issue = token_actions.add_parser("issue", help=issue_help, description=issue_help)
    ledger_option(issue)
    issue.add_argument("--role", choices=ROLES, required=True, help="the token's one role")
    issue.add_argument(
        "--label", required=True, help="who or what uses it, e.g. 'nightly CCPA export'"
    )
    revoke_help = "Revoke an API token by its id (`users tokens` lists them); at once."
    revoke = token_actions.add_parser("revoke", help=revoke_help, description=revoke_help)
    ledger_option(revoke)
    revoke.add_argument("token_id", metavar="ID", help="the token's id")

    tokens = action("tokens", "List the API tokens: id, role, label, last use (no secrets).")
    _format_option(tokens)


def _password_options(sub: argparse.ArgumentParser) -> None:
    given = sub.add_mutually_exclusive_group()
    given.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (for scripts)",
    )
    given.add_argument(
        "--generate-password",
        action="store_true",
        help="generate a random password and print it once on standard output",
    )


def _format_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="a table for people (default) or JSON for tools",
    )


def run_users(args: argparse.Namespace) -> int:
    from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store

    path = default_account_store(ledger_location(args))
    new = not path.exists()
    creates = args.users_action == "add" or getattr(args, "token_action", None) == "issue"
    if new and not creates:
        raise DisclosureLedgerError(
            f"no account store {path} beside the ledger {args.ledger}: check --ledger, or "
            "add the first user with `disclosure-ledger users add NAME --role admin`"
        )
    store = AccountStore(path)
    if new:
        print(f"created the account store {path}", file=sys.stderr)
    handler = {
        "add": _add,
        "reset-password": _reset_password,
        "disable": _disable,
        "enable": _enable,
        "list": _list_users,
        "token": _token,
        "tokens": _list_tokens,
    }[args.users_action]
    handler(store, args)
    return 0


def _add(store: AccountStore, args: argparse.Namespace) -> None:
    from disclosure_ledger.service.auth.passwords import check_user_name

    check_user_name(args.name)  # before a password is asked for
    password = _new_password(args)
    store.add_user(args.name, Role(args.role), password)
    _print_generated(args, password)
    print(f"added {args.role} user {args.name!r}", file=sys.stderr)


def _reset_password(store: AccountStore, args: argparse.Namespace) -> None:
    password = _new_password(args)
    store.set_password(args.name, password)
    _print_generated(args, password)
    print(f"new password for {args.name!r}; their sessions have ended", file=sys.stderr)


def _disable(store: AccountStore, args: argparse.Namespace) -> None:
    store.set_disabled(args.name, True)
    print(f"disabled {args.name!r}; their sessions have ended", file=sys.stderr)


def _enable(store: AccountStore, args: argparse.Namespace) -> None:
    store.set_disabled(args.name, False)
    print(f"enabled {args.name!r}", file=sys.stderr)


def _list_users(store: AccountStore, args: argparse.Namespace) -> None:
    users = store.users()
    if args.format == "json":
        json.dump([asdict(user) for user in users], sys.stdout, indent=2)
        print()
        return
    if not users:
        print("no users: add one with `disclosure-ledger users add NAME --role ROLE`")
        return
    rows = [
        [
            u.name,
            u.role.value,
            "disabled" if u.disabled else "enabled",
            u.live_sessions,
            u.created_at,
        ]
        for u in users
    ]
    print(tabulate(rows, headers=["name", "role", "state", "live sessions", "created"]))


def _token(store: AccountStore, args: argparse.Namespace) -> None:
    if args.token_action == "revoke":
        store.revoke_token(args.token_id)
        print(
            f"revoked token {args.token_id}; it is refused from the next request", file=sys.stderr
        )
        return
    issued = store.issue_token(Role(args.role), label=args.label, created_by=_operator())
    print(issued.token)
    print(
        f"issued {issued.role.value} token {issued.token_id}: this is the only time it is "
        "shown; send it as 'Authorization: Bearer TOKEN'",
        file=sys.stderr,
    )


def _list_tokens(store: AccountStore, args: argparse.Namespace) -> None:
    tokens = store.tokens()
    if args.format == "json":
        json.dump([asdict(token) for token in tokens], sys.stdout, indent=2)
        print()
        return
    if not tokens:
        print("no tokens: issue one with `disclosure-ledger users token issue --role R --label L`")
        return
    rows = [
        [
            t.token_id,
            t.role.value,
            t.label,
            t.created_by,
            t.created_at,
            t.last_used_at or "never",
            t.revoked_at or "live",
        ]
        for t in tokens
    ]
    print(
        tabulate(
            rows, headers=["id", "role", "label", "issued by", "issued", "last used", "revoked"]
        )
    )


def _operator() -> str:
    """Who issued a token from the command line: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _new_password(args: argparse.Namespace) -> str:
    from disclosure_ledger.service.auth.passwords import check_password, generate_password

    if args.generate_password:
        return generate_password()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise DisclosureLedgerError(
                "--password-stdin: standard input held no password; pipe one line, e.g. "
                "`printf '%s\\n' \"$PASSWORD\" | disclosure-ledger users add ...`"
            )
        return password
    if not sys.stdin.isatty():
        raise DisclosureLedgerError(
            "no terminal to prompt for the password: give --password-stdin and pipe it, "
            "or --generate-password"
        )
    password = getpass.getpass(f"password for {args.name}: ")
    check_password(args.name, password)  # before asking again
    if getpass.getpass("the same password again: ") != password:
        raise DisclosureLedgerError("the two passwords differ; nothing was changed")
    return password


def _print_generated(args: argparse.Namespace, password: str) -> None:
    if args.generate_password:
        print(password)
        print(
            f"the password of {args.name!r} is printed above, this once: it is stored only "
            "as an argon2id hash",
            file=sys.stderr,
        )
