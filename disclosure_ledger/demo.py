"""The main job, end to end on real parts: local broker, simulated traffic published to
Kafka, consumed into a DuckDB ledger, verified, and the CCPA report written.

Running it again re-publishes the same simulated events (same seed, same day): the
consumer resumes from the ledger's offsets and records every one as a duplicate, so the
ledger, its verification and the report stay as they were.

It ends by saying what to do next (:func:`next_steps`): where the command-line tool is,
the setting that unlocks subject look-ups, three people the demo ledger holds (the
busiest of the simulated traffic, counted as it is published) and a command that answers
a request to know for one of them.

Then it leaves the ledger service running in the background over the demo ledger, as it
leaves the broker (:func:`start_console`): ``serve`` ingesting the same topic, its log in
``<state dir>/demo/service.log``, and an ``admin`` user whose random password is printed
once with the console's address (:func:`console_text`). ``make clean`` stops it
(``disclosure-ledger service stop``). A service left running by an earlier demo is stopped
first, since it holds the ledger the demo consumes into.
"""

from __future__ import annotations

import logging
import secrets
import shlex
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from consumers.consumer import consume
from consumers.pipeline import Ingestor
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.local_broker import LocalBroker
from disclosure_ledger.local_broker.processes import describe_listener, port_free
from disclosure_ledger.service.auth.accounts import (
    AccountStore,
    default_account_store,
)
from disclosure_ledger.service.auth.passwords import generate_password
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.background import start_detached, stop_service
from disclosure_ledger.service.config import is_loopback, parse_listen
from disclosure_ledger.settings import Settings, load_settings
from disclosure_ledger.simulate import simulate
from disclosure_ledger.simulated_services import publish_as_services
from ledger.checkpoints import (
    Checkpointer,
    default_checkpoint_file,
    generate_key_pair,
    load_public_key,
    load_signing_key,
    read_checkpoint_file,
)
from ledger.coverage import DEFAULT_ALLOWANCE, ledger_coverage
from ledger.errors import ChainError, LedgerError
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import CheckpointSource, verify_ledger
from producers.errors import PublishError
from producers.topics import ensure_topic
from reference import load_reference
from reports.ccpa import ccpa_report, render_ccpa
from reports.window import report_window
from schemas.model import DisclosureEvent

log = logging.getLogger(__name__)

DEMO_PARTITIONS = 3
SUBJECTS_NAMED = 3
SERVER_SETTING = "DISCLOSURE_LEDGER_SERVER"
TOKEN_SETTING = "DISCLOSURE_LEDGER_TOKEN"
SECRET_FILE_SETTING = "DISCLOSURE_LEDGER_SUBJECT_SECRET_FILE"
SIGNING_KEY_FILE_SETTING = "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE"
DEFAULT_LISTEN = "127.0.0.1:8080"
ADMIN_USER = "admin"

SubjectRef = tuple[str, str]  # (subject type, subject id), as the events carry them


def counted(
    events: Iterable[DisclosureEvent], tally: Counter[SubjectRef]
) -> Iterator[DisclosureEvent]:
    """The events, unchanged, each counted in ``tally`` under its subject as it passes."""
    for event in events:
        tally[(event.subject.type.value, event.subject.id)] += 1
        yield event


def busiest_subjects(
    tally: Counter[SubjectRef], count: int = SUBJECTS_NAMED
) -> list[tuple[str, str, int]]:
    """``(type, id, events)`` of the ``count`` subjects with the most events (ties: the
    first seen)."""
    return [(kind, subject_id, n) for (kind, subject_id), n in tally.most_common(count)]


def _shown(path: Path) -> str:
    """A path as typed from the current directory when it lies below it, shell-quoted."""
    try:
        text = str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        text = str(path)
    return shlex.quote(text)


def cli_path() -> Path:
    """The ``disclosure-ledger`` script installed beside this Python (the project's venv)."""
    beside = Path(sys.executable).parent / "disclosure-ledger"
    return beside if beside.exists() else Path("disclosure-ledger")


