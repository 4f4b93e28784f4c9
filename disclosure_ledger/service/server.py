"""``serve``: the ledger service in one process, uvicorn in front, ingestion behind.

uvicorn owns SIGTERM and SIGINT: on either it stops taking requests and finishes those in
hand; then the ingest thread finishes the batch in hand, the final checkpoint is written
and the ledger closed. A restart resumes from the offsets the ledger holds.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from disclosure_ledger.service.app import create_app
from disclosure_ledger.service.auth.accounts import AccountStore
from disclosure_ledger.service.logs import log_config
from disclosure_ledger.service.runtime import LedgerService
from disclosure_ledger.service.state_file import remove_service_state, write_service_state

log = logging.getLogger("disclosure_ledger.service")


def serve(service: LedgerService, accounts: AccountStore) -> None:
    """Run until SIGTERM or SIGINT; the ledger is closed cleanly either way."""
    config = service.config
    config.check()
    app = create_app(service, accounts)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
            ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            log_config=log_config(),  # JSON lines, as the service's own (service.logs)
            log_level="info",
            access_log=False,  # requests are logged by route template (request_observer)
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=30,
        )
    )
    service.start_ingest()
    write_service_state(config.ledger, config.url)
    log.info("serving ledger %s at %s", config.ledger, config.url)
    # uvicorn handles SIGTERM while it runs, then raises it again under the handler it found
    # in place: Python's default would end the process there, before the ledger is closed
    # (no final checkpoint). Under this one, the stop below runs, and the exit is 0.
    previous = signal.signal(signal.SIGTERM, _stopping)
    try:
        server.run()
    finally:
        try:
            service.stop()
        finally:
            remove_service_state(config.ledger)
            signal.signal(signal.SIGTERM, previous)
        log.info("stopped; the ledger holds every batch read so far")


def _stopping(signum: int, frame: FrameType | None) -> None:
    """SIGTERM once uvicorn has stopped: the stop is already under way."""
    log.info("SIGTERM: closing the ledger after the batch in hand")
