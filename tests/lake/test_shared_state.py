"""The state two ledger services over one lake share, in the lake's PostgreSQL database.

Each test has two "machines": the same lake (catalog and data path), two local paths, as two
hosts would have. What one writes through its own store, the other reads through its own:
nothing of it is a file at either local path (ledger/state_db.py, docs/ducklake.md)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from disclosure_ledger.cli import main
from disclosure_ledger.commands.key_material import default_key_store
from disclosure_ledger.service.approvals import (
    ApprovalAction,
    ApprovalStatus,
    ApprovalStore,
    default_approval_store,
)
from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from ledger.lake import EXTENSIONS, EXTRA, PREFIX, LakeLocation
from ledger.pseudonyms import SubjectKeyStore
from ledger.state_db import SCHEMA
from ledger.store import Ledger
from reports.request_log import ReceivedVia, RequestKind, RequestLog, Response, default_request_log
from reports.request_register import RequestRegister
from tests.conftest import skip_missing_part
from tests.postgres_server import PostgresServer

psycopg = pytest.importorskip("psycopg", reason="the ducklake extra installs psycopg")

SECRET_TEXT = "shared-state-secret-" + "s" * 24
SECRET = SECRET_TEXT.encode()
SUBJECT = ("member", "m-shared-1")


@pytest.fixture
def machines(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[LakeLocation, LakeLocation]:
    """One lake seen from two machines: the same catalog and data path, two local paths."""
    for name in EXTENSIONS.values():
        if importlib.util.find_spec(name) is None:
            skip_missing_part("the DuckLake extension wheels", EXTRA, detail=f"no {name}")
    data_path = str(tmp_path / "lake-data") + "/"
    a = LakeLocation(
        postgres_server.conninfo(postgres_server.new_database()),
        data_path,
        tmp_path / "machine-a" / "ledger",
    )
    b = replace(a, local_path=tmp_path / "machine-b" / "ledger")
    for machine in (a, b):
        machine.local_path.parent.mkdir()
    monkeypatch.setenv("DISCLOSURE_LEDGER_LAKE_DATA_PATH", data_path)
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", SECRET_TEXT)
    return a, b


def _cli_on(machine: LakeLocation, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """A command run on ``machine``: the lake's location, that machine's local path."""
    monkeypatch.setenv("DISCLOSURE_LEDGER_LAKE_LOCAL_PATH", str(machine.local_path))
    return main([*args, "--ledger", PREFIX + machine.catalog])


def _local_files(*machines: LakeLocation) -> list[Path]:
    return [p for m in machines for p in m.local_path.parent.iterdir()]


def test_an_erasure_through_one_instance_is_seen_by_the_other_at_once(
    machines: tuple[LakeLocation, LakeLocation],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = machines
    with Ledger(a):  # the lake created
        pass
    with SubjectKeyStore(default_key_store(a), SECRET) as keys_a:
        before = keys_a.derive([SUBJECT])[0]  # A's consumer keyed the subject, and caches it
        assert keys_a.derive([SUBJECT])[0] == before
        erase = ("erase-subject", "--subject-type", SUBJECT[0], "--subject-id", SUBJECT[1])
        assert _cli_on(b, monkeypatch, *erase, "--actor", "dpo", "--approved-by", "cpo") == 0
        assert "nothing to erase" not in capsys.readouterr().out
        # A's next batch: the erased key is not answered from A's cache, the subject is new
        # under a fresh key marked after its erasure
        after = keys_a.derive([SUBJECT])[0]
        assert after.after_erasure and after.pseudonym != before.pseudonym
        assert keys_a.is_suppressed(*SUBJECT)
        assert keys_a.key_for_id(before.key_id) is None
    with Ledger(a, read_only=True) as ledger:  # the journal is in the lake
        assert ledger.con.execute("SELECT actor, key_id FROM erasures").fetchall() == [
            ("dpo", before.key_id)
        ]
    assert _local_files(a, b) == []  # no key store (nor request log) at either local path


def test_an_erased_key_leaves_the_tables_pages(
    machines: tuple[LakeLocation, LakeLocation], postgres_server: PostgresServer
) -> None:
    """Crypto-shredding on PostgreSQL: a deleted row stays in its page (a dead tuple) until
    vacuumed; the erasure's VACUUM FULL rewrites the table without it."""
    a, b = machines
    with SubjectKeyStore(default_key_store(a), SECRET) as keys_a:
        keys_a.derive([SUBJECT, ("member", "m-kept")])
        key = keys_a.subject_key(*SUBJECT)
        assert key is not None
    with SubjectKeyStore(default_key_store(b), SECRET) as keys_b:
        keys_b.erase(*SUBJECT)
        assert keys_b.subject_key("member", "m-kept") is not None
    with psycopg.connect(a.catalog, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        table = f"{SCHEMA}.subject_keys"
        pages = pg.execute(
            "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int",
            (table,),
        ).fetchone()
        assert pages is not None and pages[0] >= 1
        found = pg.execute(
            "SELECT count(*) FROM generate_series(0, %s - 1) AS page "
            "WHERE position(%s::bytea IN get_raw_page(%s, page::int)) > 0",
            (pages[0], key, table),
        ).fetchone()
    assert found == (0,)


def test_a_request_logged_through_one_instance_is_listed_through_the_other(
    machines: tuple[LakeLocation, LakeLocation],
) -> None:
    a, b = machines
    with RequestLog(default_request_log(a), SECRET) as log_a:
        logged = log_a.record(
            kind=RequestKind.know,
            subject_type=SUBJECT[0],
            subject_id=SUBJECT[1],
            received_on=date(2026, 11, 2),
            received_via=ReceivedVia.email,
            responded_on=date(2026, 11, 3),
            response=Response.complied,
            response_detail="answered from the ledger",
        )
    with RequestRegister(default_request_log(b), SECRET) as register_b:
        entries = register_b.entries(date(2026, 1, 1), date(2027, 1, 1))
        assert [e.request_id for e in entries] == [logged.request_id]
        # counted per person across instances: the second request is the second in 12 months
        again = register_b.record(
            kind=RequestKind.know,
            subject_type=SUBJECT[0],
            subject_id=SUBJECT[1],
            received_on=date(2026, 11, 20),
            received_via=ReceivedVia.web_form,
            responded_on=None,
            response=Response.complied,
            response_detail="",
        )
    assert again.number_in_12_months == 2
    assert _local_files(a, b) == []


def test_a_user_and_a_token_made_on_one_instance_sign_in_on_the_other(
    machines: tuple[LakeLocation, LakeLocation],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = machines
    add = ("users", "add", "ana", "--role", "admin", "--generate-password")
    assert _cli_on(a, monkeypatch, *add) == 0
    password = capsys.readouterr().out.splitlines()[0]
    issue = ("users", "token", "issue", "--role", "auditor", "--label", "ci")
    assert _cli_on(a, monkeypatch, *issue) == 0
    token = capsys.readouterr().out.splitlines()[0]
    accounts_b = AccountStore(default_account_store(b))
    signed_in = accounts_b.authenticate("ana", password)
    assert signed_in is not None and signed_in.role.value == "admin"
    by_token = accounts_b.token_actor(token)
    assert by_token is not None and by_token.role.value == "auditor"
    assert accounts_b.authenticate("ana", password + "x") is None
    assert _local_files(a, b) == []


def test_an_approval_requested_on_one_instance_is_decided_on_the_other(
    machines: tuple[LakeLocation, LakeLocation],
) -> None:
    a, b = machines
    asked = ApprovalStore(default_approval_store(a), SECRET).request(
        ApprovalAction.erase,
        requested_by="dpo",
        requested_role="admin",
        reason="ticket 7",
        summary="erase one member",
        parameters={"subject_type": SUBJECT[0], "subject_id": SUBJECT[1]},
    )
    store_b = ApprovalStore(default_approval_store(b), SECRET)
    assert [p.approval_id for p in store_b.listing(statuses=(ApprovalStatus.pending,))] == [
        asked.approval_id
    ]
    _, parameters = store_b.claim(asked.approval_id, by="cpo")
    assert parameters["subject_id"] == SUBJECT[1]
    store_b.finish(asked.approval_id, ApprovalStatus.executed, by="cpo")
    seen_by_a = ApprovalStore(default_approval_store(a), SECRET).get(asked.approval_id)
    assert seen_by_a.status is ApprovalStatus.executed and seen_by_a.decided_by == "cpo"
    assert _local_files(a, b) == []


def test_two_instances_keying_one_new_subject_at_once_end_with_one_key(
    machines: tuple[LakeLocation, LakeLocation], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A looks the subject up and finds no key; B keys it before A inserts A's: A's insert
    gives way, and A answers with B's key (both instances' rows name one pseudonym)."""
    a, b = machines
    keys_a = SubjectKeyStore(default_key_store(a), SECRET, cache_entries=0)
    keys_b = SubjectKeyStore(default_key_store(b), SECRET, cache_entries=0)
    with keys_a, keys_b:
        real_read = keys_a._read_keys
        b_keyed: list[str] = []

        def read_then_b_keys(*args: object) -> None:
            real_read(*args)  # type: ignore[arg-type]
            if not b_keyed:  # between A's look-up and A's insert
                b_keyed.append(keys_b.derive([SUBJECT])[0].pseudonym)

        monkeypatch.setattr(keys_a, "_read_keys", read_then_b_keys)
        from_a = keys_a.derive([SUBJECT])[0]
        assert b_keyed == [from_a.pseudonym]
        assert keys_b.pseudonym(*SUBJECT) == from_a.pseudonym
    with psycopg.connect(a.catalog) as pg:
        assert pg.execute(f"SELECT count(*) FROM {SCHEMA}.subject_keys").fetchone() == (1,)
