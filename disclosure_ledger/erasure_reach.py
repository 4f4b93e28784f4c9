"""What an erasure cannot reach, and until when: the statement ``erase-subject`` makes.

Destroying a subject's key reaches every ledger row, context value and quarantined message
sealed under it (:mod:`ledger.erasure`, :mod:`ledger.quarantine`). Three places hold data
about the subject that the key does not seal, or that the system does not own:

* **the source topic**: Kafka keeps each raw event (key = the subject id, in clear) for
  the topic's retention. The broker is asked (``retention.ms``, ``retention.bytes``,
  ``cleanup.policy``); the newest of the subject's ledger rows (its ``ingested_at``, read
  before the key is destroyed) plus ``retention.ms`` is the earliest time the last of
  them can be gone. Kafka deletes whole log segments once their newest message is past the
  retention, so possibly later (up to ``segment.ms`` more). ``retention.ms`` -1 keeps them
  until the topic is deleted; ``cleanup.policy`` ``compact`` keeps the latest message per
  key (the subject id) until a newer one or a tombstone for that key replaces it.
* **the dead-letter topic**, if one is configured: its copies are sealed as the quarantine
  rows are (:mod:`consumers.consumer`), so those under the erased key are unreadable from
  now; those under the deployment key stay readable (to whoever holds the subject secret)
  until the topic's retention drops them.
* **the quarantine under the deployment key**: messages whose subject could not be known,
  which may be about anyone, this subject included, until their purge date (quarantined
  at + the quarantine retention).

If the broker cannot be asked (none configured, or unreachable), the statement says so and
what to check, rather than guess. :func:`outside_reach` computes it; its
:meth:`OutsideReach.to_json` is what ``POST /api/v1/erasures`` returns and the request log
keeps with the erasure (:meth:`reports.request_log.RequestLog.record_erasure_statement`);
:meth:`OutsideReach.lines` is what ``erase-subject`` prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from ledger.quarantine import deployment_sealed, quarantine_columns
from ledger.store import Ledger

log = logging.getLogger(__name__)

BROKER_TIMEOUT_MS = 5_000
RETENTION_CONFIGS = ("retention.ms", "retention.bytes", "cleanup.policy", "segment.ms")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class TopicRetention:
    """A topic's retention as the broker states it; ``problem`` if it could not be asked."""

    topic: str
    retention_ms: int | None = None  # -1: no time limit
    retention_bytes: int | None = None  # -1: no size limit
    cleanup_policy: str | None = None
    segment_ms: int | None = None
    problem: str | None = None

    @property
    def asked(self) -> bool:
        return self.problem is None

    @property
    def forever(self) -> bool:
        return self.retention_ms is not None and self.retention_ms < 0

    @property
    def compacted(self) -> bool:
        return self.cleanup_policy is not None and "compact" in self.cleanup_policy

    def kept_until(self, written_at: datetime | None) -> datetime | None:
        """The earliest time a message written at ``written_at`` can be gone by time."""
        if written_at is None or self.retention_ms is None or self.forever:
            return None
        return written_at + timedelta(milliseconds=self.retention_ms)

    def to_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "asked": self.asked,
            "retention_ms": self.retention_ms,
            "retention_bytes": self.retention_bytes,
            "cleanup_policy": self.cleanup_policy,
            "segment_ms": self.segment_ms,
            "problem": self.problem,
        }

    def describe(self) -> str:
        if self.problem is not None:
            return f"the broker could not be asked ({self.problem})"
        parts = []
        if self.forever:
            parts.append("retention.ms -1 (no time limit: kept until the topic is deleted)")
        elif self.retention_ms is not None:
            parts.append(f"retention.ms {self.retention_ms} ({_duration(self.retention_ms)})")
        if self.retention_bytes is not None and self.retention_bytes >= 0:
            parts.append(f"retention.bytes {self.retention_bytes} per partition")
        if self.cleanup_policy:
            parts.append(f"cleanup.policy {self.cleanup_policy}")
        return ", ".join(parts) or "no retention settings stated"


def _duration(ms: int) -> str:
    days, rest = divmod(ms, 86_400_000)
    hours = rest / 3_600_000
    if days and not rest:
        return f"{days} day(s)"
    if days:
        return f"{days} day(s) {hours:.1f} hour(s)"
    return f"{hours:.2f} hour(s)"


