"""docs/verify-by-hand.md's recipe, run from the page itself (its ```python blocks) on real
ledgers, untouched and tampered with: it flags the chains and rows ``verify`` reports."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import VerifyResult, verify_ledger
from reference import ReferenceData
from tests.unit.test_tamper import CHAIN, ROWS, build_ledger, recompute_chain, tamper

PAGE = Path(__file__).resolve().parents[2] / "docs" / "verify-by-hand.md"
ROW_KINDS = {"row altered", "row deleted", "row inserted", "rows reordered"}
CHAIN_KINDS = ROW_KINDS | {
    "chain truncated below a checkpoint",
    "chain rewritten since a checkpoint",
}

Recipe = Callable[[str], tuple[list[tuple[str, int, str]], dict[str, tuple[int, str]]]]


def recipe() -> Recipe:
    """The page's Python blocks, run in order in a namespace of their own."""
    blocks = re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(), flags=re.M | re.S)
    assert len(blocks) >= 3, "the page lost its code blocks"
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(blocks), str(PAGE), "exec"), namespace)  # the page's own code
    found: Recipe = namespace["verify_by_hand"]
    return found


def _both(path: Path) -> tuple[set[tuple[str, int]], VerifyResult, dict[str, tuple[int, str]]]:
    problems, heads = recipe()(str(path))
    with Ledger(path, read_only=True) as ledger:
        result = verify_ledger(ledger)
    return {(chain, seq) for chain, seq, _ in problems}, result, heads


def _reported(result: VerifyResult) -> set[tuple[str, int | None]]:
    return {(f.chain_id, f.seq) for f in result.failures if f.kind in CHAIN_KINDS}


@pytest.fixture
def ledger_file(tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData) -> Path:
    return build_ledger(tmp_path / "ledger.duckdb", key_store, reference)


def test_an_untouched_ledger_passes_and_the_heads_are_verify_s(ledger_file: Path) -> None:
    flagged, result, heads = _both(ledger_file)
    assert result.ok and flagged == set()
    assert heads == result.chains and heads[CHAIN][0] == ROWS


