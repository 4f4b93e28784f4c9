"""The read commands and ``erase-subject`` through the ledger service (``--server``): the
same output as on the file, from the API's answers.

Each function takes the parsed arguments and a :class:`LedgerClient` and prints (or
returns) what the command prints on a ledger file; the commands' handlers call them when
:func:`~disclosure_ledger.commands.server_options.service_client` gives a client.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from disclosure_ledger.commands.server_options import refuse_file_options, require_reason
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.client import LedgerClient, ServiceClientError
from ledger.coverage import Coverage, Holdback
from ledger.coverage_status import CoverageStatus, PartitionStatus, SourceStatus
from ledger.verify.result import Failure, VerifyResult

POLL_EVERY_S = 0.5
QUARANTINE_PAGE = 1000


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# -- report ---------------------------------------------------------------------------------
def report_text(args: argparse.Namespace, client: LedgerClient) -> str:
    """``report KIND`` through the service: the text ``--format`` asks for."""
    refuse_file_options(args, "key_store", "request_log")
    if args.kind == "requests":
        params = {"year": args.year, "format": args.format}
        return client.get("/reports/requests", params).text
    if args.kind == "recipients" and args.notices_due:
        return client.get("/notices", {"format": args.format}).text
    if args.kind in ("subject", "recipients"):
        return _subject_text(args, client)
    if args.kind == "access":
        params = {"since": _iso(args.since), "until": _iso(args.until), "format": args.format}
        return client.get("/access-log", params).text
    params = {
        "as_of": _iso(args.as_of),
        "since": _iso(getattr(args, "since", None)),
        "allow_incomplete": args.allow_incomplete,
        "format": args.format,
    }
    return client.get(f"/reports/{args.kind}", params).text


def _subject_text(args: argparse.Namespace, client: LedgerClient) -> str:
    body: dict[str, Any] = {
        "subject_type": args.subject_type,
        "subject_id": args.subject_id,
        "received_on": args.received_on.isoformat(),
        "received_via": args.received_via,
        "reason": require_reason(args, f"report {args.kind}"),
        "as_of": _iso(args.as_of),
        "format": args.format,
    }
    for option in ("since", "deny", "reissue", "request"):
        value = getattr(args, option, None)
        if value is not None:
            body[option] = _iso(value) if isinstance(value, datetime) else value
    if getattr(args, "with_proofs", False):
        body["with_proofs"] = True
    if getattr(args, "request", None) is not None and args.output is not None:
        body["answer_stored_at"] = args.output.resolve().as_uri()
    path = "/requests/know" if args.kind == "subject" else "/requests/recipients"
    return client.post(path, body).text


# -- status ---------------------------------------------------------------------------------
def status_document(client: LedgerClient) -> dict[str, Any]:
    """What ``status --format json`` prints: the service's coverage status."""
    coverage: dict[str, Any] = client.get_json("/status")["coverage"]
    return coverage


def coverage_status_of(document: dict[str, Any]) -> CoverageStatus:
    """The :class:`CoverageStatus` a ``status`` JSON document was made of, for its text."""
    c = document["coverage"]

    def holdback(h: dict[str, Any]) -> Holdback:
        return Holdback(h["kind"], h["name"], _moment(h["through"]), h["detail"])

    coverage = Coverage(
        complete_through=_moment(c["complete_through"]),
        allowance=timedelta(seconds=int(c["allowance_seconds"])),
        evidence=tuple(holdback(h) for h in c["evidence"]),
    )
    sources = tuple(
        SourceStatus(
            s["source"],
            bool(s["expected"]),
            {p: at for p, text in s["watermarks"].items() if (at := _moment(text)) is not None},
            tuple(s["missing_partitions"]),
        )
        for s in document["sources"]
    )
    partitions = tuple(
        PartitionStatus(
            p["partition"],
            int(p["position"]),
            p["end_offset"],
            _moment(p["probed_at"]),
            _moment(p["complete_through"]),
        )
        for p in document["partitions"]
    )
    return CoverageStatus(coverage, sources, partitions)


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- verify ---------------------------------------------------------------------------------
def verify_result(
    args: argparse.Namespace, client: LedgerClient, progress: Callable[[int, int], None]
) -> tuple[VerifyResult | str, str]:
    """Run verify as a job of the service; its result, and the ledger's name to print."""
    refuse_file_options(args, "checkpoints", "public_key", "key_history", "notes")
    job = client.post_json("/verify", {})
    job_id = job["job_id"]
    while True:
        state = client.get_json(f"/verify/{job_id}")
        total = int(state.get("rows_total") or 0)
        if total:
            progress(int(state.get("rows_done") or 0), total)
        if state["state"] == "running":
            time.sleep(POLL_EVERY_S)
            continue
        if state["state"] != "done":
            detail = state.get("error") or state.get("result") or "no reason given"
            raise ServiceClientError(f"verify failed in the service at {client.url}: {detail}")
        result = state["result"]
        if isinstance(result, str):
            return result, ""
        return verify_result_of(result), str(result.get("ledger") or _ledger_name(client))


