"""Is every schema version able to read every version before it? (``schemas check``)

The consumer reads each message with the newest shipped schema as the reader and the
message's own version (found by fingerprint) as the writer. That works only if each new
version can read everything written with the ones before it: Avro's *backward*,
*transitive* compatibility. :func:`check_versions` decides it in two independent ways:

1. **The rules.** :func:`resolution_problems` applies the Avro specification's "Schema
   Resolution" rules to a (writer, reader) pair and lists every place where reading
   would fail: a field the reader added without a default, a type that cannot be
   promoted (only int→long→float→double and string↔bytes can), an enum symbol the writer
   may send that the reader lacks with no enum default, a renamed record, enum or fixed
   without an alias, a fixed of another size, a union branch with no match. Two rules
   are stricter than the specification because this is evidence: a changed
   ``logicalType`` (millis read as micros) and a renamed record namespace are refused.
2. **The decoder.** Random records generated from each older writer schema are written
   with it and read back with fastavro using the newer schema as the reader (exactly
   what :class:`~schemas.codec.EventCodec` does), and fields the older one lacks must
   come back as their defaults.

Both must pass. Each version's own defaults are also checked against their types (a
union's default must match its first branch), as are the file names (v1, v2, ... with
no gap) and the fingerprints (no two versions may share one).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import fastavro
import fastavro.utils

from schemas.codec import RECORD_TYPES, SchemaVersion, schema_versions_in, without_logical_types

_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_NAMED = ("record", "error", "enum", "fixed")
# What each writer primitive may be read as (Avro specification, "Schema Resolution").
_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


@dataclass(frozen=True)
class _Type:
    """One schema node with named references resolved and its namespace known."""

    kind: str  # a primitive, record, enum, fixed, array, map or union
    node: Any
    namespace: str | None
    name: str | None = None  # full name of a named type
    logical: str | None = None


class _Names:
    """The named types a schema defines, by full name (collected before any check, since
    a reader may skip the part of the writer that defines a type used later)."""

    def __init__(self, schema: Any) -> None:
        self.types: dict[str, Any] = {}
        self._collect(schema, None)

    def _collect(self, node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for branch in node:
                self._collect(branch, namespace)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if not isinstance(kind, str):
            self._collect(kind, namespace)
            return
        if kind in _NAMED:
            name = full_name(node["name"], node.get("namespace", namespace))
            self.types[name] = node
            namespace = name.rpartition(".")[0] or None
        for child in ("items", "values"):
            if child in node:
                self._collect(node[child], namespace)
        for field_ in node.get("fields", ()):
            self._collect(field_["type"], namespace)

    def resolve(self, node: Any, namespace: str | None) -> _Type:
        if isinstance(node, list):
            return _Type("union", node, namespace)
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return _Type(node, node, namespace)
            for candidate in (full_name(node, namespace), node):
                if candidate in self.types:
                    return self.resolve(self.types[candidate], namespace)
            raise KeyError(f"unknown type name {node!r}")
        kind = node["type"]
        if not isinstance(kind, str):
            return self.resolve(kind, namespace)
        logical = node.get("logicalType")
        if kind in _PRIMITIVES:
            return _Type(kind, node, namespace, logical=logical)
        if kind in _NAMED:
            name = full_name(node["name"], node.get("namespace", namespace))
            return _Type(kind, node, name.rpartition(".")[0] or None, name, logical)
        return _Type(kind, node, namespace, logical=logical)


def full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _short(name: str | None) -> str:
    return (name or "").rpartition(".")[2]


def _aliases(reader: _Type) -> set[str]:
    found = set()
    for alias in reader.node.get("aliases", ()) if isinstance(reader.node, dict) else ():
        found.add(full_name(alias, reader.namespace))
    return found


def _same_name(writer: _Type, reader: _Type) -> bool:
    return writer.name == reader.name or writer.name in _aliases(reader)


def _matches(writer: _Type, reader: _Type) -> bool:
    """Whether a reader union branch is the one Avro picks for this writer type."""
    if writer.kind in _PROMOTIONS or writer.kind in ("null", "boolean", "double"):
        return reader.kind in _PROMOTIONS.get(writer.kind, {writer.kind})
    if writer.kind != reader.kind and not (
        writer.kind in ("record", "error") and reader.kind in ("record", "error")
    ):
        return False
    if writer.kind in _NAMED:
        return _same_name(writer, reader) or _short(writer.name) == _short(reader.name)
    return True


def resolution_problems(writer_schema: Any, reader_schema: Any) -> list[str]:
    """Every reason data written with ``writer_schema`` cannot be read with
    ``reader_schema``, each as ``"path: problem"``; empty when it can."""
    writer_names, reader_names = _Names(writer_schema), _Names(reader_schema)
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()

    def check(writer: _Type, reader: _Type, path: str) -> None:
        if writer.kind == "union":
            for index, branch in enumerate(writer.node):
                resolved = writer_names.resolve(branch, writer.namespace)
                check(resolved, reader, f"{path}<branch {index}: {resolved.kind}>")
            return
        if reader.kind == "union":
            for branch in reader.node:
                candidate = reader_names.resolve(branch, reader.namespace)
                if _matches(writer, candidate):
                    check(writer, candidate, path)
                    return
            problems.append(f"{path}: the reader's union has no branch for a {_label(writer)}")
            return
        if writer.logical != reader.logical:
            problems.append(
                f"{path}: logical type changes from {writer.logical or 'none'} to "
                f"{reader.logical or 'none'} (the same bytes would mean something else)"
            )
        if writer.kind in _PRIMITIVES:
            allowed = _PROMOTIONS.get(writer.kind, {writer.kind})
            if reader.kind not in allowed:
                problems.append(f"{path}: a {_label(writer)} cannot be read as a {_label(reader)}")
            return
        if writer.kind != reader.kind and not (
            writer.kind in ("record", "error") and reader.kind in ("record", "error")
        ):
            problems.append(f"{path}: a {_label(writer)} cannot be read as a {_label(reader)}")
            return
        if writer.kind in _NAMED and not _same_name(writer, reader):
            problems.append(
                f"{path}: {writer.kind} {writer.name} is read as {reader.name}; keep the name "
                f"(namespace included) or give the new one the alias {writer.name}"
            )
            return
        if writer.kind in ("record", "error"):
            key = (str(writer.name), str(reader.name))
            if key in seen:  # a recursive type: already being checked
                return
            seen.add(key)
            writer_fields = {f["name"]: f for f in writer.node["fields"]}
            for reader_field in reader.node["fields"]:
                name = reader_field["name"]
                candidates = [name, *reader_field.get("aliases", ())]
                source = next((writer_fields[c] for c in candidates if c in writer_fields), None)
                where = f"{path}.{name}" if path else name
                if source is None:
                    if "default" not in reader_field:
                        problems.append(
                            f"{where}: field added without a default, so records written "
                            f"without it cannot be read; give it a default"
                        )
                    continue
                check(
                    writer_names.resolve(source["type"], writer.namespace),
                    reader_names.resolve(reader_field["type"], reader.namespace),
                    where,
                )
        elif writer.kind == "enum":
            missing = [s for s in writer.node["symbols"] if s not in reader.node["symbols"]]
            if missing and "default" not in reader.node:
                problems.append(
                    f"{path}: enum {reader.name} lost symbol(s) {', '.join(missing)} and has no "
                    "default, so records holding them cannot be read"
                )
        elif writer.kind == "fixed":
            if writer.node["size"] != reader.node["size"]:
                problems.append(
                    f"{path}: fixed {reader.name} changes size from {writer.node['size']} to "
                    f"{reader.node['size']}"
                )
        elif writer.kind == "array":
            check(
                writer_names.resolve(writer.node["items"], writer.namespace),
                reader_names.resolve(reader.node["items"], reader.namespace),
                f"{path}[]",
            )
        elif writer.kind == "map":
            check(
                writer_names.resolve(writer.node["values"], writer.namespace),
                reader_names.resolve(reader.node["values"], reader.namespace),
                f"{path}{{}}",
            )

    check(writer_names.resolve(writer_schema, None), reader_names.resolve(reader_schema, None), "")
    return problems


def _label(node: _Type) -> str:
    if node.kind in _NAMED:
        return f"{node.kind} {node.name}"
    if node.logical:
        return f"{node.kind} ({node.logical})"
    return node.kind


def default_problems(schema: Any) -> list[str]:
    """Defaults that are not values of their field's type (for a union: of its first
    branch, as the specification says), and enum defaults that are not symbols."""
    names = _Names(schema)
    problems: list[str] = []

    def fits(value: Any, node: Any, namespace: str | None) -> bool:
        resolved = names.resolve(node, namespace)
        kind = resolved.kind
        if kind == "union":
            return bool(resolved.node) and fits(value, resolved.node[0], resolved.namespace)
        if kind == "null":
            return value is None
        if kind == "boolean":
            return isinstance(value, bool)
        if kind in ("int", "long"):
            bits = 31 if kind == "int" else 63
            return (
                isinstance(value, int)
                and not isinstance(value, bool)
                and -(2**bits) <= value < 2**bits
            )
        if kind in ("float", "double"):
            return isinstance(value, int | float) and not isinstance(value, bool)
        if kind in ("string", "bytes"):
            return isinstance(value, str)
        if kind == "fixed":
            return isinstance(value, str) and len(value) == resolved.node["size"]
        if kind == "enum":
            return value in resolved.node["symbols"]
        if kind == "array":
            return isinstance(value, list) and all(
                fits(item, resolved.node["items"], resolved.namespace) for item in value
            )
        if kind == "map":
            return isinstance(value, dict) and all(
                fits(item, resolved.node["values"], resolved.namespace) for item in value.values()
            )
        if kind in ("record", "error"):
            return isinstance(value, dict) and all(
                fits(value[f["name"]], f["type"], resolved.namespace)
                if f["name"] in value
                else "default" in f
                for f in resolved.node["fields"]
            )
        return False

    def walk(node: Any, namespace: str | None, path: str, seen: frozenset[str]) -> None:
        resolved = names.resolve(node, namespace)
        if resolved.kind in ("record", "error"):
            if resolved.name in seen:
                return
            seen = seen | {str(resolved.name)}
            for field_ in resolved.node["fields"]:
                where = f"{path}.{field_['name']}" if path else field_["name"]
                if "default" in field_ and not fits(
                    field_["default"], field_["type"], resolved.namespace
                ):
                    first = " (a union's default must match its first branch)"
                    union = isinstance(field_["type"], list)
                    problems.append(
                        f"{where}: default {field_['default']!r} is not a value of its type"
                        + (first if union else "")
                    )
                walk(field_["type"], resolved.namespace, where, seen)
        elif resolved.kind == "enum":
            if (
                "default" in resolved.node
                and resolved.node["default"] not in (resolved.node["symbols"])
            ):
                problems.append(
                    f"{path}: enum default {resolved.node['default']!r} is not one of its symbols"
                )
        elif resolved.kind == "union":
            for branch in resolved.node:
                walk(branch, resolved.namespace, path, seen)
        elif resolved.kind == "array":
            walk(resolved.node["items"], resolved.namespace, f"{path}[]", seen)
        elif resolved.kind == "map":
            walk(resolved.node["values"], resolved.namespace, f"{path}{{}}", seen)

    walk(schema, None, "", frozenset())
    return problems


@dataclass(frozen=True)
class PairResult:
    """Whether schema version ``reader`` reads what version ``writer`` wrote."""

    writer: int
    reader: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class CompatibilityReport:
    versions: list[int] = field(default_factory=list)
    pairs: list[PairResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # about single versions and files
    forward_notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(pair.ok for pair in self.pairs)

    def lines(self) -> Iterator[str]:
        """The report as a person reads it, one line per finding."""
        for problem in self.problems:
            yield f"FAIL {problem}"
        for pair in self.pairs:
            if pair.ok:
                yield f"ok   v{pair.reader} reads everything v{pair.writer} writes"
            for problem in pair.problems:
                yield f"FAIL v{pair.reader} cannot read v{pair.writer}: {problem}"
        for note in self.forward_notes:
            yield f"note {note}"


def sample_problems(
    writer: Mapping[str, Any], reader: Mapping[str, Any], count: int, seed: int
) -> list[str]:
    """Write ``count`` random records with ``writer`` and read them with ``reader`` the
    way the consumer does; fields only the reader has must come back as defaults."""
    writer_schema = fastavro.parse_schema(without_logical_types(writer))
    reader_schema = fastavro.parse_schema(without_logical_types(reader))
    writer_fields = {f["name"] for f in writer.get("fields", ())}
    added = {
        f["name"]: f["default"]
        for f in reader.get("fields", ())
        if f["name"] not in writer_fields and "default" in f
    }
    state = random.getstate()
    random.seed(seed)  # fastavro's generator draws from the module-level generator
    try:
        records = list(fastavro.utils.generate_many(writer_schema, count))
    finally:
        random.setstate(state)
    for number, record in enumerate(records, start=1):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, writer_schema, record)
        buffer.seek(0)
        try:
            back = fastavro.schemaless_reader(buffer, writer_schema, reader_schema)
        except Exception as exc:
            return [f"sample record {number} fails to resolve: {type(exc).__name__}: {exc}"]
        if not isinstance(back, dict):
            return [f"sample record {number} did not read back as a record"]
        for name, default in added.items():
            if back.get(name) != default:
                return [
                    f"sample record {number}: field {name} reads as {back.get(name)!r}, "
                    f"not its default {default!r}"
                ]
    return []


def check_versions(
    versions: tuple[SchemaVersion, ...], *, samples: int = 200, seed: int = 0
) -> CompatibilityReport:
    """Every later version must read every earlier one (by the rules and by fastavro)."""
    report = CompatibilityReport(versions=[v.version for v in versions])
    if not versions:
        report.problems.append("no .vN.avsc files of this record type found")
        return report
    expected = list(range(1, len(versions) + 1))
    if report.versions != expected:
        report.problems.append(
            f"versions are {report.versions}; they must run v1, v2, ... without a gap"
        )
    owners: dict[bytes, int] = {}
    for version in versions:
        try:
            fastavro.parse_schema(dict(version.schema_json))
        except Exception as exc:
            report.problems.append(f"{version.source} is not a valid Avro schema: {exc}")
            continue
        report.problems.extend(
            f"{version.source}: {p}" for p in default_problems(version.schema_json)
        )
        clashes = sorted({owners[fp] for fp in version.fingerprints if fp in owners})
        for other in clashes:
            report.problems.append(
                f"{version.source} has the same fingerprint as v{other}: the two differ at most "
                "in what the parsing canonical form leaves out (docs, defaults, aliases, "
                "logical types), so a consumer cannot tell their messages apart; make it a "
                "real new version or drop it"
            )
        owners.update(dict.fromkeys(version.fingerprints, version.version))
    if report.problems:
        return report
    for later_index, reader in enumerate(versions):
        for writer in versions[:later_index]:
            problems = resolution_problems(writer.schema_json, reader.schema_json)
            if not problems:
                problems = sample_problems(
                    writer.schema_json, reader.schema_json, samples, seed + writer.version
                )
            report.pairs.append(PairResult(writer.version, reader.version, tuple(problems)))
            if not resolution_problems(reader.schema_json, writer.schema_json):
                continue
            report.forward_notes.append(
                f"v{writer.version} cannot read v{reader.version} (not forward compatible): "
                f"upgrade consumers before producers start writing v{reader.version}; until "
                "then its messages are quarantined as an unknown fingerprint"
            )
    return report


def check_schema_directory(
    directory: Path | None = None,
    *,
    samples: int = 200,
    seed: int = 0,
    record_type: str = "disclosure_event",
) -> CompatibilityReport:
    """Check the shipped schemas of one record type, or the ``<record_type>.vN.avsc`` files
    in ``directory``."""
    source: Traversable = directory if directory is not None else resources.files("schemas")
    return check_versions(schema_versions_in(source, record_type), samples=samples, seed=seed)


def check_record_types(
    directory: Path | None = None, *, samples: int = 200, seed: int = 0
) -> dict[str, CompatibilityReport]:
    """:func:`check_schema_directory` for every record type of the topic (events and
    producer watermarks), each line on its own; and, since one topic carries them all and
    the consumer tells them apart by fingerprint, no two types may share a fingerprint.
    A directory without a type's files reports that type as missing."""
    reports = {
        kind: check_schema_directory(directory, samples=samples, seed=seed, record_type=kind)
        for kind in RECORD_TYPES
    }
    source: Traversable = directory if directory is not None else resources.files("schemas")
    owners: dict[bytes, str] = {}
    for kind in RECORD_TYPES:
        for version in schema_versions_in(source, kind):
            for fp in version.fingerprints:
                other = owners.setdefault(fp, f"{kind} v{version.version}")
                if not other.startswith(f"{kind} "):
                    reports[kind].problems.append(
                        f"{version.source} has the same fingerprint as {other}: the consumer "
                        "could not tell their messages apart; change one of the records"
                    )
    return reports