def next_steps(
    *,
    cli: Path,
    ledger_path: Path,
    secret_file: Path | None,
    subjects: Sequence[tuple[str, str, int]],
    as_of: date,
    server: str | None = None,
    token: str | None = None,
    public_key: Path | None = None,
) -> str:
    """What to do after the demo, as printed at its end: the tool, the subject-secret
    setting (``secret_file`` None: the secret is already in the environment), the busiest
    ``subjects`` and one command that answers a request to know for the first of them.
    With ``server`` and ``token`` (the service the demo leaves running, which holds the
    ledger), the command goes through the service; with ``public_key`` too, it says how the
    person can have every row of that answer checked (proofs)."""
    tool = _shown(cli)
    setting = f"{SECRET_FILE_SETTING}={_shown(secret_file)}" if secret_file else ""
    lines = [
        "demo: what next",
        f"  The command-line tool: {tool} (`{tool} --help` lists every command).",
    ]
    if server is not None and token is not None:
        return "\n".join(
            lines
            + _through_service(
                tool, setting, subjects, as_of, server=server, token=token, public_key=public_key
            )
        )
    if secret_file is not None:
        lines += [
            "  Looking up a person in the demo ledger needs its subject secret; set",
            f"    export {setting}",
        ]
    else:
        lines.append(
            "  Looking up a person uses the subject secret already set in "
            "DISCLOSURE_LEDGER_SUBJECT_SECRET."
        )
    if not subjects:
        return "\n".join(lines)
    lines.append("  The busiest people in the demo ledger:")
    lines += [f"    {kind} {subject_id}: {n} disclosures" for kind, subject_id, n in subjects]
    kind, subject_id, _ = subjects[0]
    command = [
        *([setting] if setting else []),
        tool,
        "report subject",
        f"--ledger {_shown(ledger_path)}",
        f"--subject-id {shlex.quote(subject_id)}",
        *([] if kind == "member" else [f"--subject-type {shlex.quote(kind)}"]),
        f"--as-of {as_of.isoformat()}",
    ]
    lines += [
        f"  Answer {subject_id}'s request to know (what was disclosed, to whom; it is "
        "recorded in the request log):",
        f"    {' '.join(command)}",
    ]
    return "\n".join(lines)


def _through_service(
    tool: str,
    setting: str,
    subjects: Sequence[tuple[str, str, int]],
    as_of: date,
    *,
    server: str,
    token: str,
    public_key: Path | None = None,
) -> list[str]:
    """The next steps when the demo's service holds the ledger: its token, then a request
    to know through it."""
    lines = [
        "  It reads the running ledger service with this compliance token (shown once):",
        f"    export {SERVER_SETTING}={server} {TOKEN_SETTING}={token}",
    ]
    if subjects:
        lines.append("  The busiest people in the demo ledger:")
        lines += [f"    {kind} {subject_id}: {n} disclosures" for kind, subject_id, n in subjects]
        kind, subject_id, _ = subjects[0]
        command = [
            tool,
            "report subject",
            f"--subject-id {shlex.quote(subject_id)}",
            *([] if kind == "member" else [f"--subject-type {shlex.quote(kind)}"]),
            f"--as-of {as_of.isoformat()}",
            "--reason DEMO-1",
        ]
        lines += [
            f"  Answer {subject_id}'s request to know (what was disclosed, to whom; recorded "
            "in the request log, and the read in the access log):",
            f"    {' '.join(command)}",
        ]
        if public_key is not None:
            lines += [
                "  The same answer with a proof for every row, which the person can check "
                "without the ledger (docs/proofs.md):",
                f"    {' '.join(command)} --with-proofs --format json --output answer.json",
                f"    {tool} verify-proof answer.json --public-key {_shown(public_key)}",
            ]
    if setting:
        lines.append(
            "  On the ledger file itself (once `service stop` has stopped the service), a "
            f"look-up needs the demo's subject secret: export {setting}"
        )
    return lines


def _demo_secret(settings: Settings, demo_dir: Path, key_store: Path) -> bytes:
    if settings.subject_secret is not None:
        return settings.subject_secret.get_secret_value().encode()
    path = demo_dir / "subject-secret"
    if not path.exists() and key_store.exists():
        # A new secret would not open the demo's key store: say so instead of making one.
        raise LedgerError(
            f"the demo's subject secret file {path} is gone but its key store {key_store} "
            "is still there: set DISCLOSURE_LEDGER_SUBJECT_SECRET to the secret the demo "
            f"ledger was created with, or delete {demo_dir} to start the demo afresh"
        )
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
        print(
            f"demo: generated a THROWAWAY subject secret in {path}; production deployments "
            "set DISCLOSURE_LEDGER_SUBJECT_SECRET(_FILE) and keep it safe"
        )
    return path.read_text().strip().encode()


