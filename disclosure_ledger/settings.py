"""One settings object. Nothing else in the project reads the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import DEFAULT_TOPIC


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
    topic: str = DEFAULT_TOPIC
    # The Kafka client the consumer uses (docs/kafka-clients.md): auto = confluent-kafka
    # (librdkafka, the `librdkafka` extra) when it is installed, else kafka-python. Checked
    # by kafka_transport.resolve_client, whose error names this variable and the extra.
    kafka_client: str = "auto"
    # Where the local broker's jars, data and logs and the demo's outputs live (gitignored).
    state_dir: Path = Path(".local")
    broker_port: int = 19092
    controller_port: int = 19093
    broker_heap: str = "512m"
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
