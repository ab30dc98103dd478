"""Message search: full-text search over the messages of every conversation.

It is opt-in per schema (``ConversationMemory.index_messages = True``, or
``index_messages=True`` when opening one). A searchable list keeps a copy of each element in
its own hash, ``<prefix>#m{<id>}:<name>:<n>``, holding the element's indexed fields (the
message fields ``schemas/conversation.json`` indexes: ``role`` as TAG, ``content`` as
TEXT), the element's JSON text, the conversation id, the attribute's name and ``n``, the
element's position plus a base that moves on when elements leave the front. The Lua script
that changes the list writes and deletes these copies in the same call (see ``lib.lua``), so
a message is searchable exactly when it is in the list. The ``#`` keeps the copies out of
the conversation index, whose keys start ``<prefix>{``.

``FT.AGGREGATE`` over an index on ``<prefix>#m{`` answers; without RediSearch, a SCAN of the
copies gives the same answers, in the same order (conversation id, then attribute, then
position), with a warning once per server.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis_memory import codec
from redis_memory.backend import Backend
from redis_memory.core.requests import text as as_text
from redis_memory.keys import decode_part, encode_part, normalize_id
from redis_memory.search.filters import (
    Filter,
    can_match,
    check_tag_values,
    matches,
    parse,
    to_query,
    with_prefixes_resolved,
)
from redis_memory.search.index import (
    IndexSpec,
    aggregate_records,
    conversation_schema,
    ensure_index,
    paged_keys,
    scan_hashes,
    search_module,
    search_results,
    warn_scan,
)

KEY_START = "#m{"
_FETCH_BATCH = 500
_ORDER = ("conversation", "attribute", "n")


def fold(code: int) -> int:
    """A code point (non-ASCII) as the copies' content holds it: mirrors ``fold`` in
    ``lib.lua``. Non-ASCII punctuation and spaces become a space (RediSearch splits words at
    ASCII ones only), and Latin, Greek and Cyrillic capitals small letters (it lowercases
    ASCII only)."""
    if code < 0xC0 or code in (0xD7, 0xF7) or 0x2000 <= code <= 0x206F or 0x3000 <= code <= 0x3002:
        return 0x20
    if 0x3008 <= code <= 0x3011:
        return 0x20
    if code <= 0xDE:  # Latin-1 capitals
        return code + 0x20
    if 0x100 <= code <= 0x17E:  # Latin Extended-A: capital, small in pairs
        if code == 0x178:
            return 0xFF
        even = code % 2 == 0
        if (
            (code <= 0x137 and even and code != 0x130)
            or (0x139 <= code <= 0x148 and not even)
            or (0x14A <= code <= 0x177 and even)
            or (code >= 0x179 and not even)
        ):
            return code + 1
    elif 0x391 <= code <= 0x3A9 and code != 0x3A2:  # Greek capitals
        return code + 0x20
    elif 0x400 <= code <= 0x40F:  # Cyrillic capitals
        return code + 0x50
    elif 0x410 <= code <= 0x42F:
        return code + 0x20
    return code


_SEARCH_TEXT = {code: " " for code in (*range(0x20), 0x7F, ord("_"), ord("\\"))}
_SEARCH_TEXT.update({code: chr(fold(code)) for code in range(0x80, 0x3012) if fold(code) != code})


def search_text(text: str) -> str:
    """A message's content as its copy holds it (``search_text`` in ``lib.lua``), so that
    RediSearch finds each word in any case: control characters, ``_`` and ``\\`` become
    spaces, then non-ASCII characters are folded (:func:`fold`). Searched text is read the
    same way: ``"my_order"`` finds ``"My order"``, ``"école"`` finds ``"ÉCOLE"``."""
    return text.translate(_SEARCH_TEXT)


@dataclass(frozen=True, slots=True)
class MessageMatch:
    """One message that matched: the conversation it belongs to, the list attribute holding
    it (``"messages"``) and the message itself, as stored (a plain dict for a chat message)."""

    conversation_id: str
    attribute: str
    message: Any


@functools.cache
def message_fields() -> tuple[str, ...]:
    """The message fields the conversation schema indexes (``role``, ``content``)."""
    fields = conversation_schema()["message"]["fields"]
    return tuple(name for name, field in fields.items() if "index" in field)


@functools.cache
def message_index() -> IndexSpec:
    """The index over the copies of searchable messages."""
    declared = conversation_schema()["message"]["fields"]
    fields = {"conversation": "TAG", "attribute": "TAG", "n": "NUMERIC"}
    fields.update({name: declared[name]["index"] for name in message_fields()})
    return IndexSpec(fields, frozenset(_ORDER), label="messages", key_start=KEY_START)


def _filters(text: str | None, filters: Mapping[str, object]) -> list[Filter]:
    given = dict(filters)
    if text is not None:
        if not isinstance(given.get("content__contains", ""), str):
            raise TypeError("content__contains takes text")
        given["content__contains"] = f"{text} {given.get('content__contains', '')}"  # every word must hold
    contains = given.get("content__contains")
    if isinstance(contains, str):  # read as the copies hold content
        given["content__contains"] = search_text(contains)
    for key in list(given):  # the conversation id is stored percent-encoded, as in key names
        name, _, op = key.partition("__")
        if name == "conversation":
            value = given[key]
            if op == "in":
                if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                    raise TypeError(f"{key!r} takes a list of conversation ids")
                given[key] = [encode_part(normalize_id(item)) for item in value]
            elif op in ("", "ne"):
                given[key] = encode_part(normalize_id(value))
            elif op == "startswith" and isinstance(value, str):
                given[key] = encode_part(value)  # encoding is per character: prefixes stay prefixes
    parsed = parse(given, message_index().fields)
    check_tag_values(parsed)
    return parsed


def search_messages(
    backend: Backend,
    prefix: str,
    text: str | None,
    filters: Mapping[str, object],
    *,
    offset: int = 0,
    limit: int | None = 10,
) -> tuple[int, list[MessageMatch]]:
    """``(number of matches, this page of them)``, ordered by conversation id, attribute and
    position. ``text``: words that must all appear in ``content``; ``filters`` as in
    ``find()``, on ``role``, ``content``, ``conversation`` (an id) and ``attribute``."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"limit must be an int >= 0 or None, not {limit!r}")
    if type(offset) is not int or offset < 0:
        raise ValueError(f"offset must be an int >= 0, not {offset!r}")
    if text is not None and not isinstance(text, str):
        raise TypeError(f"the text to search for must be a str, not {type(text).__name__}")
    parsed = _filters(text, filters)
    if not can_match(parsed):
        return 0, []
    primaries = getattr(backend, "primaries", None)
    if primaries is not None:  # a Redis Cluster
        return _fanned_out(list(primaries()), prefix, parsed, offset, limit)
    spec = message_index()
    if not search_module(backend):
        warn_scan(backend, "message search scans every searchable message (O(number of messages))")
        return _scan(backend, prefix, parsed, offset, limit)
    name = ensure_index(backend, spec, prefix)
    parsed = with_prefixes_resolved(
        parsed, lambda field: [as_text(value) for value in backend.execute("FT.TAGVALS", name, field)]
    )
    if not can_match(parsed):
        return 0, []
    query, params = to_query(parsed)
    parameters = ["PARAMS", str(len(params)), *params] if params else []
    total, _ = search_results(
        backend.execute(
            "FT.SEARCH", name, query, "NOCONTENT", "VERBATIM", *parameters, "LIMIT", "0", "0", "DIALECT", "2"
        )
    )
    if limit == 0 or offset >= total:
        return total, []
    args: list[Any] = ["FT.AGGREGATE", name, query, "VERBATIM", "LOAD", "3", "@element", "@conversation", "@attribute"]
    args += ["SORTBY", "6", "@conversation", "ASC", "@attribute", "ASC", "@n", "ASC", "MAX", str(total)]
    args += ["LIMIT", str(offset), str(total if limit is None else limit), *parameters]
    args += ["WITHCURSOR", "COUNT", "1000", "DIALECT", "2"]
    reply = backend.execute(*args)
    records: list[dict[str, str]] = []
    while True:
        records += aggregate_records(reply[0])
        cursor = int(reply[1])
        if cursor == 0:
            break
        reply = backend.execute("FT.CURSOR", "READ", name, cursor, "COUNT", "1000")
    return total, [_match(record) for record in records]


