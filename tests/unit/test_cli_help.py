"""Every command and every option says what it is for (sqlite-utils style)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from disclosure_ledger.cli import build_parser, main
from disclosure_ledger.commands.reference import SECTIONS
from reference import REFERENCE_SECTIONS


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """(path, parser, help in the parent's listing) of every command, nested ones too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*prefix, name), sub, listed.get(name)
                yield from _commands(sub, (*prefix, name))


COMMANDS = sorted(" ".join(path) for path, _, _ in _commands(build_parser()))


def test_the_commands_are_all_there() -> None:
    assert (
        sorted(
            [
                "approvals",
                "backup",
                "broker",
                "consume",
                "demo",
                "erase-subject",
                "keys",
                "migrate",
                "notices",
                "notices record",
                "prove",
                "publish",
                "quarantine",
                "query",
                "reference",
                "report",
                "restore",
                "report access",
                "report ccpa",
                "report conformance",
                "report recipients",
                "report requests",
                "report subject",
                "report transfers",
                "requests",
                "requests answer",
                "requests deny",
                "requests extend",
                "requests list",
                "requests open",
                "requests show",
                "requests verify-identity",
                "schemas",
                "serve",
                "service",
                "simulate",
                "status",
                "users",
                "users add",
                "users disable",
                "users enable",
                "users list",
                "users reset-password",
                "users token",
                "users token issue",
                "users token revoke",
                "users tokens",
                "verify",
                "verify-proof",
            ]
        )
        == COMMANDS
    )


def test_every_command_and_option_has_help_text() -> None:
    missing = []
    for path, sub, listed_help in _commands(build_parser()):
        name = " ".join(path)
        if not listed_help or not sub.description:
            missing.append(f"{name}: no help text or description")
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not (action.help and action.help.strip()):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"add help= to: {missing}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_prints_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: disclosure-ledger {command}")


def test_reference_show_offers_the_sections_format_reference_knows() -> None:
    assert tuple(REFERENCE_SECTIONS) == SECTIONS
