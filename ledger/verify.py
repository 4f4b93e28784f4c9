"""Recompute every leaf and link of every chain, check every checkpoint, account for every
offset, and report every failure with its chain, sequence and kind.

How it stays fast on a large ledger: one scan reads the rows in the order they were appended
(which is sequence order within each chain, as the consumer appends them) and recomputes
the leaves and checks links, sequence numbers and offset order with the native helper
``ledger._leafhash`` (the encoding of :mod:`ledger.chain`, SHA-256 of many rows at once with
the fastest engine the CPU has: AVX-512, SHA-NI or OpenSSL; the GIL released).

* On a ledger opened read-only (as ``disclosure-ledger verify`` opens it) the helper checks
  the rows inside DuckDB's own scan, through DuckDB's C API (``ledger/_duckscan.c``): a
  second, read-only DuckDB instance of the file calls a function of the helper with each
  vector of rows, and workers (one a core) check consecutive ranges of rows side by side.
  Chains that cross from one range to the next are linked here.
* Otherwise, or where that cannot run or cannot read a value as the type it expects (a
  column whose type was altered), rows are exported to Arrow batches, read one batch ahead
  by a second thread, and checked batch by batch. Without the helper the same checks
  run in pure Python, slower.

Only a chain in which something is wrong is read again, in sequence order, to say precisely
what: a row altered, deleted, inserted, or rows reordered. Checkpoints are then checked
against the chains (truncated below a checkpoint, rewritten since one, bad signature) and
the offsets accounted for.

Failure kinds: ``row altered``, ``row deleted``, ``row inserted``, ``rows reordered``,
``chain truncated below a checkpoint``, ``chain rewritten since a checkpoint``, ``bad
signature``, ``offset missing``, ``offset doubled``, ``offset beyond stored position``,
``derived data altered`` (what :mod:`ledger.derived` keeps beside the hashed columns for
fast reports disagrees with them).
"""

from __future__ import annotations

import importlib.util
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.chain import (
    GENESIS,
    LEAF_FIELDS,
    LEAF_TYPES,
    NATIVE,
    leaf_hash,
    link_hash,
)
from ledger.chain import column_spec as _spec
from ledger.chain import native as _native
from ledger.checkpoints import Checkpoint, ledger_checkpoint_lines, parse_checkpoint
from ledger.derived import DERIVED_COLUMNS, check_derived
from ledger.errors import LedgerError
from ledger.store import Ledger

# How each leaf field is read back from its column, as the encoding needs it.
_READ_AS = {
    "event_id": "event_id::VARCHAR",
    "occurred_at_ms": "epoch_ms(occurred_at)",
    "ingested_at_ms": "epoch_ms(ingested_at)",
    "kafka_partition": "kafka_partition::BIGINT",
    "schema_version": "schema_version::BIGINT",
}
LEAF_SELECT = ", ".join(f"{_READ_AS.get(name, name)} AS {name}" for name in LEAF_FIELDS)
# The native scan reads the two times as stored (microseconds) and the helper divides:
# DuckDB's epoch_ms costs ten times the reading of the column itself.
_NATIVE_READ_AS = {**_READ_AS, "occurred_at_ms": "occurred_at", "ingested_at_ms": "ingested_at"}
NATIVE_SELECT = ", ".join(f"{_NATIVE_READ_AS.get(n, n)} AS {n}" for n in LEAF_FIELDS)

_T = TypeVar("_T")

# The scan inside DuckDB: rows a worker checks at a time (four of DuckDB's row groups, so
# ranges start where groups do), and how many workers check side by side: one a core this
# process may run on, up to eight.
RANGE_ROWS = 4 * 122_880
DUCK_WORKERS = max(1, min(8, len(os.sched_getaffinity(0))))

# Where checkpoint failures are reported, in place of a chain id.
CHECKPOINTS = "checkpoints"
# Where failures of derived data that belongs to no chain are reported.
DERIVED = "derived data"


@dataclass(frozen=True)
class Failure:
    chain_id: str
    seq: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.chain_id} seq {self.seq}" if self.seq is not None else self.chain_id
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class VerifyResult:
    rows: int = 0
    chains: dict[str, tuple[int, str]] = field(default_factory=dict)  # chain -> (length, head)
    failures: list[Failure] = field(default_factory=list)
    checkpoints: int = 0  # checkpoint lines checked against the chains
    signatures_checked: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class CheckpointSource:
    """Checkpoint lines and where they came from (for the failure messages)."""

    name: str
    lines: Sequence[str]


