"""How fast the reports are on a large ledger (issue 7: ccpa <= 1 s, subject <= 100 ms).

Builds (once, then reuses) a ledger of ``--rows`` disclosures over ``--months`` months
directly in DuckDB SQL, not through Kafka: the rows are drawn from templates that the
simulator and the reference data produce (so recipients, data categories, letters, purposes
and flags have the platform's real mix), with members chosen as the simulator chooses them
(a few members account for many disclosures) and guests uniformly. Hashes are stand-ins:
reports read them, they do not verify them.

The rows carry their derived data (``ledger/derived.py``): the insert computes the letter
masks and subject keys, and the writer derives chain heads and the heavy subjects' copy
when it closes; a ledger built before derived data existed is migrated when reused.

Then times, best of ``--repeat`` runs each (after one warm-up): ``report ccpa``, ``report
subject`` for the member with the most events, for one with a key but no events, for one
unknown to the key store and for the member with the most events among those not in the
heavy subjects' copy (the slowest person to find), ``report recipients``, ``conformance``
and ``transfers``, ``check_derived`` (what it adds to ``verify``), ``query timeline`` and
``query volume``, and prints a table. Benchmarks print figures; they assert nothing.

``--explore`` also measures the schema changes considered for issue 7, on copies (never on
the ledger): a stored CCPA letter bit mask and narrower subject keys for the ccpa query; for
the subject report, a copy clustered by pseudonym and an ART index on ``subject_pseudonym``
(with its cost to the writer).

    .venv/bin/python bench/bench_reports.py                  # 10M rows, 24 months
    .venv/bin/python bench/bench_reports.py --rows 1000000   # quicker
    .venv/bin/python bench/bench_reports.py --explore        # also the schema experiments
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from disclosure_ledger.simulate import simulate  # noqa: E402
from ledger.derived import DERIVED_SELECT, HEAVY_ROWS, check_derived  # noqa: E402
from ledger.pseudonyms import SubjectKeyStore  # noqa: E402
from ledger.store import (  # noqa: E402
    DISCLOSURE_COLUMNS,
    DUPLICATE_COLUMNS,
    QUARANTINE_COLUMNS,
    Batch,
    Ledger,
    empty,
)
from reference import classify_event, load_reference  # noqa: E402

TOPIC = "privacy.disclosures.v1"
PARTITIONS = 3
SECRET = b"bench-secret-" + b"0" * 24
HEAVY_SUBJECT = ("member", "member-0000001")  # the simulator's most active member
ABSENT_SUBJECT = ("member", "member-9999999")  # has a key, never disclosed
TEMPLATES = 20_000


@dataclass(frozen=True)
class BenchLedger:
    path: Path
    key_store: Path
    rows: int
    start: datetime
    end: datetime


def _templates(start: datetime, end: datetime) -> pa.Table:
    """Realistic disclosure shapes: simulated events, classified by the reference data."""
    ref = load_reference()
    columns: dict[str, list[object]] = {
        name: []
        for name in (
            "subject_type",
            "recipient_id",
            "recipient_category",
            "data_categories",
            "purpose",
            "legal_basis",
            "disclosure_kind",
            "producer_service",
            "producer_version",
            "ccpa_letters",
            "business_purpose",
            "sensitive",
            "declared",
            "flags",
        )
    }
    for event in simulate(TEMPLATES, 11, start, end, reference=ref, undeclared_rate=0.01):
        c = classify_event(ref, event)
        values = (
            event.subject.type.value,
            event.recipient.id,
            event.recipient.category.value,
            list(event.data_categories),
            event.purpose,
            event.legal_basis.value,
            event.disclosure_kind.value,
            event.producer.service,
            event.producer.version,
            list(c.ccpa_letters),
            c.business_purpose,
            c.sensitive,
            c.declared,
            list(c.flags),
        )
        for name, value in zip(columns, values, strict=True):
            columns[name].append(value)
    table = pa.table(columns)
    return table.append_column("template", pa.array(range(table.num_rows), pa.int64()))


# Deterministic pseudo-random numbers in [0, 1) from the row number and a salt.
def _uniform(salt: int) -> str:
    return f"((hash(i, {salt}) % 1000000007) / 1000000007.0)"


_INSERT = f"""
INSERT INTO disclosures BY NAME
SELECT *, {DERIVED_SELECT} FROM (
WITH numbered AS (
    SELECT i,
           CAST(floor({_uniform(1)} * $templates) AS BIGINT) AS template,
           {_uniform(2)} AS r_subject,
           {_uniform(3)} AS r_guest
    FROM range($rows) t(i)
), drawn AS (
    SELECT n.i, t.*,
           CASE WHEN t.subject_type = 'guest'
                THEN 'guest-' || lpad(
                    CAST(floor(n.r_guest * $guests) + 1 AS BIGINT)::VARCHAR, 7, '0')
                ELSE 'member-' || lpad(
                    CAST(floor($members * n.r_subject * n.r_subject) + 1 AS BIGINT)::VARCHAR,
                    7, '0')
           END AS subject_id
    FROM numbered n JOIN templates t USING (template)
)
SELECT '{TOPIC}/' || (i % {PARTITIONS}) AS chain_id,
       i // {PARTITIONS} + 1 AS seq,
       '{TOPIC}' AS topic,
       CAST(i % {PARTITIONS} AS INTEGER) AS kafka_partition,
       i // {PARTITIONS} AS kafka_offset,
       CAST(md5(i::VARCHAR) AS UUID) AS event_id,
       $start + to_milliseconds(CAST(i * $span_ms / $rows AS BIGINT)) AS occurred_at,
       CASE WHEN subject_id = $heavy_id THEN $heavy_pseudonym
            ELSE sha256(subject_type || chr(0) || subject_id) END AS subject_pseudonym,
       subject_type, recipient_id, recipient_category, data_categories, purpose, legal_basis,
       disclosure_kind, producer_service, producer_version, '{{}}' AS context,
       1 AS schema_version, $version AS reference_version, ccpa_letters, business_purpose,
       sensitive, declared, flags,
       $start + to_milliseconds(CAST(i * $span_ms / $rows AS BIGINT) + 1500) AS ingested_at,
       unhex(sha256('leaf' || i::VARCHAR)) AS leaf_hash,
       unhex(sha256('link' || i::VARCHAR)) AS chain_hash
FROM drawn
)
"""  # no ORDER BY: DuckDB keeps insertion order, so rows land in time order. The writer
# derives chain heads and the heavy subjects' copy when it closes (ledger/derived.py).


def build_ledger(path: Path, rows: int, months: int, end: date) -> BenchLedger:
    """Create the ledger at ``path`` unless one of that size is already there."""
    end_at = datetime(end.year, end.month, 1, tzinfo=UTC)
    index = end_at.year * 12 + end_at.month - 1 - months
    start_at = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
    keys = path.with_name(path.name + ".keys.sqlite")
    bench = BenchLedger(path, keys, rows, start_at, end_at)
    if path.exists() and keys.exists():
        with duckdb.connect(str(path), read_only=True) as con:
            found = con.execute("SELECT count(*) FROM disclosures").fetchone()
        if found and found[0] == rows:
            with Ledger(path) as ledger:  # the writer brings an older ledger up to date
                _declare_complete(ledger.con, end_at)
            return bench
    for old in (path, keys, path.with_name(path.name + ".wal")):
        old.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    templates = _templates(start_at, end_at)
    ref = load_reference()
    with SubjectKeyStore(keys, SECRET) as store:
        heavy = store.pseudonyms([HEAVY_SUBJECT])[0]
        store.pseudonyms([ABSENT_SUBJECT])
    with Ledger(path) as ledger:
        ledger.append_batch(
            Batch(
                accepted=empty(DISCLOSURE_COLUMNS),
                quarantined=empty(QUARANTINE_COLUMNS),
                duplicates=empty(DUPLICATE_COLUMNS),
                reference_tables=ref.to_arrow_tables(),
            )
        )
        con = ledger.con
        con.register("templates", templates)
        con.execute(
            _INSERT,
            {
                "rows": rows,
                "templates": templates.num_rows,
                "members": min(max(rows // 8, 100), 1_000_000),  # as the simulator
                "guests": min(max(rows // 4, 100), 2_000_000),
                "start": start_at.replace(tzinfo=None),
                "span_ms": int((end_at - start_at).total_seconds() * 1000),
                "heavy_id": HEAVY_SUBJECT[1],
                "heavy_pseudonym": heavy,
                "version": ref.version,
            },
        )
        con.unregister("templates")
        _declare_complete(con, end_at)
        con.execute("CHECKPOINT")
    print(
        f"built {rows:,} rows over {months} months in {time.perf_counter() - began:.1f} s: {path}",
        file=sys.stderr,
    )
    return bench


def _declare_complete(con: duckdb.DuckDBPyConnection, end_at: datetime) -> None:
    """Coverage evidence, as the simulated sources and the consumer would leave it: a
    watermark an hour past ``end_at`` from every expected source on every partition, and a
    probe each partition has reached, so the reports timed are complete ones (a report past
    the coverage is refused; a subject's answer would be cut to nothing)."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    found = con.execute("SELECT count(*) FROM watermarks").fetchone()
    if found and found[0]:
        return
    if "ref_sources" not in tables:  # reference data declaring no sources: one stand-in
        con.execute(
            "CREATE TABLE ref_sources AS SELECT DISTINCT reference_version, 'bench' AS source "
            "FROM disclosures"
        )
    at = (end_at + timedelta(hours=1)).replace(tzinfo=None)
    con.execute(
        "INSERT INTO partition_probes SELECT DISTINCT topic, kafka_partition, $at, 0 "
        "FROM disclosures",
        {"at": at},
    )
    con.execute(
        "INSERT INTO watermarks SELECT p.topic, p.kafka_partition, 0, s.source, $at, $at "
        "FROM (SELECT DISTINCT topic, kafka_partition FROM disclosures) p, "
        "(SELECT DISTINCT source FROM ref_sources) s",
        {"at": at},
    )


Timing = tuple[str, float, float, str]


@dataclass(frozen=True)
class _Pseudonym:
    """A key store that knows one pseudonym (bench subjects other than the two it holds)."""

    value: str

    def pseudonym(self, subject_type: str, subject_id: str) -> str | None:
        return self.value


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, float]:
    """(best, median) wall time of ``repeat`` runs, after one warm-up run."""
    run()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times), statistics.median(times)


