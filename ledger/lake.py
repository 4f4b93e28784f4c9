"""A ledger in a DuckLake: the same tables as the one-file ledger, as Parquet files under a data
path, with their catalog in PostgreSQL (docs/ducklake.md).

A location is written ``ducklake:postgres:<libpq connection string>``, DuckLake's own
``ATTACH`` syntax; where the Parquet files go (a directory or an ``s3://`` URL) is the
``DISCLOSURE_LEDGER_LAKE_DATA_PATH`` setting, recorded in the catalog when the lake is
created. DuckDB's ``ducklake`` and ``postgres_scanner`` extensions are loaded from the files
the PyPI wheels of the ``ducklake`` extra installed, built for exactly this DuckDB version:
autoinstall and autoload stay off, so nothing is ever downloaded.

What DuckLake does not support, and how the ledger's SQL takes it (:func:`lake_ddl`), is
listed in docs/ducklake.md.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ledger.errors import LedgerError

PREFIX = "ducklake:postgres:"
"""How a ``--ledger`` value names a DuckLake with its catalog in PostgreSQL."""

CATALOG = "lake"
"""The name the lake is attached under in the ledger's DuckDB connection (``USE lake``)."""

EXTRA = "pip install 'disclosure-ledger[ducklake]'"
"""How to install the two extension wheels (pinned in pyproject.toml and requirements.lock)."""

EXTENSIONS = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}
"""Each extension DuckDB needs for a lake, and the import package of the wheel that ships it
(the wheel holds ``<package>/extensions/v<DuckDB version>/<name>.duckdb_extension``)."""

_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class LakeLocation:
    """A DuckLake ledger: its PostgreSQL catalog, its data path, and a local base path.

    ``catalog`` is a libpq connection string (``dbname=ledger host=db.internal user=ledger``;
    the password best comes from ``PGPASSFILE``/``~/.pgpass`` or ``PGPASSWORD``, as for every
    libpq client). ``data_path`` is needed only to create the lake; DuckLake records it in the
    catalog. ``local_path`` is where this machine keeps the files that sit beside a one-file
    ledger (``LEDGER.keys.sqlite``, ``LEDGER.checkpoints``, ...), named as if it were one."""

    catalog: str
    data_path: str | None = None
    local_path: Path = Path("ducklake.ledger")

    def __str__(self) -> str:
        """The location with any password in the connection string masked."""
        return PREFIX + _PASSWORD.sub(r"\1***", self.catalog)


def is_lake(text: str) -> bool:
    return text.startswith("ducklake:")


def parse_location(
    text: str | Path, *, data_path: str | None = None, local_path: Path | None = None
) -> Path | LakeLocation:
    """A ``--ledger`` value: a DuckDB file path, or ``ducklake:postgres:<conninfo>``."""
    if isinstance(text, Path) or not is_lake(text):
        return Path(text)
    if not text.startswith(PREFIX):
        raise LedgerError(
            f"ledger location {text!r}: a DuckLake ledger is written "
            f"'{PREFIX}<libpq connection string>' (its catalog in PostgreSQL, the only "
            "catalog database supported), e.g. 'ducklake:postgres:dbname=ledger host=db'"
        )
    catalog = text[len(PREFIX) :].strip()
    if not catalog:
        raise LedgerError(
            f"ledger location {text!r} names no PostgreSQL database: give a libpq connection "
            "string after the prefix, e.g. 'ducklake:postgres:dbname=ledger host=db'"
        )
    return LakeLocation(
        catalog,
        data_path or None,
        local_path if local_path is not None else Path("ducklake.ledger"),
    )