def verify_ledger(
    ledger: Ledger,
    *,
    checkpoints: Sequence[CheckpointSource] = (),
    public_key: Ed25519PublicKey | None = None,
    batch_rows: int = 65_536,
    progress: Callable[[int, int], None] | None = None,
    native: bool | None = None,
    through_duckdb: bool | None = None,
    range_rows: int = RANGE_ROWS,
) -> VerifyResult:
    """Verify ``ledger``; ``progress(rows_done, rows_total)`` is called as rows are checked.

    ``checkpoints`` are checked in addition to the ledger's own ``checkpoints`` table;
    signatures are checked when ``public_key`` is given (else a note says they were not).
    ``native=False`` checks in pure Python. ``through_duckdb`` chooses the scan inside
    DuckDB (``range_rows`` a range) over the Arrow one (``batch_rows`` a batch); by default
    it is used where it can run: with the native helper, on a ledger opened read-only.
    """
    result = VerifyResult()
    use_native = NATIVE if native is None else native and NATIVE
    scan: _Scan | _DuckScan | None = None
    usable = _DuckScan.usable(ledger, use_native)
    if through_duckdb and not usable:
        raise LedgerError(
            "the scan inside DuckDB needs the native helper and a ledger opened read-only"
        )
    if usable if through_duckdb is None else through_duckdb:
        scan = _DuckScan(ledger, range_rows)
        try:
            if not scan.run(progress):
                scan = None  # it could not run here: the Arrow scan checks instead
        except LedgerError as exc:
            # DuckDB could not give the scan a value as the type it reads (a column whose
            # type was altered, say): the Arrow scan reads every value as it is stored
            result.notes.append(f"read through Arrow batches instead of inside DuckDB: {exc}")
            scan = None
    if scan is None:
        scan = _Scan(ledger, use_native)
        scan.run(batch_rows, progress)
    result.rows = scan.rows
    for chain in sorted(scan.chains):
        state = scan.chains[chain]
        if state.dirty:
            _diagnose_chain(ledger, chain, scan.leaf_bad.get(chain, set()), result, use_native)
        else:
            result.chains[chain] = (state.seq, state.head.hex())
            for seq, _ in sorted(scan.leaf_bad.get(chain, set())):
                result.failures.append(_altered(chain, seq))
    for chain, seq in scan.derived_bad:
        result.failures.append(
            Failure(
                chain,
                seq,
                "derived data altered",
                "ccpa_mask or subject_key does not follow from the row's ccpa_letters and "
                "subject_pseudonym",
            )
        )
    _verify_whole_milliseconds(ledger, result)
    for where, at, detail in check_derived(ledger, rows=not scan.derived):
        result.failures.append(Failure(where or DERIVED, at, "derived data altered", detail))
    sources = [CheckpointSource("the ledger's checkpoints table", ledger_checkpoint_lines(ledger))]
    _verify_checkpoints(ledger, [*sources, *checkpoints], public_key, result)
    clean = not scan.leaf_bad and not any(state.dirty for state in scan.chains.values())
    _verify_offsets(ledger, result, accepted_unique=clean)
    return result


# -- the streaming scan ------------------------------------------------------------------
@dataclass
class _ChainState:
    seq: int = 0
    offset: int = -1
    head: bytes = GENESIS
    dirty: bool = False  # something is out of order or unlinked: diagnose in seq order


