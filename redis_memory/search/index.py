"""The conversation index: created from ``schemas/conversation.json``, queried with FT.SEARCH,
or, on a server without RediSearch, replaced by a SCAN over the objects' hashes.

The index covers every object hash under a prefix (``FT.CREATE ... ON HASH PREFIX 1
<prefix>{``): scalar attributes are hash fields stored index-friendly, so no copy is kept.
Its name carries a digest of its definition (``<prefix>idx:<label>:<digest>``), so a
changed schema gets a new index instead of a wrong one; queries go through an alias per
label (``<prefix>idx:<label>``, FT.ALIASADD) while it points at their spec's index, which is
how ``redis_memory.migrations.indexes.swap_index`` changes an index without downtime. A
class's spec comes from its declared, :class:`~redis_memory.schema.Indexed` attributes
(:func:`spec_for`), else from ``schemas/conversation.json``. TEXT fields are indexed without
stemming and without stop words, so a word matches exactly that word in any case, the same
rule the fallback applies. A hash whose NUMERIC field does not hold a number is not indexed
by RediSearch, and the fallback skips it too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
import warnings
import weakref
from collections.abc import Generator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis_memory import schema
from redis_memory.backend import Backend
from redis_memory.core.requests import Command
from redis_memory.errors import InvalidNameError, ServerError
from redis_memory.keys import parse_hash_key
from redis_memory.search.filters import Filter, can_match, matches, to_query, with_prefixes_resolved

logger = logging.getLogger(__name__)

TAG_SEPARATOR = "\x1f"  # a character no tag value is expected to hold: values are never split
_SCAN_COUNT = 1000
_FETCH_BATCH = 500
_warned: set[str] = set()
# What this module learned about each server (per backend): whether it has RediSearch, and
# the indexes known to exist there.
_HAS_SEARCH: weakref.WeakKeyDictionary[Backend, bool] = weakref.WeakKeyDictionary()
# index name -> the name queries use (its alias when the alias points at it)
_INDEXES: weakref.WeakKeyDictionary[Backend, dict[str, str]] = weakref.WeakKeyDictionary()
_LABEL = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """The indexed fields of a schema: name -> TAG / TEXT / NUMERIC, and the sortable ones.

    The index covers the hashes whose keys start with ``<prefix><key_start>``: the objects'
    hashes (``{``) or the copies of searchable messages (``#m{``).
    """

    fields: dict[str, str]
    sortable: frozenset[str]
    label: str = "conversation"
    key_start: str = "{"

    def create_args(self, name: str, prefix: str) -> list[str]:
        """The FT.CREATE command, as a list of arguments."""
        args = ["FT.CREATE", name, "ON", "HASH", "PREFIX", "1", prefix + self.key_start, "STOPWORDS", "0", "SCHEMA"]
        for field, kind in sorted(self.fields.items()):
            args += [field, kind]
            if kind == "TAG":
                args += ["SEPARATOR", TAG_SEPARATOR, "CASESENSITIVE"]
            elif kind == "TEXT":
                args += ["NOSTEM"]
            if field in self.sortable:
                args += ["SORTABLE", "UNF"] if kind == "TAG" else ["SORTABLE"]
        return args

    def name(self, prefix: str) -> str:
        """The index's name under ``prefix``: a digest of its definition is part of it."""
        digest = hashlib.sha1(json.dumps(self.create_args("", prefix)).encode()).hexdigest()[:10]
        return f"{self.alias(prefix)}:{digest}"

    def alias(self, prefix: str) -> str:
        """The alias queries use under ``prefix``: one per label, whatever the definition."""
        return f"{prefix}idx:{self.label}"


@functools.cache
def conversation_schema() -> dict[str, Any]:
    """``schemas/conversation.json``, read once."""
    text = resources.files("redis_memory").joinpath("schemas", "conversation.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def conversation_index() -> IndexSpec:
    """The index the default conversation schema declares (its fields with an ``index``)."""
    fields = conversation_schema()["fields"]
    indexed = {name: field["index"] for name, field in fields.items() if "index" in field}
    sortable = frozenset(name for name, field in fields.items() if field.get("sortable"))
    return IndexSpec(indexed, sortable)


_SPECS: dict[type, IndexSpec] = {}


def spec_for(cls: type) -> IndexSpec:
    """The index ``find`` / ``count`` / ``cleanup`` of ``cls`` use (cached per class): the
    attributes it declares :class:`~redis_memory.schema.Indexed`, labelled by :func:`index_label`;
    the default conversation index when it marks none, or the same fields."""
    found = _SPECS.get(cls)
    if found is None:
        found = _SPECS[cls] = _derived(cls)
    return found


def _derived(cls: type) -> IndexSpec:
    try:
        marked = schema.indexed(cls)
    except NameError:  # an annotation names a class not defined yet (not cached: asked again)
        return conversation_index()
    default = conversation_index()
    if not marked:
        return default
    fields = {name: kind for name, (kind, _) in marked.items()}
    sortable = frozenset(name for name, (_, can_sort) in marked.items() if can_sort)
    if fields == default.fields and sortable == default.sortable:
        return default
    return IndexSpec(fields, sortable, label=index_label(cls))


_RESERVED_LABELS = frozenset({"conversation", "messages"})  # the library's own indexes


def index_label(cls: type) -> str:
    """The label of ``cls``'s index: its ``index_label`` class attribute (a ``ClassVar[str]``)
    or its lowercased class name, letters, digits and ``_`` only; the library's own labels
    (``conversation``, ``messages``) get a ``_memory`` suffix."""
    given = getattr(cls, "index_label", None)
    if given is not None and (not isinstance(given, str) or not re.fullmatch(r"[A-Za-z0-9_]+", given)):
        raise InvalidNameError(f"{cls.__name__}.index_label must be letters, digits and _, not {given!r}")
    label = given.lower() if given else _LABEL.sub("_", cls.__name__.lower()).strip("_") or "memory"
    return label + "_memory" if label in _RESERVED_LABELS else label


def search_module(backend: Backend) -> bool:
    """True when the server has RediSearch (asked once per backend, then remembered)."""
    known = _HAS_SEARCH.get(backend)
    if known is not None:
        return known

    def probe() -> Generator[Command, Any, bool]:
        try:
            yield Command(("FT._LIST",))
        except ServerError:
            return False
        return True

    found = _HAS_SEARCH[backend] = backend.drive(probe())
    return found


def ensure_index(backend: Backend, spec: IndexSpec, prefix: str) -> str:
    """The name to query ``spec``'s index by under ``prefix``, the index created first if it
    does not exist (then, once its background indexing of existing hashes is done).

    That name is the label's alias when the alias points at this index, or is made to (no
    alias yet), or when this index does not exist and the aliased version indexes every field
    of ``spec`` alike (:func:`covers`: a process still running the class as it was before a
    swap). Else (the alias points at another version, no swap ran) it is the index's own
    name, so that queries of this spec answer by it while others keep using the alias. On a Redis
    Cluster primary, the names carry a hash tag of a slot that primary holds (``index_tag``),
    so the index is made, and queried, there: each primary indexes its own objects."""
    tag = getattr(backend, "index_tag", "")
    name = spec.name(prefix) + tag
    known = _INDEXES.setdefault(backend, {})
    target = known.get(name)
    if target is not None:
        return target
    alias = spec.alias(prefix) + tag
    aliased = alias_target(backend, alias)
    if aliased not in (None, name) and index_info(backend, name) is None and covers(index_info(backend, alias), spec):
        known[name] = alias  # swapped to a version that answers this spec's queries too
        return alias
    create_index(backend, spec, name)
    if aliased is None:
        try:
            backend.execute("FT.ALIASADD", alias, name)
            aliased = name
        except ServerError:  # another process added it first
            aliased = alias_target(backend, alias)
    target = known[name] = alias if aliased == name else name
    return target


def create_index(backend: Backend, spec: IndexSpec, name: str) -> bool:
    """Create ``spec``'s index as ``name`` unless it exists, then wait until its background
    indexing is done; True when this call created it."""
    created = False
    if index_info(backend, name) is None:
        try:
            backend.execute(*spec.create_args(name, _prefix_of(spec, name)))
            created = True
            logger.info("created RediSearch index %s", name)
        except ServerError as exc:
            if "already exists" not in str(exc).lower():
                raise
    _wait_until_indexed(backend, name)
    return created


def _prefix_of(spec: IndexSpec, name: str) -> str:
    """The key prefix an index name was made for (``<prefix>idx:<label>:<digest>[tag]``)."""
    return name[: name.rindex("idx:" + spec.label + ":")]


def index_info(backend: Backend, name: str) -> dict[str, Any] | None:
    """FT.INFO of an index or alias as a dict with text keys, None when there is none."""
    try:
        info = backend.execute("FT.INFO", name)
    except ServerError:
        return None
    if isinstance(info, list):
        info = dict(zip(info[::2], info[1::2], strict=False))
    return {_decoded(key) or "": value for key, value in info.items()}


def alias_target(backend: Backend, alias: str) -> str | None:
    """The name of the index ``alias`` points at (FT.INFO), None when there is no such alias."""
    info = index_info(backend, alias)
    if info is None:
        return None
    found = _decoded(info.get("index_name"))
    return found if found != alias else None


def covers(info: dict[str, Any] | None, spec: IndexSpec) -> bool:
    """True when the index ``info`` (FT.INFO) indexes every field of ``spec`` with its type,
    and as sortable where ``spec`` sorts (RESP2 or RESP3 attribute lists)."""
    if info is None:
        return False
    have: dict[str, tuple[str, bool]] = {}
    for attribute in info.get("attributes") or []:
        if isinstance(attribute, dict):
            entry = {_decoded(key): value for key, value in attribute.items()}
            flags = [_decoded(flag) for flag in entry.get("flags") or []]
        else:
            tokens = [_decoded(token) if isinstance(token, (bytes, str)) else token for token in attribute]
            entry = dict(zip(tokens[::2], tokens[1::2], strict=False))
            flags = tokens
        have[_decoded(entry.get("identifier")) or ""] = (_decoded(entry.get("type")) or "", "SORTABLE" in flags)
    for field, kind in spec.fields.items():
        found = have.get(field)
        if found is None or found[0] != kind or (field in spec.sortable and not found[1]):
            return False
    return True


def forget_indexes(backend: Backend) -> None:
    """Forget what this process knows of ``backend``'s indexes (after one was dropped)."""
    _INDEXES.pop(backend, None)


def _unknown_index(exc: ServerError) -> bool:
    text = str(exc).lower()
    return "unknown index" in text or "no such index" in text or "not found" in text


def _wait_until_indexed(backend: Backend, name: str, timeout: float = 60.0) -> None:
    """A new index over existing data is built in the background: wait until it is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = index_info(backend, name) or {}
        if not int(info.get("indexing", 0)):
            return
        time.sleep(0.02)


def paged_keys(backend: Backend, args: list[Any], offset: int) -> tuple[int, list[str]]:
    """Every match of an FT.SEARCH from ``offset`` on, 1,000 per request: ``(total, keys)``."""
    keys: list[str] = []
    position = offset
    while True:
        total, page = search_results(backend.execute(*args, "LIMIT", str(position), "1000"))
        keys += page
        position += len(page)
        if not page or position >= total:
            return total, keys


def _aggregate_keys(
    backend: Backend, name: str, query: str, params: list[str], sort_field: str | None, descending: bool
) -> list[str]:
    """Every matching key, in order: FT.AGGREGATE ... WITHCURSOR, read 1,000 at a time."""
    args: list[Any] = ["FT.AGGREGATE", name, query, "VERBATIM", "LOAD", "1", "@__key"]
    if sort_field:
        args += ["SORTBY", "2", "@" + sort_field, "DESC" if descending else "ASC", "MAX", "1000000000"]
    if params:
        args += ["PARAMS", str(len(params)), *params]
    args += ["WITHCURSOR", "COUNT", "1000", "DIALECT", "2"]
    reply = backend.execute(*args)
    keys: list[str] = []
    while True:
        rows, cursor = reply[0], int(reply[1])
        keys += aggregate_rows(rows)
        if cursor == 0:
            return keys
        reply = backend.execute("FT.CURSOR", "READ", name, cursor, "COUNT", "1000")


def aggregate_records(rows: Any) -> list[dict[str, str]]:
    """The fields of each row of an FT.AGGREGATE reply, RESP3 (a map) or RESP2 (a list), as text."""
    if isinstance(rows, dict):
        results: Any = rows.get(b"results", rows.get("results", []))
        found = [row.get(b"extra_attributes", row.get("extra_attributes")) or {} for row in results]
    else:
        found = [dict(zip(row[::2], row[1::2], strict=False)) for row in rows[1:]]
    return [{_decoded(key) or "": _decoded(value) or "" for key, value in item.items()} for item in found]


def aggregate_rows(rows: Any) -> list[str]:
    """The ``__key`` of each row of an FT.AGGREGATE reply."""
    return [record["__key"] for record in aggregate_records(rows) if "__key" in record]


def search_results(reply: Any) -> tuple[int, list[str]]:
    """``(total, keys)`` of an FT.SEARCH ... NOCONTENT reply, RESP3 (a map) or RESP2 (a list)."""
    if isinstance(reply, dict):
        total: Any = reply.get(b"total_results", reply.get("total_results", 0))
        results: Any = reply.get(b"results", reply.get("results", []))
        keys = [item.get(b"id", item.get("id")) for item in results]
    else:
        total, keys = reply[0], list(reply[1:])
    return int(total), [key.decode() if isinstance(key, bytes) else key for key in keys]


def search(
    backend: Backend,
    prefix: str,
    filters: list[Filter],
    *,
    sort_by: str | None = None,
    offset: int = 0,
    limit: int | None = 10,
    spec: IndexSpec | None = None,
) -> tuple[int, list[str]]:
    """``(number of matches, ids of this page)``: FT.SEARCH when RediSearch is loaded, else a
    SCAN of every object hash under ``prefix`` (with a warning, once per server). An index
    dropped since this process last used it (a swap) is looked up again, once."""
    try:
        return _search(backend, prefix, filters, sort_by=sort_by, offset=offset, limit=limit, spec=spec)
    except ServerError as exc:
        if not _unknown_index(exc):
            raise
        forget_indexes(backend)
        return _search(backend, prefix, filters, sort_by=sort_by, offset=offset, limit=limit, spec=spec)


def _search(
    backend: Backend,
    prefix: str,
    filters: list[Filter],
    *,
    sort_by: str | None,
    offset: int,
    limit: int | None,
    spec: IndexSpec | None,
) -> tuple[int, list[str]]:
    spec = spec or conversation_index()
    descending = bool(sort_by and sort_by.startswith("-"))
    sort_field = sort_by.lstrip("-") if sort_by else None
    if sort_field is not None and sort_field not in spec.fields:
        raise ValueError(f"cannot sort by {sort_field!r}: not an indexed field")
    if not can_match(filters):
        return 0, []
    if search_module(backend):
        name = ensure_index(backend, spec, prefix)

        def values_of(field: str) -> list[str]:
            return [_decoded(value) or "" for value in backend.execute("FT.TAGVALS", name, field)]

        filters = with_prefixes_resolved(filters, values_of)
        if not can_match(filters):
            return 0, []
        query, params = to_query(filters)
        args: list[Any] = ["FT.SEARCH", name, query, "NOCONTENT", "VERBATIM"]
        if params:
            args += ["PARAMS", str(len(params)), *params]
        args += ["DIALECT", "2"]
        if sort_field:
            args += ["SORTBY", sort_field, "DESC" if descending else "ASC"]
        on_cluster_primary = getattr(backend, "index_tag", None) is not None
        if limit is None and on_cluster_primary:
            # A cluster primary: FT.AGGREGATE cannot LOAD keys of other slots than its index
            # name's there, so every match is read with FT.SEARCH, 1,000 at a time.
            total, keys = paged_keys(backend, args, offset)
        elif limit is None:  # FT.SEARCH returns at most MAXSEARCHRESULTS (10,000): stream them all
            keys = _aggregate_keys(backend, name, query, params, sort_field, descending)
            total, keys = len(keys), keys[offset:]
        else:
            total, keys = search_results(backend.execute(*args, "LIMIT", str(offset), str(limit)))
        return total, [found for key in keys if (found := parse_hash_key(key, prefix)) is not None]
    warn_scan(backend, "find() and count() scan every object (O(number of objects))")
    return _scan_search(backend, prefix, spec, filters, sort_field, descending, offset, limit)


def warn_scan(backend: Backend, what: str, stacklevel: int = 4) -> None:
    """Warn, once per server and kind of query, that a query scans instead of using an index."""
    label = backend.label if what.startswith("find()") else f"{backend.label} ({what})"
    if label not in _warned:
        _warned.add(label)
        warnings.warn(
            f"RediSearch is not loaded on {backend.label}: {what}; load the module for indexed queries",
            RuntimeWarning,
            stacklevel=stacklevel,
        )


def raw_search(
    backend: Backend,
    prefix: str,
    query: str,
    params: dict[str, str] | None = None,
    *,
    offset: int = 0,
    limit: int = 10,
    spec: IndexSpec | None = None,
) -> tuple[int, list[str]]:
    """``(number of matches, ids)`` of a RediSearch query written by hand (dialect 2), run on
    the conversation index; ``params`` are its ``$name`` parameters. Needs RediSearch."""
    spec = spec or conversation_index()
    if not search_module(backend):
        raise ServerError(f"a raw query needs RediSearch, which is not loaded on {backend.label}")
    try:
        return _raw_search(backend, prefix, query, params, offset, limit, spec)
    except ServerError as exc:
        if not _unknown_index(exc):
            raise
        forget_indexes(backend)  # dropped by a swap since this process last used it: once more
        return _raw_search(backend, prefix, query, params, offset, limit, spec)


def _raw_search(
    backend: Backend, prefix: str, query: str, params: dict[str, str] | None, offset: int, limit: int, spec: IndexSpec
) -> tuple[int, list[str]]:
    name = ensure_index(backend, spec, prefix)
    args: list[Any] = ["FT.SEARCH", name, query, "NOCONTENT"]
    if params:
        args += ["PARAMS", str(2 * len(params))]
        for key, value in params.items():
            args += [key, value]
    args += ["LIMIT", str(offset), str(limit), "DIALECT", "2"]
    total, keys = search_results(backend.execute(*args))
    return total, [found for key in keys if (found := parse_hash_key(key, prefix)) is not None]


def scan_hashes(backend: Backend, pattern: str) -> list[str]:
    """Every hash key matching ``pattern``: SCAN MATCH <pattern> TYPE hash (never KEYS)."""
    keys: list[str] = []
    cursor = "0"
    while True:
        cursor_raw, batch = backend.execute("SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_COUNT, "TYPE", "hash")
        cursor = cursor_raw.decode() if isinstance(cursor_raw, bytes) else str(cursor_raw)
        keys += [key.decode() if isinstance(key, bytes) else key for key in batch]
        if cursor == "0":
            return keys


def object_keys(backend: Backend, prefix: str) -> list[str]:
    """Every object hash key under ``prefix`` (``<prefix>{<id>}``), sorted."""
    return sorted(key for key in scan_hashes(backend, prefix + "{*") if parse_hash_key(key, prefix) is not None)


def _scan_search(
    backend: Backend,
    prefix: str,
    spec: IndexSpec,
    filters: list[Filter],
    sort_field: str | None,
    descending: bool,
    offset: int,
    limit: int | None,
) -> tuple[int, list[str]]:
    names = list(spec.fields)
    keys = object_keys(backend, prefix)
    found: list[tuple[Any, str]] = []
    for start in range(0, len(keys), _FETCH_BATCH):
        batch = keys[start : start + _FETCH_BATCH]
        rows = backend.execute_many([("HMGET", key, *names) for key in batch])
        for key, row in zip(batch, rows, strict=True):
            fields = {name: _decoded(value) for name, value in zip(names, row, strict=True)}
            if not _indexable(fields, spec) or not matches(fields, filters):
                continue
            sort_value = fields.get(sort_field) if sort_field else None
            found.append((_sort_key(sort_value, spec.fields.get(sort_field or "")), key))
    if sort_field:
        present = sorted((item for item in found if item[0] is not None), key=lambda item: item[0], reverse=descending)
        found = present + [item for item in found if item[0] is None]
    page = found[offset:] if limit is None else found[offset : offset + limit]
    return len(found), [found_id for _, key in page if (found_id := parse_hash_key(key, prefix)) is not None]


def _decoded(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _indexable(fields: dict[str, str | None], spec: IndexSpec) -> bool:
    """RediSearch skips a hash whose NUMERIC field holds something that is not a number."""
    for name, kind in spec.fields.items():
        value = fields.get(name)
        if kind == "NUMERIC" and value is not None:
            try:
                float(value)
            except ValueError:
                return False
    return True


def _sort_key(value: str | None, kind: str | None) -> Any:
    if value is None:
        return None
    return float(value) if kind == "NUMERIC" else value