def _demo_signing_key(demo_dir: Path) -> tuple[Path, Path]:
    private, public = demo_dir / "checkpoint-signing.pem", demo_dir / "checkpoint-public.pem"
    if not private.exists():
        generate_key_pair(private, public)
        print(
            f"demo: generated a THROWAWAY checkpoint signing key {private} (public key "
            f"{public}); production deployments use `disclosure-ledger keys generate` and keep "
            "the private key outside the ledger's machine"
        )
    return private, public


def console_text(
    *, url: str, user: str, password: str, cli: Path, ledger_path: Path, log_path: Path
) -> str:
    """What the demo prints about the service it leaves running: the console's address,
    the admin user and its new password, where the log is and how to stop it."""
    tool = _shown(cli)
    login = f"user {user}, password {password} (shown once)"
    return "\n".join(
        [
            f"console: {url}/ — {login}",
            f"  The ledger service runs in the background, ingesting the demo topic; its log: "
            f"{_shown(log_path)}",
            f"  Stop it: {tool} service stop --ledger {_shown(ledger_path)} (`make clean` does)",
            "  While it runs it holds the ledger: the commands above read it through the "
            "service (--server) or once it is stopped.",
        ]
    )


def _admin_password(ledger_path: Path) -> str:
    """A new random password for the demo's admin user, shown once: a demo run again gives
    the existing user a new one (its old sessions end), so the console is always reachable."""
    password = generate_password()
    accounts = AccountStore(default_account_store(ledger_path))
    if any(user.name == ADMIN_USER for user in accounts.users()):
        accounts.set_password(ADMIN_USER, password)
    else:
        accounts.add_user(ADMIN_USER, Role.admin, password)
    return password


def start_console(
    *,
    listen: str,
    ledger_path: Path,
    bootstrap: str,
    topic: str,
    secret_file: Path | None,
    signing_key: Path,
    log_path: Path,
) -> str:
    """Start ``serve`` over the demo ledger in the background; its URL once it is ready."""
    host, port = parse_listen(listen)
    if not is_loopback(host):
        raise DisclosureLedgerError(
            f"demo --listen {listen}: the demo serves on a loopback address only (no TLS)"
        )
    if not port_free(port):
        raise DisclosureLedgerError(
            f"the console's port {port} is taken by {describe_listener(port)}: run the demo "
            f"again with another, e.g. `disclosure-ledger demo --listen 127.0.0.1:{port + 1}`"
        )
    command = [
        str(cli_path()),
        "serve",
        "--ledger",
        str(ledger_path.absolute()),
        "--listen",
        listen,
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
    ]
    environment = {SIGNING_KEY_FILE_SETTING: str(signing_key.absolute())}
    if secret_file is not None:
        environment[SECRET_FILE_SETTING] = str(secret_file.absolute())
    state = start_detached(command, ledger_path.absolute(), log_path, env=environment)
    return state.url


