"""Investigator queries: exactly one read-only statement over a ledger, refused otherwise.

Two independent locks, so that either alone keeps the ledger unchanged:

1. **The statement is checked by parsing it, before anything runs** (:func:`check_query`).
   DuckDB's own parser splits the text (comments, quoting and case are its business, not
   ours); there must be exactly one statement and it must be a ``SELECT`` (which covers
   ``WITH ... SELECT``, ``FROM t``, ``VALUES``, ``DESCRIBE``/``SHOW``/``SUMMARIZE`` and
   ``FROM table_function(...)``). The parse tree (``json_serialize_sql``) is then walked:
   every table function must be on :data:`ALLOWED_TABLE_FUNCTIONS` (functions over the
   ledger and its catalog; ``read_csv``, ``read_parquet``, ``glob``, ``query`` and the
   like read files or run unchecked SQL text), no scalar function from
   :data:`REFUSED_FUNCTIONS` may appear (sequence, logging, sleeping, SQL-text
   functions), and every table named must be a table or view of the ledger or a CTE of
   the statement, so ``FROM 'file.parquet'`` (a replacement scan that reads a file) is
   refused.
2. **The database is opened so it cannot write or reach out** (:func:`open_for_query`):
   ``read_only=True``, ``enable_external_access=false`` (no file reads or writes besides the
   ledger itself, no extension installs or loads, no ATTACH, no COPY),
   ``python_enable_replacements=false`` (no scanning of Python variables by name),
   extension auto-install and auto-load off, then ``lock_configuration=true`` so no
   statement can undo any of it.

Results stream: DuckDB hands Arrow record batches to :mod:`reports.render`, which writes
them as they come (a terminal table, CSV, JSON, or a Parquet file written batch by batch
with ``pyarrow.parquet``: DuckDB's own COPY is off on this connection); a query never holds
the whole result in Python. The named presets (:mod:`reports.presets`) run on the same
connection.

The pieces run on any connection, so the ledger service (:mod:`disclosure_ledger.service.
queries`), which has no second lock to open (its cursors belong to a read-write instance),
runs the same check (:func:`check_query`, :func:`check_relations`) and the same time limit
(:func:`time_limited`) on a cursor of its own, inside a transaction it always rolls back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import duckdb
import pyarrow as pa

from ledger.errors import LedgerError
from ledger.lake import LakeLocation, attach_lake, lock_lake_connection
from reports.errors import QueryRefusedError, QueryTimeLimitError, ReportError
from reports.render import DEFAULT_TABLE_ROWS, QUERY_FORMATS, write_result

BATCH_ROWS = 65_536

_SANDBOX: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,
}

ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        # rows made from values, and JSON held in the ledger
        "range",
        "generate_series",
        "unnest",
        "repeat",
        "json_each",
        "json_tree",
        # over the ledger's tables
        "histogram",
        "histogram_values",
        "pragma_table_info",
        "pragma_storage_info",
        "pragma_database_size",
        "pragma_version",
        # the catalog
        "duckdb_columns",
        "duckdb_constraints",
        "duckdb_functions",
        "duckdb_indexes",
        "duckdb_keywords",
        "duckdb_schemas",
        "duckdb_tables",
        "duckdb_types",
        "duckdb_views",
        "pg_timezone_names",
        "icu_calendar_names",
    }
)
"""Table functions a query may call: none reads a file, changes state or runs SQL text."""

TABLE_NAME_FUNCTIONS = frozenset(
    {"histogram", "histogram_values", "pragma_table_info", "pragma_storage_info"}
)
"""Allowed table functions whose first argument names a table of the ledger (checked, as a
``FROM`` is, against the relations withheld from queries)."""

_READS_FILES = "reads files or other databases, not the ledger"
_RUNS_SQL = "runs SQL text that cannot be checked before it runs"
_CHANGES_STATE = "changes the state of the database or session"
_TABLE_FUNCTION_REASONS: dict[str, str] = {
    **dict.fromkeys(
        [
            "read_csv",
            "read_csv_auto",
            "read_single_csv_file",
            "sniff_csv",
            "read_parquet",
            "parquet_scan",
            "read_single_parquet_file",
            "parquet_metadata",
            "parquet_file_metadata",
            "parquet_full_metadata",
            "parquet_kv_metadata",
            "parquet_schema",
            "parquet_bloom_probe",
            "read_json",
            "read_json_auto",
            "read_json_objects",
            "read_json_objects_auto",
            "read_ndjson",
            "read_ndjson_auto",
            "read_ndjson_objects",
            "read_single_json_file",
            "read_text",
            "read_blob",
            "read_duckdb",
            "glob",
            "iceberg_scan",
            "iceberg_metadata",
            "iceberg_snapshots",
            "delta_scan",
            "sqlite_scan",
            "postgres_scan",
            "mysql_scan",
            "read_xlsx",
            "st_read",
            "arrow_scan",
            "arrow_scan_dumb",
            "python_arrow_scan",
            "pandas_scan",
        ],
        _READS_FILES,
    ),
    **dict.fromkeys(
        ["query", "query_table", "json_execute_serialized_sql", "python_map_function"], _RUNS_SQL
    ),
    **dict.fromkeys(
        [
            "checkpoint",
            "force_checkpoint",
            "enable_logging",
            "disable_logging",
            "enable_profiling",
            "disable_profiling",
            "truncate_duckdb_logs",
            "create_external_resource",
            "register_external_resource",
            "register_external_resource_type",
            "deregister_external_resource",
            "destroy_external_resource",
        ],
        _CHANGES_STATE,
    ),
    **dict.fromkeys(
        [
            "duckdb_secrets",
            "which_secret",
            "duckdb_settings",
            "duckdb_extensions",
            "duckdb_extension_repositories",
            "duckdb_temporary_files",
            "duckdb_logs",
        ],
        "describes the installation, not the ledger",
    ),
}
"""Table functions refused, with the reason; any other not allowed is refused too."""

REFUSED_FUNCTIONS: dict[str, str] = {
    "nextval": "advances a sequence",
    "setval": "changes a sequence",
    "currval": "reads session state of a sequence",
    "setseed": _CHANGES_STATE,
    "write_log": "writes to DuckDB's log",
    "sleep_ms": "stalls while holding the ledger open",
    "pg_sleep": "stalls while holding the ledger open",
    "getenv": "reads the environment",
    "json_serialize_plan": _RUNS_SQL,
    "json_deserialize_sql": _RUNS_SQL,
    "json_serialize_sql": _RUNS_SQL,
    **_TABLE_FUNCTION_REASONS,
}
"""Scalar (and aggregate) functions a query may not call, with the reason."""

_REFUSED_STATEMENTS: dict[str, str] = {
    "INSERT": "it writes rows",
    "UPDATE": "it changes rows",
    "DELETE": "it deletes rows",
    "MERGE_INTO": "it changes rows",
    "CREATE": "it creates objects (DDL)",
    "CREATE_FUNC": "it creates a function or macro (DDL)",
    "DROP": "it drops objects (DDL)",
    "ALTER": "it alters objects (DDL)",
    "ATTACH": "it attaches another database",
    "DETACH": "it detaches a database",
    "COPY": "it reads or writes files",
    "COPY_DATABASE": "it copies a database",
    "EXPORT": "it writes files",
    "LOAD": "it installs or loads an extension",
    "EXTENSION": "it installs or loads an extension",
    "PRAGMA": "it runs a pragma, which can change settings",
    "SET": "it changes settings",
    "VARIABLE_SET": "it changes session variables",
    "CALL": "it calls a procedure, which can change state",
    "TRANSACTION": "it controls transactions",
    "VACUUM": "it rewrites storage",
    "ANALYZE": "it updates statistics",
    "PREPARE": "it prepares a statement to run later, unchecked",
    "EXECUTE": "it runs a prepared statement",
    "EXPLAIN": "EXPLAIN ANALYZE runs its statement; ask for the rows instead",
    "MULTI": "DuckDB rewrites it into several statements (a PIVOT without an IN list "
    "creates a type first); give the IN list",
}


_SHOW_CATALOG_NAMES = frozenset(
    {'"tables"', '"databases"', '"variables"', "__show_tables_expanded"}
)
"""What DuckDB 1.5 puts as the table name of ``SHOW TABLES``, ``SHOW DATABASES``, ``SHOW
VARIABLES`` and ``SHOW ALL TABLES`` (2.0 marks them ``SHOW_SPECIAL``): they list the catalog."""


def _parser() -> duckdb.DuckDBPyConnection:
    """An empty in-memory database, sandboxed like the ledger, used only to parse."""
    con = duckdb.connect(":memory:", config=dict(_SANDBOX))
    con.execute("SET lock_configuration = true")
    return con


def check_query(sql: str, *, withheld: Mapping[str, str] | None = None) -> set[str]:
    """Refuse (:class:`QueryRefusedError`) anything but one read-only SELECT.

    Returns the names of the tables the statement reads (lowercase, without schema),
    excluding its CTEs; :func:`check_relations` checks them against the ledger's catalog.
    ``withheld`` maps relations no query may read (the service withholds the access log) to
    the reason: a statement naming one anywhere (a table, a CTE shadowing it, the table
    argument of ``histogram()`` and the like) is refused.
    """
    with _parser() as con:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryRefusedError(f"the query does not parse: {exc}") from exc
        if not statements:
            raise QueryRefusedError("the query is empty: give one SELECT statement")
        if any(not s.query.strip() for s in statements):
            # DuckDB 1.5 hands out the parts of a statement it rewrote into several (a PIVOT
            # without an IN list becomes CREATE TYPE + SELECT) as statements without text of
            # their own, where 2.0 gives one MULTI statement: refuse either as MULTI.
            kinds = ", ".join(s.type.name for s in statements)
            raise QueryRefusedError(
                f"refused a MULTI statement ({kinds}): {_REFUSED_STATEMENTS['MULTI']}. Only "
                "one read-only SELECT (or WITH ... SELECT) is accepted over the ledger"
            )
        if len(statements) > 1:
            kinds = ", ".join(s.type.name for s in statements)
            raise QueryRefusedError(
                f"the query holds {len(statements)} statements ({kinds}); exactly one "
                "read-only SELECT is accepted"
            )
        kind = statements[0].type.name
        if kind != "SELECT":
            why = _REFUSED_STATEMENTS.get(kind, "it is not a SELECT")
            raise QueryRefusedError(
                f"refused a {kind} statement: {why}. Only one read-only SELECT "
                "(or WITH ... SELECT) is accepted over the ledger"
            )
        try:
            found = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
        except duckdb.Error as exc:  # json is built into the wheel; say so if it is not
            raise ReportError(f"cannot inspect the query's parse tree: {exc}") from exc
    tree: dict[str, Any] = (
        json.loads(found[0]) if found else {"error": True, "error_message": "no result"}
    )
    if tree.get("error"):
        raise QueryRefusedError(
            f"the query's parse tree cannot be inspected: {tree.get('error_message')}"
        )
    if len(tree.get("statements", [])) != 1:
        raise QueryRefusedError("exactly one read-only SELECT statement is accepted")
    walk = _TreeWalk()
    walk.visit(tree["statements"][0])
    for relation in sorted(walk.tables | walk.ctes | walk.named_by_functions):
        if withheld and relation in withheld:
            raise QueryRefusedError(
                f"refused: {relation} is not open to queries: {withheld[relation]}"
            )
    return walk.tables - walk.ctes


class _TreeWalk:
    """Collects table names and CTE names; refuses disallowed functions on sight."""

    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.ctes: set[str] = set()
        self.named_by_functions: set[str] = set()

    def visit(self, node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                self.visit(item)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            self._table_function(name)
            if name in TABLE_NAME_FUNCTIONS:
                self.named_by_functions.add(_table_argument(name, function))
        elif kind == "BASE_TABLE":
            for part in (node.get("catalog_name"), node.get("schema_name")):
                if str(part or "").lower().startswith("__ducklake_metadata"):
                    raise QueryRefusedError(
                        f"refused {part}: it is the DuckLake catalog's own database, not the "
                        "ledger; query the ledger's tables"
                    )
            self.tables.add(str(node.get("table_name", "")).lower())
        elif kind == "SHOW_REF" and node.get("show_type") != "SHOW_SPECIAL":
            name = str(node.get("table_name") or "")
            if name and name.lower() not in _SHOW_CATALOG_NAMES:
                self.tables.add(name.lower())
        if "function_name" in node and "function" not in node:
            self._scalar_function(str(node["function_name"]).lower())
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map", []):
                self.ctes.add(str(entry.get("key", "")).lower())
        for value in node.values():
            self.visit(value)

    def _table_function(self, name: str) -> None:
        if name in ALLOWED_TABLE_FUNCTIONS:
            return
        why = _TABLE_FUNCTION_REASONS.get(name, "is not one of the table functions allowed")
        raise QueryRefusedError(
            f"refused table function {name}(): it {why}. Query the ledger's tables and "
            f"views, or these table functions: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}"
        )

    def _scalar_function(self, name: str) -> None:
        why = REFUSED_FUNCTIONS.get(name)
        if why is not None:
            raise QueryRefusedError(f"refused function {name}(): it {why}")


def _table_argument(function_name: str, function: dict[str, Any]) -> str:
    """The table a :data:`TABLE_NAME_FUNCTIONS` call names (lowercase, without schema)."""
    children = function.get("children") or []
    first = children[0] if children else {}
    value = first.get("value") if first.get("class") == "CONSTANT" else None
    if isinstance(value, dict) and isinstance(value.get("value"), str):
        return str(value["value"]).rsplit(".", 1)[-1].strip('"').lower()
    names = first.get("column_names") if first.get("class") == "COLUMN_REF" else None
    if isinstance(names, list) and names:
        return str(names[-1]).lower()
    raise QueryRefusedError(
        f"refused {function_name}(): give the table's name as a constant, "
        f"such as {function_name}('disclosures')"
    )


def open_for_query(ledger_path: Path | LakeLocation) -> duckdb.DuckDBPyConnection:
    """The ledger opened read-only, without external access, configuration locked."""
    if isinstance(ledger_path, LakeLocation):
        return _lake_for_query(ledger_path)
    path = Path(ledger_path)
    if not path.is_file():
        raise LedgerError(
            f"ledger file {path} does not exist; check --ledger, or ingest into it first "
            "with `disclosure-ledger consume`"
        )
    try:
        con = duckdb.connect(str(path), read_only=True, config=dict(_SANDBOX))
    except duckdb.Error as exc:
        hint = (
            "; another process holds it for writing (DuckDB allows one writing process, or "
            "any number of read-only ones): wait until it stops"
            if "lock" in str(exc).lower()
            else "; is it a DuckDB ledger file?"
        )
        raise LedgerError(f"cannot open ledger file {path} for a query: {exc}{hint}") from exc
    con.execute("SET enable_progress_bar = false")
    # an index on subject_pseudonym, if the ledger has one, serves a person's thousands of rows
    con.execute("SET index_scan_max_count = 1000000")
    con.execute("SET lock_configuration = true")
    return con


def _lake_for_query(location: LakeLocation) -> duckdb.DuckDBPyConnection:
    """A DuckLake opened for a query: attached read-only, external access off but for the
    lake's data path (:func:`ledger.lake.lock_lake_connection`), configuration locked."""
    con = duckdb.connect(
        ":memory:", config={k: v for k, v in _SANDBOX.items() if k != "enable_external_access"}
    )
    try:
        attach_lake(con, location, read_only=True)
        lock_lake_connection(con, location)
        con.execute("SET enable_progress_bar = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def check_relations(
    con: duckdb.DuckDBPyConnection, tables: set[str], *, withheld: Mapping[str, str] | None = None
) -> None:
    """Refuse a statement reading a name that is not a table or view of the ledger (a quoted
    name of a file would be read from disk), or one of the ``withheld`` relations."""
    rows = con.execute(
        "SELECT lower(table_name), true FROM duckdb_tables() "
        "UNION ALL SELECT lower(view_name), false FROM duckdb_views()"
    ).fetchall()
    hidden = set(withheld or ())
    known = {str(r[0]) for r in rows} - hidden
    unknown = sorted(tables - known)
    if unknown:
        ledger_tables = sorted(str(r[0]) for r in rows if r[1] and str(r[0]) not in hidden)
        raise QueryRefusedError(
            f"refused: {', '.join(repr(t) for t in unknown)} is not a table or view of the "
            "ledger (a quoted file name would be read from disk). The ledger's tables: "
            + ", ".join(ledger_tables)
        )


