"""``serve``: the ledger service (ingest, API, console) in one process."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.ingest import (
    dead_letter_topic,
    ingest_options,
    quarantine_retention_days,
)
from disclosure_ledger.commands.key_material import default_key_store, signing_key, subject_secret
from disclosure_ledger.commands.options import (
    add_command,
    bootstrap_servers,
    kafka_client,
    kafka_options,
    ledger_location,
    ledger_option,
)
from disclosure_ledger.settings import load_settings
from ledger.lake import LakeLocation

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "serve",
        run_serve,
        "Run the ledger service: ingest the topic, and serve the API and the web console "
        "over the same ledger while it ingests (SIGTERM stops it cleanly).",
    )
    kafka_options(sub)
    ledger_option(sub)
    sub.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        help="HOST:PORT to listen on (default 127.0.0.1:8080, loopback only)",
    )
    sub.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    sub.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    sub.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow a non-loopback --listen without TLS (only behind a TLS proxy)",
    )
    sub.add_argument(
        "--no-ingest",
        action="store_true",
        help="serve the ledger without consuming the topic (no broker needed)",
    )
    sub.add_argument(
        "--query-time-limit",
        type=float,
        default=10.0,
        help="seconds a query may run before it is stopped (default 10)",
    )
    sub.add_argument(
        "--max-concurrent-queries",
        type=int,
        default=2,
        help="queries run at once; more wait their turn (default 2)",
    )
    sub.add_argument(
        "--memory-limit",
        default="2GB",
        help="DuckDB memory limit of the whole service, shared by ingest, reports and "
        "queries (default 2GB)",
    )
    ingest_options(sub)


def _say_if_nobody_can_sign_in(ledger: Path | LakeLocation) -> None:
    """A service without an enabled user says so at start, with the command that fixes it
    (``users add`` works while the service runs)."""
    from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store

    if isinstance(ledger, Path) and not ledger.parent.is_dir():
        return  # the ledger's own error follows, naming the directory
    store = default_account_store(ledger)
    if not any(not user.disabled for user in AccountStore(store).users()):
        logging.getLogger("disclosure_ledger.service").warning(
            "nobody can sign in: %s holds no enabled user; add one with "
            "`disclosure-ledger users add NAME --role admin --generate-password --ledger %s`",
            store,
            ledger,
        )


def run_serve(args: argparse.Namespace) -> int:
    from consumers.consumer import DEFAULT_BATCH
    from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
    from disclosure_ledger.service.config import ServiceConfig, parse_listen
    from disclosure_ledger.service.logs import configure_logging
    from disclosure_ledger.service.runtime import IngestSettings, LedgerService
    from disclosure_ledger.service.server import serve
    from reference import load_reference

    configure_logging()  # JSON lines (service/logs.py); uvicorn is given the same
    host, port = parse_listen(args.listen)
    location = ledger_location(args)  # a file, or a lake (docs/ducklake.md, docs/scale.md)
    config = ServiceConfig(
        ledger=args.ledger,
        location=location if isinstance(location, LakeLocation) else None,
        host=host,
        port=port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure_http=args.insecure_http,
        query_time_limit=args.query_time_limit,
        max_concurrent_queries=args.max_concurrent_queries,
        memory_limit=args.memory_limit,
        lake_compact_every=load_settings().lake_compact_every,
    )
    config.check()  # before anything is opened
    _say_if_nobody_can_sign_in(location)
    settings = load_settings()
    if settings.checkpoint_copy_to is not None and not args.no_ingest:
        from ledger.checkpoint_copy import check_target

        check_target(settings.checkpoint_copy_to)  # a target that cannot be used stops the start
    secret = subject_secret(args.ledger, args.key_store)
    ingest = (
        None
        if args.no_ingest
        else IngestSettings(
            bootstrap_servers=bootstrap_servers(args),
            topic=args.topic,
            max_batch=args.batch_size or DEFAULT_BATCH,
            max_outage=args.max_outage,
            dead_letter_topic=dead_letter_topic(args),
            quarantine_retention_days=quarantine_retention_days(args),
            probe_every=args.probe_every,
            kafka_client=kafka_client(),  # refused at start when unknown or not installed
            consumer_group=settings.consumer_group,
            checkpoint_file=args.checkpoint_file,
            checkpoint_every_rows=args.checkpoint_every_rows or settings.checkpoint_every_rows,
            checkpoint_every_seconds=(
                args.checkpoint_every_seconds or settings.checkpoint_every_seconds
            ),
            checkpoint_origin=settings.checkpoint_origin,
            checkpoint_notes_dir=settings.checkpoint_notes_dir,
            checkpoint_copy_to=settings.checkpoint_copy_to,
        )
    )
    signer = None if args.no_checkpoints or args.no_ingest else signing_key()
    service = LedgerService(
        config,
        reference=load_reference(args.reference),
        subject_secret=secret,
        key_store=args.key_store or default_key_store(ledger_location(args)),
        ingest=ingest,
        signer=signer,
    )
    return serve(service, AccountStore(default_account_store(ledger_location(args))))