class _Scan:
    def __init__(self, ledger: Ledger, native: bool) -> None:
        self.ledger = ledger
        self.native = native
        self.rows = 0
        self.chains: dict[str, _ChainState] = {}
        self.leaf_bad: dict[str, set[tuple[int, int]]] = {}  # chain -> {(seq, offset)}
        self.pool: ThreadPoolExecutor | None = None
        self.derived = native and _has_derived(ledger)
        self.derived_bad: list[tuple[str, int]] = []
        derived = ", subject_key, ccpa_mask::BIGINT AS ccpa_mask" if self.derived else ""
        # Every row, in the order it was appended; what _batch takes.
        select = NATIVE_SELECT if native else LEAF_SELECT
        self.sql = f"SELECT {select}, leaf_hash, chain_hash{derived} FROM disclosures"

    def run(self, batch_rows: int, progress: Callable[[int, int], None] | None) -> None:
        total = int(self.ledger.con.execute("SELECT count(*) FROM disclosures").fetchall()[0][0])
        reader = self.ledger.con.sql(self.sql).to_arrow_reader(batch_rows)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify") as pool:
            self.pool = pool
            for batch in _read_ahead(reader):
                self._batch(batch)
                self.rows += batch.num_rows
                if progress is not None:
                    progress(self.rows, total)

    def _batch(self, batch: pa.RecordBatch) -> None:
        batch = _unsliced(batch)
        encoded = pc.dictionary_encode(batch.column(0))
        names = [str(c) for c in encoded.dictionary.to_pylist()]
        states = [self.chains.setdefault(name, _ChainState()) for name in names]
        seq, offset, leaf, link = (batch.column(i) for i in _LINK_COLUMNS)
        codes = encoded.indices
        # Links and order need only the stored hashes, so they are checked on another
        # thread while the leaves are recomputed here; every step releases the GIL.
        links = self._later(
            _check_links, batch.num_rows, codes, seq, offset, leaf, link, states, self.native
        )
        derived = self._later(self._derived_mismatches, batch) if self.derived else None
        bad_leaves = self._leaf_mismatches(batch)
        if derived is not None:
            self.derived_bad += [
                (names[codes[i].as_py()], seq[i].as_py()) for i in derived.result()
            ]
        bad_links, bad_order = links.result()
        for index in bad_leaves:
            self.leaf_bad.setdefault(names[codes[index].as_py()], set()).add(
                (seq[index].as_py(), offset[index].as_py())
            )
        for index in {*bad_links, *bad_order}:
            states[codes[index].as_py()].dirty = True  # read it again, in seq order

    def _later(self, work: Callable[..., _T], *args: Any) -> Future[_T]:
        """``work(*args)`` on the pool, or now when the scan has none."""
        if self.pool is not None:
            return self.pool.submit(work, *args)
        done: Future[_T] = Future()
        done.set_result(work(*args))
        return done

    def _derived_mismatches(self, batch: pa.RecordBatch) -> list[int]:
        first = len(LEAF_FIELDS)
        pseudonyms = batch.column(LEAF_FIELDS.index("subject_pseudonym"))
        letters = batch.column(LEAF_FIELDS.index("ccpa_letters"))
        keys, masks = batch.column(first + 2), batch.column(first + 3)
        keys_spec = (2, None if keys.null_count == 0 else keys.buffers()[0], keys.buffers()[1])
        found: list[int] = _native.derived_mismatches(
            _spec(pseudonyms), _spec(letters), keys_spec, _spec(masks), batch.num_rows
        )
        return found

    def _leaf_mismatches(self, batch: pa.RecordBatch) -> list[int]:
        n = batch.num_rows
        if not self.native:
            rows = batch.to_pylist()
            return [i for i, row in enumerate(rows) if leaf_hash(row) != row["leaf_hash"]]
        specs = [_spec(batch.column(i)) for i in range(len(LEAF_FIELDS))]
        stored = _spec(batch.column(len(LEAF_FIELDS)))
        # Two halves on two threads: the helper releases the GIL while it hashes.
        half = n // 2
        if self.pool is None or half < 4096:
            return list(_native.leaf_mismatches(specs, n, stored, 0, n))
        low = self.pool.submit(_native.leaf_mismatches, specs, n, stored, 0, half)
        high: list[int] = _native.leaf_mismatches(specs, n, stored, half, n)
        return [*low.result(), *high]


_LINK_COLUMNS = (1, 4, len(LEAF_FIELDS), len(LEAF_FIELDS) + 1)  # seq, offset, leaf, link


def _has_derived(ledger: Ledger) -> bool:
    """Whether the ledger has the derived columns (ledger/derived.py). A scan with the native
    helper checks them when it has; else check_derived does it in SQL."""
    columns = {
        str(r[0])
        for r in ledger.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'disclosures'"
        ).fetchall()
    }
    return set(DERIVED_COLUMNS) <= columns


# The scan inside DuckDB (ledger/_duckscan.c): each leaf field read as the type its encoding
# reads, and the helper's kind for that type.
_K_INT, _K_MS, _K_TEXT, _K_LIST, _K_BOOL, _K_UUID = 2, 5, 6, 7, 8, 9
_DUCK_READ: dict[str, tuple[str, int]] = {
    "event_id": ("event_id::UUID", _K_UUID),
    "occurred_at_ms": ("occurred_at::TIMESTAMP", _K_MS),
    "ingested_at_ms": ("ingested_at::TIMESTAMP", _K_MS),
}
for _name, _type in LEAF_TYPES.items():
    if _name not in _DUCK_READ:
        _DUCK_READ[_name] = (
            (f"{_name}::BIGINT", _K_INT)
            if pa.types.is_int64(_type)
            else (f"{_name}::BOOLEAN", _K_BOOL)
            if pa.types.is_boolean(_type)
            else (f"{_name}::VARCHAR[]", _K_LIST)
            if pa.types.is_list(_type)
            else (f"{_name}::VARCHAR", _K_TEXT)
        )