@contextmanager
def time_limited(con: duckdb.DuckDBPyConnection, time_limit: float | None) -> Iterator[None]:
    """Run the body (a statement on ``con`` and the reading of its result) under
    ``time_limit`` seconds, None for none; DuckDB's, Arrow's and the writer's errors become
    :class:`ReportError`, and the statement stopped at the limit
    :class:`QueryTimeLimitError`.

    DuckDB 1.5 has no max_execution_time setting: a timer interrupts the connection, which
    stops the statement wherever it is, writing batches included.
    """
    if time_limit is not None and time_limit <= 0:
        raise ReportError(f"time limit {time_limit} s: give a positive number of seconds")
    timer = None if time_limit is None else threading.Timer(time_limit, con.interrupt)
    try:
        if timer is not None:
            timer.daemon = True
            timer.start()
        yield
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        if timer is not None and time_limit is not None and timer.finished.is_set():
            raise QueryTimeLimitError(
                f"the query was stopped after its time limit of {time_limit:g} s; narrow "
                "it (a shorter window, fewer columns) or give it more time",
                time_limit,
            ) from exc
        raise ReportError(f"the query failed: {exc}") from exc
    finally:
        if timer is not None:
            timer.cancel()


def check_output(fmt: str, output_path: Path | None) -> None:
    """Refuse an unknown format, or Parquet without a file to write it to."""
    if fmt not in QUERY_FORMATS:
        raise ReportError(f"unknown format {fmt!r}; choose one of {', '.join(QUERY_FORMATS)}")
    if fmt == "parquet" and output_path is None:
        raise ReportError("Parquet is binary and written to a file: give --output FILE.parquet")


