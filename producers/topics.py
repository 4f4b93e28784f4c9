"""Creating the disclosures topic with a chosen number of partitions, through the admin
side of ``kafka_transport`` with the client ``DISCLOSURE_LEDGER_KAFKA_CLIENT`` chooses."""

from __future__ import annotations

from disclosure_ledger.errors import KafkaSecurityError
from disclosure_ledger.kafka_security import connection_config, connection_hint
from disclosure_ledger.settings import load_settings
from kafka_transport import TransportError, client_for, hint_source, open_admin
from producers.errors import PublishError

TIMEOUT = 30.0


def ensure_topic(
    bootstrap_servers: str, topic: str, partitions: int = 1, *, client: str | None = None
) -> bool:
    """Create ``topic`` if absent; returns whether it was created. ``client``: a Kafka
    client name (default: the ``DISCLOSURE_LEDGER_KAFKA_CLIENT`` setting)."""
    try:
        chosen = client_for(client or load_settings().kafka_client)
        connection = connection_config(chosen)
    except (TransportError, KafkaSecurityError) as exc:  # the settings, not the broker
        raise PublishError(f"{exc}. No topic was created") from exc
    try:
        admin = open_admin(chosen, bootstrap_servers, timeout=TIMEOUT, connection=connection)
    except TransportError as exc:
        hint = connection_hint(bootstrap_servers, hint_source(exc))
        raise PublishError(
            f"cannot reach Kafka at {bootstrap_servers}: {exc}" + (f"; {hint}" if hint else "")
        ) from exc
    try:
        if topic in admin.topics(TIMEOUT):
            return False
        return admin.create_topic(topic, partitions, 1, TIMEOUT)
    except TransportError as exc:
        raise PublishError(f"topic {topic} was not created at {bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()