_DUCK_STORED = [("leaf_hash::BLOB", _K_TEXT), ("chain_hash::BLOB", _K_TEXT)]
_DUCK_DERIVED = [("subject_key::UBIGINT", _K_INT), ("ccpa_mask::BIGINT", _K_INT)]
_DUCK_AT = tuple(
    LEAF_FIELDS.index(name)
    for name in ("chain_id", "seq", "kafka_offset", "subject_pseudonym", "ccpa_letters")
)


class _DuckScan:
    """The checks of :class:`_Scan`, made by the native helper inside DuckDB's scan.

    ``DUCK_WORKERS`` workers check ranges of ``range_rows`` rows (by rowid: storage order)
    side by side; each range returns its chains' first and last rows, and chains are linked
    across ranges here, in range order, as :func:`_check_links` links them across batches.
    """

    @staticmethod
    def usable(ledger: Ledger, native: bool) -> bool:
        return native and ledger.read_only and hasattr(_native, "duckscan_open")

    def __init__(self, ledger: Ledger, range_rows: int) -> None:
        self.ledger = ledger
        self.range_rows = max(1, range_rows)
        self.rows = 0
        self.chains: dict[str, _ChainState] = {}
        self.leaf_bad: dict[str, set[tuple[int, int]]] = {}
        self.derived = _has_derived(ledger)
        self.derived_bad: list[tuple[str, int]] = []
        read = [_DUCK_READ[name] for name in LEAF_FIELDS] + _DUCK_STORED
        if self.derived:
            read += _DUCK_DERIVED
        self.columns = ", ".join(["rowid", *(sql for sql, _ in read)])
        self.kinds = [kind for _, kind in read]

    def run(self, progress: Callable[[int, int], None] | None) -> bool:
        """Check every row; False (and nothing checked) when DuckDB's C API is not there."""
        counted, last = self.ledger.con.execute(
            "SELECT count(*), max(rowid) FROM disclosures"
        ).fetchall()[0]
        total = int(counted)
        ranges = range(0, -1 if last is None else int(last) + 1, self.range_rows)
        module = importlib.util.find_spec("_duckdb")
        try:
            scan = self.ledger.companion(
                "verify scan",
                lambda: _native.duckscan_open(
                    module.origin if module else "_duckdb",
                    str(self.ledger.path),
                    DUCK_WORKERS,
                    self.kinds,
                    _DUCK_AT,
                    self.derived,
                ),
                _native.duckscan_close,
            )
        except RuntimeError:
            return False
        free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for worker in range(DUCK_WORKERS):
            free.put(worker)

        def check(low: int) -> Any:
            worker = free.get()
            try:
                return _native.duckscan_run(
                    scan,
                    worker,
                    f"SELECT count(_ledger_verify_{worker}({self.columns})) FROM disclosures "
                    f"WHERE rowid >= {low} AND rowid < {low + self.range_rows}",
                )
            except RuntimeError as exc:
                raise LedgerError(f"cannot read the ledger: {exc}") from exc
            finally:
                free.put(worker)

        with ThreadPoolExecutor(DUCK_WORKERS, thread_name_prefix="verify") as pool:
            try:
                for checked in [pool.submit(check, low) for low in ranges]:
                    self._take(checked.result())
                    if progress is not None:
                        progress(self.rows, total)
            except BaseException:
                # a failed range, a failing progress callback, Ctrl-C: the ranges not yet
                # started are dropped, so only those running are waited for
                pool.shutdown(cancel_futures=True)
                raise
        return True

    def _take(self, checked: tuple[int, list[Any], list[Any], list[Any]]) -> None:
        """One range's findings, after those of the ranges before it."""
        rows, chains, bad_leaves, bad_derived = checked
        self.rows += rows
        for chain, dirty, (seq, offset, leaf, link), (last_seq, last_offset, head) in chains:
            state = self.chains.setdefault(chain, _ChainState())
            linked = (
                seq == state.seq + 1
                and offset > state.offset
                and leaf is not None
                and link is not None
                and link_hash(state.head, leaf) == link
            )
            state.dirty = state.dirty or dirty or not linked
            state.seq, state.offset, state.head = last_seq, last_offset, head
        for chain, seq, offset in bad_leaves:
            self.leaf_bad.setdefault(chain, set()).add((seq, offset))
        self.derived_bad += bad_derived


