"""Publishing simulated traffic as the platform's services would: the events, then, once
every one of them is acknowledged, each simulated service's producer watermark.

The simulator (:mod:`disclosure_ledger.simulate`) yields the events of every service
(``PRODUCERS``) mixed in time order; they go out through one publisher. After its flush,
each service declares on every partition that it has published everything it disclosed
before now, through a publisher of its own, as a running service's publisher does
periodically and on close. If any event was not delivered, no service sends one: the
ledger must not be told it is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from disclosure_ledger.simulate import PRODUCERS
from producers.errors import PublishError
from producers.publisher import DisclosurePublisher, PublishResult, WatermarkSource
from schemas.model import DisclosureEvent
from schemas.watermark import Watermark

log = logging.getLogger(__name__)


def publish_as_services(
    bootstrap_servers: str, topic: str, events: Iterable[DisclosureEvent]
) -> tuple[PublishResult, list[Watermark]]:
    """Publish ``events``; then, if all were delivered, every simulated service's watermark.

    Returns the events' result (``watermark_error`` set when a watermark could not be
    sent) and the watermarks sent.
    """
    with DisclosurePublisher(bootstrap_servers, topic) as publisher:
        result = publisher.publish_many(events)
    if not result.ok:
        result.watermark_error = (
            f"no watermarks sent: {len(result.undelivered)} simulated event(s) were not delivered"
        )
        return result, []
    sent: list[Watermark] = []
    for service, version in PRODUCERS.items():
        with DisclosurePublisher(
            bootstrap_servers,
            topic,
            source=WatermarkSource(service, version),
            watermark_every=None,
            watermark_on_close=False,
        ) as service_publisher:
            try:
                sent.append(service_publisher.send_watermark())
            except PublishError as exc:
                result.watermark_error = str(exc)
                log.error("%s", exc)
    return result, sent
