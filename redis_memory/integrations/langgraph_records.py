"""How the LangGraph checkpointer lays one thread out in its memory object (no I/O here).

A thread is one memory object (id: the thread id), so every key of it shares one hash tag
and one Redis Cluster slot. Its attributes:

- ``log``: a list, one ``[checkpoint_ns, checkpoint_id]`` element per stored checkpoint, in
  the order they were put (an append per put; read through the list mirror);
- ``rev``: an int, the thread's revision: every change but ``put_writes`` compares it and
  adds one, in its transaction, so no two of them overwrite each other (a loser retries);
- ``h_<digest(ns)>``: a str, namespace ``ns``'s head: JSON ``[id, attribute...]``, the newest
  checkpoint id and every attribute reading it takes (its record, its writes, its blobs), so
  ``get_tuple`` without a checkpoint id is two fetches, however long the thread;
- ``c_<digest(ns, id)>``: a str, the checkpoint's record (JSON: ``ns``, ``id``, ``parent``,
  and the serialized checkpoint without its channel values, and its metadata);
- ``b_<digest(ns, channel, version)>``: a str, one channel value at one version (JSON
  ``[type, base64]``), shared by every checkpoint of the namespace that has that version;
- ``w_<digest(ns, id)>``: a list, the checkpoint's pending writes, one
  ``[task_id, idx, channel, type, base64, task_path]`` element per write, appended.

A serialized value is the saver's ``serde.dumps_typed`` pair, ``(type, bytes)``, with the
bytes in base64. This module builds and reads those values and decides what a listing, a
prune or a copy keeps; :mod:`redis_memory.integrations.langgraph` does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import WRITES_IDX_MAP, PendingWrite, writes_sort_key
from langgraph.checkpoint.serde.base import SerializerProtocol

from redis_memory.errors import InvalidNameError

LOG = "log"
REV = "rev"
CHUNK = 50  # checkpoints a listing reads per two round trips, at most

Typed = tuple[str, bytes]


def digest(*parts: str) -> str:
    """A fixed-size name part for texts of any length and characters (SHA-1, hex)."""
    return hashlib.sha1("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def checkpoint_name(ns: str, checkpoint_id: str) -> str:
    """The attribute holding checkpoint ``checkpoint_id``'s record in namespace ``ns``."""
    return "c_" + digest(ns, checkpoint_id)


def writes_name(ns: str, checkpoint_id: str) -> str:
    """The list attribute holding the pending writes of a checkpoint."""
    return "w_" + digest(ns, checkpoint_id)


def head_name(ns: str) -> str:
    """The attribute holding the newest checkpoint id of namespace ``ns``."""
    return "h_" + digest(ns)


def head_value(ns: str, checkpoint_id: str, blobs: Iterable[str]) -> str:
    """The head naming checkpoint ``checkpoint_id`` of namespace ``ns``, with the blobs it reads."""
    reads = [checkpoint_name(ns, checkpoint_id), writes_name(ns, checkpoint_id), *blobs]
    return json.dumps([checkpoint_id, *reads])


def head_id(text: object) -> str:
    """The checkpoint id a stored head names ("" for no head)."""
    return str(json.loads(text)[0]) if isinstance(text, str) else ""


def head_reads(text: str) -> tuple[str, list[str]]:
    """A stored head's checkpoint id, and the attributes reading that checkpoint takes."""
    found = json.loads(text)
    return str(found[0]), [str(name) for name in found[1:]]


def blob_name(ns: str, channel: str, version: object) -> str:
    """The attribute holding ``channel``'s value at ``version`` in namespace ``ns``."""
    return "b_" + digest(ns, channel, json.dumps(version, sort_keys=True))


def pack(typed: Typed) -> list[str]:
    """A ``dumps_typed`` pair as JSON-storable ``[type, base64]``."""
    kind, data = typed
    return [kind, base64.b64encode(data).decode("ascii")]


def unpack(packed: Sequence[str]) -> Typed:
    """The ``dumps_typed`` pair back from :func:`pack`'s form."""
    return (packed[0], base64.b64decode(packed[1]))


