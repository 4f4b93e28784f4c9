"""The local broker itself: its settings, its files, and its JVM's start, status and stop.

See :mod:`disclosure_ledger.local_broker` for the layout of its state dir.
"""

from __future__ import annotations

import base64
import contextlib
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from disclosure_ledger.errors import BrokerError
from disclosure_ledger.local_broker.jars import (
    EXISTING_CLUSTER_HINT,
    JAVA_HINT,
    MAVEN_HINT,
    install_jars,
    jars_current,
    pom_digest,
    require_tool,
)
from disclosure_ledger.local_broker.polling import poll_until
from disclosure_ledger.local_broker.probe import kafka_answers, list_topics
from disclosure_ledger.local_broker.processes import (
    HOST,
    command_line,
    describe_listener,
    port_free,
    process_alive,
    processes_running,
    run_to_completion,
    send_signal,
    wait_exit,
)
from disclosure_ledger.local_broker.secure_listener import SCRAM_USER, SecureListener
from disclosure_ledger.local_broker.state_files import (
    as_text,
    atomic_write,
    file_lock,
    read_tail,
    tail_text,
)

__all__ = [
    "DEFAULT_CONTROLLER_PORT",
    "DEFAULT_HEAP",
    "DEFAULT_PORT",
    "BrokerStatus",
    "LocalBroker",
    "default_project_root",
]

DEFAULT_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
DEFAULT_HEAP = "512m"

_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_CONFIG_TOOL = "kafka.admin.ConfigCommand"
_HEAP_RE = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")
_FORMAT_TIMEOUT_S = 120.0
_PROBE_TIMEOUT_S = 2.0
_POLL_INTERVAL_S = 0.2
_KILL_WAIT_S = 10.0
# A broker that just exited may hold its sockets for a moment longer.
_PORT_GRACE_S = 2.0


@dataclass(frozen=True)
class BrokerStatus:
    """What :meth:`LocalBroker.status` found.

    ``running`` is true only when the broker's process is alive *and* it answers a
    metadata request; ``pid`` is set whenever the process is alive.
    """

    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_file: Path


def default_project_root() -> Path:
    """The repository root: the parent of the ``disclosure_ledger`` package directory."""
    return Path(__file__).resolve().parents[2]


