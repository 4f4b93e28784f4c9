"""A test that lacks a required part skips, saying how to install it; under CI=true it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NEEDS_A_PART = """
from tests.conftest import skip_missing_part


def test_needs_the_frobnicator():
    skip_missing_part("the frobnicator", "apt-get install frobnicator", detail="not on PATH")
"""


def _run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_needs_a_part.py").write_text(NEEDS_A_PART, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", [None, "false"])
def test_outside_ci_a_missing_part_skips_and_says_how_to_install_it(
    tmp_path: Path, ci: str | None
) -> None:
    run = _run_pytest(tmp_path, ci)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    assert "the frobnicator is missing (not on PATH)" in run.stdout
    assert "apt-get install frobnicator" in run.stdout


def test_under_ci_a_missing_part_fails_naming_it_and_the_install_line(tmp_path: Path) -> None:
    run = _run_pytest(tmp_path, "true")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout
    assert "the frobnicator is missing (not on PATH)" in run.stdout
    assert "install it in the CI setup with: apt-get install frobnicator" in run.stdout
