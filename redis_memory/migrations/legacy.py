"""Import data written by the original ``redis-memory`` 0.4.3 / ``synced-memory`` 0.1.3.

The originals stored each attribute as a STRING key holding ``{"value": ..., "last_modified":
<ns>}``: ``<legacy_prefix><conversation_id>:<name>`` for a ``ConversationMemory`` and
``<legacy_prefix><name>`` for a plain ``Memory()`` (here: the memory ``"default"``).

How a run goes (docs/migrating.md, "Importing the originals' data"):

1. **Collect** (SCAN ... TYPE string, names only): every key under the legacy prefix that is
   not one of this library's own (``{``, ``~ops{``, ``#m{``, ``idx:``, ``__meta__``,
   ``__migrations__:`` after the prefix), grouped by the object it belongs to. A key with one
   ``:`` after the prefix is clear; with several (``a:b:c``) the id is everything before the
   last ``:`` (names are identifiers here), unless a shorter candidate (``a``, attribute
   ``b:c``) is the id of another conversation (found with one ``:``, or passed in
   ``conversation_ids``): then the key is *ambiguous*, reported, and nothing of it migrated.
   Passing the id in ``conversation_ids`` resolves it.
2. **Write**, objects in sorted order, about ``batch`` keys at a time: one pipelined GET of the
   batch, one pipelined read of our values (``Memory.fetch``), then per object with values
   not stored here yet one ``with mem.transaction():`` (one EVALSHA for all its attributes: lists become
   our lists, dicts our dicts, scalars hash fields); then the checkpoint records the last
   object written. Replaying a batch writes the same values, so a killed run resumes from
   its last batch.
3. **Verify**: every migrated legacy value, read back through the public API, equals it.
4. With ``delete_legacy=True``, the verified legacy keys (and only those) are deleted, each
   only if it still holds the text that was verified.

An attribute already stored here with another value (the application changed it since) is
kept and reported in ``conflicts``, unless ``overwrite=True``. A second run finds every value
already equal and writes nothing (not even its checkpoint).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.cluster

from redis_memory.errors import RedisMemoryError
from redis_memory.keys import DEFAULT_ID, normalize_id
from redis_memory.memory import ConversationMemory, Memory, storable_name
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

__all__ = ["LegacyReport", "migrate_legacy"]

logger = logging.getLogger(__name__)

OURS = ("{", "~ops{", "#m{", "idx:", "__meta__", "__migrations__:")
_DELETE_IF_SAME = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

Target = tuple[bool, str]  # (is a conversation, id)
Found = dict[Target, dict[str, tuple[str, Any, Any]]]  # per object: {name: (key, text, value)}


@dataclass(frozen=True)
class LegacyReport:
    """What :func:`migrate_legacy` did (or, with ``dry_run``, would do).

    ``conflicts``: legacy keys whose attribute is already stored here with another value,
    kept as it is here (``overwrite=True`` replaces it). ``conversations``: conversations
    written to; ``memories``: attributes of the plain
    ``Memory()`` written; ``attributes``: every attribute value written (both kinds), counting
    an interrupted run's; ``unchanged``: legacy values already identical here; ``skipped``:
    keys not migrated (not the originals' shape, or an attribute name or value this library
    cannot store: those are in ``problems``); ``ambiguous``: legacy keys whose conversation id
    cannot be told; ``verified``: every migrated value read back equal; ``deleted``: legacy
    keys deleted (``delete_legacy``)."""

    dry_run: bool
    conversations: int = 0
    memories: int = 0
    attributes: int = 0
    unchanged: int = 0
    skipped: int = 0
    deleted: int = 0
    resumed: bool = False
    verified: bool = False
    ambiguous: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Verified, with nothing ambiguous and no problem."""
        return self.verified and not self.ambiguous and not self.problems


class _Plan:
    """Step 1: the legacy keys, by the object they go to."""

    def __init__(self, legacy_prefix: str, our_prefix: str, known_ids: set[str]) -> None:
        self.legacy_prefix, self.our_prefix, self.known = legacy_prefix, our_prefix, known_ids
        self.objects: dict[Target, dict[str, str]] = {}  # target -> {name: legacy key}
        self.ambiguous: list[str] = []
        self.problems: list[str] = []

    def ours(self, key: str) -> bool:
        for prefix in {self.legacy_prefix, self.our_prefix}:
            if key.startswith(prefix) and key[len(prefix) :].startswith(OURS):
                return True
        return False

    def add(self, keys: list[str]) -> None:
        for key in keys:
            if self.ours(key):
                continue
            rest = key[len(self.legacy_prefix) :]
            if ":" not in rest:
                self.place(key, (False, DEFAULT_ID), rest)
                continue
            parts = rest.split(":")
            candidates = [":".join(parts[:n]) for n in range(1, len(parts) - 1)]
            if any(candidate in self.known for candidate in candidates):
                self.ambiguous.append(key)
                continue
            self.place(key, (True, ":".join(parts[:-1])), parts[-1])

    def place(self, key: str, target: Target, name: str) -> None:
        try:
            normalize_id(target[1])
            storable_name(ConversationMemory if target[0] else Memory, name)
        except RedisMemoryError as exc:
            self.problems.append(f"{key}: not migrated: {exc}")
            return
        self.objects.setdefault(target, {})[name] = key

    def batches(self, size: int, after: str) -> list[list[tuple[Target, dict[str, str]]]]:
        """The objects after position ``after``, in order, about ``size`` keys per batch."""
        chunks: list[list[tuple[Target, dict[str, str]]]] = []
        current: list[tuple[Target, dict[str, str]]] = []
        filled = 0
        for target in sorted(self.objects, key=position):
            if after and position(target) <= after:
                continue
            current.append((target, self.objects[target]))
            filled += len(self.objects[target])
            if filled >= size:
                chunks.append(current)
                current, filled = [], 0
        if current:
            chunks.append(current)
        return chunks


