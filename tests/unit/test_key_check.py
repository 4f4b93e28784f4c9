"""The key store knows its secret: a wrong one is refused, never taken for "no data"."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from consumers.pipeline import Ingestor, SourceMessage
from ledger.errors import LedgerError, WrongSecretError
from ledger.key_check import KeyStoreAccess
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

RIGHT = b"r" * 32
WRONG = b"w" * 32
SUBJECT = ("member", "member-0000136")


def _store_with_a_subject(path: Path, secret: bytes = RIGHT) -> str:
    with SubjectKeyStore(path, secret) as keys:
        return keys.pseudonyms([SUBJECT])[0]


def _made_old(path: Path) -> None:
    """The store as a release before key-check values left it: no meta table."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE key_store_meta")


def _subject_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM subject_keys").fetchone()[0])


def _has_check_value(path: Path) -> bool:
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'key_store_meta'").fetchone()
        return found is not None and bool(
            db.execute("SELECT 1 FROM key_store_meta WHERE name = 'key_check'").fetchone()
        )


@pytest.mark.parametrize("access", list(KeyStoreAccess))
def test_the_secret_it_was_created_with_opens_it_for_every_use(
    tmp_path: Path, access: KeyStoreAccess
) -> None:
    path = tmp_path / "keys.sqlite"
    pseudonym = _store_with_a_subject(path)
    with SubjectKeyStore(path, RIGHT, access=access) as keys:
        assert keys.pseudonym(*SUBJECT) == pseudonym


@pytest.mark.parametrize("access", list(KeyStoreAccess))
def test_another_secret_is_refused_naming_the_store_and_changing_nothing(
    tmp_path: Path, access: KeyStoreAccess
) -> None:
    path = tmp_path / "keys.sqlite"
    _store_with_a_subject(path)
    before = path.read_bytes()
    with pytest.raises(WrongSecretError) as refused:
        SubjectKeyStore(path, WRONG, access=access)
    message = str(refused.value)
    assert str(path) in message
    assert "does not match the one" in message and "created with" in message
    assert "never generate a new one" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.sqlite"]  # no journal left


def test_a_store_opened_to_read_or_erase_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.sqlite"
    for access in (KeyStoreAccess.read, KeyStoreAccess.erase):
        with pytest.raises(LedgerError, match=f"no subject key store at {path}"):
            SubjectKeyStore(path, RIGHT, access=access)
    assert not path.exists()


def test_a_secret_too_short_for_an_existing_store_is_not_told_to_generate_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.sqlite"
    _store_with_a_subject(path)
    with pytest.raises(LedgerError) as refused:
        SubjectKeyStore(path, b"short", access=KeyStoreAccess.read)
    assert str(path) in str(refused.value) and "token_hex" not in str(refused.value)


def test_an_old_store_without_keys_records_the_check_value_of_its_first_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.sqlite"
    SubjectKeyStore(path, RIGHT).close()
    _made_old(path)
    SubjectKeyStore(path, RIGHT).close()
    with pytest.raises(WrongSecretError):
        SubjectKeyStore(path, WRONG, access=KeyStoreAccess.read)


def test_an_old_store_that_nothing_proves_is_refused_to_readers_and_erasure(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.sqlite"
    _store_with_a_subject(path)
    _made_old(path)
    before = path.read_bytes()
    for access in (KeyStoreAccess.read, KeyStoreAccess.erase):
        # the right secret too: nothing shows it is the right one
        with pytest.raises(LedgerError, match="created before key stores kept a key-check"):
            SubjectKeyStore(path, RIGHT, access=access)
    assert path.read_bytes() == before


def test_an_old_store_that_nothing_proves_is_pinned_by_the_consumer_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.sqlite"
    pseudonym = _store_with_a_subject(path)
    _made_old(path)
    with caplog.at_level(logging.WARNING), SubjectKeyStore(path, RIGHT) as keys:
        assert keys.pseudonyms([SUBJECT]) == [pseudonym]
    assert any(str(path) in r.getMessage() and "pins it" in r.getMessage() for r in caplog.records)
    assert _has_check_value(path)
    with SubjectKeyStore(path, RIGHT, access=KeyStoreAccess.read) as keys:
        assert keys.pseudonym(*SUBJECT) == pseudonym
    with pytest.raises(WrongSecretError):
        SubjectKeyStore(path, WRONG)
    assert _subject_rows(path) == 1


def _ledger_with_quarantine(ledger_path: Path, keys: SubjectKeyStore, ref: ReferenceData) -> None:
    codec = EventCodec()
    good = codec.encode(make_event().to_avro())
    # undecodable, and its Kafka key names no known subject: sealed under the deployment key
    refused = b"\xc3\x01broken"
    with Ledger(ledger_path) as ledger:
        Ingestor(ledger, keys, ref).ingest(
            [
                SourceMessage("t", 0, 0, b"member-1", good),
                SourceMessage("t", 0, 1, b"nobody-known", refused),
            ]
        )
        assert ledger.con.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)


def test_an_old_store_is_proven_or_refuted_by_the_ledgers_sealed_quarantine(
    tmp_path: Path, reference: ReferenceData
) -> None:
    path, ledger_path = tmp_path / "keys.sqlite", tmp_path / "ledger.duckdb"
    with SubjectKeyStore(path, RIGHT) as keys:
        _ledger_with_quarantine(ledger_path, keys, reference)
        pseudonym = keys.pseudonyms([SUBJECT])[0]
    _made_old(path)
    with Ledger(ledger_path, read_only=True) as ledger:
        with pytest.raises(WrongSecretError, match="quarantine does not open"):
            SubjectKeyStore(path, WRONG, access=KeyStoreAccess.read, ledger=ledger)
        with pytest.raises(WrongSecretError, match="quarantine does not open"):
            SubjectKeyStore(path, WRONG, ledger=ledger)
        with SubjectKeyStore(path, RIGHT, access=KeyStoreAccess.read, ledger=ledger) as keys:
            assert keys.pseudonym(*SUBJECT) == pseudonym
        assert not _has_check_value(path)  # a reader records nothing
        SubjectKeyStore(path, RIGHT, access=KeyStoreAccess.erase, ledger=ledger).close()
    assert _has_check_value(path)
    with pytest.raises(WrongSecretError, match="key-check value differs"):
        SubjectKeyStore(path, WRONG)
