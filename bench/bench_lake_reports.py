"""`report ccpa` and `report subject` on 10M rows: one DuckDB file beside a DuckLake holding
the same rows (issue 21, part 4: the lake's time <= 2x the file's).

The one-file ledger is ``bench/bench_reports.py``'s (built once into ``--dir``, then reused:
10M rows over 24 months with the platform's mix of recipients, categories and subjects, its
key store and coverage). A PostgreSQL server of the run's own (``tests/postgres_server.py``)
holds the lake's catalog; its Parquet files go under ``--dir``. The lake is created by the
ledger itself (``Ledger(LakeLocation(...))`` makes its tables as DuckLake takes them), then
every table of the file is copied into it, in the file's row order, with DuckDB's ``INSERT
INTO lake.t BY NAME SELECT * FROM file.t``: the derived tables the reports read
(``chain_heads``, ``heavy_subjects``, ``heavy_subject_rows``, ``ledger_meta``) are copied as
the file's writer left them, so the lake's reader finds them up to date, as ``ensure_derived``
would leave them. ``disclosures`` goes in commits of ``--load-batch`` rows, each one or more
Parquet files, as a consumer's batches would leave it (0: one statement, DuckLake's own file
sizes).

Then, alternating file and lake in each round (so the shared machine's load falls on both),
one warm-up and ``--repeat`` timed runs of: ``ccpa_report`` and ``subject_report`` as the
commands call them, on a ledger opened read-only (for the heaviest member, a member with a
key and no rows, and the member with the most rows outside the heavy subjects' copy), and
``report ccpa`` with the open and close a command pays. Prints medians side by side with the
lake/file ratio, the lake's data file count, and, with ``--compact``, the same after
DuckLake's own compaction (``ducklake_flush_inlined_data``, ``ducklake_merge_adjacent_files``).
``--explain`` writes ``EXPLAIN ANALYZE`` of the two CCPA queries on both backends into
``--dir``. Benchmarks print figures; they assert nothing.

    .venv/bin/python -m bench.bench_lake_reports                       # 10M rows, 5 runs
    .venv/bin/python -m bench.bench_lake_reports --rows 1000000 --repeat 3 --compact
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_reports import (  # noqa: E402
    ABSENT_SUBJECT,
    HEAVY_SUBJECT,
    SECRET,
    BenchLedger,
    _Pseudonym,
    build_ledger,
)
from ledger.derived import HEAVY_ROWS  # noqa: E402
from ledger.lake import CATALOG, LakeLocation, load_lake_extensions  # noqa: E402
from ledger.pseudonyms import SubjectKeyStore  # noqa: E402
from ledger.store import Ledger  # noqa: E402

FILE = "f"  # the one-file ledger, attached read-only beside the lake while loading
LAKE_LOGS = {"offsets": "offset_log", "chain_heads": "chain_head_log"}
"""The file's tables that a lake keeps as insert-only logs read through views of the same
names (``ledger.store.LAKE_LOG_DDL``)."""


@dataclass
class Lake:
    location: LakeLocation
    data_path: Path


@contextmanager
def lake_on_postgres(directory: Path) -> Iterator[Lake]:
    """A new, empty lake: a PostgreSQL server of this run's own, Parquet under ``directory``."""
    from tests.postgres_server import running_postgres

    data = directory / "lake-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    with running_postgres() as server:
        database = server.new_database()
        yield Lake(
            LakeLocation(server.conninfo(database), f"{data}/", directory / "lake.ledger"),
            data,
        )


