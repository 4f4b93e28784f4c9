"""``broker``: fetch, start, stop or query the local Kafka broker."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from disclosure_ledger.commands.options import add_command
from disclosure_ledger.settings import load_settings

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "broker",
        run_broker,
        "Fetch, start, stop or query the local Kafka broker (KRaft).",
    )
    sub.add_argument(
        "action",
        choices=["fetch", "start", "stop", "status"],
        help="fetch its jars, start it, stop it, or show its status (exit 3 when not running)",
    )


def run_broker(args: argparse.Namespace) -> int:
    from disclosure_ledger.local_broker import LocalBroker

    settings = load_settings()
    broker = LocalBroker(
        state_dir=settings.state_dir,
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap=settings.broker_heap,
        secure_port=settings.broker_sasl_ssl_port,
    )
    if args.action == "fetch":
        print(f"broker jars in {broker.fetch()}")
    elif args.action == "start":
        print(f"broker running at {broker.start()}")
        if broker.secure is not None:
            print(f"SASL_SSL listener at {broker.secure.bootstrap}; a client connects with:")
            for name, value in broker.secure.client_settings().items():
                print(f"  export {name}={value}")
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