def run_benchmarks(bench: BenchLedger, repeat: int) -> list[Timing]:
    """The reports and presets as the commands run them (library calls, no rendering)."""
    from reports.ccpa import ccpa_report
    from reports.conformance import conformance_report
    from reports.presets import Output, timeline, volume
    from reports.subject import recipients_report, subject_report
    from reports.transfers import transfers_report

    as_of = bench.end.date()
    results: list[Timing] = []

    def timed(name: str, target: str, run: Callable[[], object]) -> None:
        best, median = best_of(repeat, run)
        results.append((name, best, median, target))
        print(f"  {name}: best {best * 1000:.0f} ms", file=sys.stderr)

    with (
        Ledger(bench.path, read_only=True) as ledger,
        SubjectKeyStore(bench.key_store, SECRET) as keys,
    ):
        heavy = keys.pseudonym(*HEAVY_SUBJECT)
        found = ledger.con.execute(
            "SELECT count(*) FROM disclosures WHERE subject_pseudonym = ?", [heavy]
        ).fetchone()
        heavy_rows = int(found[0]) if found else 0
        # the member with the most rows among those not in heavy_subject_rows: the light
        # path's worst case
        light, light_rows = ledger.con.execute(
            "SELECT any_value(subject_pseudonym), count(*) FROM disclosures "
            "WHERE subject_type = 'member' GROUP BY subject_key HAVING count(*) < $n "
            "ORDER BY 2 DESC, 1 LIMIT 1",
            {"n": HEAVY_ROWS},
        ).fetchall()[0]
        timed("report ccpa", "<= 1 s", lambda: ccpa_report(ledger, as_of))
        for label, (kind, sid) in (
            (f"many events ({heavy_rows} in all)", HEAVY_SUBJECT),
            ("no events, key held", ABSENT_SUBJECT),
            ("unknown to the key store", ("member", "member-0000002x")),
        ):
            timed(
                f"report subject: {label}",
                "<= 100 ms",
                lambda kind=kind, sid=sid: subject_report(  # type: ignore[misc]
                    ledger, keys, subject_type=kind, subject_id=sid, as_of=as_of
                ),
            )
        timed(
            f"report subject: {light_rows} events (not clustered)",
            "<= 100 ms",
            lambda: subject_report(
                ledger, _Pseudonym(light), subject_type="member", subject_id="-", as_of=as_of
            ),
        )
        timed(
            "report recipients: many events",
            "",
            lambda: recipients_report(
                ledger, keys, subject_type=HEAVY_SUBJECT[0], subject_id=HEAVY_SUBJECT[1],
                as_of=as_of,
            ),
        )  # fmt: skip
        timed("report conformance", "", lambda: conformance_report(ledger, as_of))
        timed("report transfers", "", lambda: transfers_report(ledger, as_of))
        timed(f"check_derived ({bench.rows:,} rows)", "", lambda: check_derived(ledger))
    sink = io.StringIO()
    timed(
        "query timeline: many events (csv)",
        "",
        lambda: timeline(bench.path, heavy, HEAVY_SUBJECT[0], Output("csv", sink)),
    )
    timed(
        "query volume --by day (24 months)",
        "",
        lambda: volume(bench.path, "day", Output("csv", io.StringIO())),
    )
    return results


