"""``POST /api/v1/backups``: the running service takes the backup (it owns the DuckDB file),
pausing its writers for the copy; an admin only; a restore afterwards keeps an erasure made
after the backup."""

from __future__ import annotations

import json
import threading
from datetime import date
from pathlib import Path

from disclosure_ledger.backups import BackupSources, restore_backup
from disclosure_ledger.service.auth.roles import Role
from ledger.access_log import AccessEntry
from ledger.erasure import erase_subject
from ledger.key_check import KeyStoreAccess
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from reports.subject import subject_report
from tests.conftest import TEST_SECRET
from tests.service.conftest import build_ledger, serving

ERASED = ("member", "member-3")


def test_the_service_backs_up_while_writers_run_and_a_restore_keeps_a_later_erasure(
    tmp_path: Path, reference: ReferenceData
) -> None:
    ledger_path = build_ledger(tmp_path / "ledger.duckdb", reference)
    backup = tmp_path / "backup"
    with serving(ledger_path, reference) as served:
        stop = threading.Event()
        appended = []

        def append_reads() -> None:  # a writer that keeps going during the backup
            while not stop.is_set():
                entry = AccessEntry("reader", "compliance", "report ccpa", "case 7", 0)
                appended.append(served.service.record_access(entry).seq)

        writer = threading.Thread(target=append_reads)
        writer.start()
        try:
            answer = served.client.post(
                "/api/v1/backups",
                json={"to": str(backup), "reason": "nightly backup, ticket 12"},
                headers=served.as_role(Role.admin),
            )
        finally:
            stop.set()
            writer.join()
        assert answer.status_code == 200, answer.text
        manifest = answer.json()["manifest"]
        assert manifest["rows"] == 60 and manifest["writers_paused_ms"] is not None
        assert manifest == json.loads((backup / "manifest.json").read_text())
        with (
            served.service.writable_view() as view,
            served.service.subject_keys(KeyStoreAccess.erase, view) as keys,
        ):
            erase_subject(view, keys, *ERASED, actor="dpo", approved_by="second admin")

    # the copy is whole: its own chains (the access log's too) verify, as the manifest says
    with Ledger(backup / "ledger.duckdb", read_only=True) as copy:
        result = verify_ledger(copy)
        actions = [r[0] for r in copy.con.execute("SELECT action FROM access_log").fetchall()]
    assert result.ok, [str(f) for f in result.failures]
    assert "backup" in actions  # recorded before the snapshot, so the snapshot holds it
    assert result.chains["access_log"][0] == manifest["chains"]["access_log"]["length"]

    outcome = restore_backup(backup, BackupSources.beside(ledger_path), TEST_SECRET)
    assert outcome.since_snapshot == 1 and outcome.keys_deleted == 1
    store = ledger_path.with_name(ledger_path.name + ".keys.sqlite")
    with Ledger(ledger_path, read_only=True) as ledger, SubjectKeyStore(store, TEST_SECRET) as keys:
        assert keys.secrets_for(*ERASED) is None and keys.is_suppressed(*ERASED)
        report = subject_report(
            ledger, keys, subject_type=ERASED[0], subject_id=ERASED[1], as_of=date(2026, 12, 1)
        )
        assert not report.data_held
        assert verify_ledger(ledger).ok


def test_a_backup_is_for_admins_into_a_new_or_empty_directory(
    tmp_path: Path, reference: ReferenceData
) -> None:
    ledger_path = build_ledger(tmp_path / "ledger.duckdb", reference, events=6)
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep-me").write_text("someone else's file")
    with serving(ledger_path, reference) as served:

        def post(to: str, role: Role) -> tuple[int, str]:
            body = {"to": to, "reason": "ticket 9"}
            answer = served.client.post("/api/v1/backups", json=body, headers=served.as_role(role))
            return answer.status_code, answer.text

        assert post(str(tmp_path / "b1"), Role.compliance)[0] == 403
        assert post(str(tmp_path / "b1"), Role.auditor)[0] == 403
        status, text = post(str(used), Role.admin)
        assert status == 422 and "not empty" in text
        status, text = post("relative/dir", Role.admin)
        assert status == 422 and "absolute" in text
        assert post(str(tmp_path / "b1"), Role.admin)[0] == 200
    assert (used / "keep-me").read_text() == "someone else's file"
    assert not (tmp_path / "relative").exists()


def test_writers_wait_while_paused_and_readers_do_not(
    tmp_path: Path, reference: ReferenceData
) -> None:
    """While a backup holds the writers, an access-log append and an erasure's writable view
    wait (they finish once it lets go); a read goes on. (A wait that ends is the only
    outcome when this works; if pausing broke, the writers would finish at once.)"""
    ledger_path = build_ledger(tmp_path / "ledger.duckdb", reference, events=6)
    with serving(ledger_path, reference) as served:
        service = served.service
        done: list[str] = []

        def append() -> None:
            service.record_access(AccessEntry("reader", "compliance", "report ccpa", "c 1", 0))
            done.append("append")

        def write() -> None:
            with service.writable_view():
                done.append("writable view")

        writers = [threading.Thread(target=append), threading.Thread(target=write)]
        with service.writers_paused():
            for thread in writers:
                thread.start()
            for thread in writers:
                thread.join(timeout=0.5)
            assert done == []
            with service.view() as view:  # readers are not paused
                assert view.con.execute("SELECT count(*) FROM disclosures").fetchone() == (6,)
        for thread in writers:
            thread.join()
        assert sorted(done) == ["append", "writable view"]