def extension_file(name: str) -> Path:
    """The extension file the wheel of ``name`` installed for this DuckDB version."""
    package = EXTENSIONS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise LedgerError(
            f"a DuckLake ledger needs DuckDB's {name} extension, from the PyPI wheel "
            f"{package.replace('_', '-')}=={duckdb.__version__}, which is not installed: "
            f"install it with {EXTRA}"
        )
    folder = Path(spec.origin).parent / "extensions"
    found = folder / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not found.is_file():
        built = sorted(p.name for p in folder.glob("v*")) if folder.is_dir() else []
        raise LedgerError(
            f"the installed {package.replace('_', '-')} wheel holds the {name} extension for "
            f"DuckDB {', '.join(built) or 'no version'}, not for DuckDB {duckdb.__version__} "
            f"(no {found}): reinstall it at this DuckDB's version with "
            f"{EXTRA} -c requirements.lock"
        )
    return found


def load_lake_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """Load ``ducklake`` and ``postgres_scanner`` from the installed wheels, never from the
    network (the connection must have been opened with autoinstall and autoload off)."""
    for name in EXTENSIONS:
        path = extension_file(name)
        try:
            con.execute(f"LOAD '{_quoted(str(path))}'")
        except duckdb.Error as exc:
            raise LedgerError(
                f"DuckDB {duckdb.__version__} cannot load the {name} extension from {path}: "
                f"{exc}; reinstall it with {EXTRA} -c requirements.lock"
            ) from exc


def attach_lake(
    con: duckdb.DuckDBPyConnection, location: LakeLocation, *, read_only: bool = False
) -> None:
    """Load the extensions, attach the lake as :data:`CATALOG` and make it the default."""
    load_lake_extensions(con)
    options = []
    if location.data_path:
        options.append(f"DATA_PATH '{_quoted(location.data_path)}'")
    if read_only:
        options.append("READ_ONLY")
    clause = f" ({', '.join(options)})" if options else ""
    try:
        con.execute(f"ATTACH '{_quoted(PREFIX + location.catalog)}' AS {CATALOG}{clause}")
        con.execute(f"USE {CATALOG}")
    except duckdb.Error as exc:
        hint = (
            ""
            if location.data_path
            else "; a new lake also needs its data path: set DISCLOSURE_LEDGER_LAKE_DATA_PATH "
            "to a directory or an s3:// URL"
        )
        raise LedgerError(
            f"cannot open the DuckLake ledger {location}: {_masked(str(exc))}; check that the "
            f"PostgreSQL server in the connection string runs and accepts this user{hint}"
        ) from exc


def lock_lake_connection(con: duckdb.DuckDBPyConnection, location: LakeLocation) -> None:
    """Turn off external access for the rest of the database's life, except the lake's own
    data path (the catalog connection is already open). What this leaves reachable, and what
    the investigator query's parser check must refuse besides, is in docs/ducklake.md."""
    found = con.execute(f"SELECT data_path FROM ducklake_settings('{CATALOG}')").fetchall()
    data_path = found[0][0] if found else location.data_path
    if data_path:
        con.execute("SET allowed_directories = ?", [[str(data_path)]])
    con.execute("SET enable_external_access = false")


def cursor_of(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A new cursor on ``con``'s database instance, with the lake as its default catalog when
    the instance has one: DuckDB's ``USE`` holds per connection, and a cursor is a new one."""
    cursor = con.cursor()
    if cursor.execute(
        "SELECT 1 FROM duckdb_databases() WHERE database_name = ?", [CATALOG]
    ).fetchall():
        cursor.execute(f"USE {CATALOG}")
    return cursor


def lake_ddl(sql: str) -> str:
    """``CREATE TABLE`` statements as DuckLake takes them: without PRIMARY KEY or UNIQUE
    constraints and without per-column compression (docs/ducklake.md)."""
    sql = re.sub(r",\s*PRIMARY KEY\s*\([^)]*\)", "", sql, flags=re.IGNORECASE)
    sql = re.sub(r"\s+(PRIMARY KEY|UNIQUE)\b", "", sql, flags=re.IGNORECASE)
    return re.sub(r"\s+USING COMPRESSION\s+\w+", "", sql, flags=re.IGNORECASE)


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def _masked(text: str) -> str:
    return _PASSWORD.sub(r"\1***", text)
