"""The service of ``conftest.service_client`` with tight query limits (a short time limit,
one query slot, a short wait for it, small bodies), and what a test compares to prove that
nothing in the ledger changed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from disclosure_ledger.service.config import ServiceConfig
from disclosure_ledger.service.runtime import LedgerService
from reference import ReferenceData
from tests.service.conftest import ServiceClient, build_ledger, serving

TIME_LIMIT = 1.0
MAX_BODY = 4_096
ENDLESS = "SELECT count(*) FROM range(1000000000) a, range(1000000000) b WHERE a.range <> b.range"
"""A cross join that would run for years: only the time limit stops it."""


@contextmanager
def limited_service(
    tmp_path: Path, reference: ReferenceData, *, time_limit: float = TIME_LIMIT
) -> Iterator[ServiceClient]:
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    config = ServiceConfig(
        ledger=path,
        memory_limit="512MB",
        query_time_limit=time_limit,
        max_concurrent_queries=1,
        query_slot_wait=0.2,
        max_page_rows=20,
        max_body_bytes=MAX_BODY,
    )
    with serving(path, reference, config=config) as served:
        yield served


def ledger_state(service: LedgerService) -> dict[str, Any]:
    """Every table and view of the ledger with its rows, some settings, the files beside it."""
    with service.view() as view:
        names = view.con.execute(
            "SELECT table_name, 'table' FROM duckdb_tables() "
            "UNION ALL SELECT view_name, 'view' FROM duckdb_views() WHERE NOT internal "
            "ORDER BY 1"
        ).fetchall()
        # rows and an order-free digest of their contents: an UPDATE shows too
        contents = {
            f"{kind} {name}": view.con.execute(
                f'SELECT count(*), bit_xor(hash(t)) FROM "{name}" t'
            ).fetchone()
            for name, kind in names
        }
        settings = view.con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'memory_limit', 'threads', 'access_mode') ORDER BY 1"
        ).fetchall()
    folder = service.config.ledger.parent
    # DuckDB's own write-ahead log and spill folder (ledger.duckdb.tmp) come and go
    files = sorted(p.name for p in folder.iterdir() if not p.name.endswith((".wal", ".tmp")))
    return {"relations": contents, "settings": settings, "files": files}
