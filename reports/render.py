"""Tables written as text: terminal table, CSV, JSON and Markdown, shared by reports.

Query results arrive as a stream of Arrow record batches and are written batch by batch
(:func:`write_batches`), so a large result never sits whole in memory. Values are shown
the same way in every format (:func:`json_value`, :func:`cell_text`):

- timestamps and dates in ISO 8601 (a naive timestamp is printed as it is stored; the
  ledger's timestamps are UTC), aware ones with their offset;
- binary values (hashes) as lowercase hex; UUIDs as their canonical text;
- decimals as exact text in CSV and tables, and as text in JSON (no float rounding);
- lists and structs as JSON in CSV and table cells, as arrays and objects in JSON;
- NULL as an empty CSV field, ``NULL`` in a table and ``null`` in JSON;
- NaN and infinities as ``null`` in JSON (which has no such numbers).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TextIO
from uuid import UUID

import pyarrow as pa

TableFormat = Literal["table", "csv", "json"]
TABLE_FORMATS: tuple[TableFormat, ...] = ("table", "csv", "json")
QUERY_FORMATS: tuple[str, ...] = (*TABLE_FORMATS, "parquet")
"""What a query can be written as: the text formats, or Parquet to a file."""

DEFAULT_TABLE_ROWS = 1000
"""The terminal table shows at most this many rows, then says how many it left out."""

MAX_CELL_WIDTH = 72
"""Longer table cells are clipped with an ellipsis (a 64-hex-digit hash still fits)."""


def json_value(value: Any) -> Any:
    """A Python value from Arrow as the JSON value every output format agrees on."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, timedelta):
        return _iso_duration(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        # a named tuple, such as Arrow's MonthDayNano for an INTERVAL
        fields: dict[str, Any] = value._asdict()  # type: ignore[attr-defined]
        return {str(k): json_value(v) for k, v in fields.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(p, tuple) and len(p) == 2 for p in value):
            # Arrow gives a MAP as a list of (key, value) pairs
            keys = [k for k, _ in value]
            if all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys):
                return {k: json_value(v) for k, v in value}
        return [json_value(v) for v in value]
    return str(value)


def cell_text(value: Any, null: str = "") -> str:
    """A value as one CSV field or table cell (lists and structs as compact JSON)."""
    shown = json_value(value)
    if shown is None:
        return null
    if isinstance(shown, str):
        return shown
    if isinstance(shown, bool):
        return "true" if shown else "false"
    if isinstance(shown, int | float):
        return repr(shown)
    return json.dumps(shown, ensure_ascii=False, separators=(",", ":"))


def _iso_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    return f"{sign}P{abs(value.days)}DT{abs(seconds) - abs(value.days) * 86400:g}S"


def _rows(batch: pa.RecordBatch) -> Iterator[list[Any]]:
    columns = [column.to_pylist() for column in batch.columns]
    return (list(row) for row in zip(*columns, strict=True))


