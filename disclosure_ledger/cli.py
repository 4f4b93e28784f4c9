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
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.settings import Settings, load_settings
from ledger.pseudonyms import SubjectKeyStore
from schemas import DEFAULT_TOPIC
from schemas.errors import EventValidationError
from schemas.model import DisclosureEvent

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.checkpoints import Checkpointer
    from ledger.store import Ledger

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
    return SubjectKeyStore(key_store or default_key_store(ledger_path), _subject_secret())


def _subject_secret() -> bytes:
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
    return secret


def default_key_store(ledger_path: Path) -> Path:
    """The per-subject keys live beside, never inside, the ledger file."""
    return ledger_path.with_name(ledger_path.name + ".keys.sqlite")


def _signing_key() -> Ed25519PrivateKey:
    """The checkpoint signing key named in the settings; a clear error if there is none."""
    from ledger.checkpoints import load_signing_key

    settings = _settings()
    if settings.checkpoint_signing_key is not None:
        return load_signing_key(
            settings.checkpoint_signing_key.get_secret_value().encode(),
            "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY",
        )
    if settings.checkpoint_signing_key_file is not None:
        try:
            data = settings.checkpoint_signing_key_file.read_bytes()
        except OSError as exc:
            raise DisclosureLedgerError(
                f"cannot read the checkpoint signing key file "
                f"{settings.checkpoint_signing_key_file}: {exc}"
            ) from exc
        return load_signing_key(data, str(settings.checkpoint_signing_key_file))
    raise DisclosureLedgerError(
        "no checkpoint signing key: set DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE to the "
        "private key file `disclosure-ledger keys generate` wrote (or "
        "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY to its content), or consume with "
        "--no-checkpoints to run without tamper-evident checkpoints"
    )


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
    from producers.publisher import PublishResult, publish_events

    source = "<stdin>" if args.file == "-" else args.file
    stream = sys.stdin if args.file == "-" else Path(args.file).open(encoding="utf-8")  # noqa: SIM115
    with stream:
        events, problems = read_events(iter(stream), source)
    for problem in problems:
        print(f"invalid, not sent: {problem}", file=sys.stderr)
    result = PublishResult()
    if events:
        result = publish_events(_bootstrap(args), args.topic, events, timeout=args.timeout)
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
    from consumers.consumer import DEFAULT_BATCH, consume
    from consumers.pipeline import Ingestor
    from ledger.store import Ledger
    from reference import load_reference

    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info(
            "%s received: finishing the current batch, then stopping", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    reference = load_reference(args.reference)
    _subject_secret()  # the missing-secret errors come before anything is opened
    signer = None if args.no_checkpoints else _signing_key()
    with Ledger(args.ledger) as ledger, _subject_keys(args.ledger, args.key_store) as keys:
        ingestor = Ingestor(
            ledger, keys, reference, checkpointer=_checkpointer(args, ledger, signer, reference)
        )
        stats = consume(
            _bootstrap(args),
            args.topic,
            ingestor,
            until_idle=args.until_idle,
            max_batch=args.batch_size or DEFAULT_BATCH,
            stop=stop,
            max_outage=args.max_outage,
            dead_letter_topic=args.dead_letter_topic,
        )
        final = ingestor.shutdown()  # consume returned: a clean stop
    if final is not None and ingestor.checkpointer is not None:
        print(f"checkpoint {final.at} appended to {ingestor.checkpointer.checkpoint_file}")
    print(
        f"{stats.total} messages from {args.topic} partitions {stats.partitions}: "
        f"{stats.accepted} appended, {stats.duplicates} duplicates, "
        f"{stats.quarantined} quarantined, into {args.ledger}"
        + (f"; {stats.dead_lettered} dead-lettered" if args.dead_letter_topic else "")
        + (f"; rode out {stats.outages} broker outage(s)" if stats.outages else "")
    )
    return 0


def _checkpointer(
    args: argparse.Namespace, ledger: Ledger, signer: Ed25519PrivateKey | None, reference: object
) -> Checkpointer | None:
    from ledger.checkpoints import Checkpointer, default_checkpoint_file

    if signer is None:
        log.warning("--no-checkpoints: this run writes no signed checkpoints")
        return None
    settings = _settings()
    return Checkpointer(
        ledger,
        signer,
        args.checkpoint_file or default_checkpoint_file(args.ledger),
        reference_version=str(getattr(reference, "version", "")),
        every_rows=args.checkpoint_every_rows or settings.checkpoint_every_rows,
        every_seconds=args.checkpoint_every_seconds or settings.checkpoint_every_seconds,
    )


def cmd_quarantine(args: argparse.Namespace) -> int:
    from ledger.quarantine import quarantine_key, read_quarantine
    from ledger.store import Ledger

    key = quarantine_key(_subject_secret())
    with Ledger(args.ledger, read_only=True) as ledger:
        held = read_quarantine(ledger, key, topic=args.topic, partition=args.partition)
    for q in held:
        key_text = "-" if q.key is None else q.key.decode("utf-8", "replace")
        value_text = "-" if q.value is None else q.value.hex()
        print(f"{q.topic}/{q.partition} offset {q.offset} at {q.quarantined_at:%Y-%m-%dT%H:%M:%SZ}")
        print(f"  error: {q.error}")
        print(f"  key: {key_text}")
        print(f"  value ({0 if q.value is None else len(q.value)} bytes, hex): {value_text}")
    print(f"{len(held)} quarantined message(s) in {args.ledger}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import time

    from ledger.checkpoints import load_public_key, read_checkpoint_file
    from ledger.store import Ledger
    from ledger.verify import CheckpointSource, verify_ledger

    public_key_file = args.public_key or _settings().checkpoint_public_key_file
    public_key = load_public_key(public_key_file) if public_key_file else None
    sources = [
        CheckpointSource(str(path), read_checkpoint_file(path)) for path in args.checkpoints or []
    ]
    started = time.monotonic()
    last_report = [started]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last_report[0] >= 2.0 or (done == total and now - started >= 2.0):
            last_report[0] = now
            rate = done / max(now - started, 1e-9)
            print(
                f"verify: {done:,} of {total:,} rows ({100 * done / max(total, 1):.0f}%), "
                f"{rate:,.0f} rows/s",
                file=sys.stderr,
            )

    with Ledger(args.ledger, read_only=True) as ledger:
        result = verify_ledger(
            ledger, checkpoints=sources, public_key=public_key, progress=progress
        )
    for failure in result.failures:
        print(f"FAIL {failure}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for chain, (length, head) in sorted(result.chains.items()):
        print(f"chain {chain}: {length} rows, head {head}")
    if result.checkpoints:
        signed = "signatures checked" if result.signatures_checked else "signatures NOT checked"
        print(f"{result.checkpoints} checkpoint(s) checked against the chains ({signed})")
    else:
        print("no checkpoints to check the chains against")
    verdict = "verified" if result.ok else f"NOT verified: {len(result.failures)} failure(s)"
    print(f"{args.ledger}: {result.rows} rows; {verdict}")
    return 0 if result.ok else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    import time

    from ledger.derived import has_derived, refresh_heavy
    from ledger.store import Ledger

    started = time.monotonic()
    with Ledger(args.ledger, read_only=True) as ledger:  # refuses a file that is no ledger
        current = has_derived(ledger.con)
    with Ledger(args.ledger) as ledger:  # the writer migrates on opening, in one transaction
        if current:
            refresh_heavy(ledger.con)
    what = "heavy subjects chosen afresh" if current else "derived data written"
    print(f"{args.ledger}: {what} in {time.monotonic() - started:.1f} s")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from ledger.checkpoints import generate_key_pair

    public = args.public_key or args.private_key.with_name(args.private_key.name + ".pub")
    key = generate_key_pair(args.private_key, public, overwrite=args.force)
    print(f"checkpoint signing key {key}: private key {args.private_key} (mode 0600), public key")
    print(f"{public}. Point DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE at the private key;")
    print("publish the public key with the checkpoint file; never put either in the ledger.")
    return 0


def cmd_erase_subject(args: argparse.Namespace) -> int:
    import getpass

    from ledger.pseudonyms import erase_subject
    from ledger.store import Ledger

    actor = args.actor or getpass.getuser()
    with Ledger(args.ledger) as ledger, _subject_keys(args.ledger, args.key_store) as keys:
        erasure = erase_subject(ledger, keys, args.subject_type, args.subject_id, actor=actor)
    if not erasure.erased:
        print(
            f"no key held for that {args.subject_type}: never seen, or already erased; "
            "nothing to erase"
        )
        return 0
    # Neither the id nor the pseudonym is printed: one beside the other would link them.
    print(
        f"erased the key of one {args.subject_type}; {erasure.ledger_rows} ledger row(s) can no "
        f"longer be linked to them; recorded in the erasures table at "
        f"{erasure.erased_at:%Y-%m-%dT%H:%M:%SZ} by {actor}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ledger.store import Ledger

    if args.kind == "requests":
        text = _requests_report(args)
    else:
        with Ledger(args.ledger, read_only=True) as ledger:
            text = _REPORTS[args.kind](args, ledger)
    with _open_output(args.output) as out:
        out.write(text)
    if args.output:
        print(f"{args.kind} report written to {args.output}")
    return 0


def _ccpa_report(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.ccpa import ccpa_report, render_ccpa

    return render_ccpa(ccpa_report(ledger, args.as_of), args.format)


def _conformance_report(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.conformance import conformance_report, render_conformance

    report = conformance_report(ledger, args.as_of, since=args.since)
    return render_conformance(report, args.format)


def _transfers_report(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.transfers import render_transfers, transfers_report

    return render_transfers(transfers_report(ledger, args.as_of, since=args.since), args.format)


def _subject_request(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.request_log import ReceivedVia, RequestKind, RequestLog, default_request_log
    from reports.subject import (
        answer_subject_request,
        deny_subject_request,
        recipients_report,
        render_denial,
        render_recipients,
        render_subject,
        subject_report,
    )

    log_path = args.request_log or default_request_log(args.ledger)
    subject = {"subject_type": args.subject_type, "subject_id": args.subject_id}
    with (
        _subject_keys(args.ledger, args.key_store) as keys,
        RequestLog(log_path, _subject_secret()) as log,
    ):
        received_on, via = args.received_on, ReceivedVia(args.received_via)
        if args.deny is not None:
            notice = deny_subject_request(
                log,
                kind=RequestKind.know if args.kind == "subject" else RequestKind.recipients,
                **subject,
                received_on=received_on,
                received_via=via,
                basis=args.deny,
            )
            return render_denial(notice, args.format)
        if args.kind == "subject":
            report = subject_report(ledger, keys, **subject, as_of=args.as_of, since=args.since)
            report = answer_subject_request(report, log, received_on=received_on, received_via=via)
            return render_subject(report, args.format)
        listed = recipients_report(ledger, keys, **subject, as_of=args.as_of)
        listed = answer_subject_request(listed, log, received_on=received_on, received_via=via)
        return render_recipients(listed, args.format)


def _requests_report(args: argparse.Namespace) -> str:
    from reports.request_log import RequestLog, default_request_log
    from reports.request_metrics import render_requests, requests_report

    log_path = args.request_log or default_request_log(args.ledger)
    if not log_path.exists():
        raise DisclosureLedgerError(
            f"no request log at {log_path}: requests are logged by `report subject` and "
            "`report recipients`; give --request-log if it lives elsewhere"
        )
    with RequestLog(log_path, _subject_secret()) as log:
        return render_requests(requests_report(log, args.year), args.format)


_REPORTS: dict[str, Callable[[argparse.Namespace, Ledger], str]] = {
    "ccpa": _ccpa_report,
    "conformance": _conformance_report,
    "transfers": _transfers_report,
    "subject": _subject_request,
    "recipients": _subject_request,
}


def cmd_query(args: argparse.Namespace) -> int:
    from reports.presets import Output, recipient_disclosures, timeline, volume
    from reports.query import run_query

    binary = args.format == "parquet"
    with _open_output(None if binary else args.output) as out:
        output = Output(args.format, out, args.output if binary else None)
        if args.sql == "timeline":
            _need(args, "subject_id", "timeline")
            with _subject_keys(args.ledger, args.key_store) as keys:
                pseudonym = keys.pseudonym(args.subject_type, args.subject_id)
            if pseudonym is None:
                print("no key for that subject in the key store: no data held", file=sys.stderr)
            rows = timeline(
                args.ledger, pseudonym, args.subject_type, output, start=args.from_, end=args.to
            )
        elif args.sql == "recipient":
            _need(args, "recipient_id", "recipient")
            rows = recipient_disclosures(
                args.ledger, args.recipient_id, output, start=args.from_, end=args.to
            )
        elif args.sql == "volume":
            rows = volume(args.ledger, args.by, output, start=args.from_, end=args.to)
        else:
            rows = run_query(
                args.ledger, args.sql, args.format, out, output_path=output.output_path
            )
    if binary:
        print(f"{rows} rows written to {args.output}", file=sys.stderr)
    return 0


def _need(args: argparse.Namespace, option: str, preset: str) -> None:
    if getattr(args, option) is None:
        raise DisclosureLedgerError(
            f"query {preset} needs --{option.replace('_', '-')}; see `query --help`"
        )


def cmd_schemas(args: argparse.Namespace) -> int:
    from schemas.compat import check_schema_directory

    report = check_schema_directory(args.dir)
    for line in report.lines():
        print(line, file=sys.stdout if line.startswith(("ok", "note")) else sys.stderr)
    where = args.dir or "the shipped schemas"
    versions = ", ".join(f"v{v}" for v in report.versions) or "none"
    verdict = "compatible" if report.ok else "NOT compatible"
    print(f"{where} ({versions}): {verdict}: each version must read every earlier one")
    return 0 if report.ok else 1


def cmd_reference(args: argparse.Namespace) -> int:
    from reference import check_reference, format_reference, load_reference

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
    sub.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the broker and each acknowledgement (default 60)",
    )

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
    sub.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="messages per transaction (default: consumers.consumer.DEFAULT_BATCH, 5,000)",
    )
    sub.add_argument(
        "--key-store", type=Path, help="subject key store (default LEDGER.keys.sqlite)"
    )
    sub.add_argument("--reference", type=Path, help="reference data directory (default: shipped)")
    sub.add_argument(
        "--max-outage",
        type=float,
        help="give up (exit 1) once the broker has been unreachable this many seconds "
        "(default: keep retrying)",
    )
    sub.add_argument(
        "--dead-letter-topic", help="also copy quarantined messages to this topic, with headers"
    )
    sub.add_argument(
        "--checkpoint-file", type=Path, help="append checkpoints here (default LEDGER.checkpoints)"
    )
    sub.add_argument(
        "--checkpoint-every-rows",
        type=int,
        help="checkpoint after this many appended rows (default: settings, 100000)",
    )
    sub.add_argument(
        "--checkpoint-every-seconds",
        type=float,
        help="checkpoint after this many seconds with new rows (default: settings, 300)",
    )
    sub.add_argument(
        "--no-checkpoints",
        action="store_true",
        help="write no signed checkpoints (then no signing key is needed)",
    )

    sub = add(
        "verify",
        cmd_verify,
        "Recompute the hash chains, check signed checkpoints, account for every offset.",
    )
    ledger_option(sub)
    sub.add_argument(
        "--checkpoints",
        type=Path,
        action="append",
        metavar="FILE",
        help="a checkpoint file kept outside the ledger (repeatable); the ledger's own "
        "checkpoints table is always checked",
    )
    sub.add_argument(
        "--public-key",
        type=Path,
        help="the checkpoint public key (default DISCLOSURE_LEDGER_CHECKPOINT_PUBLIC_KEY_FILE)",
    )

    sub = add(
        "migrate",
        cmd_migrate,
        "Bring a ledger written by an earlier release up to date (derived data the reports "
        "read; the writer does this on opening), or choose its heavy subjects afresh.",
    )
    ledger_option(sub)

    sub = add(
        "quarantine",
        cmd_quarantine,
        "Show quarantined messages with their raw bytes (sealed in the ledger; opened with "
        "the subject secret).",
    )
    sub.add_argument("action", choices=["show"], help="what to do with the quarantine")
    ledger_option(sub)
    sub.add_argument("--topic", help="only this source topic")
    sub.add_argument("--partition", type=int, help="only this source partition")

    sub = add("keys", cmd_keys, "Generate the Ed25519 key pair that signs checkpoints.")
    sub.add_argument("action", choices=["generate"])
    sub.add_argument("--private-key", type=Path, required=True, help="private key file to write")
    sub.add_argument("--public-key", type=Path, help="public key file (default PRIVATE.pub)")
    sub.add_argument("--force", action="store_true", help="replace existing key files")

    sub = add(
        "erase-subject",
        cmd_erase_subject,
        "Destroy one subject's key (crypto-shredding) and record the erasure.",
    )
    ledger_option(sub)
    sub.add_argument("--subject-id", required=True, help="the subject's raw id")
    sub.add_argument("--subject-type", required=True, choices=["member", "guest"])
    sub.add_argument("--actor", help="who asked for the erasure (default: the OS user)")
    sub.add_argument(
        "--key-store", type=Path, help="subject key store (default LEDGER.keys.sqlite)"
    )

    report = add("report", cmd_report, "Write a compliance report.")
    kinds = report.add_subparsers(dest="kind", required=True, metavar="KIND")

    def report_kind(name: str, help_text: str, *, as_of: bool = True) -> argparse.ArgumentParser:
        kind = kinds.add_parser(name, help=help_text, description=help_text)
        ledger_option(kind)
        if as_of:
            kind.add_argument(
                "--as-of", type=_datetime, required=True, help="end of the window, exclusive"
            )
        kind.add_argument("--format", choices=["md", "json", "html", "csv"], default="md")
        kind.add_argument("--output", type=Path, help="file to write (default: standard output)")
        return kind

    def subject_options(kind: argparse.ArgumentParser) -> None:
        kind.add_argument("--subject-id", required=True, help="the id the person gave")
        kind.add_argument("--subject-type", choices=["member", "guest"], default="member")
        kind.add_argument(
            "--key-store", type=Path, help="subject key store (default LEDGER.keys.sqlite)"
        )
        kind.add_argument(
            "--request-log", type=Path, help="request log (default LEDGER.requests.sqlite)"
        )
        kind.add_argument(
            "--received-on",
            type=_date,
            default=datetime.now(UTC).date(),
            help="day the request was received (default: today, UTC)",
        )
        kind.add_argument(
            "--received-via",
            choices=[
                "web_form",
                "email",
                "toll_free_phone",
                "mail",
                "in_person",
                "authorized_agent",
                "other",
            ],
            default="web_form",
            help="how the request was received (default web_form)",
        )
        kind.add_argument(
            "--deny",
            metavar="BASIS",
            help="record the request as denied on this basis (e.g. identity not verified) "
            "and write the denial instead of the report",
        )

    report_kind("ccpa", "CCPA 1798.130(a)(5)(C) lists for [as-of - 12 months, as-of).")
    for name, help_text in (
        ("conformance", "Undeclared flows and transfers without safeguard in the window."),
        ("transfers", "Disclosures outside the EEA with the safeguard in force (Art. 30)."),
    ):
        kind = report_kind(name, help_text)
        kind.add_argument("--since", type=_datetime, help="window start (default: 12 months)")
    kind = report_kind(
        "subject", "A consumer's request to know (1798.110/115, GDPR Art. 15(1)(c)); logged."
    )
    subject_options(kind)
    kind.add_argument(
        "--since", type=_datetime, help="reach back beyond 12 months (not before 2022-01-01)"
    )
    kind = report_kind("recipients", "Every recipient of a person's data (GDPR Art. 19); logged.")
    subject_options(kind)
    kind = report_kind(
        "requests", "11 CCR 7102 metrics of the request log for a calendar year.", as_of=False
    )
    kind.add_argument("--year", type=int, required=True, help="calendar year, e.g. 2026")
    kind.add_argument(
        "--request-log", type=Path, help="request log (default LEDGER.requests.sqlite)"
    )

    sub = add(
        "query",
        cmd_query,
        "Run one read-only SQL statement over a ledger, or a named preset: "
        "timeline (--subject-id), recipient (--recipient-id), volume (--by).",
    )
    ledger_option(sub)
    sub.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    sub.add_argument(
        "--output", type=Path, help="file to write (default: standard output; parquet needs one)"
    )
    sub.add_argument(
        "sql", help="one SELECT or WITH ... SELECT statement, or timeline | recipient | volume"
    )
    sub.add_argument("--subject-id", help="timeline: the person's id")
    sub.add_argument("--subject-type", choices=["member", "guest"], default="member")
    sub.add_argument("--key-store", type=Path, help="timeline: key store (default beside ledger)")
    sub.add_argument("--recipient-id", help="recipient: the recipient's id")
    sub.add_argument(
        "--by", choices=["recipient", "category", "day"], default="recipient", help="volume"
    )
    sub.add_argument("--from", dest="from_", type=_datetime, help="presets: start, included")
    sub.add_argument("--to", type=_datetime, help="presets: end, excluded")

    sub = add(
        "schemas",
        cmd_schemas,
        "Check that every schema version can read all earlier ones (Avro resolution).",
    )
    sub.add_argument("action", choices=["check"])
    sub.add_argument(
        "--dir",
        type=Path,
        help="directory of disclosure_event.vN.avsc files (default: the shipped schemas)",
    )

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
    # kafka-python logs several lines per reconnection attempt; the commands log one
    # line per attempt themselves, so its own messages show only with --verbose.
    logging.getLogger("kafka").setLevel(logging.CRITICAL if not args.verbose else logging.DEBUG)
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