Describe = Callable[[str | None, Sequence[str]], dict[str, TopicRetention]]


def describe_topics(
    bootstrap_servers: str | None, topics: Sequence[str]
) -> dict[str, TopicRetention]:
    """Each topic's retention, from the broker (``describe_configs`` through
    ``kafka_transport``'s admin, with the ``DISCLOSURE_LEDGER_KAFKA_CLIENT`` client)."""
    if not topics:
        return {}
    if not bootstrap_servers:
        problem = (
            "no broker configured: set KAFKA_BOOTSTRAP_SERVERS (or give --bootstrap-servers) "
            "and ask again, or read retention.ms of the topic from the cluster's configuration"
        )
        return {t: TopicRetention(t, problem=problem) for t in topics}
    from disclosure_ledger.errors import KafkaSecurityError
    from disclosure_ledger.kafka_security import connection_config, connection_hint
    from disclosure_ledger.settings import load_settings
    from kafka_transport import TransportError, client_for, hint_source, open_admin

    timeout = BROKER_TIMEOUT_MS / 1000
    try:
        client = client_for(load_settings().kafka_client)
        connection = connection_config(client)
    except (KafkaSecurityError, TransportError) as exc:  # the settings, not the broker
        return {t: TopicRetention(t, problem=str(exc)) for t in topics}
    try:
        admin = open_admin(client, bootstrap_servers, timeout=timeout, connection=connection)
    except TransportError as exc:
        hint = connection_hint(bootstrap_servers, hint_source(exc))
        problem = (
            f"broker {bootstrap_servers} unreachable: {exc}; "
            + (
                hint + "; then ask again, or "
                if hint
                else "check that it runs and is reachable, then "
            )
            + "read retention.ms of the topic with kafka-configs.sh --describe"
        )
        return {t: TopicRetention(t, problem=problem) for t in topics}
    try:
        described = admin.topic_configs(topics, timeout)
    except TransportError as exc:
        problem = f"broker {bootstrap_servers} did not describe the topic: {exc}"
        return {t: TopicRetention(t, problem=problem) for t in topics}
    finally:
        admin.close()
    return {t: _retention(t, described.get(t) or {}, bootstrap_servers) for t in topics}


def _retention(topic: str, configs: Mapping[str, Any], bootstrap_servers: str) -> TopicRetention:
    if not configs:
        return TopicRetention(
            topic,
            problem=f"broker {bootstrap_servers} does not know topic {topic}: was it deleted, "
            "or is this another cluster?",
        )

    def value(name: str) -> str | None:
        entry = configs.get(name)
        found = entry.get("value") if isinstance(entry, Mapping) else entry
        return None if found is None else str(found)

    def number(name: str) -> int | None:
        text = value(name)
        try:
            return None if text is None else int(text)
        except ValueError:
            return None

    return TopicRetention(
        topic,
        retention_ms=number("retention.ms"),
        retention_bytes=number("retention.bytes"),
        cleanup_policy=value("cleanup.policy"),
        segment_ms=number("segment.ms"),
    )


@dataclass(frozen=True)
class SubjectFootprint:
    """What the statement needs of the subject, read before the key is destroyed: the
    newest ``ingested_at`` of its rows per source topic, and the quarantined messages
    sealed under its key. Holds neither its id nor its pseudonym."""

    newest_ingested: Mapping[str, datetime]
    quarantined_under_key: int
    newest_quarantined_under_key: datetime | None


def subject_footprint(
    ledger: Ledger, pseudonym: str | None, key_id: str | None
) -> SubjectFootprint:
    """Read the subject's footprint (call it before :func:`ledger.erasure.erase_subject`)."""
    newest: dict[str, datetime] = {}
    if pseudonym is not None:
        newest = {
            str(topic): at
            for topic, at in ledger.con.execute(
                "SELECT topic, max(ingested_at) FROM disclosures WHERE subject_pseudonym = ? "
                "GROUP BY topic ORDER BY topic",
                [pseudonym],
            ).fetchall()
        }
    count, latest = 0, None
    if key_id is not None and "sealed_with" in quarantine_columns(ledger.con):
        count, latest = ledger.con.execute(
            "SELECT count(*), max(quarantined_at) FROM quarantine WHERE sealed_with = ?",
            [key_id],
        ).fetchone() or (0, None)
    return SubjectFootprint(newest, int(count), latest)