def position(target: Target) -> str:
    """An object's place in the order of a run, as the checkpoint records it."""
    return ("c:" if target[0] else "m:") + target[1]


def _legacy_value(raw_text: str | None) -> tuple[bool, Any]:
    """(True, value) for the originals' ``{"value": ..., "last_modified": <int>}``, else (False, None)."""
    if raw_text is None:
        return False, None
    try:
        found = json.loads(raw_text)
    except ValueError:
        return False, None
    if not isinstance(found, dict) or set(found) != {"value", "last_modified"}:
        return False, None
    if type(found["last_modified"]) not in (int, float):
        return False, None
    return True, found["value"]


class _Run:
    """Steps 2 to 4 on one server."""

    def __init__(self, raw: Raw, plan: _Plan, dry_run: bool, overwrite: bool) -> None:
        self.raw, self.plan, self.dry_run, self.overwrite = raw, plan, dry_run, overwrite
        self.conflicts: list[str] = []
        self.counts = {"conversations": 0, "memories": 0, "attributes": 0}
        self.unchanged = self.skipped = 0
        self.problems: list[str] = []

    def memory(self, target: Target) -> Memory:
        cls = ConversationMemory if target[0] else Memory
        return cls(target[1], url=self.raw.url, client=self.raw.client, prefix=self.raw.prefix)

    def read(self, batch: list[tuple[Target, dict[str, str]]], counting: bool = True) -> Found:
        """Per object, ``{name: (legacy key, legacy text, legacy value)}`` of the keys in the
        originals' shape, and ``{name: our value}``: two round trips (three with both kinds)."""
        keys = [key for _, names in batch for key in names.values()]
        texts = dict(zip(keys, self.raw.many([("GET", key) for key in keys]), strict=True))
        found: Found = {}
        for target, names in batch:
            for name, key in names.items():
                reply = texts[key]
                legacy_text = None if reply is None else text(reply)
                valid, value = _legacy_value(legacy_text)
                if not valid:
                    self.skipped += counting
                    logger.info("%s is not in the original packages' shape: left alone", key)
                    continue
                found.setdefault(target, {})[name] = (key, legacy_text, value)
        return found

    def ours(self, found: Found) -> dict[Target, dict[str, Any]]:
        result: dict[Target, dict[str, Any]] = {}
        for conversation, cls in ((True, ConversationMemory), (False, Memory)):
            targets = [target for target in found if target[0] is conversation]
            names = sorted({name for target in targets for name in found[target]})
            if not targets or not names:
                continue
            ids = [target[1] for target in targets]
            rows = cls.fetch(ids, names, url=self.raw.url, client=self.raw.client, prefix=self.raw.prefix)
            for target in targets:
                result[target] = rows.get(target[1], {})
        return result

    def write(self, batch: list[tuple[Target, dict[str, str]]]) -> int:
        """Step 2 for one batch; returns how many values it wrote (or would write)."""
        found = self.read(batch)
        current = self.ours(found)
        written = 0
        for target, values in found.items():
            have = current.get(target, {})
            todo = {name: item[2] for name, item in values.items() if name not in have}
            for name, (key, _, value) in values.items():
                if name in have and not same(have[name], value):
                    if self.overwrite:
                        todo[name] = value
                    else:
                        self.conflicts.append(key)
            self.unchanged += sum(name in have and same(have[name], item[2]) for name, item in values.items())
            if not todo:
                continue
            done = len(todo) if self.dry_run else self._assign(target, todo)
            if done:
                written += done
                self.counts["attributes"] += done
                self.counts["conversations" if target[0] else "memories"] += 1 if target[0] else done
        return written

    def _assign(self, target: Target, todo: dict[str, Any]) -> int:
        mem = self.memory(target)
        try:
            with mem.transaction():
                for name, value in todo.items():
                    setattr(mem, name, value)
            return len(todo)
        except RedisMemoryError:  # one value cannot be stored: write the others one by one
            done = 0
            for name, value in todo.items():
                try:
                    setattr(mem, name, value)
                    done += 1
                except RedisMemoryError as exc:
                    self.skipped += 1
                    self.problems.append(f"{target[1]!r}.{name}: not migrated: {exc}")
            return done

    def verify(self, size: int) -> list[tuple[str, str]]:
        """Step 3: every migratable legacy value equals ours; returns the (key, text) verified."""
        verified: list[tuple[str, str]] = []
        failed = {problem.split(": not migrated")[0] for problem in self.problems}
        conflicts = set(self.conflicts)
        for batch in self.plan.batches(size, ""):
            found = self.read(batch, counting=False)
            current = self.ours(found)
            for target, values in found.items():
                for name, (key, legacy_text, value) in values.items():
                    if f"{target[1]!r}.{name}" in failed or key in conflicts:
                        continue
                    have = current.get(target, {})
                    if name in have and same(have[name], value):
                        verified.append((key, legacy_text))
                    else:
                        self.problems.append(f"{key}: reads back {have.get(name, '<missing>')!r}, not {value!r}")
        return verified

    def delete(self, verified: list[tuple[str, str]], size: int) -> int:
        """Step 4: delete each verified legacy key that still holds the verified text."""
        deleted = 0
        for start in range(0, len(verified), size):
            chunk = verified[start : start + size]
            replies = self.raw.many([("EVAL", _DELETE_IF_SAME, 1, key, value) for key, value in chunk])
            deleted += sum(int(reply) for reply in replies)
        return deleted


