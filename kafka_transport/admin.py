"""The admin side of the interface (:class:`kafka_transport.AdminTransport`): list and
create topics, read topic configurations, with kafka-python's ``KafkaAdminClient`` or
confluent-kafka's ``AdminClient`` (librdkafka). Every client error crosses it as
:class:`TransportError`, the client's error chained (``connection_hint`` reads it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kafka_transport.errors import TransportError, TransportTimeoutError

if TYPE_CHECKING:
    from kafka_transport import AdminTransport, ClientName

__all__ = ["ConfluentAdmin", "KafkaPythonAdmin", "open_admin"]


def open_admin(
    client: ClientName,
    bootstrap_servers: str,
    *,
    timeout: float,
    connection: Mapping[str, Any] | None = None,
) -> AdminTransport:
    if client == "confluent-kafka":
        return ConfluentAdmin(bootstrap_servers, timeout=timeout, connection=connection)
    return KafkaPythonAdmin(bootstrap_servers, timeout=timeout, connection=connection)


class KafkaPythonAdmin:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout: float,
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        from kafka.admin import KafkaAdminClient

        from kafka_transport.kafka_python import translated

        ms = max(1, int(timeout * 1000))
        with translated():
            self._admin = KafkaAdminClient(
                bootstrap_servers=bootstrap_servers,
                request_timeout_ms=ms,
                bootstrap_timeout_ms=ms,
                **(connection or {}),
            )

    def topics(self, timeout: float) -> set[str]:
        from kafka_transport.kafka_python import translated

        with translated():
            return set(self._admin.list_topics())

    def create_topic(
        self, topic: str, partitions: int, replication_factor: int, timeout: float
    ) -> bool:
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        from kafka_transport.kafka_python import translated

        try:
            with translated():
                self._admin.create_topics(
                    [NewTopic(topic, partitions, replication_factor)],
                    timeout_ms=int(timeout * 1000),
                )
        except TransportError as exc:
            if isinstance(exc.__cause__, TopicAlreadyExistsError):
                return False
            raise
        return True

    def topic_configs(self, topics: Sequence[str], timeout: float) -> dict[str, dict[str, str]]:
        from kafka.admin import ConfigResource, ConfigResourceType

        from kafka_transport.kafka_python import translated

        with translated():
            answer = self._admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t, configs=None) for t in topics],
                config_filter="all",
            )
        described: Mapping[str, Mapping[str, Any]] = (answer or {}).get("topic", {})
        out: dict[str, dict[str, str]] = {}
        for topic in topics:
            entries = described.get(topic) or {}
            values: dict[str, str] = {}
            for name, entry in entries.items():
                found = entry.get("value") if isinstance(entry, Mapping) else entry
                if found is not None:
                    values[name] = str(found)
            out[topic] = values
        return out

    def close(self) -> None:
        self._admin.close()


class ConfluentAdmin:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout: float,
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        from kafka_transport.confluent import ErrorLog, _refused, handle_config, unreachable

        errors = ErrorLog()
        config = handle_config(
            bootstrap_servers, timeout=timeout, connection=connection, errors=errors
        )
        for producer_only in ("acks", "partitioner", "message.timeout.ms"):
            config.pop(producer_only, None)
        try:
            self._admin = AdminClient(config)
        except KafkaException as exc:
            raise _refused(exc) from exc
        try:
            self._admin.list_topics(timeout=timeout)  # connected, or an error
        except KafkaException as exc:
            self._admin.poll(0)  # serves the error callback: it may say why
            raise unreachable(exc, timeout, errors)  # noqa: B904 (chained by unreachable)

    def topics(self, timeout: float) -> set[str]:
        from confluent_kafka import KafkaException

        from kafka_transport.confluent import _error

        try:
            return set(self._admin.list_topics(timeout=timeout).topics)
        except KafkaException as exc:
            raise _error(exc) from exc

    def create_topic(
        self, topic: str, partitions: int, replication_factor: int, timeout: float
    ) -> bool:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

        from kafka_transport.confluent import _error

        futures = self._admin.create_topics(
            [NewTopic(topic, partitions, replication_factor)], request_timeout=timeout
        )
        try:
            futures[topic].result(timeout=timeout)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise _error(exc) from exc
        except TimeoutError as exc:
            raise TransportTimeoutError(
                f"KafkaTimeoutError: topic {topic} not created within {timeout:g} s"
            ) from exc
        return True

    def topic_configs(self, topics: Sequence[str], timeout: float) -> dict[str, dict[str, str]]:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

        from kafka_transport.confluent import _error

        resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics]
        futures = self._admin.describe_configs(resources, request_timeout=timeout)
        out: dict[str, dict[str, str]] = {}
        for resource, future in futures.items():
            try:
                entries = future.result(timeout=timeout)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() in (
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    KafkaError._UNKNOWN_TOPIC,
                ):
                    out[resource.name] = {}
                    continue
                raise _error(exc) from exc
            except TimeoutError as exc:
                raise TransportTimeoutError(
                    f"KafkaTimeoutError: no configuration of {resource.name} within {timeout:g} s"
                ) from exc
            out[resource.name] = {
                name: str(entry.value) for name, entry in entries.items() if entry.value is not None
            }
        return {t: out.get(t, {}) for t in topics}

    def close(self) -> None:
        """Nothing to release: librdkafka's handle goes with the object."""