@dataclass(frozen=True)
class SourceTopicReach:
    topic: str
    newest_ingested_at: datetime | None  # the subject's newest row from this topic
    retention: TopicRetention

    @property
    def until(self) -> datetime | None:
        return self.retention.kept_until(self.newest_ingested_at)

    def to_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "newest_ingested_at": _iso(self.newest_ingested_at),
            "retention": self.retention.to_json(),
            "kept_at_least_until": _iso(self.until),
        }

    def line(self, now: datetime) -> str:
        r = self.retention
        head = f"source topic {self.topic}: raw events (Kafka key = the subject id, in clear)"
        if self.newest_ingested_at is None:
            head += " — no row of this subject was ingested from it"
        else:
            head += f", the subject's newest ingested {_iso(self.newest_ingested_at)}"
        if not r.asked:
            return f"{head}; {r.describe()}"
        if r.compacted:
            return (
                f"{head}; {r.describe()}: compaction keeps the latest message per key (the "
                "subject id) until a newer one or a tombstone for that key replaces it"
            )
        if r.forever:
            return f"{head}; {r.describe()}"
        if self.until is None:
            return f"{head}; {r.describe()}: each message stays for that long after it was written"
        segment = (
            f", up to segment.ms {r.segment_ms} ({_duration(r.segment_ms)}) more"
            if r.segment_ms
            else ""
        )
        past = (
            " (already past: they may be gone, unless their segment has not been deleted yet)"
            if self.until <= now
            else ""
        )
        return (
            f"{head}; {r.describe()}: they stay in the topic at least until "
            f"{_iso(self.until)}{past}, possibly later (Kafka deletes whole segments once their "
            f"newest message is past the retention{segment})"
        )


@dataclass(frozen=True)
class DeadLetterReach:
    retention: TopicRetention
    under_erased_key: int  # copies sealed under the erased key: unreadable from now
    newest_under_erased_key: datetime | None
    under_deployment_key: int  # copies of messages of unknown subject: readable
    newest_under_deployment_key: datetime | None

    def to_json(self) -> dict[str, object]:
        r = self.retention
        return {
            "topic": r.topic,
            "retention": r.to_json(),
            "sealed_under_erased_key": self.under_erased_key,
            "sealed_under_erased_key_kept_at_least_until": _iso(
                r.kept_until(self.newest_under_erased_key)
            ),
            "sealed_under_deployment_key": self.under_deployment_key,
            "sealed_under_deployment_key_kept_at_least_until": _iso(
                r.kept_until(self.newest_under_deployment_key)
            ),
        }

    def line(self) -> str:
        r = self.retention
        parts = [
            f"dead-letter topic {r.topic} ({r.describe()}): copies of quarantined messages, "
            "sealed as the quarantine rows are (if the consumer managed to send them)"
        ]
        if self.under_erased_key:
            until = r.kept_until(self.newest_under_erased_key)
            parts.append(
                f"{self.under_erased_key} sealed under the erased key, unreadable from now"
                + (f", kept at least until {_iso(until)}" if until else "")
            )
        if self.under_deployment_key:
            until = r.kept_until(self.newest_under_deployment_key)
            parts.append(
                f"{self.under_deployment_key} of unknown subject quarantined within the topic's "
                "retention, sealed under the deployment key (readable with the subject secret; "
                "may be about anyone)"
                + (
                    f", kept at least until {_iso(until)}"
                    if until
                    else ", kept until the topic's retention drops them"
                )
            )
        if not self.under_erased_key and not self.under_deployment_key:
            parts.append("no copy about this subject or of unknown subject is within its retention")
        return "; ".join(parts)


@dataclass(frozen=True)
class QuarantineReach:
    under_erased_key: int  # now unreadable by anyone
    under_deployment_key: int
    purge_by: datetime | None
    retention_days: int

    def to_json(self) -> dict[str, object]:
        return {
            "sealed_under_erased_key": self.under_erased_key,
            "sealed_under_deployment_key": self.under_deployment_key,
            "deployment_key_purged_by": _iso(self.purge_by),
            "retention_days": self.retention_days,
        }

    def lines(self, now: datetime) -> list[str]:
        found = []
        if self.under_erased_key:
            found.append(
                f"quarantine: {self.under_erased_key} message(s) about this subject were sealed "
                "under the erased key; they are kept (their offsets stay accounted for) but no "
                "one can open them any more"
            )
        if self.under_deployment_key:
            found.append(
                f"quarantine: {self.under_deployment_key} message(s) of unknown subject, sealed "
                "under the deployment key, may be about anyone (this subject included); they "
                f"are purged {self.retention_days} days after quarantine, the last by "
                f"{_iso(self.purge_by)}"
                + (
                    " (that date is past: the next purge deletes them, hourly in "
                    "a running consumer or service, or `disclosure-ledger quarantine purge`)"
                    if self.purge_by is not None and self.purge_by <= now
                    else ""
                )
            )
        return found


