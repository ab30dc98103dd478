"""The async driver: runs the core's operations on redis-py's asyncio client.

The operations are :mod:`redis_memory.core`'s, unchanged; this driver awaits each request
instead of blocking. It keeps no mirrors (an async read is always one round trip), so it
needs no client tracking, and takes its connections from an asyncio connection pool, one
per event loop. A request that meets a lost connection is sent again, as the sync driver
does (a write carries an operation id, so Redis applies it once); once ``retry_for`` has
passed, a write is journaled by the sync driver of the same URL (:meth:`journal_keeper`;
through ``client=`` it raises), and a read serves the last value this driver read or wrote
(:meth:`AsyncBackend.read`), or raises.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio
import redis.exceptions

from redis_memory import observer
from redis_memory.backend import Backend
from redis_memory.core.mirror import Mirror
from redis_memory.core.offline import UNREAD
from redis_memory.core.operations import Core
from redis_memory.core.replies import public_error
from redis_memory.core.requests import Command, Op, Pipeline, Request, Script, advance
from redis_memory.core.retry import LOST, default_retry_for, resend_delays, resendable
from redis_memory.core.scripts import script_table
from redis_memory.errors import RedisConnectionError
from redis_memory.keys import KeySpace
from redis_memory.redaction import redact

logger = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncBackend(Core):
    """The async counterpart of :class:`redis_memory.backend.Backend` (no mirrors; while Redis
    cannot be reached, its writes are journaled by the sync backend of the same server).

    One instance may serve several event loops (threads); each loop has a client of its own,
    and the counters (``stats``, as the sync backend's) are shared under a lock.
    """

    mirroring = False

    def __init__(
        self,
        client_factory: Callable[[], redis.asyncio.Redis],
        label: str,
        waiter: Callable[[], Backend] | None = None,
    ) -> None:
        """Prepare a backend; ``client_factory()`` makes the client of each event loop, and
        ``waiter()`` the sync backend of the same server that blocking waits run on."""
        super().__init__()
        self.label = redact(label, mask="***")  # never shows a password
        self.waiter = waiter
        self.shared_journal: Callable[[], Any] | None = None  # on a Redis Cluster: its ClusterJournal's getter
        self.retry_for = default_retry_for()
        self._client_factory = client_factory
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._counting = threading.Lock()  # event loops in several threads share the counters

    def journal_keeper(self) -> Backend | None:
        """The sync backend of the same server (``waiter``): its journal takes this backend's
        writes while Redis cannot be reached, and its flusher replays them, in one order with
        its own. None for a ``client=`` backend (no URL to replay to): such writes raise."""
        if self.shared_journal is not None:  # a primary of a cluster: the cluster's journal
            keeper: Backend | None = self.shared_journal()
            return keeper
        if self.waiter is None:
            return None
        keeper = self.waiter()
        return keeper if keeper.journal is not None else None

    def _client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._client_factory()
        return client

    def _count(self, name: str) -> None:
        with self._counting:
            self.stats.counts[name] += 1

    async def _execute(self, client: Any, request: Request) -> Any:
        if isinstance(request, Command):
            return await _call(client, request.args)
        if isinstance(request, Pipeline):
            return await self._pipelined(client, request)
        sha, source = script_table()[request.name]
        evalsha = ("EVALSHA", sha, len(request.keys), *request.keys, *request.args)
        try:
            return await _call(client, evalsha)
        except redis.exceptions.NoScriptError:
            await _call(client, ("SCRIPT", "LOAD", source))
            return await _call(client, evalsha)

    async def _pipelined(self, client: Any, request: Pipeline) -> list[Any]:
        """Send every request of ``request`` in one round trip (redis-py's pipeline, no
        MULTI); an error reply stands as its exception. Scripts are loaded first if missing."""
        table = script_table()
        for _ in range(2):
            pipe = client.pipeline(transaction=False)
            for item in request.requests:
                if isinstance(item, Command):
                    pipe.execute_command(*item.args)
                else:
                    pipe.execute_command("EVALSHA", table[item.name][0], len(item.keys), *item.keys, *item.args)
            replies = await pipe.execute(raise_on_error=False)
            missing = {
                item.name
                for item, reply in zip(request.requests, replies, strict=True)
                if isinstance(reply, redis.exceptions.NoScriptError) and isinstance(item, Script)
            }
            if not missing:
                return list(replies)
            for name in missing:
                await _call(client, ("SCRIPT", "LOAD", table[name][1]))
        return list(replies)

    async def drive(self, op: Op[T]) -> T:
        """Run a core operation to its end, awaiting each request. A request that meets a
        lost connection is sent again (see :meth:`_send`)."""
        if observer.active is not None:
            op = observer.active.traced(self, op, counted=False)  # tasks share the counts
        started = time.perf_counter()
        self._count("operations")
        reply: Any = None
        error: Exception | None = None
        while True:
            done, value = advance(op, reply, error)
            if done:
                result: T = value
                with self._counting:
                    self.stats.timed(getattr(op, "__name__", "op"), time.perf_counter() - started)
                return result
            reply, error = None, None
            try:
                reply = await self._send(value)
            except redis.exceptions.RedisError as exc:
                error = public_error(exc)
                error.__cause__ = exc
                self._count("errors")
            except OSError as exc:
                error = RedisConnectionError(f"cannot reach Redis at {self.label}: {exc}")
                error.__cause__ = exc
                self._count("errors")

    async def fetch(self, spaces: Sequence[KeySpace], names: Sequence[str]) -> list[dict[str, Any]]:
        """See :meth:`Core.g_fetch`."""
        return await self.drive(self.g_fetch(spaces, names))

    def on_object(self, space: KeySpace, make: Callable[[], Op[T]]) -> Op[T]:
        """An operation on ``space``'s keys, built by ``make()`` (a cluster backend runs it on
        the object's primary; here it is simply made)."""
        return make()

    async def read(self, space: KeySpace, name: str) -> tuple[str, Any] | None:
        """:meth:`Core.g_read`, with the sync driver's offline rule: while Redis cannot be
        reached, or journaled writes wait for it, the last value this driver read or wrote
        (with its journaled writes applied) is served; ``RedisConnectionError`` without one,
        and for a list whose items are not known offline."""
        keeper = self.journal_keeper()
        known, found = self.known(space, name)
        if not (known and keeper is not None and keeper.journals_behind(space)):
            try:
                return await self.drive(self.g_read(space, name))
            except RedisConnectionError:
                if not known:
                    raise
                logger.info("Redis at %s unreachable: serving the last known value of %r", self.label, name)
        if found is not None and isinstance(found[1], Mirror) and found[1].value is UNREAD:
            raise RedisConnectionError(
                f"the items of list attribute {name!r} are not known while Redis cannot be reached"
                " (a change this process journaled cannot be worked out offline); appends are journaled"
            )
        return found

    async def _send(self, request: Request) -> Any:
        """Send one request and read its reply. When the connection is lost (reset, closed,
        timed out, refused), send the request again on another connection, with backoff,
        for up to ``retry_for`` seconds (not at all while writes wait in the journal); then the
        error is raised, and a write is journaled by the sync backend of the server (see
        :meth:`journal_keeper`). The rules are the sync driver's (:func:`redis_memory.core.retry.resendable`)."""
        keeper = self.journal_keeper()
        deadline = time.monotonic() + (0.0 if keeper is not None and keeper.backlog else self.retry_for)
        delays = resend_delays()
        while True:
            client = self._client()
            try:
                self._count("round_trips")
                return await self._execute(client, request)
            except LOST as exc:  # the connection is closed already (see _call)
                if not resendable(request, exc):
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                logger.warning("lost the connection to %s (%s): sending again", self.label, exc)
                self._count("retries")
                await asyncio.sleep(min(next(delays), remaining))

    async def aclose(self) -> None:
        """Close the client of the running event loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


async def _call(client: Any, args: tuple[Any, ...]) -> Any:
    """Run one command on a connection of ``client``'s pool. A connection that fails with
    anything but an error reply (lost, timed out, cancelled) is closed before it goes back to
    the pool, so a reply left half-read on it is never read as the next command's."""
    if client.single_connection_client:  # a client= with one connection: redis-py serialises it
        return await client.execute_command(*args)  # (and closes it on such a failure)
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_command(*args)
        return await client.parse_response(connection, args[0])
    except redis.exceptions.ResponseError:  # a complete error reply: the connection is fine
        raise
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)