def _fanned_out(
    nodes: list[Backend], prefix: str, filters: list[Filter], offset: int, limit: int | None
) -> tuple[int, list[MessageMatch]]:
    """A message search on a Redis Cluster: each primary's matching copies (its own index, or
    its scan), put in the one-server order (conversation, attribute, position, which each copy's
    key spells), then only the page's copies are read. A primary's index cannot load fields of
    keys outside its name's slot, so the order comes from the keys, not from FT.AGGREGATE."""
    found: list[tuple[tuple[str, str, float], Backend, str]] = []
    for node in nodes:
        found += [(_order_of(key, prefix), node, key) for key in _matching_keys(node, prefix, filters)]
    found.sort(key=lambda item: item[0])
    page = found[offset:] if limit is None else found[offset : offset + limit]
    names = ("element", "conversation", "attribute")
    records: dict[str, dict[str, str]] = {}
    for node in nodes:  # the page's copies, pipelined HMGETs on the primary holding each
        keys = [key for _, owner, key in page if owner is node]
        for start in range(0, len(keys), _FETCH_BATCH):
            batch = keys[start : start + _FETCH_BATCH]
            for key, row in zip(batch, node.execute_many([("HMGET", key, *names) for key in batch]), strict=True):
                if row[0] is not None:  # gone since: the list changed meanwhile
                    records[key] = {name: as_text(value) for name, value in zip(names, row, strict=True)}
    return len(found), [_match(records[key]) for _, _, key in page if key in records]


