"""Creating the disclosures topic with a chosen number of partitions."""

from __future__ import annotations

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from disclosure_ledger.kafka_security import connection_hint, kafka_python_config
from producers.errors import PublishError


def ensure_topic(bootstrap_servers: str, topic: str, partitions: int = 1) -> bool:
    """Create ``topic`` if absent; returns whether it was created."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, **kafka_python_config())
    except KafkaError as exc:
        hint = connection_hint(bootstrap_servers, exc)
        raise PublishError(
            f"cannot reach Kafka at {bootstrap_servers}: {exc}" + (f"; {hint}" if hint else "")
        ) from exc
    try:
        if topic in admin.list_topics():
            return False
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()
