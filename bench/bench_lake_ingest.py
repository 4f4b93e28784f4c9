"""Ingest with 1, 2 and 3 `consume` processes in one consumer group over one DuckLake, beside
the one-file `consume` alone; and the rebalance time after one of three dies (issue 21,
part 4). A benchmark: it prints figures and asserts nothing.

    .venv/bin/python -m bench.bench_lake_ingest                         # 300,000 events, 3 runs
    .venv/bin/python -m bench.bench_lake_ingest --events 100000 --runs 1 --no-rebalance

What it runs, on the broker of ``DISCLOSURE_LEDGER_BROKER_PORT`` (or
``KAFKA_BOOTSTRAP_SERVERS``) and a PostgreSQL server of the run's own
(``tests/postgres_server.py``, the lakes' Parquet files under ``--dir``):

* ``--events`` simulated events published once to a new topic of 6 partitions (the producer
  library's ``publish_many``);
* per run, in this order: the one-file ``consume`` alone into a new DuckDB file; then 1, 2
  and 3 ``disclosure-ledger consume`` processes started at once, each config into a new
  lake (created by the ledger before they start, so they do not race to create its
  tables), in a consumer group of its own (``DISCLOSURE_LEDGER_CONSUMER_GROUP``), sharing one
  key store file. The figure is events / seconds from the launch of the processes until
  every event is a row: for a lake, the time a reader of the lake (this process, polling
  every 0.25 s) first counts them all (then the processes are stopped with SIGTERM); for
  the file (whose writer's lock keeps readers out) the process stops ``--until-idle``
  seconds after reading its partitions to the end, and the figure takes its exit less that
  wait, within about a second. Start-up (interpreter, imports, attaching the lake, joining
  the group) is inside both; the "steady" figure leaves it out: the rows between the first
  and the last batch the processes logged, over that time.
* the rebalance (``--rebalance-events`` on a new topic): 3 processes on a new lake; once
  every partition has rows and the backlog is at least a third read, one of them is sent
  SIGKILL. The rebalance time is from the kill until every partition that still had a
  backlog advances again (the killed one's partitions taken over by a survivor, which
  first claims each chain's fence and reads its head). The group's session timeout
  (``DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT``, 10 s by default) bounds how soon the broker
  notices the dead member.

The machine's load average is printed at each step: on a shared machine it moves every
figure, so medians of ``--runs`` are printed beside the individual runs.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_ingest import _bootstrap, delete_topics  # noqa: E402
from disclosure_ledger.simulate import simulate  # noqa: E402
from ledger.lake import PREFIX, LakeLocation, attach_lake  # noqa: E402
from ledger.store import Ledger  # noqa: E402
from producers.publisher import DisclosurePublisher  # noqa: E402
from producers.topics import ensure_topic  # noqa: E402

PARTITIONS = 6
SECRET = "bench-subject-secret-" + "0" * 43
CLI = [str(Path(sys.executable).with_name("disclosure-ledger"))]  # the installed command


_BATCH = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO consumers\.consumer: "
    r"batch of \d+: (\d+) accepted",
    re.MULTILINE,
)


def steady_rate(logs: list[Path]) -> float:
    """Events/s between the first and the last batch the processes logged, all processes
    together: the rate with their start-up (and the idle wait) left out."""
    batches: list[tuple[datetime, int]] = []
    for log in logs:
        for at, accepted in _BATCH.findall(log.read_text(errors="replace")):
            batches.append((datetime.strptime(at, "%Y-%m-%d %H:%M:%S,%f"), int(accepted)))
    batches.sort()
    if len(batches) < 2:
        return float("nan")
    seconds = (batches[-1][0] - batches[0][0]).total_seconds()
    return sum(n for _, n in batches[1:]) / seconds if seconds > 0 else float("nan")


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def publish(bootstrap: str, events: int, seed: int) -> str:
    """A new 6-partition topic holding ``events`` simulated events."""
    topic = f"bench.lake.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic, PARTITIONS)
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    began = time.perf_counter()
    with DisclosurePublisher(bootstrap, topic, client="kafka-python") as publisher:
        result = publisher.publish_many(list(simulate(events, seed, start, end)))
    if not result.ok:
        raise SystemExit(f"publishing to {topic} failed: {result.undelivered[:3]}")
    print(
        f"published {events:,} events to {topic} in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )
    return topic


@dataclass
class Target:
    """Where a config ingests: a DuckDB file, or a new lake on the run's PostgreSQL server."""

    ledger: str  # the --ledger argument
    env: dict[str, str]
    lake: LakeLocation | None = None


