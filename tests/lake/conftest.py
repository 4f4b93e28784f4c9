"""Two services' connections to one DuckLake: each a DuckDB database of its own attached to
the same catalog (a database of the session's PostgreSQL server) and data path, as two
processes are."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from ledger.lake import EXTENSIONS, EXTRA, LakeLocation, attach_lake
from tests.conftest import skip_missing_part
from tests.postgres_server import PostgresServer


@pytest.fixture
def lake_connect(
    postgres_server: PostgresServer, tmp_path: Path
) -> Iterator[Callable[[], duckdb.DuckDBPyConnection]]:
    for name in EXTENSIONS.values():
        if importlib.util.find_spec(name) is None:
            skip_missing_part("the DuckLake extension wheels", EXTRA, detail=f"no {name}")
    location = LakeLocation(
        postgres_server.conninfo(postgres_server.new_database()),
        str(tmp_path / "lake-data") + "/",
        tmp_path / "ledger",
    )
    opened: list[duckdb.DuckDBPyConnection] = []

    def connect() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        attach_lake(con, location)
        opened.append(con)
        return con

    yield connect
    for con in opened:
        con.close()