def verify_result_of(document: dict[str, Any]) -> VerifyResult:
    """A :class:`VerifyResult` from its JSON (chains as ``[length, head]`` or objects)."""
    chains: dict[str, tuple[int, str]] = {}
    for chain, value in (document.get("chains") or {}).items():
        if isinstance(value, dict):
            chains[chain] = (int(value["length"]), str(value["head"]))
        else:
            chains[chain] = (int(value[0]), str(value[1]))
    failures = [
        Failure(f["chain_id"], f.get("seq"), f["kind"], f["detail"])
        if isinstance(f, dict)
        else Failure(str(f), None, "failure", "")
        for f in document.get("failures") or []
    ]
    return VerifyResult(
        rows=int(document.get("rows") or 0),
        chains=chains,
        failures=failures,
        checkpoints=int(document.get("checkpoints") or 0),
        signatures_checked=bool(document.get("signatures_checked")),
        notes_checked=int(document.get("checkpoint_notes") or 0),
        notes=[str(n) for n in document.get("notes") or []],
    )


def _ledger_name(client: LedgerClient) -> str:
    return str(client.get_json("/status").get("ledger") or client.url)


# -- query ----------------------------------------------------------------------------------
PRESETS = ("timeline", "recipient", "volume")


def run_query(args: argparse.Namespace, client: LedgerClient) -> int:
    """``query`` through the service; the rows written, as the command writes them."""
    from disclosure_ledger.commands.options import open_output

    refuse_file_options(args, "key_store")
    reason = require_reason(args, "query")
    wire = "parquet" if args.format in ("table", "parquet") else args.format
    if args.sql in PRESETS:
        path = f"/queries/presets/{args.sql}"
        body: dict[str, Any] = {
            "subject_id": args.subject_id,
            "subject_type": args.subject_type,
            "recipient_id": args.recipient_id,
            "by": args.by,
            "from": _iso(args.from_),
            "to": _iso(args.to),
            "format": wire,
            "reason": reason,
        }
        body = {k: v for k, v in body.items() if v is not None}
    else:
        path, body = "/queries", {"sql": args.sql, "format": wire, "reason": reason}
    if args.format == "parquet":
        if args.output is None:
            raise ServiceClientError(
                "Parquet is binary and written to a file: give --output FILE.parquet"
            )
        rows = _save_parquet(client, path, body, args.output)
        print(f"{rows} rows written to {args.output}", file=sys.stderr)
        return rows
    if args.format == "table":
        return _table(client, path, body)
    with client.stream_post(path, body) as response, open_output(args.output) as out:
        for chunk in response.iter_text():
            out.write(chunk)
        _note_coverage(response.headers)
    return 0


def _note_coverage(headers: Mapping[str, str]) -> None:
    """The coverage the service sent with the rows, on standard error as the file's path
    writes it."""
    from reports.query import coverage_note

    described = headers.get("X-Ledger-Coverage")
    if described:
        print(coverage_note(described), file=sys.stderr)