def _order_of(key: str, prefix: str) -> tuple[str, str, float]:
    """``(conversation, attribute, n)`` of a copy's key ``<prefix>#m{<id>}:<name>:<n>``."""
    conversation, _, rest = key[len(prefix) + len(KEY_START) :].partition("}:")
    attribute, _, position = rest.rpartition(":")
    return conversation, attribute, float(position)


def _matching_keys(node: Backend, prefix: str, filters: list[Filter]) -> list[str]:
    """The keys of one primary's copies that match: FT.SEARCH ... NOCONTENT on its index, paged,
    or its scan where RediSearch is not loaded."""
    if not search_module(node):
        warn_scan(node, "message search scans every searchable message (O(number of messages))", stacklevel=5)
        return [key for key, _ in _scanned(node, prefix, filters)]
    name = ensure_index(node, message_index(), prefix)
    filters = with_prefixes_resolved(
        filters, lambda field: [as_text(value) for value in node.execute("FT.TAGVALS", name, field)]
    )
    if not can_match(filters):
        return []
    query, params = to_query(filters)
    parameters = ["PARAMS", str(len(params)), *params] if params else []
    return paged_keys(node, ["FT.SEARCH", name, query, "NOCONTENT", "VERBATIM", *parameters, "DIALECT", "2"], 0)[1]


def _match(record: Mapping[str, str]) -> MessageMatch:
    return MessageMatch(
        conversation_id=decode_part(record["conversation"]),
        attribute=record["attribute"],
        message=codec.loads(record["element"]),
    )


def message_keys(backend: Backend, prefix: str) -> list[str]:
    """Every copy of a searchable message under ``prefix`` (``<prefix>#m{...``)."""
    return scan_hashes(backend, prefix + KEY_START + "*")


def _scanned(backend: Backend, prefix: str, filters: list[Filter]) -> list[tuple[str, dict[str, str]]]:
    """Every copy under ``prefix`` that matches, with its fields: a SCAN, then pipelined HMGETs."""
    names = [*message_index().fields, "element"]
    keys = message_keys(backend, prefix)
    found: list[tuple[str, dict[str, str]]] = []
    for start in range(0, len(keys), _FETCH_BATCH):
        batch = keys[start : start + _FETCH_BATCH]
        rows = backend.execute_many([("HMGET", key, *names) for key in batch])
        for key, row in zip(batch, rows, strict=True):
            fields = {name: as_text(value) for name, value in zip(names, row, strict=True) if value is not None}
            if "element" in fields and matches(fields, filters):
                found.append((key, fields))
    return found


def _scan(
    backend: Backend, prefix: str, filters: list[Filter], offset: int, limit: int | None
) -> tuple[int, list[MessageMatch]]:
    found = [
        ((fields["conversation"], fields["attribute"], float(fields["n"])), fields)
        for _, fields in _scanned(backend, prefix, filters)
    ]
    found.sort(key=lambda item: item[0])
    page = found[offset:] if limit is None else found[offset : offset + limit]
    return len(found), [_match(fields) for _, fields in page]
