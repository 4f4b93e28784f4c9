"""The wire contract: the Avro schemas, their single-object encoding and the event model."""

DEFAULT_TOPIC = "privacy.disclosures.v1"