TAMPERING: dict[str, tuple[str, ...]] = {
    "a value changed": (
        f"UPDATE disclosures SET recipient_id = 'acme' WHERE chain_id = '{CHAIN}' AND seq = 3",
    ),
    "a non-ASCII value changed": (
        f"UPDATE disclosures SET purpose = 'ünïcödé ✓' WHERE chain_id = '{CHAIN}' AND seq = 2",
    ),
    "a list item added": (
        "UPDATE disclosures SET data_categories = list_append(data_categories, 'user.x') "
        f"WHERE chain_id = '{CHAIN}' AND seq = 6",
    ),
    "a null written": (
        f"UPDATE disclosures SET legal_reference = 'Art. 6' WHERE chain_id = '{CHAIN}' AND seq = 1",
    ),
    "a time moved": (
        "UPDATE disclosures SET occurred_at = occurred_at + INTERVAL 1 SECOND "
        f"WHERE chain_id = '{CHAIN}' AND seq = 7",
    ),
    "a chain hash replaced": (
        f"UPDATE disclosures SET chain_hash = unhex(sha256('x')) WHERE chain_id = '{CHAIN}' "
        "AND seq = 5",
    ),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_a_changed_row_is_flagged_where_verify_reports_it(ledger_file: Path, case: str) -> None:
    tamper(ledger_file, *TAMPERING[case])
    flagged, result, _ = _both(ledger_file)
    reported = _reported(result)
    assert reported and min(flagged) == min(reported)
    assert {chain for chain, _ in flagged} == {chain for chain, _ in reported} == {CHAIN}


def test_a_deleted_row_is_flagged_at_the_row_after_the_gap(ledger_file: Path) -> None:
    tamper(ledger_file, f"DELETE FROM disclosures WHERE chain_id = '{CHAIN}' AND seq = 5")
    flagged, result, _ = _both(ledger_file)
    assert _reported(result) == {(CHAIN, 5)}  # verify names the missing seq
    assert flagged == {(CHAIN, 6)}  # the recipe, the row whose seq and link do not follow


def test_swapped_rows_are_flagged_at_both(ledger_file: Path) -> None:
    tamper(
        ledger_file,
        f"UPDATE disclosures SET seq = CASE seq WHEN 2 THEN 6 ELSE 2 END "
        f"WHERE chain_id = '{CHAIN}' AND seq IN (2, 6)",
    )
    flagged, result, _ = _both(ledger_file)
    assert _reported(result) == {(CHAIN, 2)}  # rows reordered, from seq 2
    assert {(CHAIN, 2), (CHAIN, 6)} <= flagged


def test_a_forged_row_in_a_rehashed_chain_is_flagged_as_verify_reports_it(
    ledger_file: Path,
) -> None:
    """Links and leaves recomputed by a forger: only the offset order and the checkpoints
    still show it, in the recipe as in verify."""
    tamper(
        ledger_file,
        f"UPDATE disclosures SET seq = seq + 1 WHERE chain_id = '{CHAIN}' AND seq > 3",
        f"INSERT INTO disclosures SELECT * REPLACE (4 AS seq, uuid() AS event_id, "
        f"'acme' AS recipient_id) FROM disclosures WHERE chain_id = '{CHAIN}' AND seq = 3",
    )
    recompute_chain(ledger_file, CHAIN)
    flagged, result, _ = _both(ledger_file)
    assert _reported(result) == flagged == {(CHAIN, 4), (CHAIN, 8)}


def test_a_truncated_chain_is_flagged_by_its_checkpoints(ledger_file: Path) -> None:
    tamper(ledger_file, f"DELETE FROM disclosures WHERE chain_id = '{CHAIN}' AND seq > 5")
    flagged, result, heads = _both(ledger_file)
    assert _reported(result) == {(CHAIN, 6)}  # verify: the first seq missing
    assert flagged == {(CHAIN, 8)}  # the recipe: the checkpoint's length, not found
    assert heads[CHAIN] == result.chains[CHAIN]


def _forge(path: Path, *statements: str) -> None:
    """Tamper, then do what a forger with the code would: recompute the chain, and drop the
    checkpoints and the derived head that would still show the old one."""
    tamper(path, *statements)
    recompute_chain(path, CHAIN)
    tamper(
        path,
        "DELETE FROM checkpoints",
        "DELETE FROM checkpoint_notes",
        "UPDATE chain_heads h SET head_chain_hash = d.chain_hash FROM disclosures d "
        "WHERE d.chain_id = h.chain_id AND d.seq = h.head_seq",
    )


def test_odd_values_rehashed_pass_in_the_recipe_as_in_verify(ledger_file: Path) -> None:
    """Multi-byte text, an emoji, empty and null list items, a null legal reference and a
    time before 1970, encoded as the page says: nothing flagged by either."""
    _forge(
        ledger_file,
        "UPDATE disclosures SET purpose = 'ünïcödé ✓ 😀', recipient_id = '', "
        "data_categories = ['é', '', NULL], flags = [], legal_reference = NULL, "
        "occurred_at = TIMESTAMP '1969-12-31 23:59:59.123', sensitive = NOT sensitive "
        f"WHERE chain_id = '{CHAIN}' AND seq IN (2, 5)",
    )
    flagged, result, heads = _both(ledger_file)
    assert result.ok, [str(f) for f in result.failures]
    assert flagged == set() and heads == result.chains


def test_rows_moved_in_a_rehashed_chain_are_flagged_by_their_offsets(ledger_file: Path) -> None:
    _forge(
        ledger_file,
        f"UPDATE disclosures SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END "
        f"WHERE chain_id = '{CHAIN}' AND seq IN (2, 3)",
    )
    flagged, result, _ = _both(ledger_file)
    assert _reported(result) == {(CHAIN, 2)}  # verify: rows reordered from seq 2
    assert flagged == {(CHAIN, 3)}  # the recipe: seq 3 holds an offset below seq 2's


# -- the access log ---------------------------------------------------------------------------
@pytest.fixture
def logged_ledger(ledger_file: Path) -> Path:
    from tests.unit.test_access_log import append_entries

    append_entries(ledger_file)
    return ledger_file


def test_the_access_log_recomputed_by_hand_gives_verify_s_head(logged_ledger: Path) -> None:
    flagged, result, heads = _both(logged_ledger)
    assert result.ok and flagged == set()
    assert heads == result.chains and "access_log" in heads


ACCESS_TAMPERING: dict[str, tuple[tuple[str, ...], set[tuple[str, int]]]] = {
    "a field changed": (("UPDATE access_log SET reason = 'x' WHERE seq = 3",), {("access_log", 3)}),
    "an entry deleted": (("DELETE FROM access_log WHERE seq = 2",), {("access_log", 3)}),
    "the end cut off": (("DELETE FROM access_log WHERE seq > 4",), {("access_log", 6)}),
}


@pytest.mark.parametrize("case", ACCESS_TAMPERING)
def test_access_log_tampering_is_flagged_by_the_recipe_and_by_verify(
    logged_ledger: Path, case: str
) -> None:
    statements, expected = ACCESS_TAMPERING[case]
    tamper(logged_ledger, *statements)
    flagged, result, _ = _both(logged_ledger)
    assert flagged == expected
    assert {f.chain_id for f in result.failures if f.kind in CHAIN_KINDS} == {"access_log"}
