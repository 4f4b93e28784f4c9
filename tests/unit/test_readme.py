"""The README stays a user's document: every command is in it, and it stays short.

As sqlite-utils checks its documentation against its CLI, the command names come from the
parser itself (``disclosure_ledger.cli.build_parser``), so a new command or command group
fails here until the README mentions it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from disclosure_ledger.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
README_LIMIT_BYTES = 12_500  # issue 15: "at most about 12,000 characters"; `wc -c` counts bytes


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    # argparse has no public way to list a parser's subcommands; its _SubParsersAction
    # (the object add_subparsers returns) holds them in .choices.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_paths() -> list[tuple[str, ...]]:
    """Every top-level command, and every subcommand of a command group, as word tuples."""
    paths: list[tuple[str, ...]] = []
    for name, sub in _subcommands(build_parser()).items():
        paths.append((name,))
        paths.extend((name, subname) for subname in _subcommands(sub))
    return paths


def _mentions(readme: str, path: tuple[str, ...]) -> bool:
    """The README shows the command at the start of a code span, after the optional program
    name, as in `report ccpa --ledger ...`; a group's alternatives may be listed with "|"
    (`broker fetch|start|stop|status` mentions `broker start`)."""
    name, *rest = path
    pattern = r"`(?:[^`\s]*disclosure-ledger\s+)?" + re.escape(name) + r"(?![\w-])"
    for word in rest:
        pattern += r"\s+(?:[\w-]+\\?\|)*" + re.escape(word) + r"(?![\w-])"
    return re.search(pattern, readme) is not None


def test_the_parser_lists_the_commands_this_test_relies_on() -> None:
    paths = _command_paths()
    assert ("demo",) in paths and ("report", "ccpa") in paths, paths


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_every_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    readme = README.read_text(encoding="utf-8")
    assert _mentions(readme, path), (
        f"README.md does not mention `{' '.join(path)}`: add it to the Commands table "
        "(one line), or to Reports for a report kind"
    )


def test_the_readme_stays_short() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT_BYTES, (
        f"README.md is {size} bytes, over {README_LIMIT_BYTES}: move internals to docs/"
    )
