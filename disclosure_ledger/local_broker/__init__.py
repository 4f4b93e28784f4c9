"""A real Apache Kafka broker on this machine, for the demo, the tests and CI.

One node in KRaft mode, broker and controller combined, listening on 127.0.0.1 only. Its
jars come from Maven Central: ``broker/pom.xml`` names them, and :meth:`LocalBroker.fetch`
has Maven copy them into ``<state_dir>/kafka/libs``. Everything the broker writes lives
under ``<state_dir>/kafka/``::

    libs/               the classpath (plus .pom.sha256, the stamp of the pom it came from)
    data/               the KRaft metadata log and the topics' logs
    logs/server.log     the broker's own log (log4j2, broker/log4j2.properties)
    logs/broker.out     the JVM's stdout and stderr (crashes, JVM errors)
    server.properties   written on every start from this object's settings
    broker.pid          the pid of the running broker

The broker is a detached process: it outlives the Python process that started it, and a
later :meth:`LocalBroker.start` on the same state dir finds it and returns at once.

One module per concern::

    node          LocalBroker: settings, server.properties, start, status, stop
    jars          the classpath, copied by Maven from broker/pom.xml
    processes     the JVM's process through psutil: alive, signals, who holds a port
    probe         whether a broker answers (ApiVersions, then an admin client)
    polling       waiting with a deadline (tenacity)
    state_files   the lock, atomic writes, log tails

Importing this package does nothing; it reads no environment variables (settings are
passed in). kafka-python is imported only when a broker is asked whether it answers.
"""

from disclosure_ledger.local_broker.jars import EXISTING_CLUSTER_HINT, JAVA_HINT, MAVEN_HINT
from disclosure_ledger.local_broker.node import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_HEAP,
    DEFAULT_PORT,
    BrokerStatus,
    LocalBroker,
    default_project_root,
)
from disclosure_ledger.local_broker.processes import HOST

__all__ = [
    "DEFAULT_CONTROLLER_PORT",
    "DEFAULT_HEAP",
    "DEFAULT_PORT",
    "EXISTING_CLUSTER_HINT",
    "HOST",
    "JAVA_HINT",
    "MAVEN_HINT",
    "BrokerStatus",
    "LocalBroker",
    "default_project_root",
]