class LocalBroker:
    """Fetch, start, inspect and stop the local single-node Kafka broker.

    Args:
        state_dir: the project's state directory (gitignored); the broker lives in
            ``state_dir/kafka``. Default: ``<project_root>/.local``. A relative path is
            taken relative to the current directory.
        port: the client (PLAINTEXT) listener's port on 127.0.0.1.
        controller_port: the KRaft controller listener's port on 127.0.0.1.
        heap: the JVM heap (``-Xms`` and ``-Xmx``), e.g. ``"512m"`` or ``"1g"``.
        project_root: where ``broker/pom.xml`` and ``broker/log4j2.properties`` live.
            Default: the repository root (parent of the ``disclosure_ledger`` package).
        libs_dir: where the jars go. Default: ``state_dir/kafka/libs``. Tests pass the
            shared broker's libs here to reuse its jars with their own state dir.
        secure_port: if given, a second listener on 127.0.0.1, SASL_SSL with SCRAM-SHA-512
            (see :mod:`~disclosure_ledger.local_broker.secure_listener`); ``self.secure``
            then names its CA file, user and password file.
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        port: int = DEFAULT_PORT,
        controller_port: int = DEFAULT_CONTROLLER_PORT,
        heap: str = DEFAULT_HEAP,
        project_root: Path | None = None,
        libs_dir: Path | None = None,
        secure_port: int | None = None,
    ) -> None:
        ports = {"port": port, "controller_port": controller_port}
        if secure_port is not None:
            ports["secure_port"] = secure_port
        for name, value in ports.items():
            if not 1 <= value <= 65535:
                raise BrokerError(f"{name} must be between 1 and 65535, not {value}")
        if len(set(ports.values())) < len(ports):
            raise BrokerError(f"the broker's ports must differ, not {ports}")
        if not _HEAP_RE.match(heap):
            raise BrokerError(f"heap must look like 512m or 1g, not {heap!r}")
        self.project_root = (project_root or default_project_root()).resolve()
        self.state_dir = (state_dir or self.project_root / ".local").resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.kafka_dir = self.state_dir / "kafka"
        self.libs_dir = (libs_dir or self.kafka_dir / "libs").resolve()
        self.data_dir = self.kafka_dir / "data"
        self.logs_dir = self.kafka_dir / "logs"
        self.properties_file = self.kafka_dir / "server.properties"
        self.pid_file = self.kafka_dir / "broker.pid"
        self.log_file = self.logs_dir / "server.log"
        self.stdout_file = self.logs_dir / "broker.out"
        self.pom_file = self.project_root / "broker" / "pom.xml"
        self.log4j_config = self.project_root / "broker" / "log4j2.properties"
        self.secure = (
            None if secure_port is None else SecureListener(secure_port, self.kafka_dir / "secure")
        )

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients use: ``127.0.0.1:<port>``."""
        return f"{HOST}:{self.port}"

    def __repr__(self) -> str:
        return f"LocalBroker(state_dir={self.state_dir}, bootstrap={self.bootstrap})"

    # ------------------------------------------------------------------ fetch

    def fetch(self) -> Path:
        """Have Maven copy the broker's jars into ``libs_dir``; return ``libs_dir``.

        Skipped when the jars are there and were copied for the current ``broker/pom.xml``
        (its sha256 is kept in ``libs_dir/.pom.sha256``). The new jars are copied beside
        the old ones and swapped in whole, so an interrupted fetch leaves no half set.
        """
        if not self.pom_file.is_file():
            raise BrokerError(
                f"{self.pom_file} not found: project_root={self.project_root} is not the "
                "disclosure-ledger repository (it holds broker/pom.xml)"
            )
        digest = pom_digest(self.pom_file)
        self.libs_dir.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.libs_dir.with_name(f".{self.libs_dir.name}.lock")):
            if jars_current(self.libs_dir, digest):
                return self.libs_dir
            mvn = require_tool("mvn", MAVEN_HINT)
            require_tool("java", JAVA_HINT)
            if self.libs_dir == self.kafka_dir / "libs" and self._live_pid() is not None:
                raise BrokerError(
                    f"broker/pom.xml changed while the broker in {self.kafka_dir} runs on "
                    "the jars of the old one; stop it first, then fetch or start again"
                )
            install_jars(mvn, self.pom_file, self.libs_dir, digest)
        return self.libs_dir

    # ------------------------------------------------------------------ start

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker unless it runs already; return its bootstrap address.

        Fetches the jars if needed, writes ``server.properties``, formats the storage on
        first use, launches the JVM detached and waits until a kafka-python admin client
        lists the topics. Raises :class:`BrokerError` (with the tail of the broker's log)
        when the broker exits during startup or does not answer within ``timeout``
        seconds, and when a port is held by something that is not this broker.
        """
        deadline = time.monotonic() + timeout
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.kafka_dir / ".broker.lock"):
            pid = self._live_pid()
            if pid is not None:
                self._wait_until_ready(pid, deadline, launched=False)
                return self.bootstrap
            self.pid_file.unlink(missing_ok=True)
            libs = self.fetch()
            java = require_tool("java", JAVA_HINT)
            if not self.log4j_config.is_file():
                raise BrokerError(f"{self.log4j_config} not found (it ships with the repo)")
            self._check_ports_free()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            if self.secure is not None:
                self.secure.prepare()
            atomic_write(self.properties_file, self._server_properties())
            if not (self.data_dir / "meta.properties").exists():
                self._format_storage(java, libs)
            pid = self._launch(java, libs)
            self._wait_until_ready(pid, deadline, launched=True)
            if self.secure is not None:
                if not self.secure.credentials_applied():
                    self._add_scram_credentials(java, libs)
                self._wait_until_secure_ready(deadline)
        return self.bootstrap

    def _server_properties(self) -> str:
        listeners = [f"PLAINTEXT://{HOST}:{self.port}"]
        advertised = list(listeners)
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if self.secure is not None:
            listeners.append(f"SASL_SSL://{HOST}:{self.secure.port}")
            advertised.append(f"SASL_SSL://{HOST}:{self.secure.port}")
            protocols += ",SASL_SSL:SASL_SSL"
        listeners.append(f"CONTROLLER://{HOST}:{self.controller_port}")
        lines = [
            "# Written by disclosure_ledger/local_broker.py on every start; edits are lost.",
            "process.roles=broker,controller",
            "node.id=1",
            # Static voters: the voter set is read from here, not stored in the metadata
            # log, so a later start with another controller port still finds itself.
            f"controller.quorum.voters=1@{HOST}:{self.controller_port}",
            f"listeners={','.join(listeners)}",
            f"advertised.listeners={','.join(advertised)}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listener.security.protocol.map={protocols}",
            f"log.dirs={self.data_dir}",
            "num.partitions=1",
            "default.replication.factor=1",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "share.coordinator.state.topic.num.partitions=1",
            "group.initial.rebalance.delay.ms=0",
            # After a crash (kill()), the restarted broker may register again only once
            # the controller has fenced its old incarnation: 9 s by default, 4 s here.
            "broker.heartbeat.interval.ms=1000",
            "broker.session.timeout.ms=4000",
            *(self.secure.server_properties() if self.secure is not None else []),
        ]
        return "\n".join(lines) + "\n"

    def _java_logging_options(self) -> list[str]:
        return [
            f"-Dkafka.logs.dir={self.logs_dir}",
            f"-Dlog4j2.configurationFile={self.log4j_config.as_uri()}",
        ]

    def _format_storage(self, java: str, libs: Path) -> None:
        command = [
            java,
            "-Xmx256m",
            *self._java_logging_options(),
            "-cp",
            f"{libs}/*",
            _STORAGE_TOOL,
            "format",
            "--cluster-id",
            _random_cluster_id(),
            "--config",
            str(self.properties_file),
            "--ignore-formatted",
        ]
        if self.secure is not None:  # KIP-900: SCRAM users in the bootstrap metadata
            command += ["--add-scram", self.secure.scram_argument()]
        try:
            result = run_to_completion(command, cwd=self.kafka_dir, timeout=_FORMAT_TIMEOUT_S)
        except OSError as exc:
            raise BrokerError(f"could not run {java} to format {self.data_dir}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(
                f"formatting {self.data_dir} did not finish within {_FORMAT_TIMEOUT_S:.0f} s:\n"
                + tail_text(as_text(exc.output))
            ) from exc
        if result.returncode != 0:
            raise BrokerError(
                f"formatting the broker's storage in {self.data_dir} failed "
                f"(exit {result.returncode}):\n{tail_text(result.stdout)}"
                + _java_version_hint(result.stdout)
            )
        if self.secure is not None:
            self.secure.mark_applied()

    def _add_scram_credentials(self, java: str, libs: Path) -> None:
        """kafka-configs --alter: the SCRAM user of a storage formatted without it."""
        assert self.secure is not None
        command = [
            java,
            "-Xmx256m",
            *self._java_logging_options(),
            "-cp",
            f"{libs}/*",
            _CONFIG_TOOL,
            "--bootstrap-server",
            self.bootstrap,
            "--alter",
            "--add-config",
            self.secure.alter_config_argument(),
            "--entity-type",
            "users",
            "--entity-name",
            SCRAM_USER,
        ]
        try:
            result = run_to_completion(command, cwd=self.kafka_dir, timeout=_FORMAT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerError(f"could not add the SCRAM user {SCRAM_USER}: {exc}") from exc
        if result.returncode != 0:
            raise BrokerError(
                f"adding the SCRAM user {SCRAM_USER} (kafka-configs --alter) failed "
                f"(exit {result.returncode}):\n{tail_text(result.stdout)}"
            )
        self.secure.mark_applied()

    def _launch(self, java: str, libs: Path) -> int:
        command = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            *self._java_logging_options(),
            "-cp",
            f"{libs}/*",
            _MAIN_CLASS,
            str(self.properties_file),
        ]
        with self.stdout_file.open("a", encoding="utf-8") as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {' '.join(command)}\n")
        # A shell starts the JVM in the background and exits at once, so the broker is
        # not our child: it outlives us, and no Popen object is left to reap it.
        launcher = '"$@" </dev/null >>"$0" 2>&1 & echo $!'
        try:
            result = subprocess.run(
                ["/bin/sh", "-c", launcher, str(self.stdout_file), *command],
                cwd=self.kafka_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                start_new_session=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerError(f"could not launch the broker's JVM: {exc}") from exc
        try:
            pid = int(result.stdout.strip())
        except ValueError:
            raise BrokerError(
                f"could not launch the broker's JVM: {result.stderr.strip() or result.stdout}"
            ) from None
        atomic_write(self.pid_file, f"{pid}\n")
        return pid

    def _wait_until_ready(self, pid: int, deadline: float, *, launched: bool) -> None:
        def ready() -> bool:
            if not process_alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) exited before it answered on "
                    f"{self.bootstrap}.\n{self._log_tails()}"
                )
            remaining = deadline - time.monotonic()
            return self._answers(min(_PROBE_TIMEOUT_S, max(remaining, 0.5)))

        if poll_until(ready, deadline=deadline, interval=_POLL_INTERVAL_S):
            return
        tails = self._log_tails()
        if launched:
            self._terminate(pid, timeout=10.0)
            self.pid_file.unlink(missing_ok=True)
            raise BrokerError(
                f"the Kafka broker (pid {pid}) did not answer on {self.bootstrap} in time; "
                f"it was stopped.\n{tails}"
            )
        raise BrokerError(
            f"the Kafka broker (pid {pid}) of {self.kafka_dir} runs but does not answer on "
            f"{self.bootstrap}; stop it and start it again.\n{tails}"
        )

    def _wait_until_secure_ready(self, deadline: float) -> None:
        """Until a SCRAM client lists the topics over TLS (new credentials take a moment)."""
        secure = self.secure
        assert secure is not None
        security = secure.client_security()
        errors: list[BaseException] = []

        def ready() -> bool:
            remaining = deadline - time.monotonic()
            try:
                list_topics(secure.bootstrap, min(5.0, max(remaining, 1.0)), security)
            except Exception as exc:
                errors[:] = [exc]
                return False
            return True

        if not poll_until(ready, deadline=deadline, interval=_POLL_INTERVAL_S):
            raise BrokerError(
                f"the broker's SASL_SSL listener {secure.bootstrap} did not accept the "
                f"SCRAM user {SCRAM_USER} in time (last error: {errors[-1] if errors else '?'}"
                f"); the PLAINTEXT listener {self.bootstrap} runs.\n{self._log_tails()}"
            )

    def _check_ports_free(self) -> None:
        ports = [("client", self.port), ("controller", self.controller_port)]
        if self.secure is not None:
            ports.append(("SASL_SSL", self.secure.port))
        for name, port in ports:
            grace = time.monotonic() + _PORT_GRACE_S
            if poll_until(partial(port_free, port), deadline=grace, interval=0.1):
                continue
            holder = describe_listener(port)
            kafka = " A Kafka broker answers there." if kafka_answers(port, 1.0) else ""
            raise BrokerError(
                f"the {name} port {HOST}:{port} is already in use by {holder}, not by the "
                f"broker of {self.kafka_dir}.{kafka} Stop that process, choose other ports "
                "(DISCLOSURE_LEDGER_BROKER_PORT, DISCLOSURE_LEDGER_CONTROLLER_PORT), "
                + EXISTING_CLUSTER_HINT
                + "."
            )

    # ------------------------------------------------------------ status, stop

    def status(self) -> BrokerStatus:
        """Whether the broker runs: its process is alive and it answers metadata."""
        pid = self._live_pid()
        running = pid is not None and self._answers(_PROBE_TIMEOUT_S)
        return BrokerStatus(
            running=running,
            pid=pid,
            bootstrap=self.bootstrap,
            data_dir=self.data_dir,
            log_file=self.log_file,
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker: SIGTERM (a clean controlled shutdown), SIGKILL after ``timeout``.

        Removes the pid file, stale or not. Returns whether a broker was stopped.
        """
        if not self.kafka_dir.is_dir():
            return False
        with file_lock(self.kafka_dir / ".broker.lock"):
            pid = self._live_pid()
            if pid is not None:
                self._terminate(pid, timeout)
            self.pid_file.unlink(missing_ok=True)
            return pid is not None

    def kill(self) -> None:
        """SIGKILL the broker (to test crashes); a later :meth:`start` recovers its logs."""
        if not self.kafka_dir.is_dir():
            return
        with file_lock(self.kafka_dir / ".broker.lock"):
            pid = self._live_pid()
            if pid is not None:
                send_signal(pid, signal.SIGKILL)
                if not wait_exit(pid, _KILL_WAIT_S):
                    raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL")
            self.pid_file.unlink(missing_ok=True)

    def _terminate(self, pid: int, timeout: float) -> None:
        send_signal(pid, signal.SIGTERM)
        if wait_exit(pid, timeout):
            return
        send_signal(pid, signal.SIGKILL)
        if not wait_exit(pid, _KILL_WAIT_S):
            raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL")

    # ---------------------------------------------------------------- helpers

    def _live_pid(self) -> int | None:
        """The pid of this state dir's running broker, from the pid file or the process list."""
        try:
            recorded: int | None = int(self.pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            recorded = None
        if recorded is not None and process_alive(recorded) and self._is_ours(recorded):
            return recorded
        # The pid file is missing or stale; the broker may still run (pid file deleted).
        for pid in processes_running(_MAIN_CLASS):
            if self._is_ours(pid) and process_alive(pid):
                with contextlib.suppress(OSError):
                    atomic_write(self.pid_file, f"{pid}\n")
                return pid
        return None

    def _is_ours(self, pid: int) -> bool:
        args = command_line(pid)
        return _MAIN_CLASS in args and str(self.properties_file) in args

    def _answers(self, timeout: float) -> bool:
        if not kafka_answers(self.port, timeout):
            return False
        try:
            list_topics(self.bootstrap, timeout)
        except Exception:
            return False
        return True

    def _log_tails(self) -> str:
        parts = []
        for path in (self.log_file, self.stdout_file):
            text = read_tail(path)
            if text:
                parts.append(f"--- last lines of {path}:\n{text}")
        if not parts:
            return f"(nothing in {self.log_file} or {self.stdout_file})"
        return "\n".join(parts) + _java_version_hint(read_tail(self.stdout_file))


def _java_version_hint(output: str) -> str:
    if "UnsupportedClassVersionError" in output:
        return f"\nThis Java is too old for Kafka 4.x: install {JAVA_HINT}."
    return ""


def _random_cluster_id() -> str:
    """A cluster id as Kafka's ``Uuid.randomUuid()`` makes it: 22 url-safe base64 chars."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids a command line takes for options
            return text