def _read_ahead(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """Batches from ``reader``, read one ahead on another thread so DuckDB keeps working."""
    batches: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            for batch in reader:
                batches.put(batch)
        except BaseException as exc:  # handed to the consumer, raised there
            batches.put(exc)
            return
        batches.put(None)

    thread = threading.Thread(target=produce, name="verify-reader", daemon=True)
    thread.start()
    while True:
        item = batches.get()
        if item is None:
            break
        if isinstance(item, BaseException):
            raise LedgerError(f"cannot read the ledger: {item}") from item
        yield item
    thread.join()


def _unsliced(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with every column starting at offset 0, as the helper reads buffers raw.

    (``combine_chunks`` of a single chunk returns it unchanged, offset and all, so each
    sliced column is copied.)"""
    if all(column.offset == 0 for column in batch.columns):
        return batch
    columns = [pa.concat_arrays([c]) if c.offset else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _verify_whole_milliseconds(ledger: Ledger, result: VerifyResult) -> None:
    """The leaf encodes times in milliseconds, so a sub-millisecond part is an edit."""
    rows = ledger.con.execute(
        "SELECT chain_id, seq FROM disclosures WHERE epoch_us(occurred_at) % 1000 <> 0 "
        "OR epoch_us(ingested_at) % 1000 <> 0 ORDER BY ALL"
    ).fetchall()
    for chain, seq in rows:
        result.failures.append(
            Failure(
                str(chain),
                int(seq),
                "row altered",
                "a timestamp has a sub-millisecond part; the consumer writes whole milliseconds",
            )
        )


# -- diagnosis of a chain that is out of order or unlinked ---------------------------------
def _altered(chain: str, seq: int) -> Failure:
    return Failure(
        chain, seq, "row altered", "the row's content does not match its stored leaf hash"
    )


def _diagnose_chain(
    ledger: Ledger,
    chain: str,
    leaf_bad: set[tuple[int, int]],
    result: VerifyResult,
    native: bool,
) -> None:
    """Read one chain in seq order and say what is wrong with it, row by row."""
    table = (
        ledger.con.sql(
            "SELECT seq, kafka_offset, leaf_hash, chain_hash FROM disclosures "
            f"WHERE chain_id = {_quote(chain)} ORDER BY seq, kafka_offset"
        )
        .to_arrow_table()
        .combine_chunks()
    )
    n = table.num_rows
    seq_col, offset_col = table.column("seq").chunk(0), table.column("kafka_offset").chunk(0)
    leaf_col, link_col = table.column("leaf_hash").chunk(0), table.column("chain_hash").chunk(0)
    zeros = pa.array([0] * n, pa.int32())
    bad_links, bad_order = _check_links(
        n, zeros, seq_col, offset_col, leaf_col, link_col, [_ChainState()], native
    )

    def seq_at(i: int) -> int:
        return int(seq_col[i].as_py()) if i >= 0 else 0

    def offset_at(i: int) -> int:
        return int(offset_col[i].as_py()) if i >= 0 else -1

    failures: list[Failure] = []
    explained: set[int] = set()  # positions whose link failure a finding already explains
    excused_leaf: set[tuple[int, int]] = set()
    for i in bad_order:
        seq, offset, previous_seq = seq_at(i), offset_at(i), seq_at(i - 1)
        if seq == previous_seq:
            failures.append(Failure(chain, seq, "row inserted", f"a second row numbered seq {seq}"))
            explained.update((i, i + 1))
            excused_leaf.add((seq, offset))
        elif seq > previous_seq + 1:
            gap = (
                f"seq {previous_seq + 1}"
                if seq == previous_seq + 2
                else f"seqs {previous_seq + 1} to {seq - 1}"
            )
            failures.append(
                Failure(chain, previous_seq + 1, "row deleted", f"{gap} missing before seq {seq}")
            )
            explained.add(i)
        elif offset == offset_at(i - 1):
            failures.append(
                Failure(
                    chain,
                    seq,
                    "row inserted",
                    f"claims Kafka offset {offset}, which seq {previous_seq} already holds",
                )
            )
            explained.update((i, i + 1))
            excused_leaf.add((seq, offset))
    if bad_order:
        reordered = _reordered(ledger, chain, table)
        if reordered is not None:
            failure, positions, intact = reordered
            failures.append(failure)
            for position in positions:
                explained.update((position, position + 1))
                if intact:
                    excused_leaf.add((seq_at(position), offset_at(position)))
    failed_links = set(bad_links)
    for i in bad_links:
        if i + 1 in failed_links and (seq_at(i), offset_at(i)) not in leaf_bad:
            explained.add(i + 1)  # only row i's stored chain hash changed: i + 1 follows it
    for i in bad_links:
        if i not in explained:
            failures.append(
                Failure(
                    chain,
                    seq_at(i),
                    "row altered",
                    f"its chain hash does not follow from seq {seq_at(i - 1)} and its leaf: "
                    "this row or the one before it was replaced with recomputed hashes",
                )
            )
    for seq, _ in leaf_bad - excused_leaf:
        failures.append(_altered(chain, seq))
    failures.sort(key=lambda f: (f.seq or 0, f.kind))
    result.failures.extend(failures)
    head = bytes(link_col[n - 1].as_py()) if n else GENESIS
    result.chains[chain] = (seq_at(n - 1) if n else 0, head.hex())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_SLOT = struct.Struct("=qq32s")  # a chain's state for the helper: seq, offset, hash


def _check_links(
    n: int,
    codes: pa.Array,
    seq: pa.Array,
    offset: pa.Array,
    leaf: pa.Array,
    link: pa.Array,
    states: Sequence[_ChainState],
    native: bool,
) -> tuple[list[int], list[int]]:
    """Rows (in the order given, row i of chain ``states[codes[i]]``) whose link fails, and
    whose seq does not follow the previous by one or whose offset does not exceed the
    previous; ``states`` are left as they are after the last row."""
    if native:
        packed = bytearray(b"".join(_SLOT.pack(st.seq, st.offset, st.head) for st in states))
        if not pa.types.is_int32(codes.type) or codes.offset:
            raise LedgerError("chain codes must be an unsliced int32 array")
        codes_spec = (2, None, codes.buffers()[1])  # int32, read as such by link_check
        bad_links, bad_order = _native.link_check(
            n, codes_spec, _spec(seq), _spec(offset), _spec(leaf), _spec(link), packed
        )
        for i, state in enumerate(states):
            state.seq, state.offset, state.head = _SLOT.unpack_from(packed, i * _SLOT.size)
        return list(bad_links), list(bad_order)
    bad_links, bad_order = [], []
    for i, (c, s, o, lf, ch) in enumerate(
        zip(
            codes.to_pylist(),
            seq.to_pylist(),
            offset.to_pylist(),
            leaf.to_pylist(),
            link.to_pylist(),
            strict=True,
        )
    ):
        state = states[c]
        if s != state.seq + 1 or o <= state.offset:
            bad_order.append(i)
        if link_hash(state.head, lf) != ch:
            bad_links.append(i)
        state.seq, state.offset, state.head = s, o, ch
    return bad_links, bad_order


def _reordered(
    ledger: Ledger, chain: str, table: pa.Table
) -> tuple[Failure, list[int], bool] | None:
    """Rows whose place in seq order differs from their place in Kafka offset order."""
    by_offset = pc.sort_indices(
        table, sort_keys=[("kafka_offset", "ascending"), ("seq", "ascending")]
    )
    ranks = pa.array(range(table.num_rows), pa.uint64())
    displaced_ranks = pc.indices_nonzero(pc.not_equal(by_offset, ranks)).to_pylist()
    if not displaced_ranks:
        return None
    order = by_offset.to_pylist()
    displaced = sorted(order[r] for r in displaced_ranks)
    seqs = table.column("seq")
    offsets = table.column("kafka_offset")
    leaves = table.column("leaf_hash")
    links = table.column("chain_hash")
    shown = ", ".join(str(seqs[p].as_py()) for p in displaced[:10])
    more = f" and {len(displaced) - 10} more" if len(displaced) > 10 else ""
    failure = Failure(
        chain,
        int(seqs[displaced[0]].as_py()),
        "rows reordered",
        f"rows at seq {shown}{more} are not in Kafka offset order",
    )
    # Were the rows only moved? Then in offset order, numbered by their rank, every leaf and
    # link over the displaced stretch holds as it was written.
    first, last = min(displaced_ranks), max(displaced_ranks)
    stretch = order[first : last + 1]
    keys = [(int(seqs[p].as_py()), int(offsets[p].as_py())) for p in stretch]
    rows = _full_rows(ledger, chain, keys)
    previous = bytes(links[first - 1].as_py()) if first else GENESIS
    intact = True
    for rank, (position, key) in enumerate(zip(stretch, keys, strict=True), start=first):
        row = rows.get(key)
        leaf, link = bytes(leaves[position].as_py()), bytes(links[position].as_py())
        if row is None:
            intact = False
            break
        row["seq"] = int(seqs[rank].as_py())
        if leaf_hash(row) != leaf or link_hash(previous, leaf) != link:
            intact = False
            break
        previous = link
    return failure, displaced, intact


def _full_rows(
    ledger: Ledger, chain: str, wanted: list[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, Any]]:
    probe = pa.table(
        {
            "seq": pa.array([s for s, _ in wanted], pa.int64()),
            "kafka_offset": pa.array([o for _, o in wanted], pa.int64()),
        }
    )
    ledger.con.register("_verify_probe", probe)
    try:
        table = ledger.con.sql(
            f"SELECT {LEAF_SELECT} FROM disclosures d SEMI JOIN _verify_probe p "
            "ON d.seq = p.seq AND d.kafka_offset = p.kafka_offset "
            f"WHERE d.chain_id = {_quote(chain)}"
        ).to_arrow_table()
    finally:
        ledger.con.unregister("_verify_probe")
    return {(row["seq"], row["kafka_offset"]): row for row in table.to_pylist()}


# -- checkpoints -------------------------------------------------------------------------
def _verify_checkpoints(
    ledger: Ledger,
    sources: Sequence[CheckpointSource],
    public_key: Ed25519PublicKey | None,
    result: VerifyResult,
) -> None:
    trusted: dict[str, tuple[Checkpoint, str]] = {}  # line -> (checkpoint, where)
    for source in sources:
        for number, line in enumerate(source.lines, start=1):
            where = f"{source.name}, checkpoint {number}"
            if line in trusted:
                continue
            try:
                checkpoint = parse_checkpoint(line)
            except LedgerError as exc:
                result.failures.append(
                    Failure(CHECKPOINTS, None, "bad signature", f"{where} is malformed: {exc}")
                )
                continue
            if public_key is not None:
                problem = checkpoint.verify(public_key)
                if problem is not None:
                    result.failures.append(
                        Failure(
                            CHECKPOINTS,
                            None,
                            "bad signature",
                            f"{where} ({checkpoint.at}): {problem}",
                        )
                    )
                    continue
            trusted[line] = (checkpoint, where)
    result.signatures_checked = public_key is not None
    result.checkpoints = len(trusted)
    if trusted and public_key is None:
        result.notes.append(
            f"{len(trusted)} checkpoint(s) compared with the chains but their signatures were "
            "NOT checked: pass --public-key"
        )
    heads = [
        (head.chain_id, head.length, head.head, checkpoint.at, where)
        for checkpoint, where in trusted.values()
        for head in checkpoint.heads
        if head.length > 0
    ]
    if not heads:
        return
    probe = pa.table(
        {
            "chain_id": pa.array([h[0] for h in heads], pa.string()),
            "length": pa.array([h[1] for h in heads], pa.int64()),
            "position": pa.array(list(range(len(heads))), pa.int64()),
        }
    )
    ledger.con.register("_verify_heads", probe)
    try:
        found = ledger.con.execute(
            "SELECT p.position, list(d.chain_hash) FILTER (WHERE d.chain_hash IS NOT NULL) "
            "FROM _verify_heads p LEFT JOIN disclosures d "
            "ON d.chain_id = p.chain_id AND d.seq = p.length GROUP BY p.position"
        ).fetchall()
    finally:
        ledger.con.unregister("_verify_heads")
    at_length = {int(pos): [bytes(h) for h in (hashes or [])] for pos, hashes in found}
    matched: dict[str, list[tuple[int, str]]] = {}
    problems: list[tuple[int, str, int, bytes, str, str]] = []
    for position, (chain, length, head, at, where) in enumerate(heads):
        if head in at_length.get(position, []):
            matched.setdefault(chain, []).append((length, at))
        else:
            problems.append((position, chain, length, head, at, where))
    reported: set[tuple[str, str, int]] = set()
    for _, chain, length, head, at, where in sorted(problems, key=lambda p: (p[1], p[2])):
        current = result.chains.get(chain, (0, GENESIS.hex()))[0]
        good = [m for m in matched.get(chain, []) if m[0] < length]
        since = (
            f"; rows up to seq {max(good)[0]} still match the checkpoint of {max(good)[1]}"
            if good
            else ""
        )
        if current < length:
            kind = "chain truncated below a checkpoint"
            seq = current + 1
            detail = (
                f"{where} ({at}) recorded {length} rows with head {head.hex()[:16]}…; the "
                f"ledger holds {current}{since}"
            )
        else:
            kind = "chain rewritten since a checkpoint"
            seq = length
            detail = (
                f"{where} ({at}) recorded head {head.hex()[:16]}… at seq {length}; the row "
                f"there now has another chain hash{since}"
            )
        key = (chain, kind, seq)
        if key in reported:
            continue
        reported.add(key)
        result.failures.append(Failure(chain, seq, kind, detail))


# -- offsets -----------------------------------------------------------------------------
_ACCOUNTING = """
WITH accounted AS (
    SELECT topic, kafka_partition, kafka_offset, 'accepted' AS outcome FROM disclosures
    UNION ALL SELECT topic, kafka_partition, kafka_offset, 'duplicate' FROM duplicates
    UNION ALL SELECT topic, kafka_partition, kafka_offset, 'quarantined' FROM quarantine
),
doubled AS (
    SELECT topic, kafka_partition, kafka_offset, string_agg(outcome, ', ') AS outcomes
    FROM accounted GROUP BY ALL HAVING count(*) > 1
),
ordered AS (
    SELECT DISTINCT topic, kafka_partition, kafka_offset FROM accounted
),
gaps AS (
    SELECT topic, kafka_partition, kafka_offset + 1 AS gap_from, next - 1 AS gap_to
    FROM (SELECT *, lead(kafka_offset) OVER (PARTITION BY topic, kafka_partition
                                             ORDER BY kafka_offset) AS next FROM ordered)
    WHERE next > kafka_offset + 1
),
bounds AS (
    SELECT o.topic, o.kafka_partition, o.next_offset, max(a.kafka_offset) AS last_seen
    FROM offsets o LEFT JOIN ordered a USING (topic, kafka_partition) GROUP BY ALL
)
SELECT 'offset doubled', topic, kafka_partition, kafka_offset, kafka_offset, outcomes
FROM doubled
UNION ALL
SELECT 'offset missing', topic, kafka_partition, gap_from, gap_to, '' FROM gaps
UNION ALL
SELECT 'offset missing', topic, kafka_partition, coalesce(last_seen + 1, 0), next_offset - 1, ''
FROM bounds WHERE coalesce(last_seen + 1, 0) < next_offset
UNION ALL
SELECT 'offset beyond stored position', topic, kafka_partition, next_offset, last_seen, ''
FROM bounds WHERE last_seen >= next_offset
ORDER BY 2, 3, 4
"""


_ALL_ACCOUNTED = """
WITH counted AS (
    SELECT topic, kafka_partition, count(*) AS n, min(kafka_offset) AS lo,
           max(kafka_offset) AS hi FROM disclosures GROUP BY ALL
    UNION ALL SELECT topic, kafka_partition, count(*), min(kafka_offset), max(kafka_offset)
    FROM duplicates GROUP BY ALL
    UNION ALL SELECT topic, kafka_partition, count(*), min(kafka_offset), max(kafka_offset)
    FROM quarantine GROUP BY ALL
),
per AS (SELECT topic, kafka_partition, sum(n) AS n, min(lo) AS lo, max(hi) AS hi
        FROM counted GROUP BY ALL),
small AS (SELECT topic, kafka_partition, kafka_offset FROM duplicates
          UNION ALL SELECT topic, kafka_partition, kafka_offset FROM quarantine)
SELECT
    (SELECT count(*) FROM per FULL JOIN offsets o USING (topic, kafka_partition)
     WHERE per.n IS NULL OR o.next_offset IS NULL OR per.n <> per.hi - per.lo + 1
        OR per.hi + 1 <> o.next_offset)
  + (SELECT count(*) FROM (SELECT 1 FROM small GROUP BY ALL HAVING count(*) > 1))
  + (SELECT count(*) FROM disclosures d SEMI JOIN small s
     ON d.topic = s.topic AND d.kafka_partition = s.kafka_partition
        AND d.kafka_offset = s.kafka_offset)
"""


def _verify_offsets(ledger: Ledger, result: VerifyResult, *, accepted_unique: bool) -> None:
    """Every offset accepted, a duplicate or quarantined, exactly once.

    When the scan found every chain's offsets strictly increasing (``accepted_unique``),
    counts settle it: no two records share an offset and, per partition, as many records
    as offsets from the first to the stored next one. Only otherwise is the detailed
    query run that names each missing or doubled offset."""
    if accepted_unique and ledger.con.execute(_ALL_ACCOUNTED).fetchall() == [(0,)]:
        return
    for kind, topic, partition, first, last, outcomes in ledger.con.execute(_ACCOUNTING).fetchall():
        span = f"offset {first}" if first == last else f"offsets {first} to {last}"
        detail = f"{span} of {topic} partition {partition}"
        if outcomes:
            detail += f" is recorded more than once ({outcomes})"
        elif kind == "offset missing":
            detail += " is neither accepted, a duplicate nor quarantined"
        else:
            detail += " is recorded but the stored next offset is lower"
        result.failures.append(Failure(f"{topic}/{partition}", None, kind, detail))