@dataclass(frozen=True)
class OutsideReach:
    """What remains outside an erasure's reach, and until when."""

    stated_at: datetime
    source_topics: tuple[SourceTopicReach, ...]
    dead_letters: DeadLetterReach | None
    quarantine: QuarantineReach

    def to_json(self) -> dict[str, object]:
        return {
            "stated_at": _iso(self.stated_at),
            "source_topics": [s.to_json() for s in self.source_topics],
            "dead_letter_topic": None if self.dead_letters is None else self.dead_letters.to_json(),
            "quarantine": self.quarantine.to_json(),
            "lines": self.lines(),
        }

    def lines(self) -> list[str]:
        found = ["outside this erasure's reach:"]
        found += [f"- {s.line(self.stated_at)}" for s in self.source_topics]
        if not self.source_topics:
            found.append("- no source topic has been ingested into this ledger")
        if self.dead_letters is not None:
            found.append(f"- {self.dead_letters.line()}")
        else:
            found.append("- no dead-letter topic is configured: no copies were sent")
        found += [f"- {line}" for line in self.quarantine.lines(self.stated_at)]
        found.append(
            "- backups taken before now still hold the erased key: a restore re-applies this "
            "erasure from the ledger's erasure journal"
        )
        return found


def outside_reach(
    ledger: Ledger,
    footprint: SubjectFootprint,
    *,
    bootstrap_servers: str | None,
    dead_letter_topic: str | None,
    retention_days: int,
    now: datetime | None = None,
    describe: Describe = describe_topics,
) -> OutsideReach:
    """The statement of what the erasure whose ``footprint`` is given cannot reach.

    The source topics are those the ledger has ingested (table ``offsets``): the subject's
    raw events may sit in any of them, even one no row of theirs came from (a message
    quarantined, or not yet consumed)."""
    stated_at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    try:
        ingested = [
            str(r[0])
            for r in ledger.con.execute("SELECT DISTINCT topic FROM offsets ORDER BY 1").fetchall()
        ]
    except duckdb.Error:
        ingested = []
    topics = sorted(set(ingested) | set(footprint.newest_ingested))
    asked = describe(
        bootstrap_servers, [*topics, *([dead_letter_topic] if dead_letter_topic else [])]
    )
    sources = tuple(SourceTopicReach(t, footprint.newest_ingested.get(t), asked[t]) for t in topics)
    held = deployment_sealed(ledger, retention_days=retention_days)
    dead_letters = None
    if dead_letter_topic:
        retention = asked[dead_letter_topic]
        copies, newest = _deployment_copies(ledger, retention, stated_at)
        dead_letters = DeadLetterReach(
            retention,
            footprint.quarantined_under_key,
            footprint.newest_quarantined_under_key,
            copies,
            newest,
        )
    return OutsideReach(
        stated_at,
        sources,
        dead_letters,
        QuarantineReach(footprint.quarantined_under_key, held.count, held.purge_by, retention_days),
    )


def _deployment_copies(
    ledger: Ledger, retention: TopicRetention, now: datetime
) -> tuple[int, datetime | None]:
    """Messages of unknown subject whose dead-letter copies may still be in the topic: all
    quarantined within its retention (purged from the quarantine or not), or all of them
    if the retention is unlimited or unknown."""
    where = ["sealed_with IS NULL"] if "sealed_with" in quarantine_columns(ledger.con) else []
    params: list[object] = []
    if retention.retention_ms is not None and not retention.forever:
        where.append("quarantined_at > ?")
        params.append(now - timedelta(milliseconds=retention.retention_ms))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    count, newest = ledger.con.execute(
        f"SELECT count(*), max(quarantined_at) FROM quarantine{clause}", params
    ).fetchone() or (0, None)
    return int(count), newest
