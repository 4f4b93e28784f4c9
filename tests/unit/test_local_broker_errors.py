"""Without Java or Maven the local broker says what to install; Maven's failures surface.

PATH is pointed at a directory of our own, so ``java`` and ``mvn`` are looked up for real
and not found (or found as small stand-in scripts). No JVM and no network are used.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from disclosure_ledger.errors import BrokerError
from disclosure_ledger.local_broker import LocalBroker

REPO = Path(__file__).resolve().parent.parent.parent

# A stand-in for Maven: logs its call, then "copies" one jar into -DoutputDirectory.
# Shell built-ins only: PATH holds nothing else.
FAKE_MVN = """#!/bin/sh
echo called >> "${0%/*}/mvn.calls"
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}" ;; esac
done
: > "$out/kafka_2.13-0.0.0.jar"
"""
FAILING_MVN = """#!/bin/sh
echo "[ERROR] Failed to execute goal: Could not resolve dependencies"
exit 1
"""


def _tool(bin_dir: Path, name: str, script: str = "#!/bin/sh\nexit 99\n") -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(script, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _broker(tmp_path: Path) -> LocalBroker:
    return LocalBroker(state_dir=tmp_path / "state", port=29192, controller_port=29193)


def test_fetch_without_maven_says_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(BrokerError, match=r"`mvn` was not found") as caught:
        _broker(tmp_path).fetch()
    assert "Maven (apt-get install maven)" in str(caught.value)
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(caught.value)


def test_fetch_without_java_says_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "mvn")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(BrokerError, match=r"`java` was not found") as caught:
        _broker(tmp_path).fetch()
    assert "Java 17+ (apt-get install openjdk-17-jre-headless)" in str(caught.value)
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(caught.value)
    assert not (bin_dir / "mvn.calls").exists()


def test_start_without_java_says_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "mvn", FAKE_MVN)
    _tool(bin_dir, "java")
    monkeypatch.setenv("PATH", str(bin_dir))
    broker = _broker(tmp_path)
    libs = broker.fetch()
    assert (libs / "kafka_2.13-0.0.0.jar").is_file()
    assert broker.fetch() == libs  # the pom did not change: Maven is not run again
    assert (bin_dir / "mvn.calls").read_text(encoding="utf-8").count("called") == 1

    (bin_dir / "java").unlink()
    with pytest.raises(BrokerError, match=r"`java` was not found") as caught:
        broker.start(timeout=5)
    assert "Java 17+ (apt-get install openjdk-17-jre-headless)" in str(caught.value)
    assert not broker.status().running


def test_a_changed_pom_is_fetched_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "mvn", FAKE_MVN)
    _tool(bin_dir, "java")
    monkeypatch.setenv("PATH", str(bin_dir))
    root = tmp_path / "repo"
    shutil.copytree(REPO / "broker", root / "broker")
    broker = LocalBroker(state_dir=tmp_path / "state", project_root=root)
    libs = broker.fetch()
    (libs / "left-over.jar").write_bytes(b"")
    pom = root / "broker" / "pom.xml"
    pom.write_text(pom.read_text(encoding="utf-8") + "<!-- changed -->\n", encoding="utf-8")
    assert broker.fetch() == libs
    assert (bin_dir / "mvn.calls").read_text(encoding="utf-8").count("called") == 2
    assert not (libs / "left-over.jar").exists()  # the jars were replaced as a whole


def test_maven_failure_shows_the_tail_of_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "mvn", FAILING_MVN)
    _tool(bin_dir, "java")
    monkeypatch.setenv("PATH", str(bin_dir))
    broker = _broker(tmp_path)
    with pytest.raises(BrokerError, match=r"Maven failed") as caught:
        broker.fetch()
    assert "Could not resolve dependencies" in str(caught.value)
    assert not broker.libs_dir.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, "port must be between"),
        ({"port": 29192, "controller_port": 29192}, "must differ"),
        ({"heap": "512m -XX:+Evil"}, "heap must look like"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BrokerError, match=message):
        LocalBroker(state_dir=tmp_path, **kwargs)  # type: ignore[arg-type]
