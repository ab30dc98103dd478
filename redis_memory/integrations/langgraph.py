"""A LangGraph checkpointer on redis-memory (``[langgraph]`` extra): :class:`RedisMemorySaver`.

One LangGraph thread is one memory object under ``<prefix>lg:`` (its id: the thread id), so
every key of a thread shares one hash tag, one Redis Cluster slot, and one transaction: a
checkpoint, its metadata and its new channel values are written together, or not at all.
How a thread is laid out is in :mod:`redis_memory.integrations.langgraph_records`; the
asyncio methods in :mod:`redis_memory.integrations.langgraph_async`. Every method of
``BaseCheckpointSaver`` is implemented, ``delete_for_runs``, ``copy_thread`` and ``prune``
included, on servers with and without RedisJSON / RediSearch (none is needed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)

from redis_memory.errors import ConcurrentModificationError, MissingAttributeError
from redis_memory.integrations import langgraph_records as rec
from redis_memory.integrations.langgraph_async import ATTEMPTS, REGISTRY_ID, SaverBase, check_strategy
from redis_memory.memory import MISSING, Memory

__all__ = ["RedisMemorySaver"]


class RedisMemorySaver(SaverBase):
    """A LangGraph ``BaseCheckpointSaver`` storing threads in Redis through redis-memory.

    >>> saver = RedisMemorySaver(prefix="app:")          # doctest: +SKIP
    >>> graph = builder.compile(checkpointer=saver)       # doctest: +SKIP
    >>> graph.invoke(inputs, {"configurable": {"thread_id": "t1"}})   # doctest: +SKIP

    Sync and asyncio methods both; connection arguments as a memory's (``url=``,
    ``client=``, ``prefix=``, the environment). Writes raise
    :class:`~redis_memory.errors.RedisConnectionError` while Redis cannot be reached (a
    checkpoint is never journaled for later).
    """

    def _thread(self, thread_id: str) -> Memory:
        return Memory(thread_id, url=self._url, client=self._client(), prefix=self.thread_prefix, offline="raise")

    def _registry(self) -> Memory:
        return Memory(REGISTRY_ID, url=self._url, client=self._client(), prefix=self.registry_prefix, offline="raise")

    def _client(self) -> Any:
        if self._async_client is not None:
            raise TypeError("this saver was given an asyncio client: use its a... methods (ainvoke, astream)")
        return self._sync_client

    def _fetch(self, thread_id: str, names: Sequence[str]) -> dict[str, Any]:
        if not names:
            return {}
        rows = Memory.fetch(
            [thread_id], list(dict.fromkeys(names)), url=self._url, client=self._client(), prefix=self.thread_prefix
        )
        return rows[thread_id]

    def _log(self, mem: Memory) -> list[Any] | None:
        try:
            log = getattr(mem, rec.LOG)
        except MissingAttributeError:
            return None
        return log if isinstance(log, list) else None

    def _threads(self) -> list[str]:
        return sorted(str(value) for value in self._registry().to_dict().values())

    def _register(self, thread_id: str) -> None:
        setattr(self._registry(), "t_" + rec.digest(thread_id), thread_id)

    # -- BaseCheckpointSaver ----------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its thread's newest in its namespace without a
        ``checkpoint_id``: a fetch of the head, then one of all it names), or None: two
        fetches (record and writes, then blobs)."""
        thread_id, ns, checkpoint_id = rec.thread_key(config)
        if checkpoint_id is None:
            head = self._fetch(thread_id, [rec.head_name(ns)]).get(rec.head_name(ns))
            if head is None:
                return None
            checkpoint_id, names = rec.head_reads(head)
            found = self._tuple_of(thread_id, ns, checkpoint_id, names, self._fetch(thread_id, names))
            if found is not None:
                return found
        read = self._read(thread_id, [(ns, checkpoint_id)], None)
        return read[0] if read else None

    def _read(
        self, thread_id: str, entries: Sequence[tuple[str, str]], wanted: dict[str, Any] | None
    ) -> list[CheckpointTuple]:
        names = [rec.checkpoint_name(*entry) for entry in entries] + [rec.writes_name(*entry) for entry in entries]
        rows = self._fetch(thread_id, names)
        records = [rec.read_record(rows[n], self.serde) for n in names[: len(entries)] if n in rows]
        records = [r for r in records if rec.matches(r.metadata, wanted)]
        blobs = self._fetch(thread_id, [n for r in records for n in r.blob_names().values()])
        return [self._tuple(thread_id, r, blobs, rows) for r in records]

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread (of every thread for None), in its
        ``checkpoint_ns`` (every namespace when the config has none), whose metadata has every
        key of ``filter``, below ``before``'s id, at most ``limit``. Reads up to 50 checkpoints
        (the limit, without a filter) per two round trips."""
        if config is None:
            threads, ns, checkpoint_id = self._threads(), None, None
        else:
            thread_id, _, checkpoint_id = rec.thread_key(config)
            given = (config.get("configurable") or {}).get("checkpoint_ns")
            threads, ns = [thread_id], None if given is None else str(given)
        before_id = get_checkpoint_id(before) if before else None
        left = limit
        for thread_id in threads:
            log = self._fetch(thread_id, [rec.LOG]).get(rec.LOG) or []  # not the mirror: no window
            entries = rec.select(log, ns, checkpoint_id, before_id)
            start = 0
            while start < len(entries) and (left is None or left > 0):
                size = rec.chunk_size(left, bool(filter))
                for item in self._read(thread_id, entries[start : start + size], filter):
                    if left is not None:
                        if left <= 0:
                            return
                        left -= 1
                    yield item
                start += size

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint, its metadata and its new channel values in one transaction,
        checked against the thread's revision (one round trip when this saver made the
        thread's last change; else a fetch of the revision and head first, and a new thread is
        put in the registry); returns the config naming it."""
        thread_id, ns, parent = rec.thread_key(config)
        put = rec.make_put(self.serde, ns, parent, checkpoint, get_checkpoint_metadata(config, metadata), new_versions)
        mem = self._thread(thread_id)
        name, head = rec.checkpoint_name(ns, put.checkpoint_id), rec.head_name(ns)
        guess = self._known.before(thread_id, head)
        for _ in range(ATTEMPTS):
            if guess is None:
                guess = rec.before_from(self._fetch(thread_id, [rec.REV, head, name]), name, head)
                if guess.rev is None:  # a new thread (or one deleted since): in the registry first
                    self._register(thread_id)
            log = self._log(mem) if guess.fresh and guess.rev is not None else None
            rev = 1 if guess.rev is None else guess.rev + 1
            try:
                with mem.transaction():
                    mem.compare_and_set(rec.REV, MISSING if guess.rev is None else guess.rev, rev)
                    if guess.fresh:  # a new checkpoint (checked): in the log, with no writes yet
                        mem.compare_and_set(name, MISSING, put.record)
                        if log is None:
                            setattr(mem, rec.LOG, [put.entry])
                        else:
                            log.append(put.entry)
                        setattr(mem, rec.writes_name(ns, put.checkpoint_id), [])
                    else:
                        setattr(mem, name, put.record)
                    for blob, text in put.blobs.items():
                        setattr(mem, blob, text)
                    if put.checkpoint_id > guess.head:
                        setattr(mem, head, put.head)
            except ConcurrentModificationError:
                self._known.forget(thread_id)
                guess = None
                continue
            self._known.remember(thread_id, rev, head, max(guess.head, put.checkpoint_id))
            return rec.config_of(thread_id, ns, put.checkpoint_id)
        raise ConcurrentModificationError(f"thread {thread_id!r} kept changing while a checkpoint was put")

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Append a task's writes to the checkpoint's writes list (one RPUSH), leaving out those
        of the same task and index already stored."""
        thread_id, ns, checkpoint_id = rec.thread_key(config)
        elements = rec.write_elements(writes, task_id, task_path, self.serde)
        if not elements or checkpoint_id is None:
            return
        mem = self._thread(thread_id)
        name = rec.writes_name(ns, checkpoint_id)
        try:
            stored = getattr(mem, name)
        except MissingAttributeError:  # no list: the checkpoint was not put here
            setattr(mem, name, elements)
            return
        known = {(e[0], e[1]) for e in stored if e[1] >= 0}
        fresh = [e for e in elements if (e[0], e[1]) not in known]
        if fresh:
            stored.extend(fresh)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread (one atomic step), and its registry entry."""
        self._thread(str(thread_id)).clear()
        self._known.forget(str(thread_id))
        with contextlib.suppress(MissingAttributeError):
            delattr(self._registry(), "t_" + rec.digest(str(thread_id)))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is one of
        ``run_ids``, in every thread: one snapshot and one transaction per thread."""
        wanted = {str(run_id) for run_id in run_ids}
        if wanted:
            for thread_id in self._threads():
                self._rewrite(thread_id, rec.of_runs(wanted))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: keep each namespace's newest checkpoint (its writes, and the blobs
        it reads); ``"delete"``: delete the threads. ValueError for another strategy."""
        check_strategy(strategy)
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
            else:
                self._rewrite(str(thread_id), rec.keep_latest)

    def _rewrite(self, thread_id: str, drop: rec.Drop) -> None:
        self._known.forget(thread_id)
        mem = self._thread(thread_id)
        for _ in range(ATTEMPTS):
            snapshot = mem.to_dict()
            if rec.LOG not in snapshot:
                return
            plan = rec.plan(snapshot, self.serde, drop)
            if not plan.changes:
                return
            try:
                with mem.transaction():
                    mem.compare_and_set(rec.REV, snapshot.get(rec.REV, MISSING), int(snapshot.get(rec.REV, 0)) + 1)
                    setattr(mem, rec.LOG, plan.log)
                    for name, value in plan.heads.items():
                        setattr(mem, name, value)
                    for name in plan.delete:
                        delattr(mem, name)
                return
            except ConcurrentModificationError:
                continue
        raise ConcurrentModificationError(f"thread {thread_id!r} kept changing while it was rewritten")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of one thread into another (one transaction
        on the target; its own checkpoints stay)."""
        snapshot = self._thread(str(source_thread_id)).to_dict()
        if rec.LOG not in snapshot:
            return
        target_id = str(target_thread_id)
        self._register(target_id)
        target = self._thread(target_id)
        self._known.forget(target_id)
        for _ in range(ATTEMPTS):
            current = self._fetch(target_id, [rec.LOG, rec.REV, *rec.head_names(snapshot)])
            try:
                with target.transaction():
                    rev = current.get(rec.REV, MISSING)
                    target.compare_and_set(rec.REV, rev, 1 if rev is MISSING else int(rev) + 1)
                    setattr(target, rec.LOG, rec.merged_log(current.get(rec.LOG, []), snapshot[rec.LOG]))
                    for name, value in rec.copied(snapshot, current).items():
                        setattr(target, name, value)
                return
            except ConcurrentModificationError:
                continue
        raise ConcurrentModificationError(f"thread {target_id!r} kept changing while it was copied into")