def thread_key(config: RunnableConfig) -> tuple[str, str, str | None]:
    """``(thread_id, checkpoint_ns, checkpoint_id or None)`` of a config; InvalidNameError when
    it names no thread."""
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or isinstance(thread_id, bool) or str(thread_id) == "":
        raise InvalidNameError("the config has no configurable thread_id")
    checkpoint_id = configurable.get("checkpoint_id")
    return str(thread_id), str(configurable.get("checkpoint_ns") or ""), checkpoint_id or None


def config_of(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    """The config naming one checkpoint."""
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


@dataclass(frozen=True)
class Put:
    """What one ``put`` writes: the record, the new blobs, and the log entry."""

    ns: str
    checkpoint_id: str
    record: str
    blobs: dict[str, str]
    head: str

    @property
    def entry(self) -> list[str]:
        """The element the log gets."""
        return [self.ns, self.checkpoint_id]


@dataclass(frozen=True)
class Before:
    """What a put assumes of its thread: its revision (None for a new thread), whether the
    checkpoint is new to it, and its namespace's head id. The put's transaction compares the
    revision (and, for a new checkpoint, that it is not stored), so a wrong guess costs a retry."""

    rev: int | None
    fresh: bool
    head: str


def before_from(fetched: Mapping[str, Any], name: str, head: str) -> Before:
    """A :class:`Before` from a fetch of the revision, the head and the record attribute."""
    rev = fetched.get(REV)
    return Before(None if rev is None else int(rev), name not in fetched, head_id(fetched.get(head)))


class Known:
    """The revision and heads this saver left each thread with, for its next put there (at most
    ``size`` threads, the oldest forgotten first): a saver putting checkpoint after checkpoint
    sends one transaction per put and reads nothing."""

    def __init__(self, size: int = 1024) -> None:
        """An empty table of at most ``size`` threads."""
        self.size = size
        self._threads: dict[str, tuple[int, dict[str, str]]] = {}

    def before(self, thread_id: str, head: str) -> Before | None:
        """The guess for a new checkpoint under head ``head``, or None (fetch instead)."""
        known = self._threads.get(thread_id)
        if known is None or head not in known[1]:
            return None
        return Before(known[0], True, known[1][head])

    def remember(self, thread_id: str, rev: int, head: str, head_id: str) -> None:
        """After a put: the thread's new revision and that namespace's head."""
        heads = dict(self._threads.pop(thread_id, (0, {}))[1])
        heads[head] = head_id
        self._threads[thread_id] = (rev, heads)
        while len(self._threads) > self.size:
            self._threads.pop(next(iter(self._threads)))

    def forget(self, thread_id: str) -> None:
        """After any other change, or a failed guess: fetch before the next put."""
        self._threads.pop(thread_id, None)


def make_put(
    serde: SerializerProtocol,
    ns: str,
    parent: str | None,
    checkpoint: Mapping[str, Any],
    metadata: Mapping[str, Any],
    new_versions: Mapping[str, Any],
) -> Put:
    """Serialize a checkpoint for :class:`Put`: the record without channel values, and one
    blob per channel in ``new_versions`` (``["empty", ""]`` for a channel without a value)."""
    stripped = dict(checkpoint)
    values: dict[str, Any] = stripped.pop("channel_values", None) or {}
    blobs = {
        blob_name(ns, channel, version): json.dumps(
            pack(serde.dumps_typed(values[channel])) if channel in values else ["empty", ""]
        )
        for channel, version in new_versions.items()
    }
    record = {
        "ns": ns,
        "id": checkpoint["id"],
        "parent": parent,
        "checkpoint": pack(serde.dumps_typed(stripped)),
        "metadata": pack(serde.dumps_typed(dict(metadata))),
    }
    versions: Mapping[str, Any] = checkpoint.get("channel_versions") or {}
    head = head_value(ns, str(checkpoint["id"]), (blob_name(ns, ch, version) for ch, version in versions.items()))
    return Put(ns, str(checkpoint["id"]), json.dumps(record), blobs, head)


def write_elements(
    writes: Sequence[tuple[str, Any]], task_id: str, task_path: str, serde: SerializerProtocol
) -> list[Any]:
    """The elements ``put_writes`` appends to a checkpoint's writes list; a special channel
    (error, interrupt...) gets its negative index, as every LangGraph saver does."""
    return [
        [task_id, WRITES_IDX_MAP.get(channel, idx), channel, *pack(serde.dumps_typed(value)), task_path]
        for idx, (channel, value) in enumerate(writes)
    ]


def pending_writes(elements: Iterable[Sequence[Any]], serde: SerializerProtocol) -> list[PendingWrite]:
    """The pending writes of a checkpoint from its appended elements: the first write of each
    ``(task_id, idx)`` with ``idx >= 0`` wins (a repeated ``put_writes`` changes nothing), the
    last one of a special write does; in ``writes_sort_key`` order."""
    chosen: dict[tuple[str, int], Sequence[Any]] = {}
    for element in elements:
        key = (str(element[0]), int(element[1]))
        if key[1] >= 0 and key in chosen:
            continue
        chosen[key] = element
    ordered = sorted(chosen.values(), key=lambda e: writes_sort_key(str(e[5]), str(e[0]), int(e[1])))
    return [(str(e[0]), str(e[2]), serde.loads_typed(unpack(e[3:5]))) for e in ordered]


@dataclass(frozen=True)
class Record:
    """One stored checkpoint, decoded."""

    ns: str
    checkpoint_id: str
    parent: str | None
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]

    def blob_names(self) -> dict[str, str]:
        """Channel -> the blob attribute holding its value at this checkpoint's version."""
        versions: Mapping[str, Any] = self.checkpoint.get("channel_versions") or {}
        return {channel: blob_name(self.ns, channel, version) for channel, version in versions.items()}


