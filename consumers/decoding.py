"""Decode and classify a batch of message values into one Arrow record batch, in this
process or in worker processes the consumer starts.

This is the part of a batch that needs no ledger state: the Avro decode (fastavro), the
checks of :meth:`schemas.codec.EventCodec.decode_many`, the classification by the reference
data, the canonical JSON of each context, and the building of the columns. Its result,
:data:`DECODED` (one row per message, in the batch's order), is what
:meth:`consumers.pipeline.Ingestor.prepare` works from: deduplication, pseudonyms, context
encryption, sequence numbers, leaf and link hashes and the append stay in the process that
owns the ledger, so order within a partition, the chain links and the offsets committed with
the rows are decided there alone.

:class:`DecodePool` runs :func:`decode_batch` in ``workers`` processes, each a fresh
``python -m consumers.decoding`` on a pipe (not ``fork``: the consumer has threads, DuckDB's
and librdkafka's; not multiprocessing's ``spawn`` either, which would import the consumer's
whole ``__main__`` into each worker). A worker imports only pyarrow, fastavro, the schemas
and the reference data (about 70 MB resident), never DuckDB. Batches go out round robin as
pickled lists of bytes and come back as Arrow IPC streams, collected in the order they were
sent. A worker that dies makes the next result raise :class:`DecodeWorkerError`; nothing of
its batch was committed, so a restart reads it again. A worker whose consumer dies (even by
SIGKILL) sees its input end and exits.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from typing import IO, Any

import pyarrow as pa

from ledger.context_crypto import canonical_context
from reference import ReferenceData, classify
from reference.errors import ReferenceDataError
from schemas.codec import EventCodec
from schemas.errors import DecodeError
from schemas.watermark import Watermark

# What each row of DECODED is
EVENT = 0  # decoded and classified: the event columns are set
UNDECODABLE = 1  # ``error`` says why
UNCLASSIFIABLE = 2  # decoded, but the reference data refuses it: ``error``, and the subject
WATERMARK = 3  # ``watermark_source`` and ``watermark_at``

# The columns shared with ledger.store.DISCLOSURE_COLUMNS have its types (a unit test says
# so); that module is not imported here, so a worker process does not load DuckDB.
DECODED = pa.schema(
    [
        ("kind", pa.int8()),
        ("error", pa.string()),
        ("schema_version", pa.int32()),
        ("event_id", pa.string()),
        ("occurred_at", pa.timestamp("ms")),
        ("subject_type", pa.string()),
        ("subject_id", pa.string()),
        ("recipient_id", pa.string()),
        ("recipient_category", pa.string()),
        ("data_categories", pa.list_(pa.string())),
        ("purpose", pa.string()),
        ("legal_basis", pa.string()),
        ("legal_reference", pa.string()),
        ("disclosure_kind", pa.string()),
        ("producer_service", pa.string()),
        ("producer_version", pa.string()),
        ("context_text", pa.string()),  # the canonical JSON, encrypted by the ledger's owner
        ("ccpa_letters", pa.list_(pa.string())),
        ("business_purpose", pa.string()),
        ("sensitive", pa.bool_()),
        ("declared", pa.bool_()),
        ("class_flags", pa.list_(pa.string())),
        ("watermark_source", pa.string()),
        ("watermark_at", pa.int64()),
    ]
)


def decode_batch(
    codec: EventCodec, reference: ReferenceData, values: Sequence[bytes | None]
) -> pa.RecordBatch:
    """:data:`DECODED` for ``values``: one row per value, in order."""
    columns: dict[str, list[Any]] = {name: [] for name in DECODED.names}
    kind, error = columns["kind"], columns["error"]
    plain = [name for name in DECODED.names if name not in ("kind", "error")]
    event_columns = [columns[name] for name in plain]
    nulls = [None] * len(plain)

    def blank(k: int, why: str | None) -> None:
        kind.append(k)
        error.append(why)
        for column, null in zip(event_columns, nulls, strict=True):
            column.append(null)

    c = columns
    for outcome in codec.decode_many(values):
        if isinstance(outcome, DecodeError):
            blank(UNDECODABLE, str(outcome))
            continue
        if isinstance(outcome, Watermark):
            blank(WATERMARK, None)
            c["watermark_source"][-1] = outcome.source
            c["watermark_at"][-1] = outcome.watermark_at_ms
            continue
        version, record = outcome
        recipient, subject = record["recipient"], record["subject"]
        try:
            # memoised per (recipient, categories, purpose) inside reference: after the
            # first row of a combination, only its validity windows are looked at
            classification = classify(
                reference,
                recipient_id=recipient["id"],
                recipient_category=recipient["category"],
                data_categories=record["data_categories"],
                purpose=record["purpose"],
                occurred_at_ms=record["occurred_at"],
            )
        except ReferenceDataError as exc:
            blank(UNCLASSIFIABLE, str(exc))
            c["subject_type"][-1] = subject["type"]
            c["subject_id"][-1] = subject["id"]
            continue
        producer = record["producer"]
        kind.append(EVENT)
        error.append(None)
        c["schema_version"].append(version)
        c["event_id"].append(record["event_id"])
        c["occurred_at"].append(record["occurred_at"])
        c["subject_type"].append(subject["type"])
        c["subject_id"].append(subject["id"])
        c["recipient_id"].append(recipient["id"])
        c["recipient_category"].append(recipient["category"])
        c["data_categories"].append(record["data_categories"])
        c["purpose"].append(record["purpose"])
        c["legal_basis"].append(record["legal_basis"])
        # schema v2; v1 records read with the v2 reader schema carry its default
        c["legal_reference"].append(record.get("legal_reference"))
        c["disclosure_kind"].append(record["disclosure_kind"])
        c["producer_service"].append(producer["service"])
        c["producer_version"].append(producer["version"])
        c["context_text"].append(canonical_context(record["context"]))
        c["ccpa_letters"].append(classification.ccpa_letters)
        c["business_purpose"].append(classification.business_purpose)
        c["sensitive"].append(classification.sensitive)
        c["declared"].append(classification.declared)
        c["class_flags"].append(classification.flags)
        c["watermark_source"].append(None)
        c["watermark_at"].append(None)
    return pa.record_batch([pa.array(columns[f.name], f.type) for f in DECODED], schema=DECODED)


class DecodeWorkerError(RuntimeError):
    """A decode worker process died or failed; the batch it held was not committed."""


def _to_ipc(batch: pa.RecordBatch) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def _from_ipc(data: bytes) -> pa.RecordBatch:
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_next_batch()


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed frame; None at the end of the stream."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    return data if len(data) == size else None


def _write_frame(stream: IO[bytes], data: bytes | pa.Buffer) -> None:
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def _send_all(process: subprocess.Popen[bytes], outbox: queue.SimpleQueue[bytes | None]) -> None:
    """A sender thread: write each frame to the worker, until None (then close its input)
    or a broken pipe (the worker died: :meth:`DecodePool.result` says so)."""
    stdin = process.stdin
    assert stdin is not None
    try:
        while (frame := outbox.get()) is not None:
            _write_frame(stdin, frame)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            stdin.close()


def serve(requests_in: IO[bytes], results_out: IO[bytes]) -> None:
    """A worker: read (reference data, codec), then decode each batch it receives, until
    its input ends (the consumer closed it, or died) or None comes.

    A thread reads the requests as they come, so the consumer never blocks sending the next
    batch while this process is blocked sending a result (both ends writing: a deadlock)."""
    setup = _read_frame(requests_in)
    if setup is None:
        return
    reference, codec = pickle.loads(setup)
    requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def read() -> None:
        while True:
            frame = _read_frame(requests_in)
            requests.put(frame)
            if frame is None:
                return

    threading.Thread(target=read, name="requests", daemon=True).start()
    while True:
        request = requests.get()
        values = None if request is None else pickle.loads(request)
        if values is None:
            return
        try:
            reply: bytes | pa.Buffer = _to_ipc(decode_batch(codec, reference, values))
        except Exception as exc:  # sent back, raised by the consumer
            reply = b"!" + pickle.dumps(f"{type(exc).__name__}: {exc}")
        try:
            _write_frame(results_out, reply)
        except (BrokenPipeError, OSError):  # the consumer is gone
            return


def main() -> None:
    """``python -m consumers.decoding``: a decode worker on stdin and stdout."""
    # Ctrl-C reaches the whole process group; the consumer stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    results = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by accident can break the frames
    serve(sys.stdin.buffer, results)


class DecodePool:
    """``workers`` decode processes; :meth:`submit` batches and take their :meth:`result`\\ s
    in the same order."""

    def __init__(self, workers: int, reference: ReferenceData, codec: EventCodec) -> None:
        if workers < 1:
            raise ValueError(f"a decode pool needs at least one worker, not {workers}")
        self.workers = workers
        self._processes: list[subprocess.Popen[bytes]] = []
        # One sender thread per worker: writing a batch (about 1 MB for 5,000 events) takes
        # as long as the worker's reader thread needs to drain the pipe 64 KB at a time,
        # each time it gets the GIL from the decoding thread; the consumer goes on meanwhile.
        self._outboxes: list[queue.SimpleQueue[bytes | None]] = []
        self._senders: list[threading.Thread] = []
        self._pending: deque[int] = deque()  # worker of each batch sent, oldest first
        self._next = 0
        setup = pickle.dumps((reference, codec), pickle.HIGHEST_PROTOCOL)
        try:
            for _ in range(workers):
                process = subprocess.Popen(
                    [sys.executable, "-m", "consumers.decoding"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                self._processes.append(process)
                outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
                outbox.put(setup)
                sender = threading.Thread(
                    target=_send_all, args=(process, outbox), name="decode-sender", daemon=True
                )
                sender.start()
                self._outboxes.append(outbox)
                self._senders.append(sender)
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]

    def submit(self, values: Sequence[bytes | None]) -> None:
        worker = self._next
        self._next = (worker + 1) % self.workers
        if not self._senders[worker].is_alive():  # it stops when the worker's pipe breaks
            raise self._died(worker)
        self._outboxes[worker].put(pickle.dumps(list(values), pickle.HIGHEST_PROTOCOL))
        self._pending.append(worker)

    def result(self) -> pa.RecordBatch:
        """The decoded batch of the oldest :meth:`submit` not yet taken."""
        worker = self._pending.popleft()
        stdout = self._processes[worker].stdout
        assert stdout is not None
        data = _read_frame(stdout)
        if data is None:
            raise self._died(worker)
        if data[:1] == b"!":
            raise DecodeWorkerError(
                f"decode worker {worker} failed: {pickle.loads(data[1:])}; nothing of its "
                "batch was committed, and the consumer resumes there when started again"
            )
        return _from_ipc(data)

    def discard(self) -> None:
        """Forget the batches sent and not yet taken (after a failure: they are void)."""
        while self._pending:
            with contextlib.suppress(DecodeWorkerError):
                self.result()

    def _died(self, worker: int) -> DecodeWorkerError:
        process = self._processes[worker]
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.5)
        return DecodeWorkerError(
            f"decode worker {worker} (pid {process.pid}) exited with code "
            f"{process.returncode}; nothing of its batch was committed, and the consumer "
            "resumes there when started again (DISCLOSURE_LEDGER_INGEST_WORKERS=0 decodes "
            "in the consumer's own process)"
        )

    def close(self) -> None:
        self.discard()  # a worker blocked sending a result would not read its stop
        for outbox in self._outboxes:
            outbox.put(None)  # the sender closes the worker's input: the worker exits
        for sender in self._senders:
            sender.join(10.0)
        for process in self._processes:
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5.0)
            if process.stdout is not None:
                process.stdout.close()
        self._processes, self._outboxes, self._senders = [], [], []
        self._pending.clear()


if __name__ == "__main__":
    main()