def raw_connection(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake attached as ``lake`` (extensions from the wheels)."""
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    load_lake_extensions(con)
    con.execute(f"ATTACH 'ducklake:postgres:{lake.location.catalog}' AS {CATALOG}")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET memory_limit = '4GB'")  # a shared machine: a sorted load spills instead
    return con


def load_lake(
    bench: BenchLedger,
    lake: Lake,
    load_batch: int,
    options: dict[str, str] | None = None,
    layout: list[str] | None = None,
) -> float:
    """Create the lake through the ledger, set DuckLake ``options`` (``ducklake_options``:
    ``parquet_compression``, ``parquet_row_group_size``, ...) and run the ``layout``
    statements (``ALTER TABLE disclosures SET PARTITIONED BY / SORTED BY ...``) for the files
    written from then on, then copy every table of the file into it."""
    began = time.perf_counter()
    with Ledger(lake.location):  # the ledger's own DDL, as DuckLake takes it
        pass
    con = raw_connection(lake)
    try:
        for name, value in (options or {}).items():
            con.execute(f"CALL {CATALOG}.set_option(?, ?)", [name, value])
        con.execute(f"USE {CATALOG}")
        for statement in layout or []:
            con.execute(statement)
        con.execute(f"ATTACH '{bench.path}' AS {FILE} (READ_ONLY)")
        file_tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1",
                [FILE],
            ).fetchall()
        ]
        lake_tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [CATALOG]
            ).fetchall()
        }
        for table in file_tables:
            rows = int(con.execute(f"SELECT count(*) FROM {FILE}.{table}").fetchall()[0][0])
            if table in LAKE_LOGS:  # a view over an insert-only log on a lake
                con.execute(
                    f"INSERT INTO {CATALOG}.{LAKE_LOGS[table]} BY NAME SELECT * FROM {FILE}.{table}"
                )
            elif table not in lake_tables:  # reference data tables: made by the first append
                con.execute(f"CREATE TABLE {CATALOG}.{table} AS SELECT * FROM {FILE}.{table}")
            elif table == "disclosures" and load_batch > 0:
                for start in range(0, rows, load_batch):
                    con.execute(
                        f"INSERT INTO {CATALOG}.disclosures BY NAME SELECT * FROM "
                        f"{FILE}.disclosures WHERE rowid >= {start} AND rowid < "
                        f"{start + load_batch} ORDER BY rowid"
                    )
            else:
                con.execute("BEGIN TRANSACTION")
                con.execute(f"DELETE FROM {CATALOG}.{table}")  # ledger_meta: the file's own
                con.execute(
                    f"INSERT INTO {CATALOG}.{table} BY NAME "
                    f"SELECT * FROM {FILE}.{table} ORDER BY rowid"
                )
                con.execute("COMMIT")
            print(f"  loaded {table}: {rows:,} rows", file=sys.stderr, flush=True)
    finally:
        con.close()
    return time.perf_counter() - began


def lake_files(lake: Lake) -> tuple[int, int, float]:
    """The lake's data files of ``disclosures``, of every table, and their size in MB."""
    con = raw_connection(lake)
    try:
        disclosures = len(
            con.execute(f"SELECT * FROM ducklake_list_files('{CATALOG}', 'disclosures')").fetchall()
        )
    finally:
        con.close()
    files = [p for p in lake.data_path.rglob("*.parquet")]
    return disclosures, len(files), sum(p.stat().st_size for p in files) / 1e6


def compact(lake: Lake) -> float:
    """DuckLake's own compaction: inlined rows to Parquet, adjacent small files merged, and
    the replaced files' snapshots expired and deleted."""
    began = time.perf_counter()
    con = raw_connection(lake)
    try:
        con.execute(f"CALL ducklake_flush_inlined_data('{CATALOG}')")
        con.execute(f"CALL ducklake_merge_adjacent_files('{CATALOG}')")
        con.execute(f"CALL ducklake_expire_snapshots('{CATALOG}', older_than => now())")
        con.execute(f"CALL ducklake_cleanup_old_files('{CATALOG}', cleanup_all => true)")
    finally:
        con.close()
    return time.perf_counter() - began


Measure = Callable[[], object]


def measures(
    bench: BenchLedger,
    location: Path | LakeLocation,
    keys: SubjectKeyStore,
    settings: list[str] | None = None,
) -> tuple[Ledger, dict[str, Measure]]:
    """The reports as the commands call them, on one backend opened read-only, with the
    DuckDB ``settings`` (``NAME=VALUE``) set on its database instance after opening."""
    from reports.ccpa import ccpa_report
    from reports.subject import subject_report

    def opened() -> Ledger:
        ledger = Ledger(location, read_only=True)
        for setting in settings or []:
            name, value = setting.split("=", 1)
            ledger.con.execute(f"SET {name} = '{value}'")
        return ledger

    as_of = bench.end.date()
    ledger = opened()
    light, light_rows = ledger.con.execute(
        "SELECT any_value(subject_pseudonym), count(*) FROM disclosures "
        "WHERE subject_type = 'member' GROUP BY subject_key HAVING count(*) < $n "
        "ORDER BY 2 DESC, 1 LIMIT 1",
        {"n": HEAVY_ROWS},
    ).fetchall()[0]

    def command_ccpa() -> None:
        with opened() as each:
            ccpa_report(each, as_of)

    return ledger, {
        "report ccpa": lambda: ccpa_report(ledger, as_of),
        "report subject: the heaviest member": lambda: subject_report(
            ledger, keys, subject_type=HEAVY_SUBJECT[0], subject_id=HEAVY_SUBJECT[1], as_of=as_of
        ),
        "report subject: a key, no rows": lambda: subject_report(
            ledger, keys, subject_type=ABSENT_SUBJECT[0], subject_id=ABSENT_SUBJECT[1], as_of=as_of
        ),
        f"report subject: {light_rows} rows, not in the heavy copy": lambda: subject_report(
            ledger, _Pseudonym(light), subject_type="member", subject_id="-", as_of=as_of
        ),
        "report ccpa with open and close (the command)": command_ccpa,
    }


def time_side_by_side(
    bench: BenchLedger, lake: Lake, repeat: int, settings: list[str] | None = None
) -> dict[str, dict[str, list[float]]]:
    """{report: {backend: [seconds]}}: one warm-up each, then rounds alternating backends;
    with ``settings``, a third backend: the lake with those DuckDB settings."""
    times: dict[str, dict[str, list[float]]] = {}
    with SubjectKeyStore(bench.key_store, SECRET) as keys:
        file_ledger, on_file = measures(bench, bench.path, keys)
        lake_ledger, on_lake = measures(bench, lake.location, keys)
        set_ledger, on_set = (
            measures(bench, lake.location, keys, settings) if settings else (None, {})
        )
        try:
            backends = {"file": on_file, "lake": on_lake}
            if on_set:
                backends["lake+SET"] = on_set
            for runs in backends.values():
                for run in runs.values():
                    run()
            for round_ in range(repeat):
                for backend, runs in backends.items():
                    for name, run in runs.items():
                        began = time.perf_counter()
                        run()
                        elapsed = time.perf_counter() - began
                        times.setdefault(name, {}).setdefault(backend, []).append(elapsed)
                print(f"  round {round_ + 1} of {repeat} done", file=sys.stderr, flush=True)
        finally:
            file_ledger.close()
            lake_ledger.close()
            if set_ledger is not None:
                set_ledger.close()
    return times


class _TimedCursor:
    """A report's cursor that records how long each statement took (``--statements``)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, log: list[tuple[str, float]]) -> None:
        self._cursor, self._log = cursor, log
        self._sql, self._began = "", 0.0

    def execute(self, sql: str, *args: Any) -> _TimedCursor:
        self._sql, self._began = " ".join(sql.split()), time.perf_counter()
        self._cursor.execute(sql, *args)
        return self

    def _done(self, result: Any) -> Any:
        self._log.append((self._sql, time.perf_counter() - self._began))
        return result

    def fetchall(self) -> Any:
        return self._done(self._cursor.fetchall())

    def fetchone(self) -> Any:
        return self._done(self._cursor.fetchone())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


NEWEST_VERSION_TODAY = "SELECT reference_version FROM disclosures ORDER BY rowid DESC LIMIT 1"
NEWEST_VERSION_FROM_HEADS = (
    "SELECT d.reference_version FROM disclosures d SEMI JOIN chain_heads h "
    "ON d.chain_id = h.chain_id AND d.seq = h.head_seq "
    "WHERE d.seq >= (SELECT min(head_seq) FROM chain_heads) ORDER BY d.rowid DESC LIMIT 1"
)
"""The newest row's reference version, as the coverage reads it today (ledger/coverage.py,
a top-1 over every row) and from the chain heads' rows (the newest row is the head of its
chain; the seq filter lets zone maps and file statistics skip the rest)."""


def statements(bench: BenchLedger, lake: Lake, repeat: int) -> None:
    """Per-statement medians of ``report ccpa`` and ``report subject`` (a key, no rows) on
    both backends, and the coverage's newest-version query beside its alternative."""
    import reports.base
    from reports.ccpa import ccpa_report
    from reports.subject import subject_report

    log: list[tuple[str, float]] = []
    plain = reports.base.cursor_of
    reports.base.cursor_of = lambda con: _TimedCursor(plain(con), log)  # type: ignore
    as_of = bench.end.date()
    try:
        with SubjectKeyStore(bench.key_store, SECRET) as keys:
            for backend, location in (("file", bench.path), ("lake", lake.location)):
                with Ledger(location, read_only=True) as ledger:
                    runs: dict[str, Measure] = {
                        "report ccpa": lambda: ccpa_report(ledger, as_of),
                        "report subject, a key, no rows": lambda: subject_report(
                            ledger,
                            keys,
                            subject_type=ABSENT_SUBJECT[0],
                            subject_id=ABSENT_SUBJECT[1],
                            as_of=as_of,
                        ),
                    }
                    for name, run in runs.items():
                        run()
                        per: dict[str, list[float]] = {}
                        totals = []
                        for _ in range(repeat):
                            log.clear()
                            began = time.perf_counter()
                            run()
                            totals.append(time.perf_counter() - began)
                            for sql, seconds in log:
                                per.setdefault(sql, []).append(seconds)
                        print(
                            f"{backend}, {name}: {statistics.median(totals) * 1000:.0f} ms, "
                            f"{len(per)} statements (load average {load_average()})"
                        )
                        for sql, times in sorted(per.items(), key=lambda i: -max(i[1])):
                            print(f"  {statistics.median(times) * 1000:8.1f} ms  {sql[:100]}")
                    for label, sql in (
                        ("newest version, today", NEWEST_VERSION_TODAY),
                        ("newest version, from the chain heads", NEWEST_VERSION_FROM_HEADS),
                    ):
                        found = ledger.con.execute(sql).fetchall()
                        times = []
                        for _ in range(repeat):
                            began = time.perf_counter()
                            ledger.con.execute(sql).fetchall()
                            times.append(time.perf_counter() - began)
                        print(
                            f"{backend}, {label}: {statistics.median(times) * 1000:.0f} ms "
                            f"({found})"
                        )
    finally:
        reports.base.cursor_of = plain


