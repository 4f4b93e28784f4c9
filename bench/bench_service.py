"""The ledger service under load (issue 17): ingest while clients ask, and the API's cost.

    .venv/bin/python -m bench.bench_service                      # 10M-row report ledger
    .venv/bin/python -m bench.bench_service --rows 1000000       # quicker
    .venv/bin/python -m bench.bench_service --only ingest --runs 5

(a) **Ingest under load.** ``--events`` simulated events are published once to a fresh
topic. Each run copies a base ledger (``--base-rows`` rows, built in bulk as
``bench_reports`` builds its ledgers), starts ``disclosure-ledger serve`` on the copy and
times how long the service takes to ingest the whole topic (from /readyz answering to the
status counting every row; the status is asked every 0.25 s in both kinds of run). Idle
runs: nobody else asks anything. Loaded runs: ``--clients`` threads loop over the API as
fast as it answers: the status, the CCPA report over the ledger being written (JSON,
``allow_incomplete``), and an investigator query (``POST /api/v1/queries/page``, a group-by
over every row), each of these only if the service has the route (the benchmark prints
which it used). Idle and loaded runs alternate; the target is loaded >= 70% of idle.

(b) **Report latency through the API.** The CCPA report (JSON) on the ``--rows`` ledger,
run directly as ``report ccpa --format json`` runs it (``ccpa_report`` and ``render_ccpa``
on a read-only ledger opened for it, in this process; and on one kept open, to show what
opening the file costs), and through ``GET /api/v1/reports/ccpa`` of a
``serve --no-ingest`` over the same file (HTTP, authentication, the service's cursor and
rendering included). One warm-up each, then ``--repeat`` timed runs; the target is the
API within 1.5x of direct.

Medians throughout. Benchmarks print figures; they assert nothing. The service runs with
``--no-checkpoints`` (no signing key to manage); its log is kept in ``--dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_reports import SECRET, BenchLedger, build_ledger  # noqa: E402
from disclosure_ledger.local_broker import LocalBroker  # noqa: E402
from disclosure_ledger.service.auth.accounts import (  # noqa: E402
    AccountStore,
    default_account_store,
)
from disclosure_ledger.service.auth.roles import Role  # noqa: E402
from disclosure_ledger.service.background import wait_until_ready  # noqa: E402
from disclosure_ledger.settings import load_settings  # noqa: E402

CLI = Path(sys.executable).with_name("disclosure-ledger")
PARTITIONS = 3
STATUS = "/api/v1/status"
CCPA = "/api/v1/reports/ccpa"
REPORT_ROUTES = (CCPA, "/api/v1/reports/{kind}")  # as the OpenAPI document names it
QUERY_PAGE = "/api/v1/queries/page"
QUERY_SQL = (
    "SELECT recipient_id, count(*) AS disclosures FROM disclosures "
    "GROUP BY recipient_id ORDER BY disclosures DESC"
)


@contextmanager
def _bootstrap() -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS, else the local broker; a local broker this started is
    stopped again, so it does not hold the port of a later test run."""
    settings = load_settings()
    if settings.kafka_bootstrap_servers:
        yield settings.kafka_bootstrap_servers
        return
    broker = LocalBroker(
        state_dir=settings.state_dir,
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap=settings.broker_heap,
    )
    was_running = broker.status().running
    try:
        yield broker.start()
    finally:
        if not was_running:
            broker.stop()


def _request(url: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=300) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


@dataclass
class Service:
    """One ``serve`` process over ``ledger`` (a child of this process)."""

    ledger: Path
    url: str
    process: subprocess.Popen[bytes]
    tokens: dict[Role, str]
    log_path: Path

    def get(self, path: str, role: Role = Role.compliance) -> tuple[int, bytes]:
        return _request(self.url + path, self.tokens[role])

    def rows(self) -> int:
        status, body = self.get(STATUS)
        if status != 200:
            raise RuntimeError(f"status answered {status}: {body[:300]!r}")
        return int(json.loads(body)["rows"])

    def has(self, *paths: str) -> bool:
        """Whether the service has a route of one of ``paths`` (its OpenAPI document)."""
        status, body = _request(self.url + "/api/v1/openapi.json", "")
        return status == 200 and any(f'"{path}"' in body.decode() for path in paths)


@contextmanager
def serving(ledger: Path, port: int, log_path: Path, *options: str) -> Iterator[Service]:
    """``serve`` on ``ledger`` (tokens of every role issued first), stopped with SIGTERM."""
    accounts = AccountStore(default_account_store(ledger))
    tokens = {
        role: accounts.issue_token(role, label="bench", created_by="bench").token for role in Role
    }
    command = [str(CLI), "serve", "--ledger", str(ledger), "--listen", f"127.0.0.1:{port}"]
    environment = {**os.environ, "DISCLOSURE_LEDGER_SUBJECT_SECRET": SECRET.decode()}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, *options],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        state = wait_until_ready(ledger, lambda: process.poll() is None, log_path, 120)
        yield Service(ledger, state.url, process, tokens, log_path)
    finally:
        process.terminate()
        process.wait(timeout=120)


