"""The broker's classpath: the jars ``broker/pom.xml`` names, copied by Maven.

:func:`install_jars` has Maven copy them into a staging directory beside ``libs_dir`` and
swaps it in whole, so an interrupted fetch leaves no half set; ``libs_dir/.pom.sha256``
records the pom they came from, so :func:`jars_current` knows when to fetch again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from disclosure_ledger.errors import BrokerError
from disclosure_ledger.local_broker.processes import run_to_completion
from disclosure_ledger.local_broker.state_files import as_text, tail_text

__all__ = [
    "EXISTING_CLUSTER_HINT",
    "JAVA_HINT",
    "MAVEN_HINT",
    "install_jars",
    "jars_current",
    "pom_digest",
    "require_tool",
]

JAVA_HINT = "Java 17+ (apt-get install openjdk-17-jre-headless)"
MAVEN_HINT = "Maven (apt-get install maven)"
EXISTING_CLUSTER_HINT = (
    "or set KAFKA_BOOTSTRAP_SERVERS to an existing Kafka cluster instead of the local broker"
)

_POM_STAMP = ".pom.sha256"
_MARKER_JAR_GLOB = "kafka_2.13-*.jar"
_MAVEN_TIMEOUT_S = 900.0


def require_tool(name: str, hint: str) -> str:
    """The path of a program the local broker needs; a clear error saying what to install."""
    path = shutil.which(name)
    if path is None:
        raise BrokerError(
            f"`{name}` was not found on PATH; the local Kafka broker needs it. "
            f"Install {hint}, {EXISTING_CLUSTER_HINT}."
        )
    return path


def pom_digest(pom_file: Path) -> str:
    return hashlib.sha256(pom_file.read_bytes()).hexdigest()


def jars_current(libs_dir: Path, digest: str) -> bool:
    """Whether ``libs_dir`` holds the jars of the pom whose sha256 is ``digest``."""
    stamp = libs_dir / _POM_STAMP
    try:
        recorded = stamp.read_text(encoding="ascii").strip()
    except OSError:
        return False
    return recorded == digest and any(libs_dir.glob(_MARKER_JAR_GLOB))


def install_jars(mvn: str, pom_file: Path, libs_dir: Path, digest: str) -> None:
    """Have Maven (the program ``mvn``) copy the pom's runtime jars, then swap them in.

    The caller holds the fetch lock, so no other fetch runs: left-overs of an interrupted
    one are removed first.
    """
    for kind in ("new", "old"):
        for stale in libs_dir.parent.glob(f".{libs_dir.name}.{kind}-*"):
            shutil.rmtree(stale, ignore_errors=True)
    staging = libs_dir.with_name(f".{libs_dir.name}.new-{os.getpid()}")
    staging.mkdir()
    command = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom_file),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    try:
        result = run_to_completion(command, cwd=pom_file.parent, timeout=_MAVEN_TIMEOUT_S)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerError(f"could not run Maven ({mvn}): {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerError(
            f"Maven did not finish copying the Kafka jars within "
            f"{_MAVEN_TIMEOUT_S:.0f} s (is Maven Central reachable?):\n"
            + tail_text(as_text(exc.output))
        ) from exc
    if result.returncode != 0 or not any(staging.glob(_MARKER_JAR_GLOB)):
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerError(
            f"Maven failed to copy the Kafka jars (exit {result.returncode}; "
            f"{' '.join(command)}):\n" + tail_text(result.stdout)
        )
    (staging / _POM_STAMP).write_text(digest + "\n", encoding="ascii")
    old = libs_dir.with_name(f".{libs_dir.name}.old-{os.getpid()}")
    if libs_dir.exists():
        libs_dir.rename(old)
    staging.rename(libs_dir)
    shutil.rmtree(old, ignore_errors=True)