class Catalogs:
    """The run's PostgreSQL server; a new lake (database and data path) for each config."""

    def __init__(self, directory: Path) -> None:
        from tests.postgres_server import running_postgres

        self.directory = directory
        self._context = running_postgres()
        self.server = self._context.__enter__()

    def new_lake(self, keys: Path) -> Target:
        database = self.server.new_database()
        data = self.directory / f"lake-{database}"
        data.mkdir(parents=True)
        location = LakeLocation(
            self.server.conninfo(database), f"{data}/", self.directory / f"{database}.ledger"
        )
        with Ledger(location):  # its tables, before several processes start at once
            pass
        env = {
            "DISCLOSURE_LEDGER_LAKE_DATA_PATH": f"{data}/",
            "DISCLOSURE_LEDGER_LAKE_LOCAL_PATH": str(location.local_path),
        }
        return Target(PREFIX + location.catalog, env, location)

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def launch(
    target: Target,
    topic: str,
    bootstrap: str,
    keys: Path,
    group: str,
    idle: float | None,
    log: Path,
) -> subprocess.Popen[bytes]:
    """A ``consume`` process; ``idle`` None: it runs until stopped (a member of a group that
    has not been given partitions yet would otherwise count itself idle and leave)."""
    env = {
        **os.environ,
        **target.env,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DISCLOSURE_LEDGER_SUBJECT_SECRET": SECRET,
        "DISCLOSURE_LEDGER_CONSUMER_GROUP": group,
    }
    command = [
        *CLI,
        "consume",
        "--ledger",
        target.ledger,
        "--topic",
        topic,
        *(["--until-idle", str(idle)] if idle is not None else []),
        "--key-store",
        str(keys),
        "--no-checkpoints",
    ]
    sink = log.open("wb")
    return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)