@dataclass
class Clients:
    """``count`` threads looping over ``calls`` until stopped; each call's latency kept."""

    service: Service
    count: int
    calls: list[tuple[str, Callable[[Service], tuple[int, bytes]]]]
    stop: threading.Event = field(default_factory=threading.Event)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def _loop(self) -> None:
        while not self.stop.is_set():
            for name, call in self.calls:
                started = time.perf_counter()
                status, body = call(self.service)
                if status != 200:
                    self.failures.append(f"{name}: {status} {body[:200]!r}")
                self.latencies.setdefault(name, []).append(time.perf_counter() - started)
                if self.stop.is_set():
                    return

    @contextmanager
    def running(self) -> Iterator[None]:
        threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.count)]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=300)


def client_calls(
    service: Service, as_of: date
) -> list[tuple[str, Callable[[Service], tuple[int, bytes]]]]:
    """What a client asks, of what this service has: status, CCPA report, query page."""
    calls: list[tuple[str, Callable[[Service], tuple[int, bytes]]]] = [
        ("status", lambda s: s.get(STATUS))
    ]
    if service.has(*REPORT_ROUTES):
        query = f"?as_of={as_of.isoformat()}&allow_incomplete=true&format=json"
        calls.append(("ccpa report", lambda s: s.get(CCPA + query)))
    if service.has(QUERY_PAGE):
        body = {"sql": QUERY_SQL, "reason": "benchmark", "page_size": 100}
        calls.append(
            (
                "query page",
                lambda s: _request(s.url + QUERY_PAGE, s.tokens[Role.investigator], body),
            )
        )
    return calls


def publish_backlog(bootstrap: str, events_n: int, end: date) -> str:
    """``events_n`` simulated events in the year before ``end``, on a fresh topic."""
    from disclosure_ledger.simulate import simulate
    from producers.publisher import DisclosurePublisher
    from producers.topics import ensure_topic

    topic = f"bench.service.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic, PARTITIONS)
    end_at = datetime(end.year, end.month, end.day, tzinfo=UTC)
    start_at = end_at.replace(year=end_at.year - 1)
    began = time.perf_counter()
    with DisclosurePublisher(bootstrap, topic) as publisher:
        result = publisher.publish_many(simulate(events_n, 11, start_at, end_at))
    if not result.ok:
        raise RuntimeError(f"{len(result.undelivered)} events not delivered")
    print(
        f"published {events_n:,} events to {topic} in {time.perf_counter() - began:.1f} s",
        file=sys.stderr,
    )
    return topic