def read_record(text: str, serde: SerializerProtocol) -> Record:
    """A :class:`Record` from its stored JSON text."""
    data = json.loads(text)
    return Record(
        ns=data["ns"],
        checkpoint_id=data["id"],
        parent=data["parent"],
        checkpoint=serde.loads_typed(unpack(data["checkpoint"])),
        metadata=serde.loads_typed(unpack(data["metadata"])),
    )


def channel_values(record: Record, blobs: Mapping[str, Any], serde: SerializerProtocol) -> dict[str, Any]:
    """The channel values of ``record`` from the fetched blob texts (missing and empty ones left out)."""
    values: dict[str, Any] = {}
    for channel, name in record.blob_names().items():
        text = blobs.get(name)
        if text is None:
            continue
        packed = json.loads(text)
        if packed[0] != "empty":
            values[channel] = serde.loads_typed(unpack(packed))
    return values


def select(
    log: Iterable[Sequence[str]], ns: str | None, checkpoint_id: str | None, before: str | None
) -> list[tuple[str, str]]:
    """The log's ``(ns, id)`` entries a listing visits, newest first (by checkpoint id, which
    LangGraph makes increasing): in namespace ``ns`` (every one for None), only
    ``checkpoint_id`` if given, only ids below ``before`` if given; each once."""
    found = {(str(entry[0]), str(entry[1])) for entry in log}
    chosen = [
        (entry_ns, entry_id)
        for entry_ns, entry_id in found
        if (ns is None or entry_ns == ns)
        and (checkpoint_id is None or entry_id == checkpoint_id)
        and (before is None or entry_id < before)
    ]
    return sorted(chosen, key=lambda entry: (entry[1], entry[0]), reverse=True)


def chunk_size(left: int | None, filtered: bool) -> int:
    """How many checkpoints a listing reads next: what is left of its limit (all of which it
    yields, when no filter may leave some out), at most CHUNK."""
    return CHUNK if left is None or filtered else max(1, min(CHUNK, left))


def matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    """Whether metadata has every key of ``wanted`` with an equal value."""
    return not wanted or all(key in metadata and metadata[key] == value for key, value in wanted.items())


