"""One settings object. Nothing else in the project reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import DEFAULT_TOPIC


def _upper(value: object) -> object:
    if isinstance(value, str):
        return value.strip().upper() or None  # an empty variable counts as unset
    return value


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _plaintext_if_blank(value: object) -> object:
    return "PLAINTEXT" if isinstance(value, str) and not value.strip() else value


# A file setting whose variable may be set to "" to mean "none".
OptionalFile = Annotated[Path | None, BeforeValidator(_blank_is_none)]


SecurityProtocol = Annotated[
    Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)
]
# OAUTHBEARER is accepted for librdkafka (its sasl.oauthbearer.* settings pass through
# there); kafka-python refuses it with a message naming the setting.
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class Settings(BaseSettings):
    """Connection and deployment settings, from ``DISCLOSURE_LEDGER_*`` variables.

    ``KAFKA_BOOTSTRAP_SERVERS`` is also read as is, so an existing cluster can be named
    the way every Kafka tool names it.
    """

    model_config = SettingsConfigDict(env_prefix="DISCLOSURE_LEDGER_", extra="ignore")

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "DISCLOSURE_LEDGER_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    # How clients connect (docs/kafka-security.md; mapped in disclosure_ledger/kafka_security.py):
    # security.protocol, TLS trust and mutual-TLS files, SASL mechanism and credentials.
    kafka_security_protocol: Annotated[SecurityProtocol, BeforeValidator(_plaintext_if_blank)] = (
        "PLAINTEXT"
    )
    kafka_ssl_ca_file: OptionalFile = None
    kafka_ssl_cert_file: OptionalFile = None
    kafka_ssl_key_file: OptionalFile = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_sasl_mechanism: Annotated[SaslMechanism | None, BeforeValidator(_upper)] = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: OptionalFile = None
    # librdkafka's sasl.oauthbearer.* settings as one JSON object, passed through to the
    # confluent-kafka client (parsed by kafka_security, so a malformed value is reported
    # without echoing it: the client secret is in it).
    kafka_sasl_oauthbearer: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = None
    topic: str = DEFAULT_TOPIC
    # The Kafka client the consumer uses (docs/kafka-clients.md): auto = confluent-kafka
    # (librdkafka, the `librdkafka` extra) when it is installed, else kafka-python. Checked
    # by kafka_transport.resolve_client, whose error names this variable and the extra.
    kafka_client: str = "auto"
    # Decode processes the consumer starts (consumers/decoding.py): decode and classify run
    # there, the ledger's own process sequences, hashes and appends. 0 (decode in-process)
    # by default: on the project's shared 2-core machine a worker gained nothing measurable
    # and cost ~55 MB (docs/performance.md, 2026-12-05); 1 where a core is free.
    ingest_workers: int = 0
    # The Kafka consumer group several ledger services join to split the topic's partitions
    # (docs/kafka-clients.md, "The consumer group"); unset: one consumer reads every
    # partition, in no group. Offsets are never committed to Kafka: the ledger holds them.
    consumer_group: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    # Seconds without a heartbeat after which the group drops a member and gives its
    # partitions to the others; the broker's group.min.session.timeout.ms (6 s by default)
    # and group.max.session.timeout.ms (30 min) bound it.
    group_session_timeout: float = Field(default=10.0, gt=0)
    # A DuckLake ledger (--ledger 'ducklake:postgres:<libpq connection string>',
    # docs/ducklake.md): where its Parquet files go when the lake is created (a directory or
    # an s3:// URL; DuckLake records it in the catalog), and the local path that names the
    # files kept beside it as if it were a ledger file (default STATE_DIR/ducklake/ledger).
    lake_data_path: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    lake_local_path: OptionalFile = None
    # Seconds between two compactions of a DuckLake ledger by `serve` (ledger/compaction.py:
    # inlined rows flushed, small files merged, through DuckLake's own functions); 0: never.
    lake_compact_every: float = Field(default=600.0, ge=0)
    # Where the local broker's jars, data and logs and the demo's outputs live (gitignored).
    state_dir: Path = Path(".local")
    broker_port: int = 19092
    controller_port: int = 19093
    broker_heap: str = "512m"
    # Opt-in: a second local-broker listener, SASL_SSL with SCRAM-SHA-512, on this port.
    broker_sasl_ssl_port: int | None = None
    # Secret that keys the subject-key lookup (see ledger/pseudonyms.py).
    subject_secret: SecretStr | None = None
    subject_secret_file: Path | None = None
    # Ed25519 key that signs checkpoints (see ledger/checkpoints.py): PEM or 64 hex digits,
    # in the variable itself or in the file it names. Never stored in the ledger.
    checkpoint_signing_key: SecretStr | None = None
    checkpoint_signing_key_file: Path | None = None
    # The matching public key, for `verify` when --public-key is not given.
    checkpoint_public_key_file: Path | None = None
    # A checkpoint every this many appended rows or seconds, whichever comes first.
    checkpoint_every_rows: int = Field(default=100_000, ge=1)
    checkpoint_every_seconds: float = Field(default=300.0, gt=0)
    # The log origin the C2SP checkpoint notes are signed under (a schema-less URL such as
    # example.com/disclosure-ledger); recorded in the ledger on first use, never changed.
    checkpoint_origin: str | None = None
    # Where each checkpoint's signed notes are written (default LEDGER.checkpoint-notes).
    checkpoint_notes_dir: Path | None = None
    # A second place, outside the operator's control, each checkpoint's notes are copied to
    # as they are made: a directory, a file:// URL or an object store (s3://, gs://, abfs://,
    # through pyarrow.fs). A failed copy is logged, counted and retried with the next one.
    checkpoint_copy_to: str | None = None
    # The ledger service the CLI's read commands and erase-subject go through when no
    # --ledger is given (`--server`), and the API token they send (`--token`).
    server: str | None = None
    token: SecretStr | None = None
    # Days a quarantined message whose subject cannot be known (sealed under the deployment
    # key) is kept before its bytes are purged (ledger/quarantine.py, docs/erasure-reach.md).
    quarantine_retention_days: int = Field(default=30, ge=1)
    # The dead-letter topic `consume`/`serve` copy quarantined messages to, if any: also what
    # `erase-subject` asks the broker about (its retention) when no --dead-letter-topic is given.
    dead_letter_topic: str | None = None


def load_settings() -> Settings:
    return Settings()
