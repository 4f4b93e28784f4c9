"""How many commits a second one PostgreSQL catalog takes from several writers of one
DuckLake, and what each commit costs the catalog server (issue 21: the projection to 20
instances in docs/scale.md). A benchmark: it prints figures and asserts nothing.

    .venv/bin/python -m bench.bench_lake_commits                  # 1, 2, 3 writers, 15 s each

Each writer is a process of its own with the lake attached (extensions from the wheels), as
a ledger instance is, committing in a loop, for ``--seconds``: one transaction inserting
``--rows`` rows into a table of its own (so no two writers' commits conflict logically;
DuckLake retries the race for the next snapshot id by itself) and updating a one-row table
of its own (as an append holds its chain's fence). Counted: commits, the commits DuckLake
had to retry (its conflict error surfacing after ``ducklake_max_retry_count``) and the CPU
seconds the catalog's PostgreSQL backends spent (``/proc``, the backends of the lake's
database only), so the catalog's cost per commit can be projected to a bigger server.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ledger.lake import CATALOG, load_lake_extensions  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _connect(catalog: str, data_path: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    load_lake_extensions(con)
    clause = f" (DATA_PATH '{data_path}')" if data_path else ""
    con.execute(f"ATTACH 'ducklake:postgres:{catalog}' AS {CATALOG}{clause}")
    con.execute(f"USE {CATALOG}")
    return con


def _writer(
    catalog: str, writer: int, rows: int, seconds: float, start: float, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    con = _connect(catalog)
    commits = failed = 0
    while time.time() < start:
        time.sleep(0.01)
    while time.time() < start + seconds:
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(f"UPDATE fence_{writer} SET holds = holds + 1")
            con.execute(
                f"INSERT INTO rows_{writer} SELECT i, md5(i::VARCHAR) FROM range({rows}) t(i)"
            )
            con.execute("COMMIT")
            commits += 1
        except duckdb.Error:
            con.execute("ROLLBACK")
            failed += 1
    con.close()
    out.put((commits, failed))


def _backend_cpu(database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``database`` (alive now)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if not cmdline.startswith("postgres: ") or f" {database} " not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / TICKS


def measure(writers: int, rows: int, seconds: float, directory: Path) -> tuple[int, int, float]:
    """(commits, failed commits, catalog CPU seconds) of ``writers`` processes."""
    from tests.postgres_server import running_postgres

    with running_postgres() as server:
        database = server.new_database()
        catalog = server.conninfo(database)
        data = directory / f"commits-{database}"
        data.mkdir(parents=True)
        setup = _connect(catalog, f"{data}/")
        for w in range(writers):
            setup.execute(f"CREATE TABLE rows_{w} (i BIGINT, v VARCHAR)")
            setup.execute(f"CREATE TABLE fence_{w} (holds BIGINT)")
            setup.execute(f"INSERT INTO fence_{w} VALUES (0)")
        setup.close()
        context = multiprocessing.get_context("spawn")
        out: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
        start = time.time() + 3.0  # every writer attached before the clock starts
        procs = [
            context.Process(target=_writer, args=(catalog, w, rows, seconds, start, out))
            for w in range(writers)
        ]
        for p in procs:
            p.start()
        while time.time() < start + seconds - 0.5:
            time.sleep(0.1)
        cpu = _backend_cpu(database)  # the backends live until the writers close
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join()
    return sum(r[0] for r in results), sum(r[1] for r in results), cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", type=int, default=5000, help="rows a commit (a batch)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--dir", type=Path, default=ROOT / ".local" / "bench" / "lake-commits", help="data"
    )
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    print(
        f"commits of {args.rows:,} rows and one fence update, {args.seconds:.0f} s a config, "
        f"{os.cpu_count()} cores"
    )
    for writers in args.writers:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        commits, failed, cpu = measure(writers, args.rows, args.seconds, args.dir)
        per = cpu / commits * 1000 if commits else float("nan")
        print(
            f"  {writers} writer(s): {commits / args.seconds:,.1f} commits/s "
            f"({commits} in {args.seconds:.0f} s, {failed} failed after DuckLake's retries); "
            f"catalog CPU {per:.1f} ms a commit (load average {load})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