@dataclass(frozen=True)
class Plan:
    """A rewrite of one thread: the log it keeps, the heads it sets and the attributes it deletes."""

    log: list[list[str]]
    heads: dict[str, str]
    delete: list[str]

    @property
    def changes(self) -> bool:
        """Whether the rewrite deletes or sets anything."""
        return bool(self.delete or self.heads)


Drop = Callable[[list[Record]], set[str]]
"""Given every record of a thread, the names of the record attributes a rewrite deletes."""


def plan(snapshot: Mapping[str, Any], serde: SerializerProtocol, drop: Drop) -> Plan:
    """Which checkpoints of a thread's ``snapshot`` (its ``to_dict()``) survive when ``drop``
    (given every record) names the record attributes to delete; blobs no surviving checkpoint
    reads, writes lists of no surviving checkpoint and heads of emptied namespaces are deleted
    with them, and a namespace whose newest checkpoint goes gets the newest that stays."""
    records = {name: read_record(text, serde) for name, text in snapshot.items() if name.startswith("c_")}
    dropped = drop(list(records.values()))
    kept = [record for name, record in records.items() if name not in dropped]
    needed = {checkpoint_name(r.ns, r.checkpoint_id) for r in kept}
    needed |= {writes_name(r.ns, r.checkpoint_id) for r in kept}
    needed |= {name for r in kept for name in r.blob_names().values()}
    newest: dict[str, Record] = {}
    for record in kept:
        name = head_name(record.ns)
        if name not in newest or record.checkpoint_id > newest[name].checkpoint_id:
            newest[name] = record
    delete = sorted(name for name in snapshot if name[:2] in ("c_", "w_", "b_") and name not in needed)
    delete += sorted(name for name in snapshot if name[:2] == "h_" and name not in newest)
    heads = {
        name: head_value(r.ns, r.checkpoint_id, r.blob_names().values())
        for name, r in newest.items()
        if head_id(snapshot.get(name)) != r.checkpoint_id
    }
    survivors = {(r.ns, r.checkpoint_id) for r in kept}
    log = [list(entry) for entry in snapshot.get(LOG, []) if (entry[0], entry[1]) in survivors]
    return Plan(log, heads, delete)


def keep_latest(records: list[Record]) -> set[str]:
    """``prune(strategy="keep_latest")``: every record but the newest of each namespace."""
    newest: dict[str, str] = {}
    for record in records:
        if record.checkpoint_id > newest.get(record.ns, ""):
            newest[record.ns] = record.checkpoint_id
    return {checkpoint_name(r.ns, r.checkpoint_id) for r in records if newest[r.ns] != r.checkpoint_id}


def of_runs(run_ids: set[str]) -> Drop:
    """``delete_for_runs``: the records whose metadata ``run_id`` is one of ``run_ids``."""

    def drop(records: list[Record]) -> set[str]:
        return {checkpoint_name(r.ns, r.checkpoint_id) for r in records if r.metadata.get("run_id") in run_ids}

    return drop


def merged_log(target: Sequence[Sequence[str]], source: Sequence[Sequence[str]]) -> list[list[str]]:
    """A copy's log: the target's entries, then the source's it lacks, in order."""
    seen = {(entry[0], entry[1]) for entry in target}
    return [list(entry) for entry in target] + [list(e) for e in source if (e[0], e[1]) not in seen]


def copied(snapshot: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes ``copy_thread`` writes to a thread holding ``target`` (its fetched heads):
    every record, blob and writes list of ``snapshot``, and each head the newer of the two."""
    changes = {name: value for name, value in snapshot.items() if name[:2] in ("c_", "w_", "b_")}
    for name, value in snapshot.items():
        if name[:2] == "h_" and head_id(value) > head_id(target.get(name)):
            changes[name] = value
    return changes


def head_names(snapshot: Mapping[str, Any]) -> list[str]:
    """The head attributes of a thread's snapshot."""
    return [name for name in snapshot if name[:2] == "h_"]