# -- streaming writers ---------------------------------------------------------------------
def write_csv(columns: Sequence[str], batches: Iterable[pa.RecordBatch], out: TextIO) -> int:
    """Header then rows (RFC 4180 quoting, ``\\n`` line ends); returns the rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for batch in batches:
        writer.writerows([cell_text(v) for v in row] for row in _rows(batch))
        count += batch.num_rows
    return count


def write_json(columns: Sequence[str], batches: Iterable[pa.RecordBatch], out: TextIO) -> int:
    """A JSON array of objects, one per line, written as the batches arrive."""
    out.write("[")
    count = 0
    for batch in batches:
        for row in _rows(batch):
            obj = {name: json_value(v) for name, v in zip(columns, row, strict=True)}
            out.write(",\n" if count else "\n")
            out.write(json.dumps(obj, ensure_ascii=False))
            count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_terminal_table(
    columns: Sequence[str],
    batches: Iterable[pa.RecordBatch],
    out: TextIO,
    max_rows: int = DEFAULT_TABLE_ROWS,
) -> int:
    """An aligned text table of the first ``max_rows`` rows; counts (not keeps) the rest."""
    shown: list[list[str]] = []
    count = 0
    numeric: list[bool] | None = None
    for batch in batches:
        if numeric is None:
            numeric = [_is_number(field.type) for field in batch.schema]
        if len(shown) < max_rows:
            for row in _rows(batch.slice(0, max_rows - len(shown))):
                shown.append([_clip(cell_text(v, null="NULL")) for v in row])
        count += batch.num_rows
    out.write(text_table(columns, shown, right_aligned=numeric))
    left_out = count - len(shown)
    noun = "row" if count == 1 else "rows"
    if left_out:
        out.write(
            f"({count} {noun}; the first {len(shown)} shown. "
            "Use --format csv or json for all of them.)\n"
        )
    else:
        out.write(f"({count} {noun})\n")
    return count


def write_batches(
    fmt: TableFormat,
    columns: Sequence[str],
    batches: Iterable[pa.RecordBatch],
    out: TextIO,
    *,
    max_table_rows: int = DEFAULT_TABLE_ROWS,
) -> int:
    """Write a stream of record batches in ``fmt``; returns the number of rows."""
    if fmt == "csv":
        return write_csv(columns, batches, out)
    if fmt == "json":
        return write_json(columns, batches, out)
    if fmt == "table":
        return write_terminal_table(columns, batches, out, max_table_rows)
    raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(TABLE_FORMATS)}")


def write_parquet(reader: pa.RecordBatchReader, path: Path) -> int:
    """Write a stream of record batches to a Parquet file, batch by batch (zstd).

    The file is written beside its final name and renamed into place, so a failed query
    never leaves a truncated file under that name. Returns the number of rows.
    """
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with pq.ParquetWriter(partial, reader.schema, compression="zstd") as writer:
            for batch in reader:
                if batch.num_rows:
                    writer.write_batch(batch)
                    count += batch.num_rows
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def write_result(
    fmt: str,
    reader: pa.RecordBatchReader,
    *,
    out: TextIO | None,
    output_path: Path | None,
    max_table_rows: int = DEFAULT_TABLE_ROWS,
) -> int:
    """A query result in ``fmt``: text to ``out``, or Parquet to ``output_path``."""
    if fmt == "parquet":
        if output_path is None:
            raise ValueError("Parquet is written to a file: give --output FILE.parquet")
        return write_parquet(reader, output_path)
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(QUERY_FORMATS)}")
    return write_batches(
        fmt,
        reader.schema.names,
        reader,
        out if out is not None else sys.stdout,
        max_table_rows=max_table_rows,
    )


# -- small tables held in memory -------------------------------------------------------------
# Kept hand-written rather than tabulate 0.10.0 (or rich), on purpose:
# - text_table: tabulate pads header cells by two (MIN_PADDING) and strips cell whitespace
#   (PRESERVE_WHITESPACE); matching this output needs both module-wide globals changed,
#   which would change every other tabulate table in the process. rich draws box
#   characters and styles, not this plain text that scripts cut with `cut -d'|'`.
# - markdown_table: tabulate's pipe/github formats pad every cell to its column's width and
#   do not escape `|` in cells. Our rows are not padded: one subject's table has a cell that
#   names hundreds of recipients, and padding would widen every row of the report to it
#   (and rewrite every golden .md file). Both functions are a dozen lines.
def text_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right_aligned: Sequence[bool] | None = None,
) -> str:
    """Columns padded to width (numbers to the right), ``|`` between them, a rule below
    the header."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    right = list(right_aligned) if right_aligned is not None else [False] * len(headers)

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        )
        return " | ".join(padded).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)]) + "\n"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; pipes and line breaks in cells are escaped."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(_md_cell(c) for c in cells) + " |"

    lines = [line(headers), "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend(line(r) for r in rows)
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _clip(text: str) -> str:
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= MAX_CELL_WIDTH else text[: MAX_CELL_WIDTH - 1] + "…"
