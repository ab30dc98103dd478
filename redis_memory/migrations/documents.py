"""Convert dict attributes stored as JSON text into RedisJSON documents.

Without RedisJSON a dict attribute is a STRING key ``<prefix>{<id>}:<name>`` holding the
document's JSON text (docs/design.md, "Dicts without RedisJSON"). Once the module is loaded,
such a dict still reads, but path changes to it fail until it is assigned again; this
migration converts each one in place:

1. ``SCAN <prefix>{* TYPE string``, a batch at a time, the cursor recorded in the checkpoint
   (:func:`redis_memory.keys.migration_key`, ``"documents"``) after each converted batch;
2. per batch one pipelined ``HGET`` of the kind fields and ``GET`` of the texts, keeping the
   keys whose attribute is a dict (or a pydantic model, stored the same way);
3. one pipelined round trip of ``lua/text_to_document.lua`` per key: it checks the kind and
   the key's type, and replaces the text by the document (``JSON.SET``), keeping the key's
   time to live, in one script, so a concurrent reader sees the text or the document, never
   neither, and a concurrent writer's change is never lost (its own script runs before or
   after);
4. verification: each converted dict, read back through the public API (``Memory.fetch``),
   equals its text; then a last SCAN finds no dict left as text.

A second run finds nothing to convert and writes nothing. On a server without RedisJSON it
refuses with :class:`~redis_memory.errors.MigrationError` before changing anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import redis

from redis_memory.errors import MigrationError, RedisMemoryError
from redis_memory.keys import KeySpace, kind_field, meta_key, parse_collection_key
from redis_memory.memory import Memory
from redis_memory.migrations._batch import (
    Checkpoint,
    Progress,
    Raw,
    check_batch,
    glob_escape,
    report_progress,
    same,
    text,
)

__all__ = ["DocumentsReport", "convert_json_documents"]

_SCRIPT = "text_to_document.lua"


@dataclass(frozen=True)
class DocumentsReport:
    """What :func:`convert_json_documents` did (or, with ``dry_run``, would do).

    ``converted``: documents converted (counting an interrupted run's); ``scanned``: string
    keys of objects looked at; ``resumed``: this run continued an interrupted one;
    ``verified``: every converted dict read back equal and no dict is left as text."""

    dry_run: bool
    converted: int = 0
    scanned: int = 0
    resumed: bool = False
    verified: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Verified, with no problem."""
        return self.verified and not self.problems


def _script() -> str:
    return resources.files("redis_memory").joinpath("lua", _SCRIPT).read_text(encoding="utf-8")


def _has_json(raw: Raw) -> bool:
    try:
        raw.execute("JSON.TYPE", meta_key(raw.prefix))
    except RedisMemoryError as exc:
        return "unknown command" not in str(exc).lower()
    return True


def _candidates(raw: Raw, keys: list[str]) -> list[tuple[str, str, str, str]]:
    """``(key, object id, name, text)`` of the keys holding a dict (or model) as JSON text:
    one pipelined round trip (HGET of each kind field, GET of each text)."""
    parsed = [(key, found) for key in keys if (found := parse_collection_key(key, raw.prefix)) is not None]
    commands: list[tuple[Any, ...]] = []
    for key, (object_id, name) in parsed:
        commands += [("HGET", KeySpace(raw.prefix, object_id).hash_key, kind_field(name)), ("GET", key)]
    replies = raw.many(commands)
    chosen = []
    for index, (key, (object_id, name)) in enumerate(parsed):
        kind, body = replies[2 * index], replies[2 * index + 1]
        kind_text = None if kind is None else text(kind)
        if body is not None and kind_text is not None and (kind_text == "dict" or kind_text.startswith("model:")):
            chosen.append((key, object_id, name, text(body)))
    return chosen


def convert_json_documents(
    *,
    dry_run: bool = False,
    batch: int = 500,
    progress: Progress | None = None,
    url: str | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> DocumentsReport:
    """Convert every dict attribute under ``prefix`` stored as JSON text into a RedisJSON
    document (the module docstring says how; docs/migrating.md shows it).

    ``dry_run``: count them, change nothing. ``progress(done, None)`` is called after each
    SCAN batch (keys looked at; the total is not known in advance). Round trips per ``batch``
    keys: one SCAN, one pipelined read, one pipelined conversion, one read back and one HSET of
    the checkpoint. :class:`~redis_memory.errors.MigrationError` when the server has no
    RedisJSON; ValueError for a bad ``batch``; nothing changed in either case."""
    check_batch(batch)
    raw = Raw(url, client, prefix)
    if not _has_json(raw):
        raise MigrationError("the server has no RedisJSON module: load it (rejson.so), then convert the documents")
    checkpoint = Checkpoint(raw, "documents")
    resumed = checkpoint.resumed and not dry_run
    converted = checkpoint.count("converted") if resumed else 0
    scanned = 0
    problems: list[str] = []
    script = _script()
    match = glob_escape(raw.prefix) + "{*"
    cursor = checkpoint.position if resumed else "0"
    while True:
        cursor_reply, keys = raw.execute("SCAN", cursor or "0", "MATCH", match, "COUNT", batch, "TYPE", "string")
        cursor = text(cursor_reply)
        names = [text(key) for key in keys]
        scanned += len(names)
        found = _candidates(raw, names)
        if dry_run:
            converted += len(found)
        elif found:
            replies = raw.many([("EVAL", script, 2, KeySpace(raw.prefix, oid).hash_key, key, kind_field(name))
                                for key, oid, name, _ in found])  # fmt: skip
            done = [item for item, reply in zip(found, replies, strict=True) if reply == 1]
            for item, reply in zip(found, replies, strict=True):
                if reply not in (0, 1):
                    problems.append(f"{item[0]}: not converted: {text(reply)}")
            converted += len(done)
            problems += _verify(raw, done)
            checkpoint.save(cursor, {"converted": converted})
        report_progress(progress, scanned, None)
        if cursor == "0":
            break
    verified = False
    if not dry_run:
        checkpoint.finish({"converted": converted})
        left = [key for keys in raw.scan(match, batch, "string") for key, *_ in _candidates(raw, keys)]
        problems += [f"{key}: still JSON text" for key in left if not any(key in p for p in problems)]
        verified = not problems
    return DocumentsReport(
        dry_run=dry_run, converted=converted, scanned=scanned, resumed=resumed, verified=verified, problems=problems
    )


def _verify(raw: Raw, done: list[tuple[str, str, str, str]]) -> list[str]:
    """Each converted dict, read back through the public API, equals the text it was (models
    are compared as stored documents: ``JSON.GET``)."""
    problems: list[str] = []
    by_id: dict[str, dict[str, tuple[str, str]]] = {}
    for key, object_id, name, body in done:
        by_id.setdefault(object_id, {})[name] = (key, body)
    names = sorted({name for found in by_id.values() for name in found})
    try:
        rows = Memory.fetch(list(by_id), names, url=raw.url, client=raw.client, prefix=raw.prefix)
    except RedisMemoryError:  # a model whose class this process cannot import: compare as stored
        rows = {}
    documents = raw.many([("JSON.GET", key, "$") for key, *_ in done])
    stored = {item[0]: document for item, document in zip(done, documents, strict=True)}
    for object_id, found in by_id.items():
        for name, (key, body) in found.items():
            expected = json.loads(body)
            have = rows.get(object_id, {}).get(name)
            if isinstance(have, dict) and same(have, expected):
                continue
            document = stored[key]
            if not isinstance(have, dict) and document is not None and same(json.loads(text(document)), [expected]):
                continue  # a model: compared as stored
            problems.append(f"{key}: reads back {have!r}, not {expected!r}")
    return problems
