"""``disclosure-ledger``: every command parses its arguments and calls the library."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from disclosure_ledger.settings import Settings, load_settings
from ledger.pseudonyms import SubjectKeyStore
from schemas import DEFAULT_TOPIC
from schemas.errors import DisclosureLedgerError, EventValidationError
from schemas.model import DisclosureEvent

log = logging.getLogger("disclosure_ledger")

Handler = Callable[[argparse.Namespace], int]


# -- helpers shared by commands ---------------------------------------------------------
def _settings() -> Settings:
    return load_settings()


def _bootstrap(args: argparse.Namespace) -> str:
    """--bootstrap-servers, else KAFKA_BOOTSTRAP_SERVERS, else the local broker's address."""
    if getattr(args, "bootstrap_servers", None):
        return str(args.bootstrap_servers)
    settings = _settings()
    if settings.kafka_bootstrap_servers:
        return str(settings.kafka_bootstrap_servers)
    return f"127.0.0.1:{settings.broker_port}"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from exc


def _datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or RFC 3339 time like 2026-11-01 or 2026-11-01T00:00:00Z"
        ) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@contextmanager
def _open_output(path: Path | None) -> Iterator[TextIO]:
    """The named file, or standard output (which is left open)."""
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        yield out


def read_events(lines: Iterator[str], source: str) -> tuple[list[DisclosureEvent], list[str]]:
    """Parse JSON lines; returns the valid events and one message per invalid line."""
    events: list[DisclosureEvent] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(DisclosureEvent.model_validate_json(line))
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"]) or "(the line)"
                problems.append(f"{source}:{number}: field {where}: {error['msg']}")
    return events, problems


def _subject_keys(ledger_path: Path, key_store: Path | None) -> SubjectKeyStore:
    settings = _settings()
    secret: bytes | None = None
    if settings.subject_secret is not None:
        secret = settings.subject_secret.get_secret_value().encode()
    elif settings.subject_secret_file is not None:
        try:
            secret = settings.subject_secret_file.read_bytes().strip()
        except OSError as exc:
            raise DisclosureLedgerError(
                f"cannot read the subject secret file {settings.subject_secret_file}: {exc}"
            ) from exc
    if not secret:
        raise DisclosureLedgerError(
            "no subject secret: set DISCLOSURE_LEDGER_SUBJECT_SECRET, or "
            "DISCLOSURE_LEDGER_SUBJECT_SECRET_FILE naming a file that holds it (at least 16 "
            "bytes, e.g. from `python -c 'import secrets; print(secrets.token_hex(32))'`); "
            "it keys the lookup of per-subject keys and must stay the same for a ledger"
        )
    return SubjectKeyStore(key_store or default_key_store(ledger_path), secret)


def default_key_store(ledger_path: Path) -> Path:
    """The per-subject keys live beside, never inside, the ledger file."""
    return ledger_path.with_name(ledger_path.name + ".keys.sqlite")


