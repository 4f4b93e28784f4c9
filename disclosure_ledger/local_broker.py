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

Importing this module does nothing; it reads no environment variables (settings are
passed in). kafka-python is imported only when a broker is asked whether it answers.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from disclosure_ledger.errors import BrokerError

HOST = "127.0.0.1"
DEFAULT_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
DEFAULT_HEAP = "512m"

JAVA_HINT = "Java 17+ (apt-get install openjdk-17-jre-headless)"
MAVEN_HINT = "Maven (apt-get install maven)"
EXISTING_CLUSTER_HINT = (
    "or set KAFKA_BOOTSTRAP_SERVERS to an existing Kafka cluster instead of the local broker"
)

_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_POM_STAMP = ".pom.sha256"
_MARKER_JAR_GLOB = "kafka_2.13-*.jar"
_HEAP_RE = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TAIL_LINES = 40
_MAVEN_TIMEOUT_S = 900.0
_FORMAT_TIMEOUT_S = 120.0
_PROBE_TIMEOUT_S = 2.0
_POLL_INTERVAL_S = 0.2
_KILL_WAIT_S = 10.0
# kafka-python 3.0.12 reads its protocol schemas with importlib.resources.read_text and
# open_text, both deprecated on Python 3.11; silenced only around our own import of it.
_KAFKA_IMPORT_WARNINGS = r"(read_text|open_text) is deprecated"


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
    return Path(__file__).resolve().parent.parent


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
    ) -> None:
        for name, value in (("port", port), ("controller_port", controller_port)):
            if not 1 <= value <= 65535:
                raise BrokerError(f"{name} must be between 1 and 65535, not {value}")
        if port == controller_port:
            raise BrokerError(f"port and controller_port must differ (both are {port})")
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
        digest = hashlib.sha256(self.pom_file.read_bytes()).hexdigest()
        self.libs_dir.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.libs_dir.with_name(f".{self.libs_dir.name}.lock")):
            if self._libs_match(digest):
                return self.libs_dir
            mvn = _require_tool("mvn", MAVEN_HINT)
            _require_tool("java", JAVA_HINT)
            if self.libs_dir == self.kafka_dir / "libs" and self._live_pid() is not None:
                raise BrokerError(
                    f"broker/pom.xml changed while the broker in {self.kafka_dir} runs on "
                    "the jars of the old one; stop it first, then fetch or start again"
                )
            # Left-overs of an interrupted fetch (we hold the lock: none is running now).
            for kind in ("new", "old"):
                for stale in self.libs_dir.parent.glob(f".{self.libs_dir.name}.{kind}-*"):
                    shutil.rmtree(stale, ignore_errors=True)
            staging = self.libs_dir.with_name(f".{self.libs_dir.name}.new-{os.getpid()}")
            staging.mkdir()
            command = [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(self.pom_file),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ]
            try:
                result = subprocess.run(
                    command,
                    cwd=self.pom_file.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                    timeout=_MAVEN_TIMEOUT_S,
                    check=False,
                )
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise BrokerError(f"could not run Maven ({mvn}): {exc}") from exc
            except subprocess.TimeoutExpired as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise BrokerError(
                    f"Maven did not finish copying the Kafka jars within "
                    f"{_MAVEN_TIMEOUT_S:.0f} s (is Maven Central reachable?):\n"
                    + _tail_text(_as_text(exc.output))
                ) from exc
            if result.returncode != 0 or not any(staging.glob(_MARKER_JAR_GLOB)):
                shutil.rmtree(staging, ignore_errors=True)
                raise BrokerError(
                    f"Maven failed to copy the Kafka jars (exit {result.returncode}; "
                    f"{' '.join(command)}):\n" + _tail_text(result.stdout)
                )
            (staging / _POM_STAMP).write_text(digest + "\n", encoding="ascii")
            old = self.libs_dir.with_name(f".{self.libs_dir.name}.old-{os.getpid()}")
            if self.libs_dir.exists():
                self.libs_dir.rename(old)
            staging.rename(self.libs_dir)
            shutil.rmtree(old, ignore_errors=True)
        return self.libs_dir

    def _libs_match(self, digest: str) -> bool:
        stamp = self.libs_dir / _POM_STAMP
        try:
            recorded = stamp.read_text(encoding="ascii").strip()
        except OSError:
            return False
        return recorded == digest and any(self.libs_dir.glob(_MARKER_JAR_GLOB))

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
        with _file_lock(self.kafka_dir / ".broker.lock"):
            pid = self._live_pid()
            if pid is not None:
                self._wait_until_ready(pid, deadline, launched=False)
                return self.bootstrap
            self.pid_file.unlink(missing_ok=True)
            libs = self.fetch()
            java = _require_tool("java", JAVA_HINT)
            if not self.log4j_config.is_file():
                raise BrokerError(f"{self.log4j_config} not found (it ships with the repo)")
            self._check_ports_free()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            _atomic_write(self.properties_file, self._server_properties())
            if not (self.data_dir / "meta.properties").exists():
                self._format_storage(java, libs)
            pid = self._launch(java, libs)
            self._wait_until_ready(pid, deadline, launched=True)
        return self.bootstrap

    def _server_properties(self) -> str:
        lines = [
            "# Written by disclosure_ledger/local_broker.py on every start; edits are lost.",
            "process.roles=broker,controller",
            "node.id=1",
            # Static voters: the voter set is read from here, not stored in the metadata
            # log, so a later start with another controller port still finds itself.
            f"controller.quorum.voters=1@{HOST}:{self.controller_port}",
            f"listeners=PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
        try:
            result = subprocess.run(
                command,
                cwd=self.kafka_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=_FORMAT_TIMEOUT_S,
                check=False,
            )
        except OSError as exc:
            raise BrokerError(f"could not run {java} to format {self.data_dir}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(
                f"formatting {self.data_dir} did not finish within {_FORMAT_TIMEOUT_S:.0f} s:\n"
                + _tail_text(_as_text(exc.output))
            ) from exc
        if result.returncode != 0:
            raise BrokerError(
                f"formatting the broker's storage in {self.data_dir} failed "
                f"(exit {result.returncode}):\n{_tail_text(result.stdout)}"
                + _java_version_hint(result.stdout)
            )

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
        _atomic_write(self.pid_file, f"{pid}\n")
        return pid

    def _wait_until_ready(self, pid: int, deadline: float, *, launched: bool) -> None:
        while True:
            if not _pid_alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) exited before it answered on "
                    f"{self.bootstrap}.\n{self._log_tails()}"
                )
            remaining = deadline - time.monotonic()
            if self._answers(min(_PROBE_TIMEOUT_S, max(remaining, 0.5))):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_INTERVAL_S)
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

    def _check_ports_free(self) -> None:
        for name, port in (("client", self.port), ("controller", self.controller_port)):
            # A broker that just exited may hold its sockets for a moment longer.
            grace = time.monotonic() + 2.0
            while not _port_free(port) and time.monotonic() < grace:
                time.sleep(0.1)
            if _port_free(port):
                continue
            holder = _describe_listener(port)
            kafka = " A Kafka broker answers there." if _kafka_answers(port, 1.0) else ""
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
        with _file_lock(self.kafka_dir / ".broker.lock"):
            pid = self._live_pid()
            if pid is not None:
                self._terminate(pid, timeout)
            self.pid_file.unlink(missing_ok=True)
            return pid is not None

    def kill(self) -> None:
        """SIGKILL the broker (to test crashes); a later :meth:`start` recovers its logs."""
        if not self.kafka_dir.is_dir():
            return
        with _file_lock(self.kafka_dir / ".broker.lock"):
            pid = self._live_pid()
            if pid is not None:
                _signal(pid, signal.SIGKILL)
                if not _wait_exit(pid, _KILL_WAIT_S):
                    raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL")
            self.pid_file.unlink(missing_ok=True)

    def _terminate(self, pid: int, timeout: float) -> None:
        _signal(pid, signal.SIGTERM)
        if _wait_exit(pid, timeout):
            return
        _signal(pid, signal.SIGKILL)
        if not _wait_exit(pid, _KILL_WAIT_S):
            raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL")

    # ---------------------------------------------------------------- helpers

    def _live_pid(self) -> int | None:
        """The pid of this state dir's running broker, from the pid file or /proc."""
        try:
            recorded: int | None = int(self.pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            recorded = None
        if recorded is not None and _pid_alive(recorded) and self._is_ours(recorded):
            return recorded
        # The pid file is missing or stale; the broker may still run (pid file deleted).
        for pid in _java_pids():
            if self._is_ours(pid) and _pid_alive(pid):
                with contextlib.suppress(OSError):
                    _atomic_write(self.pid_file, f"{pid}\n")
                return pid
        return None

    def _is_ours(self, pid: int) -> bool:
        args = _cmdline(pid)
        if args is None:  # no /proc (not Linux): trust the pid file
            return True
        return _MAIN_CLASS in args and str(self.properties_file) in args

    def _answers(self, timeout: float) -> bool:
        if not _kafka_answers(self.port, timeout):
            return False
        try:
            _list_topics(self.bootstrap, timeout)
        except Exception:
            return False
        return True

    def _log_tails(self) -> str:
        parts = []
        for path in (self.log_file, self.stdout_file):
            text = _read_tail(path)
            if text:
                parts.append(f"--- last lines of {path}:\n{text}")
        if not parts:
            return f"(nothing in {self.log_file} or {self.stdout_file})"
        return "\n".join(parts) + _java_version_hint(_read_tail(self.stdout_file))


# ---------------------------------------------------------------- module helpers


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BrokerError(
            f"`{name}` was not found on PATH; the local Kafka broker needs it. "
            f"Install {hint}, {EXISTING_CLUSTER_HINT}."
        )
    return path


def _java_version_hint(output: str) -> str:
    if "UnsupportedClassVersionError" in output:
        return f"\nThis Java is too old for Kafka 4.x: install {JAVA_HINT}."
    return ""


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (flock), held for the ``with`` body."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _random_cluster_id() -> str:
    """A cluster id as Kafka's ``Uuid.randomUuid()`` makes it: 22 url-safe base64 chars."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids a command line takes for options
            return text


def _as_text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output


def _tail_text(text: str, lines: int = _TAIL_LINES) -> str:
    kept = _ANSI_RE.sub("", text).rstrip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(no output)"


def _read_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process.

    A zombie counts as dead once all its threads are gone. The JVM's main thread turns
    zombie first while the others still exit and hold its files and listening sockets.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    state = stat.rpartition(")")[2].split()[:1]
    if state not in (["Z"], ["X"]):
        return True
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _cmdline(pid: int) -> list[str] | None:
    """The process's arguments, ``[]`` if unreadable, ``None`` where there is no /proc."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None if not Path("/proc/self").exists() else []
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _java_pids() -> Iterator[int]:
    """Pids of processes running ``kafka.Kafka`` (Linux /proc; nothing elsewhere)."""
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.isdigit():
            continue
        args = _cmdline(int(entry.name))
        if args and _MAIN_CLASS in args:
            yield int(entry.name)


def _port_free(port: int) -> bool:
    """Whether a listener could bind ``127.0.0.1:port`` (as the broker will, REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise BrokerError(f"cannot check port {HOST}:{port}: {exc}") from exc
    return True


def _describe_listener(port: int) -> str:
    """Best effort: which process listens on ``port`` (Linux /proc), for error messages."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):
                inodes.add(fields[9])
    targets = {f"socket:[{inode}]" for inode in inodes}
    if targets:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            if _socket_links(entry / "fd") & targets:
                args = " ".join(_cmdline(int(entry.name)) or [])
                shown = args if len(args) <= 200 else args[:197] + "..."
                return f"another process (pid {entry.name}: {shown})"
    return "another process (`ss -ltnp` shows which)"


def _socket_links(fd_dir: Path) -> set[str]:
    links = set()
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return set()
    for fd in fds:
        with contextlib.suppress(OSError):  # fds come and go while we look
            links.add(os.readlink(fd))
    return links


def _kafka_answers(port: int, timeout: float) -> bool:
    """Whether a Kafka broker on ``127.0.0.1:port`` answers an ApiVersions request.

    A raw request on a plain socket: cheap, and unlike a kafka-python client it leaves
    no background thread or unclosed socket behind when nothing listens yet.
    """
    client_id = b"disclosure-ledger-probe"
    correlation_id = 0x5EED
    # ApiVersions (key 18) v0: request header v1 and an empty body.
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            if sock.getsockname() == sock.getpeername():  # TCP self-connect, no listener
                return False
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
            if not 6 <= size <= 1 << 20:
                return False
            reply_id, error_code = struct.unpack(">ih", _recv_exactly(sock, size)[:6])
    except (OSError, struct.error):
        return False
    return bool(reply_id == correlation_id and error_code == 0)


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return bytes(data)


def _kafka_admin_class() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _KAFKA_IMPORT_WARNINGS, DeprecationWarning)
        from kafka import KafkaAdminClient

    return KafkaAdminClient


def _list_topics(bootstrap: str, timeout: float) -> list[str]:
    """Topic names from a kafka-python admin client; closed on every path."""
    admin_class = _kafka_admin_class()
    timeout_ms = max(500, int(timeout * 1000))
    admin = admin_class.__new__(admin_class)
    try:
        # KafkaAdminClient connects in __init__ and, when that fails, leaves its IO
        # thread running; constructing in two steps lets us close it on that path too.
        admin.__init__(
            bootstrap_servers=bootstrap,
            client_id="disclosure-ledger-local-broker",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            admin._closed = False
            admin.close()
        raise
    try:
        return [str(name) for name in admin.list_topics()]
    finally:
        admin.close()
