"""The cache of SubjectKeyStore.derive: same results, bounded, and never outliving an erasure."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ledger.context_crypto as context_crypto
import ledger.hmacs as hmacs
import ledger.pseudonyms as pseudonyms
from ledger.errors import LedgerError
from ledger.pseudonyms import SubjectKeyStore

SECRET = b"cache-test-secret-" + b"9" * 14
SUBJECT = ("member", "member-raw-id-5150-cq")


def _subjects(n: int, prefix: str = "m") -> list[tuple[str, str]]:
    """n subjects, the same id under both types (different subjects, different secrets)."""
    return [(("member", "guest")[i % 2], f"{prefix}-{i // 2:05d}") for i in range(n)]


def _key_rows(path: Path) -> int:
    with sqlite3.connect(path) as con:
        return int(con.execute("SELECT count(*) FROM subject_keys").fetchone()[0])


@pytest.mark.parametrize("cap", [1, 64, 20_000])
def test_derive_gives_the_same_secrets_with_and_without_the_cache(tmp_path: Path, cap: int) -> None:
    path = tmp_path / "keys.sqlite"
    pool = _subjects(400)
    # Overlapping batches, repeats inside a batch, some larger than the cap: hits, misses,
    # new subjects and evictions all happen.
    batches = [
        pool[start : start + 150] * 2 + pool[start : start + 10] for start in range(0, 400, 50)
    ]
    batches += [pool[::-1], pool[:5], pool]
    with (
        SubjectKeyStore(path, SECRET, cache_entries=cap) as cached,
        SubjectKeyStore(path, SECRET, cache_entries=0) as plain,
    ):
        for number, batch in enumerate(batches):
            # New subjects' keys are created by the cached store on even batches, by the
            # uncached one on odd batches (a commit the cached store sees as another's).
            first, second = (cached, plain) if number % 2 == 0 else (plain, cached)
            assert first.derive(batch) == second.derive(batch)
            assert cached.derive(batch) == plain.derive(batch)  # now from the cache
        for kind, ident in pool:
            secrets = cached.derive([(kind, ident)])[0]
            assert secrets.pseudonym == plain.pseudonym(kind, ident)
            assert secrets.context_key == plain.context_key(kind, ident)
    assert _key_rows(path) == len(pool)  # every subject's key stored exactly once


def test_erase_through_the_same_store_gives_a_new_pseudonym(tmp_path: Path) -> None:
    with SubjectKeyStore(tmp_path / "keys.sqlite", SECRET) as keys:
        before = keys.derive([SUBJECT, ("guest", "g-1")])
        assert keys.derive([SUBJECT]) == before[:1]  # cached
        assert (erased := keys.erase(*SUBJECT)) is not None and erased.pseudonym == before[
            0
        ].pseudonym
        after = keys.derive([SUBJECT, ("guest", "g-1")])
        assert after[0].pseudonym != before[0].pseudonym
        assert after[0].context_key != before[0].context_key
        assert after[0].pseudonym == keys.pseudonym(*SUBJECT)  # the new key's
        assert after[1] == before[1]  # other subjects are untouched


def test_erase_through_another_store_on_the_same_file_gives_a_new_pseudonym(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.sqlite"
    with SubjectKeyStore(path, SECRET) as consumer:
        before = consumer.derive([SUBJECT])[0]
        assert consumer.derive([SUBJECT])[0] == before  # cached
        with SubjectKeyStore(path, SECRET) as cli:  # as `erase-subject` opens it
            assert (
                erased := cli.erase(*SUBJECT)
            ) is not None and erased.pseudonym == before.pseudonym
        after = consumer.derive([SUBJECT])[0]
        assert after.pseudonym != before.pseudonym
        assert after.context_key != before.context_key
        assert after.pseudonym == consumer.pseudonym(*SUBJECT)


def test_erase_by_another_process_gives_a_new_pseudonym(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    with SubjectKeyStore(path, SECRET) as consumer:
        before = consumer.derive([SUBJECT, ("guest", "g-1")])
        erase = (
            "import sys; from pathlib import Path; from ledger.pseudonyms import SubjectKeyStore\n"
            "with SubjectKeyStore(Path(sys.argv[1]), sys.argv[2].encode()) as keys:\n"
            "    assert keys.erase(sys.argv[3], sys.argv[4]) is not None\n"
        )
        subprocess.run(
            [sys.executable, "-c", erase, str(path), SECRET.decode(), *SUBJECT],
            check=True,
            cwd=Path(__file__).resolve().parents[2],
            timeout=60,
        )
        after = consumer.derive([SUBJECT, ("guest", "g-1")])
        assert after[0].pseudonym != before[0].pseudonym
        assert after[0].pseudonym == consumer.pseudonym(*SUBJECT)
        assert after[1] == before[1]


@pytest.mark.parametrize("cap", [1, 7, 100])
def test_the_cache_never_holds_more_than_its_cap(tmp_path: Path, cap: int) -> None:
    pool = _subjects(1_000)
    with SubjectKeyStore(tmp_path / "keys.sqlite", SECRET, cache_entries=cap) as keys:
        start = 0
        for size in [1, 3, cap - 1, cap, cap + 1, 250, 2, 2 * cap, 1, 400]:
            keys.derive(pool[start : start + size])
            assert 0 < len(keys._cache) <= cap
            start = (start + size) % 900
        assert len(keys._cache) == cap  # the last batch's misses alone overflowed it
    with SubjectKeyStore(tmp_path / "keys.sqlite", SECRET, cache_entries=0) as keys:
        keys.derive(pool)
        assert not keys._cache


def test_a_cache_hit_reads_no_sqlite_and_computes_no_hmac(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    digests = 0
    real_many = hmacs.hmac_sha256_many

    def counting_many(keys: Any, messages: Any) -> list[bytes]:
        nonlocal digests
        out = real_many(keys, messages)
        digests += len(out)
        return out

    # every HMAC of derive() goes through the batched helper
    monkeypatch.setattr(pseudonyms, "hmac_sha256_many", counting_many)
    monkeypatch.setattr(context_crypto, "hmac_sha256_many", counting_many)
    old, new = _subjects(50, "old"), _subjects(50, "new")
    for cap, hits in [(20_000, True), (0, False)]:
        with SubjectKeyStore(tmp_path / f"keys-{cap}.sqlite", SECRET, cache_entries=cap) as keys:
            keys._db.set_trace_callback(statements.append)
            expected = keys.derive(old)
            keys.derive(new)  # this store's own commit of new keys keeps the cache
            statements.clear()
            digests = 0
            assert keys.derive(old) == expected
            if hits:
                assert statements == ["PRAGMA data_version"]
                assert digests == 0
            else:
                assert any(s.startswith("SELECT lookup, subject_key") for s in statements)
                assert digests == 3 * len(old)  # lookup, pseudonym, context key


def test_a_negative_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cache_entries"):
        SubjectKeyStore(tmp_path / "keys.sqlite", SECRET, cache_entries=-1)