def _save_parquet(client: LedgerClient, path: str, body: dict[str, Any], output: Path) -> int:
    import pyarrow.parquet as pq

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        with client.stream_post(path, body) as response, partial.open("wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
            _note_coverage(response.headers)
        rows = int(pq.ParquetFile(partial).metadata.num_rows)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _table(client: LedgerClient, path: str, body: dict[str, Any]) -> int:
    """The terminal table, written here from the Parquet result, as the command writes it."""
    import pyarrow.parquet as pq

    from reports.render import write_terminal_table

    buffer = io.BytesIO()
    with client.stream_post(path, body) as response:
        for chunk in response.iter_bytes():
            buffer.write(chunk)
        _note_coverage(response.headers)
    buffer.seek(0)
    parquet = pq.ParquetFile(buffer)
    return write_terminal_table(
        parquet.schema_arrow.names, parquet.iter_batches(batch_size=65_536), sys.stdout
    )


# -- quarantine show ------------------------------------------------------------------------
def quarantine_show(args: argparse.Namespace, client: LedgerClient) -> int:
    """``quarantine show`` through the service. Without ``--approval``: a read request for
    each message listed (an admin approves each); with ``--approval ID``: the message of
    each approved request, read once."""
    refuse_file_options(args, "key_store")
    if args.approved_by is not None:
        raise DisclosureLedgerError(
            "--approved-by is for a ledger file (--ledger): through --server an admin "
            "approves each read request (`disclosure-ledger approvals approve ID`)"
        )
    if args.approval:
        return _read_approved(args, client)
    reason = require_reason(args, "quarantine show")
    listed: list[dict[str, Any]] = []
    while True:
        page = client.get_json(
            "/quarantine",
            {
                "offset": len(listed),
                "limit": QUARANTINE_PAGE,
                "topic": args.topic,
                "partition": args.partition,
            },
        )
        listed += page["messages"]
        if not page["messages"] or len(listed) >= int(page["total"]):
            break
    for entry in listed:
        approval = client.post_json(
            "/quarantine/message",
            {
                "topic": entry["topic"],
                "partition": entry["partition"],
                "offset": entry["offset"],
                "reason": reason,
            },
        )
        for line in approval["lines"]:
            print(line)
    print(
        f"{len(listed)} quarantined message(s) in {_ledger_name(client)}; their bytes are "
        "shown once an admin approves each request: then run `quarantine show --approval ID "
        "--server URL` (once, within the hour)"
    )
    return 0


def _read_approved(args: argparse.Namespace, client: LedgerClient) -> int:
    for approval_id in args.approval:
        message = client.post_json(f"/approvals/{approval_id}/result", {})
        at = datetime.fromisoformat(message["quarantined_at"])
        print(
            f"{message['topic']}/{message['partition']} offset {message['offset']} at "
            f"{at:%Y-%m-%dT%H:%M:%SZ}"
        )
        print(f"  error: {message['error']}")
        sealed_with = message.get("sealed_with")
        print(
            "  sealed with: "
            + ("the deployment key" if sealed_with is None else f"subject key {sealed_with}")
        )
        if message.get("unreadable"):
            print(f"  bytes: {message['unreadable']}")
            continue
        key = None if message["key_hex"] is None else bytes.fromhex(message["key_hex"])
        value = None if message["value_hex"] is None else bytes.fromhex(message["value_hex"])
        key_text = "-" if key is None else key.decode("utf-8", "replace")
        print(f"  key: {key_text}")
        print(
            f"  value ({0 if value is None else len(value)} bytes, hex): "
            f"{'-' if value is None else value.hex()}"
        )
    print(f"{len(args.approval)} quarantined message(s) in {_ledger_name(client)}")
    return 0


# -- erase-subject --------------------------------------------------------------------------
def erase_subject(args: argparse.Namespace, client: LedgerClient) -> int:
    """Ask the service for the erasure: it runs when another admin approves it."""
    # the service asks its own broker, about its own dead-letter topic
    refuse_file_options(args, "key_store", "actor", "bootstrap_servers", "dead_letter_topic")
    if args.approved_by is not None:
        raise DisclosureLedgerError(
            "--approved-by is for a ledger file (--ledger): through --server another admin "
            "approves the request (`disclosure-ledger approvals approve ID`)"
        )
    answer = client.post_json(
        "/erasures",
        {
            "subject_type": args.subject_type,
            "subject_id": args.subject_id,
            "reason": require_reason(args, "erase-subject"),
        },
    )
    for line in answer["lines"]:
        print(line)
    return 0


def dump_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    print()
