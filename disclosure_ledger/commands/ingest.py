"""Getting events into a ledger: ``publish``, ``simulate``, ``consume`` and ``demo``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from disclosure_ledger.commands.key_material import signing_key, subject_keys, subject_secret
from disclosure_ledger.commands.options import (
    add_command,
    bootstrap_servers,
    iso_date,
    iso_datetime,
    kafka_client,
    kafka_options,
    ledger_location,
    ledger_option,
    open_output,
)
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.settings import load_settings
from schemas.model import DisclosureEvent

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from disclosure_ledger.commands.options import Subcommands
    from ledger.checkpoints import Checkpointer
    from ledger.store import Ledger
    from producers.publisher import WatermarkSource
    from reference import ReferenceData

log = logging.getLogger("disclosure_ledger")


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands, "publish", run_publish, "Publish disclosure events given as JSON lines."
    )
    kafka_options(sub)
    sub.add_argument("file", help="file of JSON lines, or - for standard input")
    sub.add_argument("--undelivered", type=Path, help="write events not delivered here, to replay")
    sub.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the broker and each acknowledgement (default 60)",
    )
    sub.add_argument(
        "--reference",
        type=Path,
        help="reference data directory whose recipient registry events are checked against "
        "(default: shipped)",
    )
    sub.add_argument(
        "--strict",
        action="store_true",
        help="send nothing unless every line is valid and names a registered recipient "
        "(default: warn about unregistered recipients, skip invalid lines, send the rest)",
    )
    sub.add_argument(
        "--source",
        help="the producer service these events are from (as in producer.service); with "
        "--watermark, declares that it has published everything before that time",
    )
    sub.add_argument(
        "--watermark",
        type=iso_datetime,
        help="after every event is delivered, send a producer watermark of --source at this "
        "time to every partition (omit it for a partial backfill: then none is sent)",
    )
    sub.add_argument(
        "--source-version",
        default="publish",
        help="the producer version the watermark carries (default: publish)",
    )

    sub = add_command(
        commands,
        "simulate",
        run_simulate,
        "Generate realistic disclosure traffic for this platform.",
    )
    sub.add_argument("--events", type=int, required=True, help="how many events")
    sub.add_argument("--seed", type=int, default=1, help="same seed, same events (default 1)")
    sub.add_argument(
        "--start", type=iso_datetime, help="first instant (default: --end minus 1 year)"
    )
    sub.add_argument(
        "--end", type=iso_datetime, help="end instant, exclusive (default: today 00:00Z)"
    )
    sub.add_argument("--undeclared-rate", type=float, default=0.0, help="fraction undeclared")
    sub.add_argument("--output", type=Path, help="write JSON lines here instead of publishing")
    sub.add_argument("--partitions", type=int, default=3, help="partitions if the topic is new")
    kafka_options(sub)

    sub = add_command(commands, "consume", run_consume, "Ingest the topic into a ledger file.")
    kafka_options(sub)
    ledger_option(sub)
    sub.add_argument(
        "--until-idle", type=float, help="exit after this many seconds with nothing new"
    )
    ingest_options(sub)

    sub = add_command(
        commands, "demo", run_demo, "Broker, simulated traffic, ledger, verification, CCPA report."
    )
    sub.add_argument("--events", type=int, default=20_000, help="simulated events (default 20000)")
    sub.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    sub.add_argument(
        "--as-of",
        type=iso_date,
        help="report date (default: today, UTC; yesterday during the first "
        "5 minutes after midnight, which the watermarks cannot cover yet)",
    )
    sub.add_argument("--out", type=Path, default=Path("out"), help="report folder (default out/)")
    sub.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        help="where the service the demo leaves running serves the console "
        "(default 127.0.0.1:8080; loopback only)",
    )


def ingest_options(sub: argparse.ArgumentParser) -> None:
    """The options `consume` and `serve` share: batches, keys, reference data, outages,
    dead letters, probes and checkpoints."""
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
        "--dead-letter-topic",
        help="also copy quarantined messages (sealed) to this topic, with headers (default "
        "DISCLOSURE_LEDGER_DEAD_LETTER_TOPIC, or none)",
    )
    sub.add_argument(
        "--quarantine-retention-days",
        type=int,
        help="days a quarantined message of unknown subject keeps its (sealed) bytes before "
        "the hourly purge deletes them (default DISCLOSURE_LEDGER_QUARANTINE_RETENTION_DAYS, "
        "or 30)",
    )
    sub.add_argument(
        "--probe-every",
        type=float,
        default=10.0,
        help="seconds between probes of each partition's end offset, which the coverage "
        "(`status`) reads (default 10)",
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


def quarantine_retention_days(args: argparse.Namespace) -> int:
    """--quarantine-retention-days, else the setting; at least one day."""
    given: int | None = args.quarantine_retention_days
    days = load_settings().quarantine_retention_days if given is None else given
    if days < 1:
        raise DisclosureLedgerError(
            f"--quarantine-retention-days {days}: give a whole number of days from 1"
        )
    return days


def dead_letter_topic(args: argparse.Namespace) -> str | None:
    """--dead-letter-topic, else DISCLOSURE_LEDGER_DEAD_LETTER_TOPIC, else none."""
    topic: str | None = args.dead_letter_topic or load_settings().dead_letter_topic
    return topic


def read_events(
    lines: Iterator[str], source: str
) -> tuple[list[tuple[int, DisclosureEvent]], list[str]]:
    """Parse JSON lines; returns the valid events with their line numbers, and one message
    per problem of an invalid line."""
    events: list[tuple[int, DisclosureEvent]] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append((number, DisclosureEvent.model_validate_json(line)))
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"]) or "(the line)"
                problems.append(f"{source}:{number}: field {where}: {error['msg']}")
    return events, problems


def unregistered_lines(
    events: list[tuple[int, DisclosureEvent]], source: str, reference_dir: Path | None
) -> list[str]:
    """One message per line whose recipient the registry lacks at the event's time, naming
    the line, the id and the fix."""
    from reference import default_reference_directory, load_reference
    from reference.models import RECIPIENTS_FILE

    registry = load_reference(reference_dir)
    registry_file = str((reference_dir or default_reference_directory()) / RECIPIENTS_FILE)
    if reference_dir is None:
        registry_file += " (the shipped registry), or pass --reference DIR with it"
    found = []
    for number, event in events:
        problem = registry.unregistered_recipient(
            event.recipient.id,
            event.recipient.category.value,
            event.occurred_at,
            registry_file=registry_file,
        )
        if problem is not None:
            found.append(f"{source}:{number}: {problem}")
    return found


def _watermark_request(args: argparse.Namespace) -> tuple[WatermarkSource, datetime] | None:
    from producers.publisher import WatermarkSource

    if args.source is None and args.watermark is None:
        return None
    if args.source is None or args.watermark is None:
        raise DisclosureLedgerError(
            "--source and --watermark go together: name the producer service and the time "
            "before which it has published everything (or give neither)"
        )
    if args.watermark > datetime.now(UTC):
        raise DisclosureLedgerError(
            f"--watermark {args.watermark.isoformat()} is in the future: a source can only "
            "declare what it has already published"
        )
    return WatermarkSource(args.source, args.source_version), args.watermark


def run_publish(args: argparse.Namespace) -> int:
    from producers.publisher import PublishResult, publish_events

    watermark = _watermark_request(args)
    kafka_client()  # an unknown or uninstalled Kafka client: refused before reading
    source = "<stdin>" if args.file == "-" else args.file
    stream = sys.stdin if args.file == "-" else Path(args.file).open(encoding="utf-8")  # noqa: SIM115
    with stream:
        numbered, problems = read_events(iter(stream), source)
    events = [event for _, event in numbered]
    unregistered = unregistered_lines(numbered, source, args.reference)
    for problem in problems:
        print(f"invalid, not sent: {problem}", file=sys.stderr)
    verdict = "refused (--strict)" if args.strict else "publishing anyway (the ledger flags it)"
    for line in unregistered:
        print(f"unregistered recipient, {verdict}: {line}", file=sys.stderr)
    invalid_lines = len({p.rsplit(": field", 1)[0] for p in problems})
    if args.strict and (unregistered or problems):
        # all or nothing: a demanding user must not be left with half an input published
        print(
            f"nothing sent to {args.topic}: --strict refuses the whole input, "
            f"{len(unregistered)} line(s) naming unregistered recipients and {invalid_lines} "
            "invalid line(s); fix them (or drop --strict) and publish again",
            file=sys.stderr,
        )
        return 1
    result = PublishResult()
    if events or watermark is not None:
        result = publish_events(
            bootstrap_servers(args),
            args.topic,
            events,
            timeout=args.timeout,
            watermark=watermark if not problems else None,
        )
    if watermark is not None and problems:
        result.watermark_error = (
            f"no watermark sent for {watermark[0].service}: {len(problems)} problem(s) in the "
            "input left events unsent; fix them and publish again"
        )
    for miss in result.undelivered:
        print(f"not delivered: event {miss.event.event_id}: {miss.error}", file=sys.stderr)
    if args.undelivered and result.undelivered:
        with Path(args.undelivered).open("w", encoding="utf-8") as out:
            for miss in result.undelivered:
                out.write(miss.event.to_json_line() + "\n")
    print(
        f"{result.delivered} delivered, {len(result.undelivered)} not delivered, "
        f"{invalid_lines} invalid line(s) not sent, to {args.topic}"
        + (f"; {len(unregistered)} to unregistered recipients" if unregistered else "")
    )
    if result.watermark is not None:
        print(
            f"watermark of {result.watermark.source} at "
            f"{result.watermark.watermark_at.isoformat()} sent to every partition of {args.topic}"
        )
    if result.watermark_error is not None:
        print(f"error: {result.watermark_error}", file=sys.stderr)
    return 0 if result.ok and not problems else 1


def run_simulate(args: argparse.Namespace) -> int:
    from disclosure_ledger.simulate import simulate

    end = args.end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = args.start or end.replace(year=end.year - 1)
    if start >= end:
        raise DisclosureLedgerError(f"--start {start:%Y-%m-%d} must be before --end {end:%Y-%m-%d}")
    events = simulate(args.events, args.seed, start, end, undeclared_rate=args.undeclared_rate)
    if args.bootstrap_servers or not args.output:
        from disclosure_ledger.simulated_services import publish_as_services
        from producers.topics import ensure_topic

        kafka_client()  # an unknown or uninstalled Kafka client: refused before publishing
        bootstrap = bootstrap_servers(args)
        ensure_topic(bootstrap, args.topic, args.partitions)
        result, watermarks = publish_as_services(bootstrap, args.topic, events)
        print(f"{result.delivered} simulated events delivered to {args.topic} at {bootstrap}")
        if watermarks:
            print(
                f"watermarks of {', '.join(w.source for w in watermarks)} at "
                f"{watermarks[0].watermark_at.isoformat()} sent to every partition"
            )
        for miss in result.undelivered[:10]:
            print(f"not delivered: event {miss.event.event_id}: {miss.error}", file=sys.stderr)
        if result.watermark_error is not None:
            print(f"error: {result.watermark_error}", file=sys.stderr)
        return 0 if result.ok else 1
    with open_output(args.output) as out:
        count = 0
        for event in events:
            out.write(event.to_json_line() + "\n")
            count += 1
    print(f"{count} simulated events written to {args.output}", file=sys.stderr)
    return 0


def run_consume(args: argparse.Namespace) -> int:
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
    from ledger.key_check import KeyStoreAccess

    # the missing-secret errors come before anything is opened
    subject_secret(args.ledger, args.key_store)
    client = kafka_client()  # an unknown or uninstalled Kafka client: refused before opening
    signer = None if args.no_checkpoints else signing_key()
    with (
        Ledger(ledger_location(args)) as ledger,  # a file, or a lake (docs/ducklake.md)
        # checks the secret first: a wrong one stops here, before any offset is consumed
        subject_keys(
            ledger_location(args), args.key_store, access=KeyStoreAccess.derive, ledger=ledger
        ) as keys,
    ):
        ingestor = Ingestor(
            ledger,
            keys,
            reference,
            checkpointer=_checkpointer(args, ledger, signer, reference),
            quarantine_retention_days=quarantine_retention_days(args),
        )
        stats = consume(
            bootstrap_servers(args),
            args.topic,
            ingestor,
            until_idle=args.until_idle,
            max_batch=args.batch_size or DEFAULT_BATCH,
            stop=stop,
            max_outage=args.max_outage,
            dead_letter_topic=dead_letter_topic(args),
            probe_every=args.probe_every,
            client=client,
            group=load_settings().consumer_group,
        )
        final = ingestor.shutdown()  # consume returned: a clean stop
    if final is not None and ingestor.checkpointer is not None:
        print(f"checkpoint {final.at} appended to {ingestor.checkpointer.checkpoint_file}")
    print(
        f"{stats.total} messages from {args.topic} partitions {stats.partitions}: "
        f"{stats.accepted} appended ({stats.late} late), {stats.duplicates} duplicates, "
        f"{stats.quarantined} quarantined, {stats.watermarks} watermarks, into {ledger.location}"
        + (f"; {stats.dead_lettered} dead-lettered" if dead_letter_topic(args) else "")
        + (f"; rode out {stats.outages} broker outage(s)" if stats.outages else "")
    )
    return 0


def _checkpointer(
    args: argparse.Namespace,
    ledger: Ledger,
    signer: Ed25519PrivateKey | None,
    reference: ReferenceData,
) -> Checkpointer | None:
    from ledger.checkpoints import Checkpointer, default_checkpoint_file

    if signer is None:
        log.warning("--no-checkpoints: this run writes no signed checkpoints")
        return None
    settings = load_settings()
    return Checkpointer(
        ledger,
        signer,
        args.checkpoint_file or default_checkpoint_file(args.ledger),
        reference_version=reference.version,
        every_rows=args.checkpoint_every_rows or settings.checkpoint_every_rows,
        every_seconds=args.checkpoint_every_seconds or settings.checkpoint_every_seconds,
        notes_dir=settings.checkpoint_notes_dir,
        origin=settings.checkpoint_origin,
        copy_to=settings.checkpoint_copy_to,
    )


def run_demo(args: argparse.Namespace) -> int:
    from disclosure_ledger.demo import run_demo as demo

    return demo(
        events=args.events,
        seed=args.seed,
        as_of=args.as_of,
        out_dir=args.out,
        listen=args.listen,
    )
