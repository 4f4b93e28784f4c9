"""The publisher library in a process of its own, for the broker-outage tests.

kafka-python 3.0.12 leaks the socket of every refused connection (kafka/net/inet.py
``sock_connect`` raises without closing it); in the pytest process those surface as
ResourceWarnings at exit. Here they die with the process.

Usage: ``python -m tests.integration.publisher_process BOOTSTRAP TOPIC EVENTS.jsonl
TIMEOUT {connect-first|connect-late}``. ``connect-first`` connects and publishes the
first event, prints ``connected``, waits for a line on standard input (the test stops
the broker meanwhile), then publishes the rest; ``connect-late`` connects and publishes
all of them. Prints the result as one JSON object on the last line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from producers.publisher import DisclosurePublisher, PublishResult, publish_events
from schemas.model import DisclosureEvent


def main(argv: Sequence[str]) -> int:
    bootstrap, topic, events_path, timeout_text, mode = argv
    timeout = float(timeout_text)
    lines = Path(events_path).read_text(encoding="utf-8").splitlines()
    events = [DisclosureEvent.model_validate_json(line) for line in lines if line]
    if mode == "connect-first":
        publisher = DisclosurePublisher(bootstrap, topic, timeout=timeout)
        publisher.publish(events[0])
        print("connected", flush=True)
        sys.stdin.readline()
        result: PublishResult = publisher.publish_many(events[1:])
        publisher.close(timeout=0)
    else:
        result = publish_events(bootstrap, topic, events, timeout=timeout)
    undelivered = [[str(miss.event.event_id), miss.error] for miss in result.undelivered]
    print(json.dumps({"delivered": result.delivered, "undelivered": undelivered}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
