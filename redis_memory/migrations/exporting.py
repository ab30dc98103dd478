"""Every object under a prefix to JSON Lines, and back, exactly.

The export is read from the stored forms, never through the public attribute reads, so
nothing is converted on the way (a model needs no class imported, a datetime keeps its zone,
an integral float stays a float). The first line is a header, each further line one object::

    {"format":"redis-memory-export","version":1,"layout":1,"prefix":"memory:"}
    {"id":"c1","attributes":{"state":{"kind":"str","value":"active"},
     "messages":{"kind":"list","value":[{"role":"user","content":"Hi"}]}},
     "expires_at_ms":1767225600000}

A scalar's ``value`` is its hash field text (see ``docs/design.md``, "Storage layout"), read
back through its ``kind``; a list's is its elements, a set's its members (sorted by their JSON
text), a dict's or a model's its document. ``internal`` (the object's own bookkeeping fields,
such as a searchable list's ``_search:<name>``) and ``copies`` (the extra fields of each
searchable message's copy) appear only when there are some; ``expires_at_ms`` only for an
object that expires. Lines are sorted by id, so a second export of the same data is the same
text, byte for byte.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import redis

from redis_memory import codec, scalars
from redis_memory.config import resolve_prefix
from redis_memory.connections import backend_for
from redis_memory.core.layout import LAYOUT_VERSION, check_layout_command, checked
from redis_memory.errors import InvalidValueError, ObjectExistsError, ServerError, UnknownTypeError
from redis_memory.keys import (
    KeySpace,
    check_name,
    encode_part,
    meta_key,
    normalize_id,
    parse_hash_key,
    parse_kind_field,
)
from redis_memory.search.index import object_keys

__all__ = ["FORMAT", "VERSION", "ExportReport", "ImportReport", "export_jsonl", "import_jsonl"]

FORMAT = "redis-memory-export"
VERSION = 1
BATCH = 200  # objects per pipelined round trip
_DERIVED = ("element", "conversation", "attribute", "n")  # a copy's fields rebuilt on import
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What :func:`export_jsonl` wrote: ``objects`` lines after the header."""

    objects: int
    attributes: int
    dry_run: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What :func:`import_jsonl` wrote (or, with ``dry_run``, would write).

    ``replaced``: objects that existed and were replaced (``overwrite=True``); ``skipped``:
    objects whose expiry moment had passed; ``verified``: the imported objects, exported
    again, equal the lines read."""

    objects: int
    attributes: int
    replaced: int
    skipped: int
    dry_run: bool
    verified: bool
    problems: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _node_of(backend: Any, space: KeySpace) -> Any:
    """The backend holding ``space`` (its primary on a Redis Cluster)."""
    finder = getattr(backend, "node_for_key", None)
    return finder(space.hash_key) if finder is not None else backend


def _grouped(backend: Any, spaces: Iterable[KeySpace]) -> list[tuple[Any, list[KeySpace]]]:
    groups: dict[int, tuple[Any, list[KeySpace]]] = {}
    for space in spaces:
        node = _node_of(backend, space)
        groups.setdefault(id(node), (node, []))[1].append(space)
    return list(groups.values())


def _sorted_members(members: Iterable[Any]) -> list[Any]:
    texts = sorted(codec.dumps(codec.loads(_text(member))) for member in members)
    return [json.loads(text) for text in texts]


def _read_batch(node: Any, spaces: Sequence[KeySpace]) -> list[dict[str, Any] | None]:
    """The export records of ``spaces`` (None for an object not stored): three round trips."""
    first = node.execute_many(
        [command for space in spaces for command in (("HGETALL", space.hash_key), ("PEXPIRETIME", space.hash_key))]
    )
    hashes = [{_text(k): _text(v) for k, v in _pairs(first[2 * i])} for i in range(len(spaces))]
    commands: list[tuple[Any, ...]] = []
    wanted: list[tuple[int, str, str]] = []  # (object, attribute, what)
    for index, (space, fields) in enumerate(zip(spaces, hashes, strict=True)):
        for key, kind in fields.items():
            name = parse_kind_field(key)
            structure = codec.structure_of(kind) if name is not None else codec.HASH
            if name is None or structure == codec.HASH:
                continue
            target = space.collection_key(name)
            if structure == codec.LIST:
                commands.append(("LRANGE", target, 0, -1))
            elif structure == codec.SET:
                commands.append(("SMEMBERS", target))
            else:
                commands.append(("TYPE", target))
            wanted.append((index, name, structure))
    second = node.execute_many(commands) if commands else []
    documents = [(i, w) for i, w in enumerate(wanted) if w[2] == codec.JSON_DOC]
    doc_commands: list[tuple[Any, ...]] = [
        ("JSON.GET", spaces[w[0]].collection_key(w[1]), "$")
        if _text(second[i]) == "ReJSON-RL"
        else ("GET", spaces[w[0]].collection_key(w[1]))
        for i, w in documents
    ]
    copy_commands: list[tuple[Any, ...]] = []
    copy_wanted: list[tuple[int, str, int]] = []
    for i, (index, name, structure) in enumerate(wanted):
        fields = hashes[index]
        if structure == codec.LIST and f"_search:{name}" in fields:
            base = int(fields.get(f"_mbase:{name}", "0"))
            start = f"{spaces[index].prefix}#m{{{encode_part(spaces[index].object_id)}}}:{encode_part(name)}:"
            for position in range(len(second[i])):
                copy_commands.append(("HGETALL", f"{start}{base + position}"))
                copy_wanted.append((index, name, position))
    third = node.execute_many(doc_commands + copy_commands) if doc_commands or copy_commands else []
    values: dict[tuple[int, str], Any] = {}
    for i, (index, name, structure) in enumerate(wanted):
        if structure == codec.LIST:
            values[index, name] = [json.loads(_text(raw)) for raw in second[i]]
        elif structure == codec.SET:
            values[index, name] = _sorted_members(second[i])
    for command, (_, (index, name, _)), raw in zip(doc_commands, documents, third, strict=False):
        if raw is None:
            continue
        loaded = json.loads(_text(raw))
        values[index, name] = loaded[0] if command[0] == "JSON.GET" else loaded
    copies: dict[tuple[int, str], list[dict[str, str]]] = {}
    for (index, name, _), row in zip(copy_wanted, third[len(doc_commands) :], strict=True):
        extra = {_text(k): _text(v) for k, v in _pairs(row) if _text(k) not in _DERIVED}
        copies.setdefault((index, name), []).append(dict(sorted(extra.items())))
    records: list[dict[str, Any] | None] = []
    for index, (space, fields) in enumerate(zip(spaces, hashes, strict=True)):
        if not fields:
            records.append(None)
            continue
        attributes: dict[str, Any] = {}
        internal: dict[str, str] = {}
        for key in sorted(fields):
            name = parse_kind_field(key)
            if name is None:
                if key.startswith("_"):
                    internal[key] = fields[key]
                continue
            kind = fields[key]
            if codec.structure_of(kind) == codec.HASH:
                if name in fields:
                    attributes[name] = {"kind": kind, "value": fields[name]}
            elif (index, name) in values:
                attributes[name] = {"kind": kind, "value": values[index, name]}
        record: dict[str, Any] = {"id": space.object_id, "attributes": attributes}
        if internal:
            record["internal"] = internal
        found = {name: rows for (owner, name), rows in copies.items() if owner == index and any(rows)}
        if found:
            record["copies"] = dict(sorted(found.items()))
        expires = int(first[2 * index + 1])
        if expires > 0:
            record["expires_at_ms"] = expires
        records.append(record)
    return records


def _pairs(reply: Any) -> list[tuple[Any, Any]]:
    if isinstance(reply, dict):
        return list(reply.items())
    return list(zip(reply[::2], reply[1::2], strict=True))


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _header(prefix: str) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "layout": LAYOUT_VERSION, "prefix": prefix}


def _nodes(backend: Any) -> list[Any]:
    primaries = getattr(backend, "primaries", None)
    return list(primaries()) if primaries is not None else [backend]


def _records(backend: Any, spaces: Sequence[KeySpace], progress: Progress | None, total: int | None) -> list[Any]:
    found: dict[str, dict[str, Any]] = {}
    done = 0
    for node, group in _grouped(backend, spaces):
        for start in range(0, len(group), BATCH):
            part = group[start : start + BATCH]
            for space, record in zip(part, _read_batch(node, part), strict=True):
                if record is not None:
                    found[space.object_id] = record
            done += len(part)
            if progress is not None:
                progress(done, total)
    return [found[key] for key in sorted(found)]


def export_jsonl(
    out: TextIO,
    *,
    ids: list[str] | None = None,
    progress: Progress | None = None,
    url: str | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> ExportReport:
    """Write every object under ``prefix`` (or only ``ids``) to ``out`` as JSON Lines: a header
    line, then one object per line, sorted by id. SCAN on every primary for the ids, then three
    pipelined round trips per 200 objects (HGETALL + PEXPIRETIME, the collections, the
    documents). ``progress(done, total)`` after each batch."""
    resolved = resolve_prefix(prefix)
    backend = backend_for(url=url, client=client)
    if ids is None:
        chosen = [
            KeySpace(resolved, found)
            for node in _nodes(backend)
            for key in object_keys(node, resolved)
            if (found := _object_id(key, resolved)) is not None
        ]
    else:
        chosen = [KeySpace(resolved, normalize_id(one)) for one in ids]
    records = _records(backend, chosen, progress, len(chosen))
    out.write(_line(_header(resolved)))
    for record in records:
        out.write(_line(record))
    return ExportReport(objects=len(records), attributes=sum(len(r["attributes"]) for r in records))


def _object_id(key: str, prefix: str) -> str | None:
    return parse_hash_key(key, prefix)


# -- import --------------------------------------------------------------------------------------


def _bad(number: int, why: str) -> InvalidValueError:
    return InvalidValueError(f"line {number} of the export: {why}")


def _check_header(line: str) -> None:
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise _bad(1, f"not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(1, f"not a {FORMAT} header")
    if header.get("version") != VERSION:
        raise _bad(1, f"export format version {header.get('version')!r}; this library reads version {VERSION}")
    if header.get("layout") != LAYOUT_VERSION:
        raise _bad(1, f"storage layout {header.get('layout')!r}; this library writes layout {LAYOUT_VERSION}")


def _check_value(kind: str, value: Any, where: str) -> None:
    structure = codec.structure_of(kind)
    if structure == codec.HASH:
        if not isinstance(value, str):
            raise InvalidValueError(f"{where}: a {kind} is stored as text, not {type(value).__name__}")
        name = kind.partition(":")[0]
        if name not in scalars.BY_NAME:
            raise UnknownTypeError(f"{where}: unknown kind {kind!r}")
        if name != "enum":
            scalars.decode(kind, value)
    elif structure == codec.LIST:
        if not isinstance(value, list):
            raise InvalidValueError(f"{where}: a list's value must be a JSON array")
        codec.encode_elements(value)
    elif structure == codec.SET:
        if not isinstance(value, list):
            raise InvalidValueError(f"{where}: a set's value must be a JSON array of its members")
        codec.set_members(value)
    else:
        if kind == codec.DICT and not isinstance(value, dict):
            raise InvalidValueError(f"{where}: a dict's value must be a JSON object")
        codec.check_json(value)


def _parse(source: TextIO) -> list[dict[str, Any]]:
    """Every object line of an export, checked before anything is written."""
    lines = iter(source)
    first = next(lines, None)
    if first is None:
        raise _bad(1, "empty: no header line")
    _check_header(first)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise _bad(number, f"not JSON: {exc}") from None
        if not isinstance(record, dict) or not isinstance(record.get("attributes"), dict) or not record["attributes"]:
            raise _bad(number, "an object line needs an id and at least one attribute")
        record["id"] = normalize_id(record.get("id"))
        if record["id"] in seen:
            raise _bad(number, f"object {record['id']!r} appears twice")
        seen.add(record["id"])
        for name, attribute in record["attributes"].items():
            check_name(name)
            if not isinstance(attribute, dict) or not isinstance(attribute.get("kind"), str):
                raise _bad(number, f"attribute {name!r} needs a kind and a value")
            _check_value(attribute["kind"], attribute.get("value"), f"line {number}, {name}")
        expires = record.get("expires_at_ms")
        if expires is not None and (type(expires) is not int or expires <= 0):
            raise _bad(number, "expires_at_ms must be a positive integer")
        records.append(record)
    return records


def _has_json(node: Any) -> bool:
    try:
        reply = node.execute("COMMAND", "INFO", "JSON.SET")
    except ServerError:
        return False
    return bool(reply) and reply[0] is not None


def _old_keys(space: KeySpace, fields: dict[str, str]) -> list[str]:
    """Every key of a stored object, from its hash: collections and message copies."""
    found = [space.hash_key]
    for key, kind in fields.items():
        name = parse_kind_field(key)
        if name is not None and codec.structure_of(kind) != codec.HASH:
            found.append(space.collection_key(name))
    return found


def _write_commands(space: KeySpace, record: dict[str, Any], json_module: bool) -> list[tuple[Any, ...]]:
    """The commands that write one object (inside the caller's MULTI)."""
    commands: list[tuple[Any, ...]] = []
    fields: list[str] = []
    copy_start = f"{space.prefix}#m{{{encode_part(space.object_id)}}}:"
    for name, attribute in record["attributes"].items():
        kind, value = attribute["kind"], attribute["value"]
        fields += [f"_kind:{name}", kind]
        structure = codec.structure_of(kind)
        target = space.collection_key(name)
        if structure == codec.HASH:
            fields += [name, value]
        elif structure == codec.LIST:
            texts, _ = codec.encode_elements(value)
            if texts:
                commands.append(("RPUSH", target, *texts))
            base = int(record.get("internal", {}).get(f"_mbase:{name}", "0"))
            if f"_search:{name}" not in record.get("internal", {}):
                continue
            extras_of = record.get("copies", {}).get(name) or [{} for _ in texts]
            for position, (text, extra) in enumerate(zip(texts, extras_of, strict=False)):
                n = str(base + position)
                derived = ["element", text, "conversation", encode_part(space.object_id), "attribute", name, "n", n]
                extras = [item for pair in extra.items() for item in pair]
                commands.append(("HSET", f"{copy_start}{encode_part(name)}:{n}", *derived, *extras))
        elif structure == codec.SET:
            if value:
                commands.append(("SADD", target, *codec.set_members(value)))
        elif json_module:
            commands.append(("JSON.SET", target, "$", codec.document_dumps(value)))
        else:
            commands.append(("SET", target, codec.dumps(value)))
    for key, text in record.get("internal", {}).items():
        fields += [key, text]
    commands.insert(0, ("HSET", space.hash_key, *fields))
    return commands


def _expiry_commands(keys: list[str], expires: int | None) -> list[tuple[Any, ...]]:
    return [("PEXPIREAT", key, expires) for key in keys] if expires else []


def import_jsonl(
    source: TextIO,
    *,
    overwrite: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    url: str | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> ImportReport:
    """Write the objects of an export (:func:`export_jsonl`) under ``prefix``.

    The whole file is read and checked first (a bad line raises :class:`InvalidValueError`
    naming it), then every object's hash is looked up (pipelined EXISTS): when any exists and
    ``overwrite`` is False, :class:`ObjectExistsError` is raised and nothing is written. With
    ``overwrite=True`` such an object is first cleared (as ``Memory.clear()`` does), then written
    whole. Each object is written in one MULTI/EXEC (its keys share one slot), 200 objects per
    pipelined round trip, with its expiry moment (PEXPIREAT); an object whose moment has passed
    is skipped. Then the objects are exported again and compared with the lines read:
    ``verified``. ``dry_run``: the checks only; the report says what would be written."""
    resolved = resolve_prefix(prefix)
    backend = backend_for(url=url, client=client)
    records = _parse(source)
    spaces = [KeySpace(resolved, record["id"]) for record in records]
    existing: set[str] = set()
    for node, group in _grouped(backend, spaces):
        replies = node.execute_many([("EXISTS", space.hash_key) for space in group]) if group else []
        existing.update(space.object_id for space, reply in zip(group, replies, strict=True) if int(reply))
    if existing and not overwrite:
        shown = ", ".join(repr(one) for one in sorted(existing)[:5])
        raise ObjectExistsError(
            f"{len(existing)} of the objects to import already exist under {resolved!r} ({shown}...): "
            "nothing was written; pass overwrite=True to replace them"
        )
    now_ms = int(_server_time_ms(backend))
    live = [(space, r) for space, r in zip(spaces, records, strict=True) if r.get("expires_at_ms", now_ms + 1) > now_ms]
    attributes = sum(len(record["attributes"]) for _, record in live)
    if dry_run:
        return ImportReport(len(live), attributes, len(existing), len(records) - len(live), True, False)
    by_id = {space.object_id: record for space, record in live}
    done = 0
    if live:  # the layout record lives in one slot: its primary runs the check
        finder = getattr(backend, "node_for_key", None)
        record_node = finder(meta_key(resolved)) if finder is not None else backend
        checked(resolved, record_node.execute(*check_layout_command(resolved)))
    for node, group in _grouped(backend, [space for space, _ in live]):
        json_module = _has_json(node)
        for space in group:
            if space.object_id in existing:
                backend.clear_all(space)
        for start in range(0, len(group), BATCH):
            part = group[start : start + BATCH]
            commands: list[tuple[Any, ...]] = []
            for space in part:
                record = by_id[space.object_id]
                writes = _write_commands(space, record, json_module)
                keys = sorted({str(command[1]) for command in writes})
                commands += [("MULTI",), *writes, *_expiry_commands(keys, record.get("expires_at_ms")), ("EXEC",)]
            if commands:
                _check_replies(node.execute_many(commands))
            done += len(part)
            if progress is not None:
                progress(done, len(live))
    again = io.StringIO()
    export_jsonl(again, ids=[space.object_id for space, _ in live], client=client, url=url, prefix=resolved)
    read_back = {record["id"]: record for record in map(json.loads, again.getvalue().splitlines()[1:])}
    problems = [
        f"object {space.object_id!r} reads back differently"
        for space, record in live
        if read_back.get(space.object_id) != record
    ]
    return ImportReport(len(live), attributes, len(existing), len(records) - len(live), False, not problems, problems)


def _server_time_ms(backend: Any) -> int:
    node = _nodes(backend)[0]
    seconds, micros = node.execute("TIME")
    return int(seconds) * 1000 + int(micros) // 1000


def _check_replies(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, list):
            for item in reply:
                if isinstance(item, Exception):
                    raise ServerError(f"an import write failed: {item}")
        elif isinstance(reply, Exception):
            raise ServerError(f"an import write failed: {reply}")