def _copy(base: BenchLedger, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "ingest.duckdb"
    for suffix in ("", ".keys.sqlite", ".users.sqlite", ".wal", ".service.json"):
        copy.with_name(copy.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(base.path, copy)
    shutil.copyfile(base.key_store, copy.with_name(copy.name + ".keys.sqlite"))
    return copy


def ingest_run(
    base: BenchLedger,
    bootstrap: str,
    topic: str,
    events_n: int,
    args: argparse.Namespace,
    *,
    loaded: bool,
) -> dict[str, Any]:
    """One run: the seconds the service takes to ingest the topic, idle or loaded."""
    ledger = _copy(base, args.dir / "service-scratch")
    options = ["--bootstrap-servers", bootstrap, "--topic", topic, "--no-checkpoints"]
    expected = base.rows + events_n
    with serving(ledger, args.port, args.dir / "service.log", *options) as service:
        started = time.perf_counter()
        calls = client_calls(service, base.end.date()) if loaded else []
        clients = Clients(service, args.clients if loaded else 0, calls)
        with clients.running():
            while service.rows() < expected:
                if service.process.poll() is not None:
                    raise RuntimeError(f"the service exited; see {service.log_path}")
                time.sleep(0.25)
            seconds = time.perf_counter() - started
    if clients.failures:
        print(
            f"  {len(clients.failures)} failed calls, e.g. {clients.failures[0]}", file=sys.stderr
        )
    return {
        "eps": events_n / seconds,
        "calls": [name for name, _ in calls],
        "latency_ms": {
            name: statistics.median(values) * 1000 for name, values in clients.latencies.items()
        },
        "requests": {name: len(values) for name, values in clients.latencies.items()},
        "seconds": seconds,
    }


def ingest_benchmark(base: BenchLedger, args: argparse.Namespace) -> dict[str, Any]:
    with _bootstrap() as bootstrap:
        return _ingest_runs(base, bootstrap, args)


def _ingest_runs(base: BenchLedger, bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    topic = publish_backlog(bootstrap, args.events, base.end.date())
    idle: list[float] = []
    loaded: list[float] = []
    last_loaded: dict[str, Any] = {}
    for run_no in range(1, args.runs + 1):
        for is_loaded in (False, True):
            result = ingest_run(base, bootstrap, topic, args.events, args, loaded=is_loaded)
            (loaded if is_loaded else idle).append(result["eps"])
            if is_loaded:
                last_loaded = result
            print(
                f"run {run_no} {'loaded' if is_loaded else 'idle  '}: {result['eps']:,.0f} "
                f"events/s ({result['seconds']:.1f} s)"
                + (
                    f"; requests {result['requests']}, median latency ms "
                    + ", ".join(f"{k} {v:.0f}" for k, v in result["latency_ms"].items())
                    if is_loaded
                    else ""
                ),
                file=sys.stderr,
            )
    return {
        "idle_eps": statistics.median(idle),
        "loaded_eps": statistics.median(loaded),
        "ratio": statistics.median(loaded) / statistics.median(idle),
        "idle_runs": idle,
        "loaded_runs": loaded,
        "client_calls": last_loaded.get("calls", []),
    }


def _median_seconds(repeat: int, run: Callable[[], object]) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report_benchmark(bench: BenchLedger, args: argparse.Namespace) -> dict[str, Any]:
    from ledger.store import Ledger
    from reports.ccpa import ccpa_report, render_ccpa

    as_of = bench.end.date()

    def direct() -> str:  # as `report ccpa --format json` does
        with Ledger(bench.path, read_only=True) as ledger:
            return render_ccpa(ccpa_report(ledger, as_of), "json")

    direct_s = _median_seconds(args.repeat, direct)
    print(f"  ccpa report direct: {direct_s * 1000:.0f} ms", file=sys.stderr)
    with Ledger(bench.path, read_only=True) as ledger:  # what opening the file costs aside
        open_s = _median_seconds(
            args.repeat, lambda: render_ccpa(ccpa_report(ledger, as_of), "json")
        )
    print(f"  ccpa report direct, ledger already open: {open_s * 1000:.0f} ms", file=sys.stderr)
    with serving(bench.path, args.port, args.dir / "service.log", "--no-ingest") as service:
        if not service.has(*REPORT_ROUTES):
            print(f"  this service has no {CCPA} route: no API figure", file=sys.stderr)
            return {
                "direct_ms": direct_s * 1000,
                "direct_open_ms": open_s * 1000,
                "api_ms": None,
                "ratio": None,
            }
        query = f"{CCPA}?as_of={as_of.isoformat()}&format=json"

        def through_api() -> None:
            status, body = service.get(query)
            if status != 200:
                raise RuntimeError(f"{query}: {status} {body[:300]!r}")

        api_s = _median_seconds(args.repeat, through_api)
    print(f"  ccpa report through the API: {api_s * 1000:.0f} ms", file=sys.stderr)
    return {
        "direct_ms": direct_s * 1000,
        "direct_open_ms": open_s * 1000,
        "api_ms": api_s * 1000,
        "ratio": api_s / direct_s,
        "ratio_to_open": api_s / open_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="report ledger rows (b)")
    parser.add_argument("--base-rows", type=int, default=1_000_000, help="ingest base rows (a)")
    parser.add_argument("--events", type=int, default=200_000, help="events ingested a run (a)")
    parser.add_argument("--runs", type=int, default=3, help="idle and loaded runs each (a)")
    parser.add_argument("--clients", type=int, default=4, help="API clients in loaded runs")
    parser.add_argument("--repeat", type=int, default=5, help="timed reports each way (b)")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--port", type=int, default=18080, help="the service's port")
    parser.add_argument("--only", choices=["ingest", "reports"], help="one half only")
    parser.add_argument(
        "--dir", type=Path, default=ROOT / ".local" / "bench", help="where ledgers are kept"
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like an error, so the service this started is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "benchmark": "service",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
    }
    if args.only != "reports":
        base = build_ledger(
            args.dir / f"reports-{args.base_rows}.duckdb", args.base_rows, args.months, args.end
        )
        result["ingest"] = ingest_benchmark(base, args)
        ingest = result["ingest"]
        print(
            f"ingest over a {args.base_rows:,}-row ledger, {args.events:,} events a run, "
            f"median of {args.runs}: idle {ingest['idle_eps']:,.0f} events/s, with "
            f"{args.clients} clients ({', '.join(ingest['client_calls'])}) "
            f"{ingest['loaded_eps']:,.0f} events/s = {ingest['ratio']:.0%} of idle (target >= 70%)"
        )
    if args.only != "ingest":
        bench = build_ledger(
            args.dir / f"reports-{args.rows}.duckdb", args.rows, args.months, args.end
        )
        result["reports"] = report_benchmark(bench, args)
        reports = result["reports"]
        api = "n/a (no route)" if reports["api_ms"] is None else f"{reports['api_ms']:,.0f} ms"
        ratio = (
            ""
            if reports["ratio"] is None
            else f" = {reports['ratio']:.2f}x direct (target <= 1.5x), "
            f"{reports['ratio_to_open']:.2f}x direct on an open ledger"
        )
        print(
            f"ccpa report (json) on {args.rows:,} rows, median of {args.repeat}: direct "
            f"{reports['direct_ms']:,.0f} ms (as `report ccpa` runs it, opening the file; "
            f"{reports['direct_open_ms']:,.0f} ms on a ledger already open), through the API "
            f"{api}{ratio}"
        )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "service.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
