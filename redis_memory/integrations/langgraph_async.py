"""The LangGraph checkpointer's connection settings and its asyncio methods.

:class:`SaverBase` keeps what both APIs share (the prefixes, the serializer, the client) and
implements every ``a...`` method of ``BaseCheckpointSaver`` on :mod:`redis_memory.aio`
memories; :class:`~redis_memory.integrations.langgraph.RedisMemorySaver` adds the sync ones.
Given a sync ``client=``, the ``a...`` methods run the sync ones in a worker thread; given
an asyncio client, the sync ones raise ``TypeError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from redis_memory import aio
from redis_memory.config import resolve_prefix
from redis_memory.errors import ConcurrentModificationError, MissingAttributeError
from redis_memory.integrations import langgraph_records as rec
from redis_memory.memory import MISSING

SyncClient = redis.Redis | redis.cluster.RedisCluster
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster

ATTEMPTS = 100  # transactions retried after a concurrent change, then ConcurrentModificationError
REGISTRY_ID = "threads"


class SaverBase(BaseCheckpointSaver[str]):
    """The settings of a saver, and the asyncio half of ``BaseCheckpointSaver``."""

    def __init__(
        self,
        *,
        url: str | None = None,
        client: SyncClient | AsyncClient | None = None,
        prefix: str | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        """Connection arguments as a memory's (``url=``, ``client=``, ``prefix=``, then the
        environment); threads are stored under ``<prefix>lg:``, the thread registry under
        ``<prefix>lgthreads:``. ``client=`` is a ``redis.Redis`` or a ``redis.asyncio.Redis``
        (or a cluster client of either)."""
        super().__init__(serde=serde)
        base = resolve_prefix(prefix)
        self.thread_prefix = resolve_prefix(base + "lg:")
        self.registry_prefix = resolve_prefix(base + "lgthreads:")
        self._url = url
        self._sync_client: SyncClient | None = None
        self._async_client: AsyncClient | None = None
        if isinstance(client, (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)):
            self._async_client = client
        elif client is not None:
            self._sync_client = client
        self._known = rec.Known()

    def get_next_version(self, current: str | None, channel: None) -> str:
        """A version above ``current``, unique across forks of a thread: the next integer, zero
        padded, and a random fraction (as LangGraph's own savers make them)."""
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- asyncio memories ---------------------------------------------------------------------------

    def _delegated(self) -> bool:
        """Whether the ``a...`` methods run the sync ones in a thread (a sync client was given)."""
        return self._sync_client is not None

    def _athread(self, thread_id: str) -> aio.Memory:
        return aio.Memory(
            thread_id, url=self._url, client=self._async_client, prefix=self.thread_prefix, offline="raise"
        )

    def _aregistry(self) -> aio.Memory:
        return aio.Memory(
            REGISTRY_ID, url=self._url, client=self._async_client, prefix=self.registry_prefix, offline="raise"
        )

    async def _afetch(self, thread_id: str, names: Sequence[str]) -> dict[str, Any]:
        if not names:
            return {}
        client: Any = self._async_client  # fetch takes a cluster client too
        rows = await aio.Memory.fetch(
            [thread_id], list(dict.fromkeys(names)), url=self._url, client=client, prefix=self.thread_prefix
        )
        return rows[thread_id]

    async def _athreads(self) -> list[str]:
        return sorted(str(value) for value in (await self._aregistry().to_dict()).values())

    # -- BaseCheckpointSaver, asyncio ----------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its thread's newest in its namespace without a
        ``checkpoint_id``: a fetch of the head, then one of all it names), or None: two
        fetches (record and writes, then blobs)."""
        if self._delegated():
            return await asyncio.to_thread(self.get_tuple, config)
        thread_id, ns, checkpoint_id = rec.thread_key(config)
        if checkpoint_id is None:
            head = (await self._afetch(thread_id, [rec.head_name(ns)])).get(rec.head_name(ns))
            if head is None:
                return None
            checkpoint_id, names = rec.head_reads(head)
            found = self._tuple_of(thread_id, ns, checkpoint_id, names, await self._afetch(thread_id, names))
            if found is not None:
                return found
        read = await self._aread(thread_id, [(ns, checkpoint_id)], None)
        return read[0] if read else None

    async def _thread_log(self, thread_id: str) -> list[Any]:
        log = await self._athread(thread_id).get(rec.LOG, None)
        return log if isinstance(log, list) else []

    async def _aread(
        self, thread_id: str, entries: Sequence[tuple[str, str]], wanted: dict[str, Any] | None
    ) -> list[CheckpointTuple]:
        """The tuples of ``entries`` whose metadata matches ``wanted``, in order (two fetches)."""
        names = [rec.checkpoint_name(*entry) for entry in entries] + [rec.writes_name(*entry) for entry in entries]
        rows = await self._afetch(thread_id, names)
        records = [rec.read_record(rows[n], self.serde) for n in names[: len(entries)] if n in rows]
        records = [r for r in records if rec.matches(r.metadata, wanted)]
        blobs = await self._afetch(thread_id, [n for r in records for n in r.blob_names().values()])
        return [self._tuple(thread_id, r, blobs, rows) for r in records]

    def _tuple_of(
        self, thread_id: str, ns: str, checkpoint_id: str, names: list[str], rows: dict[str, Any]
    ) -> CheckpointTuple | None:
        """The tuple of a checkpoint from the attributes its head named, or None when they do
        not hold it all (a record gone, or another checkpoint's blobs): then read it the long way."""
        text = rows.get(rec.checkpoint_name(ns, checkpoint_id))
        if text is None:
            return None
        record = rec.read_record(text, self.serde)
        if not set(record.blob_names().values()) <= set(names):
            return None
        return self._tuple(thread_id, record, rows, rows)

    def _tuple(
        self, thread_id: str, record: rec.Record, blobs: dict[str, Any], rows: dict[str, Any]
    ) -> CheckpointTuple:
        """A ``CheckpointTuple`` from a decoded record, the fetched blobs and writes."""
        checkpoint: Checkpoint = {**record.checkpoint, "channel_values": rec.channel_values(record, blobs, self.serde)}  # type: ignore[typeddict-item]
        writes = rows.get(rec.writes_name(record.ns, record.checkpoint_id)) or []
        parent = rec.config_of(thread_id, record.ns, record.parent) if record.parent else None
        return CheckpointTuple(
            config=rec.config_of(thread_id, record.ns, record.checkpoint_id),
            checkpoint=checkpoint,
            metadata=record.metadata,  # type: ignore[arg-type]
            parent_config=parent,
            pending_writes=rec.pending_writes(writes, self.serde),
        )

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread (of every thread for None), in its
        ``checkpoint_ns`` (every namespace when the config has none), whose metadata has every
        key of ``filter``, below ``before``'s id, at most ``limit``. Reads up to 50 checkpoints
        (the limit, without a filter) per two round trips."""
        if self._delegated():
            found = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
            for item in found:
                yield item
            return
        threads, ns, checkpoint_id = await self._alist_scope(config)
        before_id = get_checkpoint_id(before) if before else None
        left = limit
        for thread_id in threads:
            entries = rec.select(await self._thread_log(thread_id), ns, checkpoint_id, before_id)
            start = 0
            while start < len(entries) and (left is None or left > 0):
                size = rec.chunk_size(left, bool(filter))
                for item in await self._aread(thread_id, entries[start : start + size], filter):
                    if left is not None:
                        if left <= 0:
                            return
                        left -= 1
                    yield item
                start += size

    async def _alist_scope(self, config: RunnableConfig | None) -> tuple[list[str], str | None, str | None]:
        if config is None:
            return await self._athreads(), None, None
        thread_id, _, checkpoint_id = rec.thread_key(config)
        ns = (config.get("configurable") or {}).get("checkpoint_ns")
        return [thread_id], None if ns is None else str(ns), checkpoint_id

    async def aput(
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
        if self._delegated():
            return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)
        thread_id, ns, parent = rec.thread_key(config)
        put = rec.make_put(self.serde, ns, parent, checkpoint, get_checkpoint_metadata(config, metadata), new_versions)
        mem = self._athread(thread_id)
        name, head = rec.checkpoint_name(ns, put.checkpoint_id), rec.head_name(ns)
        guess = self._known.before(thread_id, head)
        for _ in range(ATTEMPTS):
            if guess is None:
                guess = rec.before_from(await self._afetch(thread_id, [rec.REV, head, name]), name, head)
                if guess.rev is None:  # a new thread (or one deleted since): in the registry first
                    await self._aregistry().set("t_" + rec.digest(thread_id), thread_id)
            rev = 1 if guess.rev is None else guess.rev + 1
            try:
                async with mem.transaction():
                    await mem.compare_and_set(rec.REV, MISSING if guess.rev is None else guess.rev, rev)
                    if guess.fresh:  # a new checkpoint (checked): in the log, with no writes yet
                        await mem.compare_and_set(name, MISSING, put.record)
                        if guess.rev is None:
                            await mem.set(rec.LOG, [put.entry])
                        else:
                            await getattr(mem, rec.LOG).append(put.entry)
                        await mem.set(rec.writes_name(ns, put.checkpoint_id), [])
                    else:
                        await mem.set(name, put.record)
                    for blob, text in put.blobs.items():
                        await mem.set(blob, text)
                    if put.checkpoint_id > guess.head:
                        await mem.set(head, put.head)
            except ConcurrentModificationError:
                self._known.forget(thread_id)
                guess = None
                continue
            self._known.remember(thread_id, rev, head, max(guess.head, put.checkpoint_id))
            return rec.config_of(thread_id, ns, put.checkpoint_id)
        raise ConcurrentModificationError(f"thread {thread_id!r} kept changing while a checkpoint was put")

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Append a task's writes to the checkpoint's writes list (one RPUSH); a repeated
        write of the same task and index is ignored when read."""
        if self._delegated():
            await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)
            return
        thread_id, ns, checkpoint_id = rec.thread_key(config)
        elements = rec.write_elements(writes, task_id, task_path, self.serde)
        if not elements or checkpoint_id is None:
            return
        mem = self._athread(thread_id)
        name = rec.writes_name(ns, checkpoint_id)
        try:
            await getattr(mem, name).extend(elements)
        except (ConcurrentModificationError, MissingAttributeError):  # no list: the checkpoint was not put here
            await mem.set(name, elements)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread (one atomic step), and its registry entry."""
        if self._delegated():
            await asyncio.to_thread(self.delete_thread, thread_id)
            return
        await self._athread(str(thread_id)).clear()
        self._known.forget(str(thread_id))
        with contextlib.suppress(MissingAttributeError):
            await self._aregistry().delete("t_" + rec.digest(str(thread_id)))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is one of
        ``run_ids``, in every thread: one snapshot and one transaction per thread."""
        if self._delegated():
            await asyncio.to_thread(self.delete_for_runs, run_ids)
            return
        wanted = {str(run_id) for run_id in run_ids}
        if wanted:
            for thread_id in await self._athreads():
                await self._arewrite(thread_id, rec.of_runs(wanted))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: keep each namespace's newest checkpoint (its writes, and the blobs
        it reads); ``"delete"``: delete the threads. ValueError for another strategy."""
        if self._delegated():
            await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)
            return
        check_strategy(strategy)
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
            else:
                await self._arewrite(str(thread_id), rec.keep_latest)

    async def _arewrite(self, thread_id: str, drop: rec.Drop) -> None:
        self._known.forget(thread_id)
        mem = self._athread(thread_id)
        for _ in range(ATTEMPTS):
            snapshot = await mem.to_dict()
            if rec.LOG not in snapshot:
                return
            plan = rec.plan(snapshot, self.serde, drop)
            if not plan.changes:
                return
            try:
                async with mem.transaction():
                    await mem.compare_and_set(
                        rec.REV, snapshot.get(rec.REV, MISSING), int(snapshot.get(rec.REV, 0)) + 1
                    )
                    await mem.set(rec.LOG, plan.log)
                    for name, value in plan.heads.items():
                        await mem.set(name, value)
                    for name in plan.delete:
                        await mem.delete(name)
                return
            except ConcurrentModificationError:
                continue
        raise ConcurrentModificationError(f"thread {thread_id!r} kept changing while it was rewritten")

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of one thread into another (one transaction
        on the target; its own checkpoints stay)."""
        if self._delegated():
            await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)
            return
        snapshot = await self._athread(str(source_thread_id)).to_dict()
        if rec.LOG not in snapshot:
            return
        target_id = str(target_thread_id)
        await self._aregistry().set("t_" + rec.digest(target_id), target_id)
        target = self._athread(target_id)
        self._known.forget(target_id)
        for _ in range(ATTEMPTS):
            current = await self._afetch(target_id, [rec.LOG, rec.REV, *rec.head_names(snapshot)])
            try:
                async with target.transaction():
                    rev = current.get(rec.REV, MISSING)
                    await target.compare_and_set(rec.REV, rev, 1 if rev is MISSING else int(rev) + 1)
                    await target.set(rec.LOG, rec.merged_log(current.get(rec.LOG, []), snapshot[rec.LOG]))
                    for name, value in rec.copied(snapshot, current).items():
                        await target.set(name, value)
                return
            except ConcurrentModificationError:
                continue
        raise ConcurrentModificationError(f"thread {target_id!r} kept changing while it was copied into")


def check_strategy(strategy: str) -> None:
    """ValueError unless ``strategy`` is one ``prune`` knows."""
    if strategy not in ("keep_latest", "delete"):
        raise ValueError(f"prune strategy must be 'keep_latest' or 'delete', not {strategy!r}")
