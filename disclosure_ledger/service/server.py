"""``serve``: the ledger service in one process, uvicorn in front, ingestion behind.

On SIGTERM or SIGINT: ingestion is asked to stop at once (it finishes the batch in hand
and commits it), uvicorn stops taking requests and finishes those in hand; then the
ingest thread is joined, the final checkpoint written, the ledger closed and
``LEDGER.service.json`` removed, and the process exits 0. A restart resumes from the
offsets the ledger holds (each batch commits its rows with its offsets).

uvicorn restores the signal handlers it found when it stops, and then raises the signal
it caught again, so that the default action (death by SIGTERM) would follow. That would
kill the process before the ingest thread (a daemon thread) finished its batch, before
the final checkpoint and with the state file left behind: so handlers of our own are
installed first, and uvicorn's re-raised signal lands on them.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from disclosure_ledger.service.app import create_app
from disclosure_ledger.service.auth.accounts import AccountStore
from disclosure_ledger.service.logs import log_config
from disclosure_ledger.service.runtime import LedgerService
from disclosure_ledger.service.state_file import remove_service_state, write_service_state

log = logging.getLogger("disclosure_ledger.service")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Server(uvicorn.Server):
    """uvicorn, telling the service to stop ingesting as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, service: LedgerService) -> None:
        super().__init__(config)
        self._service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._service.stopping:
            log.info("%s: stopping (the batch in hand is committed first)", _name(sig))
        self._service.request_stop()
        super().handle_exit(sig, frame)


def _name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


@contextmanager
def _stop_signals(service: LedgerService, server: uvicorn.Server) -> Iterator[None]:
    """While serving, a stop signal only asks the service and uvicorn to stop (see the
    module docstring; before uvicorn listens, or after it re-raises the signal it caught);
    the handlers found before are restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(sig: int, _frame: FrameType | None) -> None:
        service.request_stop()
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(service: LedgerService, accounts: AccountStore) -> int:
    """Run until SIGTERM or SIGINT; the ledger is closed cleanly either way. Returns the
    exit status: 0 after a clean stop, 1 when the ingest thread did not finish in time."""
    config = service.config
    config.check()
    app = create_app(service, accounts)
    server = _Server(
        uvicorn.Config(
            app,
            log_config=log_config(),  # JSON lines, as the service's own (service.logs)
            host=config.host,
            port=config.port,
            ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
            ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            log_level="info",
            access_log=False,  # URLs are logged by our own middleware, without personal data
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=30,
        ),
        service,
    )
    clean = False
    with _stop_signals(service, server):
        service.start_ingest()
        write_service_state(config.ledger, config.url)
        log.info("serving ledger %s at %s", config.ledger, config.url)
        try:
            server.run()
        finally:
            try:
                clean = service.stop()
            finally:
                remove_service_state(config.ledger)
    if clean:
        log.info("stopped; the ledger holds every batch read so far")
    return 0 if clean else 1