# -- schema experiments ----------------------------------------------------------------------
_MASK = " + ".join(
    f"(list_contains(ccpa_letters, '{letter}'))::INTEGER * {1 << bit}"
    for bit, letter in enumerate("ABCDEFGHIJKL")
)
_SUMS = ", ".join(f"sum((m >> {bit}) & 1)" for bit in range(28))
_FB = "(CASE WHEN disclosure_kind = 'business_purpose' THEN 0 ELSE 65536 END)"


def explore_schema(bench: BenchLedger, repeat: int, scratch: Path) -> list[Timing]:
    """What the ccpa and subject queries would cost with the layout changes considered.

    Works on copies of the columns involved (``scratch``), never on the ledger: a stored
    letter bit mask (``ccpa_mask``), the pseudonym as 32 bytes or as a 128-bit integer, and
    a copy of the disclosures sorted by pseudonym.
    """
    results: list[Timing] = []
    scratch.unlink(missing_ok=True)
    with duckdb.connect(str(scratch)) as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{bench.path}' AS l (READ_ONLY)")
        began = time.perf_counter()
        con.execute(
            f"""CREATE TABLE d AS SELECT occurred_at, disclosure_kind, recipient_category,
                business_purpose, subject_type, subject_pseudonym,
                unhex(subject_pseudonym) AS pseudonym_blob,
                ('0x' || left(subject_pseudonym, 32))::UHUGEINT AS subject_key,
                ({_MASK})::USMALLINT AS ccpa_mask, chain_id, seq
            FROM l.disclosures ORDER BY rowid"""
        )
        print(f"  scratch copy in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        # a copy clustered by subject (a periodic compaction could keep one): a person's rows
        # are then contiguous and zone maps on the sorted pseudonym skip everything else
        began = time.perf_counter()
        con.execute(
            """CREATE TABLE by_subject AS
            SELECT subject_pseudonym, subject_type, occurred_at, chain_id, seq, recipient_id,
                   recipient_category, disclosure_kind, ccpa_letters, data_categories,
                   reference_version
            FROM l.disclosures ORDER BY subject_pseudonym"""
        )
        clustered = time.perf_counter() - began
        results.append(("subject-clustered copy build", clustered, clustered, ""))
        con.execute("DETACH l")
        con.execute("CHECKPOINT")
        con.execute("SET index_scan_max_count = 1000000")
        window: dict[str, object] = {
            "start": bench.end.replace(year=bench.end.year - 1, tzinfo=None),
            "end": bench.end.replace(tzinfo=None),
        }
        where = "occurred_at >= $start AND occurred_at < $end"

        def timed(name: str, sql: str, params: dict[str, object], target: str = "") -> None:
            best, median = best_of(repeat, lambda: con.execute(sql, params).fetchall())
            results.append((name, best, median, target))
            print(f"  {name}: best {best * 1000:.0f} ms", file=sys.stderr)

        for column in ("subject_pseudonym", "pseudonym_blob", "subject_key"):
            timed(
                f"ccpa subjects, ccpa_mask + {column}",
                f"WITH s AS (SELECT {column} AS k, bit_or(ccpa_mask::INTEGER + {_FB}) AS m "
                f"FROM d WHERE {where} GROUP BY k) SELECT {_SUMS} FROM s",
                window,
            )
        with SubjectKeyStore(bench.key_store, SECRET) as keys:
            subjects = {
                "many events": keys.pseudonym(*HEAVY_SUBJECT),
                "no events": keys.pseudonym(*ABSENT_SUBJECT),
            }
        for label, pseudonym in subjects.items():
            timed(
                f"subject lookup in the clustered copy: {label}",
                """SELECT chain_id, recipient_id, recipient_category, disclosure_kind,
                          ccpa_letters, data_categories, reference_version, count(*),
                          min(seq), max(seq), min(occurred_at), max(occurred_at)
                   FROM by_subject WHERE subject_pseudonym = $p AND subject_type = 'member'
                     AND occurred_at >= $start AND occurred_at < $end GROUP BY ALL""",
                {"p": pseudonym, **window},
                "<= 100 ms",
            )
        timed(
            "ccpa events, ccpa_mask",
            "SELECT disclosure_kind, recipient_category, business_purpose, ccpa_mask, count(*) "
            f"FROM d WHERE {where} GROUP BY ALL",
            window,
        )
    scratch.unlink(missing_ok=True)
    return results


def explore_index(bench: BenchLedger, repeat: int, copy: Path) -> list[Timing]:
    """The subject report and timeline with an ART index on ``subject_pseudonym``, and what
    the index costs the writer. Works on a copy of the ledger file, never on the ledger."""
    from reports.presets import Output, timeline
    from reports.subject import subject_report

    results: list[Timing] = []
    shutil.copyfile(bench.path, copy)
    as_of = bench.end.date()
    sample = "SELECT * FROM disclosures USING SAMPLE 10000 ROWS"

    def appends(label: str) -> None:
        with duckdb.connect(str(copy)) as con:
            con.execute(f"CREATE TEMP TABLE batch AS {sample}")
            began = time.perf_counter()
            for _ in range(10):
                con.execute("BEGIN")
                con.execute("INSERT INTO disclosures SELECT * FROM batch")
                con.execute("COMMIT")
            per_batch = (time.perf_counter() - began) / 10
        results.append((f"append 10,000 rows, {label}", per_batch, per_batch, ""))
        print(f"  append 10,000 rows, {label}: {per_batch * 1000:.0f} ms", file=sys.stderr)

    appends("no index")
    with duckdb.connect(str(copy)) as con:
        began = time.perf_counter()
        con.execute("CREATE INDEX disclosures_subject ON disclosures (subject_pseudonym)")
        con.execute("CHECKPOINT")
        build = time.perf_counter() - began
    results.append((f"ART index build ({bench.rows:,} rows)", build, build, ""))
    appends("with the ART index")
    with (
        Ledger(copy, read_only=True) as ledger,
        SubjectKeyStore(bench.key_store, SECRET) as keys,
    ):
        for label, (kind, sid) in (
            ("many events", HEAVY_SUBJECT),
            ("no events, key held", ABSENT_SUBJECT),
        ):
            best, median = best_of(
                repeat,
                lambda kind=kind, sid=sid: subject_report(  # type: ignore[misc]
                    ledger, keys, subject_type=kind, subject_id=sid, as_of=as_of
                ),
            )
            results.append((f"report subject, ART index: {label}", best, median, "<= 100 ms"))
        heavy = keys.pseudonym(*HEAVY_SUBJECT)
    best, median = best_of(
        repeat, lambda: timeline(copy, heavy, HEAVY_SUBJECT[0], Output("csv", io.StringIO()))
    )
    results.append(("query timeline, ART index: many events", best, median, ""))
    copy.unlink(missing_ok=True)
    return results


def print_table(bench: BenchLedger, results: list[Timing]) -> None:
    print(
        f"ledger: {bench.rows:,} rows, {bench.start:%Y-%m} to {bench.end:%Y-%m} "
        f"({bench.path}); {os.cpu_count()} CPUs, DuckDB {duckdb.__version__}"
    )
    width = max(len(r[0]) for r in results)
    print(f"{'what':<{width}}  {'best':>9}  {'median':>9}  target")
    for name, best, median, target in results:
        print(f"{name:<{width}}  {best * 1000:>7.0f}ms  {median * 1000:>7.0f}ms  {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--repeat", type=int, default=5, help="timed runs each (best shown)")
    parser.add_argument(
        "--dir", type=Path, default=ROOT / ".local" / "bench", help="where the ledger is kept"
    )
    parser.add_argument(
        "--explore", action="store_true", help="also time the schema changes considered"
    )
    args = parser.parse_args(argv)
    bench = build_ledger(args.dir / f"reports-{args.rows}.duckdb", args.rows, args.months, args.end)
    results = run_benchmarks(bench, args.repeat)
    if args.explore:
        results += explore_schema(bench, args.repeat, args.dir / "scratch.duckdb")
        results += explore_index(bench, args.repeat, args.dir / "indexed-copy.duckdb")
    print_table(bench, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