def migrate_legacy(
    *,
    legacy_prefix: str = "memory:",
    conversation_ids: Iterable[str] | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    delete_legacy: bool = False,
    batch: int = 500,
    progress: Progress | None = None,
    url: str | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> LegacyReport:
    """Import the original packages' keys under ``legacy_prefix`` into this library's layout
    under ``prefix`` (the module docstring says how; docs/migrating.md shows it).

    ``conversation_ids``: conversation ids known to exist, to resolve keys whose id the old
    layout made ambiguous. ``overwrite``: replace an attribute already stored here with another
    value (by default it is kept, and its legacy key listed in ``conflicts``). ``dry_run``:
    count what would be written, write nothing. ``delete_legacy``: delete the legacy keys that
    verified. ``progress(done, total)`` is
    called after each batch (legacy keys handled, of all found). Round trips: one SCAN per
    ``batch`` keys, then per batch one pipelined GET, one or two pipelined reads of ours, one
    EVALSHA per object written and one HSET of the checkpoint; the verification reads it all
    again. ValueError for a bad ``batch`` or prefix, before anything is read."""
    check_batch(batch)
    if not isinstance(legacy_prefix, str):
        raise ValueError(f"legacy_prefix must be a str, not {type(legacy_prefix).__name__}")
    raw = Raw(url, client, prefix)
    given = {str(found) for found in conversation_ids or ()}
    names: list[str] = [key for keys in raw.scan(glob_escape(legacy_prefix) + "*", batch, "string") for key in keys]
    known = set(given)
    for key in names:
        rest = key[len(legacy_prefix) :]
        if rest.count(":") == 1 and not rest.startswith(OURS):
            known.add(rest.split(":")[0])
    plan = _Plan(legacy_prefix, raw.prefix, known)
    plan.add([key for key in names if not _given_key(key, legacy_prefix, given)])
    for key in names:  # a key naming exactly one given id is that conversation's
        if _given_key(key, legacy_prefix, given):
            rest = key[len(legacy_prefix) :]
            cid = next(candidate for candidate in _ids_of(rest) if candidate in given)
            plan.place(key, (True, cid), rest[len(cid) + 1 :])
    total = sum(len(found) for found in plan.objects.values())
    checkpoint = Checkpoint(raw, "legacy")
    run = _Run(raw, plan, dry_run, overwrite)
    resumed = checkpoint.resumed and not dry_run
    done = 0
    if resumed:
        run.counts = {name: checkpoint.count(name) for name in run.counts}
    for chunk in plan.batches(batch, checkpoint.position if resumed else ""):
        wrote = run.write(chunk)
        done += sum(len(found) for _, found in chunk)
        if not dry_run and (wrote or checkpoint.wrote or resumed):
            checkpoint.save(position(chunk[-1][0]), run.counts)
        report_progress(progress, done, total)
    verified_keys: list[tuple[str, str]] = []
    deleted = 0
    if not dry_run:
        checkpoint.finish(run.counts)
        verified_keys = run.verify(batch)
        if delete_legacy:
            deleted = run.delete(verified_keys, batch)
    problems = plan.problems + run.problems
    return LegacyReport(
        dry_run=dry_run,
        conversations=run.counts["conversations"],
        memories=run.counts["memories"],
        attributes=run.counts["attributes"],
        unchanged=run.unchanged,
        skipped=run.skipped + len(plan.problems),
        deleted=deleted,
        resumed=resumed,
        verified=not dry_run and not any("reads back" in problem for problem in problems),
        ambiguous=sorted(plan.ambiguous),
        conflicts=sorted(run.conflicts),
        problems=problems,
    )


def _ids_of(rest: str) -> list[str]:
    """The conversation ids ``<id>:<name>`` could name, longest first."""
    parts = rest.split(":")
    return [":".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]


def _given_key(key: str, legacy_prefix: str, given: set[str]) -> bool:
    rest = key[len(legacy_prefix) :]
    return not rest.startswith(OURS) and sum(candidate in given for candidate in _ids_of(rest)) == 1