def run_demo(
    *, events: int, seed: int, as_of: date | None, out_dir: Path, listen: str = DEFAULT_LISTEN
) -> int:
    settings = load_settings()
    # today, unless the simulated services' watermarks (sent now) less the allowance for
    # late events cannot yet cover today's midnight: then yesterday
    as_of = as_of or (datetime.now(UTC) - DEFAULT_ALLOWANCE).date()
    start, end = report_window(as_of)
    demo_dir = settings.state_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    ledger_path = demo_dir / "ledger.duckdb"
    key_store = demo_dir / "ledger.duckdb.keys.sqlite"
    secret = _demo_secret(settings, demo_dir, key_store)
    stopped = stop_service(ledger_path.absolute())
    if stopped is not None:
        print(f"demo: stopped the service an earlier demo left at {stopped.url} (restarted below)")
    # The secret is checked (ledger.key_check) before anything is published or consumed.
    with Ledger(ledger_path) as ledger, SubjectKeyStore(key_store, secret, ledger=ledger):
        pass

    if settings.kafka_bootstrap_servers:
        bootstrap = settings.kafka_bootstrap_servers
        print(f"demo: using the Kafka cluster at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
    else:
        broker = LocalBroker(
            state_dir=settings.state_dir,
            port=settings.broker_port,
            controller_port=settings.controller_port,
            heap=settings.broker_heap,
        )
        bootstrap = broker.start()
        print(
            f"demo: local Kafka broker running at {bootstrap} (stop: disclosure-ledger broker stop)"
        )

    topic = settings.topic
    ensure_topic(bootstrap, topic, DEMO_PARTITIONS)
    tally: Counter[SubjectRef] = Counter()
    published, watermarks = publish_as_services(
        bootstrap, topic, counted(simulate(events, seed, start, end), tally)
    )
    if published.undelivered:
        raise PublishError(f"{len(published.undelivered)} simulated events were not delivered")
    if published.watermark_error is not None:
        raise PublishError(published.watermark_error)
    print(
        f"demo: published {published.delivered} simulated events to {topic}, then the "
        f"watermarks of {len(watermarks)} simulated services"
    )

    checkpoint_file = default_checkpoint_file(ledger_path)
    private_key, public_key = _demo_signing_key(demo_dir)
    reference = load_reference()
    with (
        Ledger(ledger_path) as ledger,
        SubjectKeyStore(key_store, secret, ledger=ledger) as keys,
    ):
        checkpointer = Checkpointer(
            ledger,
            load_signing_key(private_key.read_bytes(), str(private_key)),
            checkpoint_file,
            reference_version=reference.version,
            notes_dir=settings.checkpoint_notes_dir,
            origin=settings.checkpoint_origin,
            copy_to=settings.checkpoint_copy_to,
        )
        ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
        stats = consume(bootstrap, topic, ingestor, until_idle=3.0, client=settings.kafka_client)
        ingestor.shutdown()
    print(
        f"demo: ingested {stats.total} messages into {ledger_path}: {stats.accepted} appended, "
        f"{stats.duplicates} duplicates, {stats.quarantined} quarantined, {stats.watermarks} "
        "watermarks; signed checkpoints "
        f"in {checkpoint_file}"
    )

    with Ledger(ledger_path, read_only=True) as ledger:
        verified = verify_ledger(
            ledger,
            checkpoints=[
                CheckpointSource(str(checkpoint_file), read_checkpoint_file(checkpoint_file))
            ],
            public_key=load_public_key(public_key),
        )
        if not verified.ok:
            for failure in verified.failures:
                print(f"FAIL {failure}")
            raise ChainError(f"{ledger_path} does not verify: {len(verified.failures)} failure(s)")
        print(
            f"demo: verified {verified.rows} rows in {len(verified.chains)} chains, every offset "
            f"accounted for, checkpoints signed by {public_key}"
        )
        print(f"demo: {ledger_coverage(ledger.con).describe()}")
        report = ccpa_report(ledger, as_of)

    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in ("md", "json", "html"):
        path = out_dir / f"ccpa-{as_of.isoformat()}.{fmt}"
        path.write_text(render_ccpa(report, fmt), encoding="utf-8")
        print(f"demo: CCPA report written to {path}")
    secret_file = None if settings.subject_secret else demo_dir / "subject-secret"
    log_path = demo_dir / "service.log"
    url = start_console(
        listen=listen,
        ledger_path=ledger_path,
        bootstrap=bootstrap,
        topic=topic,
        secret_file=secret_file,
        signing_key=private_key,
        log_path=log_path,
    )
    token = (
        AccountStore(default_account_store(ledger_path))
        .issue_token(Role.compliance, label="demo command line", created_by="demo")
        .token
    )
    print(
        next_steps(
            cli=cli_path(),
            ledger_path=ledger_path,
            secret_file=secret_file,
            subjects=busiest_subjects(tally),
            as_of=as_of,
            server=url,
            token=token,
            public_key=public_key,
        )
    )
    print(
        console_text(
            url=url,
            user=ADMIN_USER,
            password=_admin_password(ledger_path),
            cli=cli_path(),
            ledger_path=ledger_path,
            log_path=log_path,
        )
    )
    return 0