# -- commands ---------------------------------------------------------------------------
def cmd_broker(args: argparse.Namespace) -> int:
    from disclosure_ledger.local_broker import LocalBroker

    settings = _settings()
    broker = LocalBroker(
        state_dir=settings.state_dir,
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap=settings.broker_heap,
    )
    if args.action == "fetch":
        print(f"broker jars in {broker.fetch()}")
    elif args.action == "start":
        print(f"broker running at {broker.start()}")
    elif args.action == "stop":
        print("broker stopped" if broker.stop() else "broker was not running")
    else:
        status = broker.status()
        state = f"running (pid {status.pid})" if status.running else "not running"
        print(
            f"broker {state} at {status.bootstrap}; data {status.data_dir}; log {status.log_file}"
        )
        return 0 if status.running else 3
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from producers.publisher import DisclosurePublisher, PublishResult

    source = "<stdin>" if args.file == "-" else args.file
    stream = sys.stdin if args.file == "-" else Path(args.file).open(encoding="utf-8")  # noqa: SIM115
    with stream:
        events, problems = read_events(iter(stream), source)
    for problem in problems:
        print(f"invalid, not sent: {problem}", file=sys.stderr)
    result = PublishResult()
    if events:
        with DisclosurePublisher(_bootstrap(args), args.topic) as publisher:
            result = publisher.publish_many(events)
    for miss in result.undelivered:
        print(f"not delivered: event {miss.event.event_id}: {miss.error}", file=sys.stderr)
    if args.undelivered and result.undelivered:
        with Path(args.undelivered).open("w", encoding="utf-8") as out:
            for miss in result.undelivered:
                out.write(miss.event.to_json_line() + "\n")
    invalid_lines = len({p.rsplit(": field", 1)[0] for p in problems})
    print(
        f"{result.delivered} delivered, {len(result.undelivered)} not delivered, "
        f"{invalid_lines} invalid line(s) not sent, to {args.topic}"
    )
    return 0 if result.ok and not problems else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from disclosure_ledger.simulate import simulate

    end = args.end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = args.start or end.replace(year=end.year - 1)
    if start >= end:
        raise DisclosureLedgerError(f"--start {start:%Y-%m-%d} must be before --end {end:%Y-%m-%d}")
    events = simulate(args.events, args.seed, start, end, undeclared_rate=args.undeclared_rate)
    if args.bootstrap_servers or not args.output:
        from producers.publisher import DisclosurePublisher
        from producers.topics import ensure_topic

        bootstrap = _bootstrap(args)
        ensure_topic(bootstrap, args.topic, args.partitions)
        with DisclosurePublisher(bootstrap, args.topic) as publisher:
            result = publisher.publish_many(events)
        print(f"{result.delivered} simulated events delivered to {args.topic} at {bootstrap}")
        for miss in result.undelivered[:10]:
            print(f"not delivered: event {miss.event.event_id}: {miss.error}", file=sys.stderr)
        return 0 if result.ok else 1
    with _open_output(args.output) as out:
        count = 0
        for event in events:
            out.write(event.to_json_line() + "\n")
            count += 1
    print(f"{count} simulated events written to {args.output}", file=sys.stderr)
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    from consumers.consumer import consume
    from consumers.pipeline import Ingestor
    from ledger.reference import load_reference
    from ledger.store import Ledger

    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info(
            "%s received: finishing the current batch, then stopping", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    reference = load_reference(args.reference)
    with Ledger(args.ledger) as ledger, _subject_keys(args.ledger, args.key_store) as keys:
        stats = consume(
            _bootstrap(args),
            args.topic,
            Ingestor(ledger, keys, reference),
            until_idle=args.until_idle,
            max_batch=args.batch_size,
            stop=stop,
        )
    print(
        f"{stats.total} messages from {args.topic} partitions {stats.partitions}: "
        f"{stats.accepted} appended, {stats.duplicates} duplicates, "
        f"{stats.quarantined} quarantined, into {args.ledger}"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ledger.store import Ledger
    from ledger.verify import verify_ledger

    with Ledger(args.ledger, read_only=True) as ledger:
        result = verify_ledger(ledger)
    for failure in result.failures:
        print(f"FAIL {failure}", file=sys.stderr)
    for chain, (length, head) in sorted(result.chains.items()):
        print(f"chain {chain}: {length} rows, head {head}")
    verdict = "verified" if result.ok else f"NOT verified: {len(result.failures)} failure(s)"
    print(f"{args.ledger}: {result.rows} rows; {verdict}")
    return 0 if result.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from ledger.store import Ledger
    from reports.ccpa import ccpa_report, render_ccpa

    with Ledger(args.ledger, read_only=True) as ledger:
        report = ccpa_report(ledger, args.as_of)
    text = render_ccpa(report, args.format)
    with _open_output(args.output) as out:
        out.write(text)
    if args.output:
        print(f"CCPA report written to {args.output}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from reports.query import run_query

    with _open_output(args.output) as out:
        run_query(args.ledger, args.sql, args.format, out)
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    from ledger.reference import check_reference, format_reference, load_reference

    if args.action == "check":
        problems = check_reference(args.reference)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) in the reference data")
        return 1 if problems else 0
    reference = load_reference(args.reference)
    print(f"reference data version {reference.version}")
    print(format_reference(reference, args.section))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from disclosure_ledger.demo import run_demo

    return run_demo(events=args.events, seed=args.seed, as_of=args.as_of, out_dir=args.out)


# -- the parser -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disclosure-ledger",
        description="An auditable ledger of every disclosure of members' personal data.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def kafka_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--bootstrap-servers",
            help="Kafka bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS, else local broker)",
        )
        sub.add_argument("--topic", default=DEFAULT_TOPIC, help=f"topic (default {DEFAULT_TOPIC})")

    def ledger_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--ledger", type=Path, required=True, help="the DuckDB ledger file")

    sub = add("broker", cmd_broker, "Fetch, start, stop or query the local Kafka broker (KRaft).")
    sub.add_argument("action", choices=["fetch", "start", "stop", "status"])

    sub = add("publish", cmd_publish, "Publish disclosure events given as JSON lines.")
    kafka_options(sub)
    sub.add_argument("file", help="file of JSON lines, or - for standard input")
    sub.add_argument("--undelivered", type=Path, help="write events not delivered here, to replay")

    sub = add("simulate", cmd_simulate, "Generate realistic disclosure traffic for this platform.")
    sub.add_argument("--events", type=int, required=True, help="how many events")
    sub.add_argument("--seed", type=int, default=1, help="same seed, same events (default 1)")
    sub.add_argument("--start", type=_datetime, help="first instant (default: --end minus 1 year)")
    sub.add_argument("--end", type=_datetime, help="end instant, exclusive (default: today 00:00Z)")
    sub.add_argument("--undeclared-rate", type=float, default=0.0, help="fraction undeclared")
    sub.add_argument("--output", type=Path, help="write JSON lines here instead of publishing")
    sub.add_argument("--partitions", type=int, default=3, help="partitions if the topic is new")
    kafka_options(sub)

    sub = add("consume", cmd_consume, "Ingest the topic into a ledger file.")
    kafka_options(sub)
    ledger_option(sub)
    sub.add_argument(
        "--until-idle", type=float, help="exit after this many seconds with nothing new"
    )
    sub.add_argument("--batch-size", type=int, default=10_000, help="messages per transaction")
    sub.add_argument(
        "--key-store", type=Path, help="subject key store (default LEDGER.keys.sqlite)"
    )
    sub.add_argument("--reference", type=Path, help="reference data directory (default: shipped)")

    sub = add("verify", cmd_verify, "Recompute the hash chains and account for every offset.")
    ledger_option(sub)

    sub = add("report", cmd_report, "Write a compliance report.")
    sub.add_argument("kind", choices=["ccpa"])
    ledger_option(sub)
    sub.add_argument("--as-of", type=_date, required=True, help="end of the window, exclusive")
    sub.add_argument("--format", choices=["json", "md"], default="md")
    sub.add_argument("--output", type=Path, help="file to write (default: standard output)")

    sub = add("query", cmd_query, "Run one read-only SQL statement over a ledger.")
    ledger_option(sub)
    sub.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sub.add_argument("--output", type=Path, help="file to write (default: standard output)")
    sub.add_argument("sql", help="one SELECT or WITH ... SELECT statement")

    sub = add("reference", cmd_reference, "Show or check the reference data.")
    sub.add_argument("action", choices=["show", "check"])
    sub.add_argument(
        "section",
        nargs="?",
        default="recipients",
        choices=["recipients", "categories", "purposes", "flows"],
    )
    sub.add_argument("--reference", type=Path, help="reference data directory (default: shipped)")

    sub = add("demo", cmd_demo, "Broker, simulated traffic, ledger, verification, CCPA report.")
    sub.add_argument("--events", type=int, default=20_000, help="simulated events (default 20000)")
    sub.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    sub.add_argument("--as-of", type=_date, help="report date (default: today, UTC)")
    sub.add_argument("--out", type=Path, default=Path("out"), help="report folder (default out/)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DisclosureLedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, EventValidationError) else 1
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