class LakeReader:
    """A read-only connection to a lake, counting its rows per partition."""

    def __init__(self, location: LakeLocation) -> None:
        self.con = duckdb.connect(
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        attach_lake(self.con, location, read_only=True)

    def per_partition(self) -> dict[int, int]:
        return {
            int(p): int(n)
            for p, n in self.con.execute(
                "SELECT kafka_partition, count(*) FROM disclosures GROUP BY ALL"
            ).fetchall()
        }

    def close(self) -> None:
        self.con.close()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (a clean stop: the batch in flight commits), then wait for each."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


def ingest(
    target: Target,
    processes: int,
    topic: str,
    bootstrap: str,
    events: int,
    idle: float,
    logs: Path,
) -> tuple[float, float]:
    """Seconds from launching ``processes`` consumers until every event is a row, and the
    steady rate between their first and last batch (:func:`steady_rate`)."""
    keys = logs / f"keys-{uuid.uuid4().hex[:6]}.sqlite"
    group = f"bench-{uuid.uuid4().hex[:8]}"
    reader = LakeReader(target.lake) if target.lake is not None else None
    began = time.perf_counter()
    process_logs = [logs / f"{group}-{i}.log" for i in range(processes)]
    wait = idle if reader is None else None  # a lake's reader sees the end: no idle wait
    procs = [launch(target, topic, bootstrap, keys, group, wait, log) for log in process_logs]
    seen_all: float | None = None
    try:
        while any(p.poll() is None for p in procs):
            if reader is not None and sum(reader.per_partition().values()) >= events:
                seen_all = time.perf_counter() - began
                stop(procs)
                break
            time.sleep(0.25)
        exited = time.perf_counter() - began
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if reader is not None:
            reader.close()
    failed = [p.returncode for p in procs if p.returncode not in (0, -signal.SIGTERM)]
    if failed:
        raise SystemExit(f"a consume process failed ({failed}): see {logs}/{group}-*.log")
    if reader is not None:
        check = LakeReader(target.lake)  # type: ignore[arg-type]
        rows = sum(check.per_partition().values())
        check.close()
        if rows != events:
            raise SystemExit(f"the lake holds {rows:,} rows, not {events:,}: see {logs}")
        return (seen_all if seen_all is not None else exited - idle), steady_rate(process_logs)
    return exited - idle, steady_rate(process_logs)


def rebalance(
    catalogs: Catalogs, bootstrap: str, events: int, idle: float, logs: Path
) -> tuple[float, dict[str, object]]:
    """Seconds from SIGKILL of one of 3 consumers until every partition with a backlog
    advances again, and what was seen."""
    topic = publish(bootstrap, events, seed=7)
    keys = logs / "rebalance-keys.sqlite"
    target = catalogs.new_lake(keys)
    assert target.lake is not None
    group = f"bench-rebalance-{uuid.uuid4().hex[:8]}"
    reader = LakeReader(target.lake)
    procs = [
        launch(target, topic, bootstrap, keys, group, None, logs / f"{group}-{i}.log")
        for i in range(3)
    ]
    try:
        counts: dict[int, int] = {}
        while len(counts) < PARTITIONS or sum(counts.values()) < events // 3:
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a consumer exited before the kill: see {logs}/{group}-*.log")
            counts = reader.per_partition()
            time.sleep(0.2)
        victim = procs[0]
        before = dict(counts)
        victim.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        print(f"SIGKILL to pid {victim.pid} at {sum(before.values()):,} rows", file=sys.stderr)
        last = dict(before)
        stalled_since: dict[int, float] = {}
        resumed: dict[int, float] = {}
        while len(resumed) < PARTITIONS:
            time.sleep(0.2)
            now = time.perf_counter() - killed
            counts = reader.per_partition()
            for p in range(PARTITIONS):
                if p in resumed:
                    continue
                if counts.get(p, 0) > last.get(p, 0):
                    if p in stalled_since or now > 1.0:
                        resumed[p] = now
                    # a partition still advancing within the first second may be a
                    # survivor's batch already in flight: wait for it to advance past that
                elif p not in stalled_since:
                    stalled_since[p] = now
            last = counts
            if sum(counts.values()) >= events or now > 300:
                break  # all in: a partition that did not resume had no backlog left
        done = {p: resumed.get(p) for p in range(PARTITIONS)}
        while sum(reader.per_partition().values()) < events and time.perf_counter() - killed < 600:
            time.sleep(0.5)
        stop(procs[1:])
        final = sum(reader.per_partition().values())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        reader.close()
    seconds = max((t for t in done.values() if t is not None), default=float("nan"))
    return seconds, {
        "rows at kill": sum(before.values()),
        "resumed after (s), by partition": done,
        "rows at the end": final,
        "events": events,
        "topic": topic,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--until-idle", type=float, default=3.0)
    parser.add_argument("--rebalance-events", type=int, default=600_000)
    parser.add_argument("--no-rebalance", action="store_true")
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument(
        "--dir", type=Path, default=ROOT / ".local" / "bench" / "lake-ingest", help="lakes, logs"
    )
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="logs-", dir=args.dir))
    bootstrap = _bootstrap()
    catalogs = Catalogs(args.dir)
    topics: list[str] = []
    try:
        figures: dict[str, list[float]] = {}
        if not args.no_ingest:
            topic = publish(bootstrap, args.events, seed=1)
            topics.append(topic)
            for run in range(1, args.runs + 1):
                configs: list[tuple[str, int]] = [("file", 1)] + [
                    ("lake", n) for n in args.processes
                ]
                for backend, n in configs:
                    if backend == "file":
                        target = Target(str(logs / f"ledger-{run}.duckdb"), {})
                    else:
                        target = catalogs.new_lake(logs)
                    load = load_average()
                    seconds, steady = ingest(
                        target, n, topic, bootstrap, args.events, args.until_idle, logs
                    )
                    label = f"{backend}, {n} process{'es' if n > 1 else ''}"
                    figures.setdefault(label, []).append(args.events / seconds)
                    figures.setdefault(f"{label}, steady", []).append(steady)
                    print(
                        f"run {run}: {label}: {args.events / seconds:,.0f} events/s "
                        f"({seconds:.1f} s; {steady:,.0f}/s from first to last batch; "
                        f"load average {load})",
                        file=sys.stderr,
                        flush=True,
                    )
            print(
                f"ingest of {args.events:,} events from {PARTITIONS} partitions, "
                f"median of {args.runs}, {os.cpu_count()} cores, load average now {load_average()}"
            )
            for label, rates in figures.items():
                base = "file, 1 process, steady" if label.endswith("steady") else "file, 1 process"
                one_file = statistics.median(figures[base])
                median = statistics.median(rates)
                runs = " · ".join(f"{r:,.0f}" for r in rates)
                print(
                    f"  {label:<28} {median:>9,.0f} events/s  {median / one_file:>5.2f}x the "
                    f"one-file  ({runs})"
                )
        if not args.no_rebalance:
            load = load_average()
            seconds, seen = rebalance(
                catalogs, bootstrap, args.rebalance_events, args.until_idle, logs
            )
            topics.append(str(seen["topic"]))
            print(
                f"rebalance after SIGKILL of 1 of 3 consumers: every partition with a backlog "
                f"advanced again {seconds:.1f} s after the kill (load average {load}); {seen}"
            )
    finally:
        catalogs.close()
        if topics:
            delete_topics(bootstrap, topics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