def run_query(
    ledger_path: Path | LakeLocation,
    sql: str,
    fmt: str = "table",
    out: TextIO | None = None,
    *,
    output_path: Path | None = None,
    batch_rows: int = BATCH_ROWS,
    max_table_rows: int = DEFAULT_TABLE_ROWS,
    time_limit: float | None = None,
) -> int:
    """Check ``sql``, run it over the ledger read-only and write the result to ``out``.

    ``fmt`` is ``table`` (aligned text, first ``max_table_rows`` rows), ``csv`` or ``json``
    (an array of objects), written to ``out`` (default standard output), or ``parquet``,
    written to ``output_path`` batch by batch. Returns the number of rows.
    Raises :class:`QueryRefusedError` before anything runs if the statement is not one
    read-only SELECT over the ledger, :class:`LedgerError` if the ledger cannot be opened,
    :class:`ReportError` if DuckDB cannot run the statement, or if it ran longer than
    ``time_limit`` seconds (none by default), when it is stopped
    (:class:`QueryTimeLimitError`).
    """
    if time_limit is not None and time_limit <= 0:
        raise ReportError(f"time limit {time_limit} s: give a positive number of seconds")
    check_output(fmt, output_path)
    tables = check_query(sql)
    con = open_for_query(ledger_path)
    try:
        check_relations(con, tables)
        with time_limited(con, time_limit):
            relation = con.sql(sql)
            if relation is None:
                raise QueryRefusedError("the statement returned no result set")
            reader = relation.to_arrow_reader(batch_rows)
            return write_result(
                fmt, reader, out=out, output_path=output_path, max_table_rows=max_table_rows
            )
    finally:
        con.close()


def coverage_note(described: str) -> str:
    """What a query's rows are told with: how far the ledger they were read from is
    complete (:meth:`ledger.coverage.Coverage.describe`). Rows carry no coverage of their
    own, so the CLI writes this beside them (standard error) and the service sends it with
    them (``X-Ledger-Coverage``, or a page's ``coverage``)."""
    return f"note: {described}; rows that occurred after that time may still arrive"