def explain(bench: BenchLedger, lake: Lake, out: Path) -> None:
    """EXPLAIN ANALYZE of the CCPA report's two queries on both backends, into ``out``."""
    from reports.ccpa.queries import _GROUPS_SQL, _SUBJECT_MASKS_SQL
    from reports.window import naive_utc, report_window

    start, end = report_window(bench.end.date())
    params = {"start": naive_utc(start), "end": naive_utc(end)}
    with out.open("w") as sink:
        for backend, location in (("file", bench.path), ("lake", lake.location)):
            with Ledger(location, read_only=True) as ledger:
                for name, sql in (("groups", _GROUPS_SQL), ("subject masks", _SUBJECT_MASKS_SQL)):
                    plan = ledger.con.execute(f"EXPLAIN ANALYZE {sql}", params).fetchall()
                    sink.write(f"==== {backend}: {name}\n{plan[0][1]}\n")
    print(f"EXPLAIN ANALYZE written to {out}", file=sys.stderr)


def print_times(title: str, times: dict[str, dict[str, list[float]]]) -> None:
    print(title)
    width = max(len(name) for name in times)
    extra = "lake+SET" in next(iter(times.values()))
    print(
        f"  {'what':<{width}}  {'file':>9}  {'lake':>9}  lake/file  (target <= 2x)"
        + ("   lake+SET  its /file" if extra else "")
    )
    for name, by_backend in times.items():
        f = statistics.median(by_backend["file"])
        lk = statistics.median(by_backend["lake"])
        line = f"  {name:<{width}}  {f * 1000:>7.0f}ms  {lk * 1000:>7.0f}ms  {lk / f:>8.2f}x"
        if extra:
            ls = statistics.median(by_backend["lake+SET"])
            line += f"  {ls * 1000:>9.0f}ms  {ls / f:>7.2f}x"
        print(line)


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--repeat", type=int, default=5, help="timed runs each (medians)")
    parser.add_argument(
        "--load-batch",
        type=int,
        default=100_000,
        help="disclosures rows per commit into the lake (0: one statement)",
    )
    parser.add_argument(
        "--lake-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a DuckLake option set before loading (e.g. parquet_compression=zstd)",
    )
    parser.add_argument(
        "--lake-sql",
        action="append",
        default=[],
        metavar="SQL",
        help="a statement run on the lake before loading, e.g. "
        "'ALTER TABLE disclosures SET SORTED BY (subject_key)'",
    )
    parser.add_argument(
        "--lake-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also time the lake with this DuckDB setting (a third column), "
        "e.g. parquet_metadata_cache=true",
    )
    parser.add_argument("--compact", action="store_true", help="also time after compaction")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="also time each statement of the reports on both backends",
    )
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE into --dir")
    parser.add_argument(
        "--dir", type=Path, default=ROOT / ".local" / "bench", help="ledgers and lake data"
    )
    args = parser.parse_args(argv)
    bench = build_ledger(args.dir / f"reports-{args.rows}.duckdb", args.rows, args.months, args.end)
    with lake_on_postgres(args.dir) as lake:
        print(f"loading the lake (load average {load_average()})", file=sys.stderr)
        options = dict(o.split("=", 1) for o in args.lake_option)
        loaded = load_lake(bench, lake, args.load_batch, options, args.lake_sql)
        files, all_files, megabytes = lake_files(lake)
        file_mb = bench.path.stat().st_size / 1e6
        print(
            f"ledger: {bench.rows:,} rows, {bench.start:%Y-%m} to {bench.end:%Y-%m}; "
            f"{os.cpu_count()} CPUs, DuckDB {duckdb.__version__}; medians of {args.repeat}"
        )
        print(
            f"file {bench.path} ({file_mb:,.0f} MB); lake loaded in {loaded:.0f} s, "
            f"{args.load_batch or 'all'} rows a commit: {files} data files of disclosures, "
            f"{all_files} in all ({megabytes:,.0f} MB); DuckLake options {options or 'default'}"
            + "".join(f"; {sql}" for sql in args.lake_sql)
            + (f"; lake+SET: {', '.join(args.lake_set)}" if args.lake_set else "")
        )
        began = load_average()
        times = time_side_by_side(bench, lake, args.repeat, args.lake_set)
        print_times(f"as loaded (load average {began} before, {load_average()} after):", times)
        if args.explain:
            explain(bench, lake, args.dir / "lake-reports-explain.txt")
        if args.statements:
            statements(bench, lake, args.repeat)
        if args.compact:
            took = compact(lake)
            files, all_files, megabytes = lake_files(lake)
            print(
                f"compacted in {took:.0f} s: {files} data files of disclosures, "
                f"{all_files} in all ({megabytes:,.0f} MB)"
            )
            began = load_average()
            times = time_side_by_side(bench, lake, args.repeat, args.lake_set)
            print_times(
                f"after compaction (load average {began} before, {load_average()} after):",
                times,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
