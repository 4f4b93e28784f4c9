"""One consumer-group member in a process of its own, for the test that SIGKILLs it.

Usage: ``python -m tests.integration.group_member_process CLIENT BOOTSTRAP TOPIC GROUP
SESSION_TIMEOUT``. Joins GROUP on TOPIC and polls until killed; prints ``assigned P,P,..``
and ``revoked P,P,..`` as its listener is told (every partition starting at the earliest
offset), and logs to standard error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from kafka_transport import open_consumer, resolve_client


class Printing:
    def assigned(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        print("assigned", ",".join(map(str, partitions)), flush=True)
        return dict.fromkeys(partitions)

    def revoked(self, topic: str, partitions: list[int]) -> None:
        print("revoked", ",".join(map(str, partitions)), flush=True)


def main(argv: Sequence[str]) -> int:
    client, bootstrap, topic, group, session_timeout = argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)  # the test keeps it in a file
    consumer = open_consumer(resolve_client(client), bootstrap, max_batch=100, timeout=10.0)
    consumer.subscribe(topic, group, Printing(), session_timeout=float(session_timeout))
    while True:
        consumer.poll(0.2, 100, lambda *message: None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
